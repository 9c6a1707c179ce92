"""Populations of reservoirs sharing one ESN's matrices, each with its own spectral radius, input scaling
and leak rate, run in one engine call: run_population, and population_sweep to fit and score them all."""

import numpy as np
import scipy.sparse as sp

from .._util import checks as _checks
from .matrices import leak_vector
from .model import ESN, _chunk_len
from .readout import RidgeAccumulator, _nrmse_parts, _ridge_list


def _population_params(esn, spectral_radii, input_scalings, leak_rates):
    """-> (P, sr_scale (P,), in_scale (P,), leak (P, N), list of member configs)."""
    if isinstance(spectral_radii, np.ndarray):
        spectral_radii = spectral_radii.ravel().tolist()
    if isinstance(input_scalings, np.ndarray):
        input_scalings = input_scalings.ravel().tolist()
    lists = {k: v for k, v in (("spectral_radii", spectral_radii), ("input_scalings", input_scalings),
                               ("leak_rates", leak_rates)) if isinstance(v, (list, tuple))}
    sizes = {len(v) for v in lists.values()}
    if len(sizes) > 1:
        raise ValueError("spectral_radii, input_scalings and leak_rates given as lists must have the same "
                         f"length, got {({k: len(v) for k, v in lists.items()})}")
    P = sizes.pop() if sizes else 1
    if P == 0:
        empty = [k for k, v in lists.items() if len(v) == 0]
        raise ValueError(f"{' and '.join(empty)} must not be empty: the population must have at least one "
                         "member")
    N = esn.reservoir_size
    rho = esn.base_spectral_radius
    base_in = esn._W_in_base_scale

    def member(v, k):
        return v[k] if isinstance(v, (list, tuple)) else v

    sr, ins, leak, configs = [], [], [], []
    for k in range(P):
        r = member(spectral_radii, k)
        r = rho if r is None else _checks.real(r, "spectral_radii", low=0, low_open=True)
        s = member(input_scalings, k)
        s = base_in if s is None else _checks.real(s, "input_scalings", low=0, low_open=True)
        lr = member(leak_rates, k)
        lr_v = esn._leak_vector() if lr is None else leak_vector(lr, N, "leak_rates")
        sr.append(r / rho)
        ins.append(s / base_in)
        leak.append(lr_v)
        configs.append({"spectral_radius": r, "input_scaling": s,
                        "leak_rate": esn.leak_rate if lr is None else lr})
    dt = esn.dtype
    return P, np.array(sr, dt), np.array(ins, dt), np.array(leak, dt).reshape(P, N), configs


def run_population(u, esn, spectral_radii=None, input_scalings=None, leak_rates=None):
    """States of a population of reservoirs sharing esn's W, W_in and bias, in ONE engine call.

    Member p uses W * spectral_radii[p] / rho (rho = esn.base_spectral_radius: the spectral radius of
    esn.W), W_in * input_scalings[p] / s0 (s0 = esn's scalar input_scaling when W_in was generated from
    it, else 1: the values are then factors on the supplied W_in), and leak rate leak_rates[p] (scalar or
    (N,)). Each argument is a list (one value per member; lists must have equal lengths), a scalar (the
    same for all) or None (the ESN's own value). Members start from zeros; the ESN's state is not used
    or changed. To use bare matrices, wrap them: ``ESN(I, N, O, W=W, W_in=W_in, bias=b)``.

    u: (T, I) -> states (P, T, N); (T, B, I) -> (P, T, B, N). Each member's states equal those of an
    ESN built alone with that configuration. Feedback ESNs are not supported here.
    """
    if not isinstance(esn, ESN):
        raise TypeError(f"esn must be an rnnfast.ESN, got {type(esn).__name__}")
    if esn.feedback:
        raise ValueError("run_population does not support feedback=True ESNs")
    P, sr, ins, leak, _ = _population_params(esn, spectral_radii, input_scalings, leak_rates)
    a = esn._array(u, "u", esn.input_size, ndim=(2, 3))
    u3 = a[:, None, :] if a.ndim == 2 else a
    states, _ = esn._engine(u3, None, sr, ins, leak)
    states = np.moveaxis(states, 1, 0)             # (P, T, B, N)
    return states[:, :, 0] if a.ndim == 2 else states


def _fit_and_score(esn, ut, yt, uv, yv, sr, ins, leak, ridges, washout):
    """Fit every member's ridge read-out on (ut, yt) after `washout` steps and run on (uv, yv), continuing from
    the training state (as predict would). ut/yt/uv/yv: (T, B, F); sr, ins (P,), leak (P, N).
    -> (sse (P, R, O) per member, ridge and output; solutions [P][R] of (W_out, b_out); states at the end
    (P, B, N)).

    The large arrays (a chunk of states, one member's centred float64 rows, the solve's N x N workspace) are
    allocated once and reused for every chunk and member. Allocated per chunk they cost 30% of a search
    task on a 2-worker Dask cluster: Dask's nanny starts its workers with MALLOC_TRIM_THRESHOLD_ set, which
    turns off glibc's adaptive mmap threshold, so each large temporary was mapped, page-faulted and unmapped
    again (benchmarks/RESULTS.md, issue #19 (c))."""
    N, O, dt = esn.reservoir_size, esn.output_size, esn.dtype
    P, B = len(sr), ut.shape[1]
    w_args, w_in = esn._w_args(), esn._w_in_engine()
    accs = [RidgeAccumulator(N, O) for _ in range(P)]
    step = min(max(ut.shape[0], uv.shape[0]), _chunk_len(P * B, N, dt.itemsize))
    states = np.empty((step, P, B, N), dt)
    x_buf = [np.empty((P, B, N), dt), np.empty((P, B, N), dt)]  # x_last alternates: never the call's x0
    scratch = np.empty((step * B, N))
    x0 = None

    def run(u):
        nonlocal x0
        out = (states, x_buf[0] if x0 is not x_buf[0] else x_buf[1])
        st, x0 = esn._engine(u.astype(dt, copy=False), x0, sr, ins, leak, w_in=w_in, w_args=w_args, out=out)
        return st

    for t0 in range(0, ut.shape[0], step):
        st = run(ut[t0:t0 + step])
        lo = max(washout - t0, 0)
        if lo < st.shape[0]:
            Y = yt[t0 + lo:t0 + step].reshape(-1, O).astype(np.float64, copy=False)
            for p in range(P):  # the engine's states are finite (tanh)
                accs[p]._add(st[lo:, p], Y, scratch)
    if accs[0].n == 0:
        raise ValueError(f"washout={washout} leaves no training steps (u_train has {ut.shape[0]})")
    work = np.empty((N, N), order="F")
    sols = [[acc.solve(r, work) for r in ridges] for acc in accs]
    del accs, work
    sse = np.zeros((P, len(ridges), O))
    for t0 in range(0, uv.shape[0], step):
        st = run(uv[t0:t0 + step])
        S = st.shape[0] * B
        Y = yv[t0:t0 + step].reshape(-1, O).astype(np.float64, copy=False)
        X = scratch[:S]
        for p in range(P):
            np.copyto(X.reshape(st.shape[0], B, N), st[:, p])
            for k, (W_out, b_out) in enumerate(sols[p]):
                r = X @ W_out
                r += b_out - Y
                sse[p, k] += np.einsum("so,so->o", r, r)
    return sse, sols, x0


def population_sweep(esn, u_train, y_train, u_val, y_val, spectral_radii=None, input_scalings=None,
                     leak_rates=None, ridge=None, washout=0):
    """Fit a readout for every member of a population and score it on validation data.

    The members (see run_population) run over the training data in one engine call per time chunk,
    each gets a ridge readout (one accumulation per member; ``ridge`` a float or a list, default the ESN's
    ridge) trained after ``washout`` steps; then all run over the validation data (continuing from their
    training states, as predict would) and are scored by NRMSE (every step). u/y: (T, I)/(T, O) or
    (T, B, I)/(T, B, O).

    Returns a dict: ``scores`` (P, R) NRMSE per member and ridge value, ``configs`` (the members'
    spectral_radius / input_scaling / leak_rate), ``ridges``, ``best`` (the best member's config with its
    ridge and nrmse) and ``esn``: an ESN with the best configuration (its W, W_in rescaled) and readout,
    its state at the end of the validation data.
    """
    if not isinstance(esn, ESN):
        raise TypeError(f"esn must be an rnnfast.ESN, got {type(esn).__name__}")
    if esn.feedback:
        raise ValueError("population_sweep does not support feedback=True ESNs")
    washout = _checks.positive_int(washout, "washout", minimum=0)
    ridges, _ = _ridge_list(esn.ridge if ridge is None else ridge)
    P, sr, ins, leak, configs = _population_params(esn, spectral_radii, input_scalings, leak_rates)
    N, O, dt = esn.reservoir_size, esn.output_size, esn.dtype

    def as3(a, name, width):
        a = esn._array(a, name, width, ndim=(2, 3))
        return a[:, None, :] if a.ndim == 2 else a

    ut, yt = as3(u_train, "u_train", esn.input_size), as3(y_train, "y_train", O)
    uv, yv = as3(u_val, "u_val", esn.input_size), as3(y_val, "y_val", O)
    if ut.shape[:2] != yt.shape[:2] or uv.shape[:2] != yv.shape[:2] or ut.shape[1] != uv.shape[1]:
        raise ValueError("u_train/y_train and u_val/y_val must have matching (T, B), and the same B")
    B = ut.shape[1]
    sse, sols, x0 = _fit_and_score(esn, ut, yt, uv, yv, sr, ins, leak, ridges, washout)
    yv_flat = yv.reshape(-1, O).astype(np.float64)
    y_std = yv_flat.std(axis=0)
    scores = np.array([[_nrmse_parts(sse[p, k], yv_flat.shape[0], y_std) for k in range(len(ridges))]
                       for p in range(P)])
    p_best, k_best = np.unravel_index(int(np.argmin(scores)), scores.shape)
    best = dict(configs[p_best], ridge=ridges[k_best], nrmse=float(scores[p_best, k_best]), index=int(p_best))

    W = esn.W * sr[p_best] if sp.issparse(esn.W) else esn.W * sr[p_best]
    best_esn = ESN(esn.input_size, N, O, dtype=dt.name, W=W, W_in=esn.W_in * ins[p_best], bias=esn.bias,
                   leak_rate=leak[p_best].astype(np.float64), ridge=ridges[k_best])
    best_esn.W_out = sols[p_best][k_best][0].astype(dt)
    best_esn.b_out = sols[p_best][k_best][1].astype(dt)
    best_esn.ridge_ = ridges[k_best]
    best_esn._state = x0[p_best].copy() if B > 1 else x0[p_best, 0].copy()
    return {"scores": scores, "configs": configs, "ridges": ridges, "best": best, "esn": best_esn}
