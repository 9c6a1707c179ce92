"""Concurrency cases: N threads x M calls on ONE shared object give what the same calls give one after another.

Run by tests/threads/test_threads_shared.py in a worker process with the engine's thread count pinned
(RNNFAST_NUM_THREADS=2): a lone call then runs its time loop on the engine's pool, calls made at once run
on their own threads, and the two must agree bit for bit (the engine's sums do not depend on the thread
count). The sizes are above the engine's cutoffs for a two-thread time loop (csrc/cpu): recurrent cells
N*rec_cols*H > 1e6 (rec_cols = G*H, 2H for the Cho GRU), the MRNN N*F*H > 5e5, a dense reservoir
N*N*itemsize > 1 MiB (one sequence) or B*N >= 32768 rows (a batch), a sparse one nnz*ceil(B/lanes) >= 65536.

Each case builds one object, draws every call's arguments (random shapes) in advance, runs the calls
serially, then from THREADS threads started together (a barrier), ROUNDS times with fresh arguments, and
compares every returned array bit for bit. Accumulated gradients are compared to the serial sum within
a few float roundings (the backwards add in the order they run, which threads decide).

    python tests/threads/thread_cases.py CASE [CASE ...]     # one JSON line per case: {"case", "ok", "detail", "s"}
"""

import json
import sys
import threading
import time

import numpy as np

import rnnfast
from rnnfast import losses, nn

THREADS, CALLS, ROUNDS = 4, 4, 3
EVAL_ROUNDS = 5         # inference calls are cheap, and their races need two calls of one shape at once
SWITCH_INTERVAL = 1e-5  # s: the interpreter switches threads often, so Python code between engine calls interleaves too
CELLS = {"rnn_tanh": (rnnfast.RNN, {}), "rnn_relu": (rnnfast.RNN, {"nonlinearity": "relu"}),
         "lstm": (rnnfast.LSTM, {}), "gru": (rnnfast.GRU, {}), "gru_cho": (rnnfast.GRU, {"reset_after": False}),
         "mrnn": (rnnfast.MRNN, {})}
C, H = 24, 256          # N >= 16: N*G*H*H > 1e6 for every cell, N*F*H > 5e5 for the MRNN (F = H)


class Mismatch(AssertionError):
    pass


# ---- running -----------------------------------------------------------------------------------
def run_serial(work):
    return [[_call(f) for f in calls] for calls in work]


def run_threaded(work):
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        return _run_threaded(work)
    finally:
        sys.setswitchinterval(0.005)


def _run_threaded(work):
    barrier = threading.Barrier(len(work))
    out = [None] * len(work)

    def target(i):
        barrier.wait()
        out[i] = [_call(f) for f in work[i]]

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _call(f):
    try:
        return f()
    except Exception as e:  # an error in one call is a wrong result, reported by compare()
        return e


def _arrays(r):
    if isinstance(r, (tuple, list)):
        return [a for v in r for a in _arrays(v)]
    if isinstance(r, dict):
        return [a for k in sorted(r) for a in _arrays(r[k])]
    return [r]


def compare(serial, threaded):
    """Count the calls whose results differ (an exception counts); raise Mismatch naming the first."""
    bad, first, total = 0, None, 0
    for i, (s_calls, t_calls) in enumerate(zip(serial, threaded)):
        for j, (s, t) in enumerate(zip(s_calls, t_calls)):
            total += 1
            why = None
            if isinstance(s, Exception):
                why = f"the serial call raised {s!r}"
            elif isinstance(t, Exception):
                why = f"raised {type(t).__name__}: {t}"
            else:
                for k, (a, b) in enumerate(zip(_arrays(s), _arrays(t))):
                    if not _same(a, b):
                        why = f"output {k} differs" + (f" by up to {_gap(a, b):.3g}" if _comparable(a, b) else "")
                        break
            if why:
                bad += 1
                first = first or f"thread {i} call {j}: {why}"
    if bad:
        raise Mismatch(f"{bad} of {total} concurrent calls differ from serial calls; first: {first}")


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _comparable(a, b) and np.array_equal(a, b)
    return a == b or (a != a and b != b)


def _comparable(a, b):
    return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype


def _gap(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def close_sums(serial, threaded, dtype, what):
    """Gradients summed over the same calls in another order: equal within a few roundings."""
    tol = 64 * np.finfo(dtype).eps
    for k in serial:
        a, b = serial[k].astype(np.float64), threaded[k].astype(np.float64)
        scale = max(float(np.abs(a).max()), 1e-30)
        err = float(np.abs(a - b).max()) / scale
        if not err <= tol:
            raise Mismatch(f"{what} {k}: concurrent backwards summed to {err:.3g} (relative) from the serial sum")


def check(build, rounds=ROUNDS, grads=None):
    """build(rng) -> work (per thread, a list of calls); serial then threaded, `rounds` times.

    grads: (module, dtype) whose grads must sum to the serial ones (zeroed before each run).
    """
    rng = np.random.default_rng(1234)
    for _ in range(rounds):
        work = build(rng)
        if grads:
            grads[0].zero_grad()
        serial = run_serial(work)
        g_serial = {k: g.copy() for k, g in grads[0].grads.items()} if grads else None
        if grads:
            grads[0].zero_grad()
        threaded = run_threaded(work)
        compare(serial, threaded)
        if grads:
            close_sums(g_serial, grads[0].grads, grads[1], "grads")


# ---- the cases ------------------------------------------------------------------------------------
def _layer(cell, dtype, **kw):
    cls, extra = CELLS[cell]
    args = (C, H, H) if cell == "mrnn" else (C, H)  # the MRNN: F = H factors
    return cls(*args, bidirectional=True, dtype=dtype, seed=7, **extra, **kw)


def _layer_args(rng, layer, cell, dtype):
    """One call's (x, hx, dy, dhx), random shapes above the cutoffs; x integer (one-hot indices) sometimes."""
    # few shapes, so that calls running at once often have the same one (buffers sized alike); the cheapest
    # cells get longer sequences, so that their calls overlap as long
    T = int(rng.choice([6, 10] if cell.startswith("rnn") else [4] if cell == "mrnn" else [3, 5]))
    N = int(rng.choice([16, 24]))
    D = 2
    if cell != "mrnn" and rng.random() < 0.3:
        x = rng.integers(0, C, (T, N))
    else:
        x = rng.standard_normal((T, N, C)).astype(dtype)
    h0 = rng.standard_normal((D, N, H)).astype(dtype) if rng.random() < 0.5 else None
    hx = (h0, rng.standard_normal((D, N, H)).astype(dtype)) if (cell == "lstm" and h0 is not None) else h0
    dy = rng.standard_normal((T, N, D * H)).astype(dtype)
    dh = rng.standard_normal((D, N, H)).astype(dtype)
    dhx = (dh, None) if cell == "lstm" else dh
    return x, hx, dy, dhx


def _layer_work(layer, cell, dtype, make_call):
    """build(rng) for check(): THREADS x CALLS calls make_call(rng, x, hx, dy, dhx) of random shapes."""
    def build(rng):
        return [[make_call(rng, *_layer_args(rng, layer, cell, dtype)) for _ in range(CALLS)] for _ in range(THREADS)]
    return build


def layer_case(cell, dtype, mode):
    layer = _layer(cell, dtype)
    if mode == "eval":
        layer.eval()

    def make_call(rng, x, hx, dy, dhx):
        if mode == "eval":
            return lambda: layer(x, hx)

        def fwd_bwd():
            y, h_n = layer(x, hx)
            return y, h_n, layer.backward(dy, dhx)
        return fwd_bwd

    check(_layer_work(layer, cell, dtype, make_call), rounds=EVAL_ROUNDS if mode == "eval" else ROUNDS,
          grads=(layer, np.dtype(dtype)) if mode == "train" else None)


def layer_no_grad_case(cell, dtype):
    """Training mode; between each forward and its backward the same thread runs an inference forward under
    nn.no_grad (which must not replace the pending forward) and other threads run theirs."""
    layer = _layer(cell, dtype)

    def make_call(rng, x, hx, dy, dhx):
        x2 = _layer_args(rng, layer, cell, dtype)[0]

        def call():
            y, h_n = layer(x, hx)
            with nn.no_grad():
                y2, h2 = layer(x2)
            return y, h_n, y2, h2, layer.backward(dy, dhx)
        return call

    check(_layer_work(layer, cell, dtype, make_call), grads=(layer, np.dtype(dtype)))


def separate_layers_case(dtype):
    """One layer per thread (the shape the old thread test had), sizes above the cutoffs."""
    layers = [_layer(cell, dtype) for cell in ("lstm", "gru", "rnn_tanh", "mrnn")]
    cells = ["lstm", "gru", "rnn_tanh", "mrnn"]

    def build(rng):
        work = []
        for layer, cell in zip(layers, cells):
            calls = []
            for _ in range(CALLS):
                x, hx, dy, dhx = _layer_args(rng, layer, cell, dtype)

                def call(layer=layer, x=x, hx=hx, dy=dy, dhx=dhx):
                    layer.zero_grad()
                    y, h_n = layer(x, hx)
                    return y, h_n, layer.backward(dy, dhx), {k: g.copy() for k, g in layer.grads.items()}
                calls.append(call)
            work.append(calls)
        return work

    check(build)


def _esn(dtype, kind):
    from rnnfast.esn import ESN
    N = (400 if dtype == "float64" else 600) if kind == "dense" else 500
    esn = ESN(3, N, 2, density=1.0 if kind == "dense" else 0.3, leak_rate=0.5, seed=3, dtype=dtype)
    rng = np.random.default_rng(5)
    u, y = rng.standard_normal((300, 3)), rng.standard_normal((300, 2))
    esn.fit(u, y, washout=20)
    return esn


def _esn_input(rng, dtype, kind, N):
    T = int(rng.integers(8, 16))
    if rng.random() < 0.4:
        return rng.standard_normal((T, 3)).astype(dtype)           # one sequence (dense: the one-state loop)
    B = -(-32768 // N) if kind == "dense" else 24                 # a batch: B*N rows, nnz*B/lanes work
    return rng.standard_normal((T, B, 3)).astype(dtype)


def esn_case(dtype, kind):
    """run_reservoir and predict that touch no state (reset=True or from_state, stateful=False)."""
    esn = _esn(dtype, kind)
    N = esn.reservoir_size

    def build(rng):
        work = []
        for _ in range(THREADS):
            calls = []
            for _ in range(CALLS):
                u = _esn_input(rng, dtype, kind, N)
                start = rng.standard_normal((N,) if u.ndim == 2 else (u.shape[1], N)) * 0.1
                if rng.random() < 0.5:
                    calls.append(lambda u=u: esn.run_reservoir(u, reset=True, stateful=False))
                else:
                    calls.append(lambda u=u, s=start: esn.predict(u, from_state=s, stateful=False))
            work.append(calls)
        return work

    before = esn.state
    check(build)
    if not np.array_equal(esn.state, before):
        raise Mismatch("stateful=False calls changed the carried state")


def separate_esns_case(dtype):
    """One ESN per thread, each continuing its own carried state over several calls (the old reservoir
    thread test, with sizes above the cutoffs)."""
    esns = [_esn(dtype, "dense" if i % 2 else "sparse") for i in range(THREADS)]

    def run(e, inputs):
        e.reset()
        return [(e.run_reservoir(u), e.state) for u in inputs]

    def build(rng):
        return [[lambda e=e, us=[rng.standard_normal((int(rng.integers(20, 40)), 3)).astype(dtype)  # noqa: B008
                                 for _ in range(CALLS)]: run(e, us)] for e in esns]

    check(build)


def esn_carried_state_case(dtype):
    """Calls that continue the carried state, made at once: one of them is refused, none is wrong.

    Thread A holds a stateful predict (its input blocks while being read); thread B's run_reservoir, fit,
    reset and state setter then raise RuntimeError; A's result is then exactly a serial call's."""
    esn = _esn(dtype, "dense")
    u = np.random.default_rng(9).standard_normal((30, 3)).astype(dtype)
    esn.reset()
    expected = esn.predict(u)
    esn.reset()
    reading, release = threading.Event(), threading.Event()

    class Blocking:
        def __array__(self, dtype=None, copy=None):
            reading.set()
            release.wait(30)
            return u

    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("a", _call(lambda: esn.predict(Blocking()))))
    thread.start()
    try:
        if not reading.wait(30):
            raise Mismatch("thread A never started reading its input")
        for name, call in (("run_reservoir", lambda: esn.run_reservoir(u)), ("fit", lambda: esn.fit(u, u[:, :2])),
                           ("reset", esn.reset), ("state", lambda: setattr(esn, "state", np.zeros(esn.reservoir_size))),
                           ("generate", lambda: esn.generate(3)), ("predict", lambda: esn.predict(u))):
            r = _call(call)
            if not (isinstance(r, RuntimeError) and "another thread" in str(r)):
                raise Mismatch(f"{name} beside a stateful call in another thread gave {r!r}, not a RuntimeError")
        free = _call(lambda: esn.predict(u, reset=True, stateful=False))
        if isinstance(free, Exception) or not np.array_equal(free, expected):
            raise Mismatch(f"a stateless predict beside it failed or differs: {free!r}")
    finally:
        release.set()
        thread.join()
    if isinstance(out["a"], Exception) or not np.array_equal(out["a"], expected):
        raise Mismatch(f"the stateful call differs from a serial one: {out['a']!r}")


def esn_fit_beside_predict_case(dtype):
    """One thread refits (readout A, B, A, ...) while three predict from a given state: each prediction is
    exactly A's or B's, never a mix of one's W_out with the other's b_out."""
    esn = _esn(dtype, "dense")
    rng = np.random.default_rng(11)
    data = [(rng.standard_normal((200, 3)), rng.standard_normal((200, 2))) for _ in range(2)]
    u = rng.standard_normal((25, 3)).astype(dtype)
    s = rng.standard_normal(esn.reservoir_size) * 0.1
    expected = []
    for du, dy in data:
        esn.reset()
        esn.fit(du, dy)
        expected.append(esn.predict(u, from_state=s, stateful=False))
    stop = threading.Event()
    errors = []

    def refit():
        k = 0
        while not stop.is_set():
            esn.reset()
            esn.fit(*data[k % 2])
            k += 1

    def predict():
        for _ in range(40):
            p = _call(lambda: esn.predict(u, from_state=s, stateful=False))
            if isinstance(p, Exception) or not any(np.array_equal(p, e) for e in expected):
                errors.append(p)

    fitter = threading.Thread(target=refit)
    fitter.start()
    try:
        run_threaded([[predict] for _ in range(3)])
    finally:
        stop.set()
        fitter.join()
    if errors:
        raise Mismatch(f"{len(errors)} of 120 predictions beside fit were neither readout's: {errors[0]!r}")


def char_model_case(cell, dtype):
    """CharModel.evaluate and sample on one shared model (left in training mode, as rnnfast char leaves it)."""
    from rnnfast.charmodel import CharModel
    V = 40
    model = CharModel(V, cell, hidden=256 if cell != "mrnn" else 192, seed=3, dtype=dtype)
    state = model.initial_state(16)

    def build(rng):
        work = []
        for _ in range(THREADS):
            calls = []
            for _ in range(CALLS):
                data = rng.integers(0, V, int(rng.integers(600, 900))).astype(np.int32)
                seed = int(rng.integers(1 << 30))
                if rng.random() < 0.5:
                    calls.append(lambda d=data: model.evaluate(d, losses, streams=16, chunk=16, state=state))
                else:
                    calls.append(lambda d=data, sd=seed: model.sample(
                        list(d[:5]), 12, 0.9, np.random.default_rng(sd), state=state))
            work.append(calls)
        return work

    check(build, rounds=EVAL_ROUNDS)
    if not model.rnn.training:
        raise Mismatch("evaluate/sample left the model in eval mode")


def nn_case(kind, dtype):
    """Linear, Embedding and Conditioned(GRU) shared by the threads: forward + backward per call."""
    if kind == "linear":
        module = nn.Linear(300, 200, dtype=dtype, seed=1)

        def args(rng):
            return rng.standard_normal((int(rng.integers(20, 60)), 300)).astype(dtype)

        def call(x, dy_seed):
            y = module(x)
            return y, module.backward(np.random.default_rng(dy_seed).standard_normal(y.shape).astype(dtype))
    elif kind == "embedding":
        module = nn.Embedding(500, 64, dtype=dtype, seed=1)

        def args(rng):
            return rng.integers(0, 500, (int(rng.integers(100, 400)),))

        def call(idx, dy_seed):
            y = module(idx)
            module.backward(np.random.default_rng(dy_seed).standard_normal(y.shape).astype(dtype))
            return y
    else:
        module = nn.Conditioned(rnnfast.GRU(C + 8, H, dtype=dtype, seed=1), cond_size=8)

        def args(rng):
            T, N = int(rng.integers(2, 5)), int(rng.choice([16, 24]))
            return (rng.standard_normal((T, N, C)).astype(dtype), rng.standard_normal((N, 8)).astype(dtype))

        def call(xv, dy_seed):
            y, h = module(*xv)
            return y, h, module.backward(np.random.default_rng(dy_seed).standard_normal(y.shape).astype(dtype))

    def build(rng):  # cheap calls: more of them
        return [[(lambda a=args(rng), s=int(rng.integers(1 << 30)): call(a, s))  # noqa: B008  (drawn once, bound)
                 for _ in range(4 * CALLS)]
                for _ in range(THREADS)]

    check(build, grads=(module, np.dtype(dtype)))


def _hmm(kind):
    """A categorical HMM (K=32, M=20) or a Gaussian one with full covariances (K=8, D=3), random parameters."""
    from rnnfast.statespace import HMM
    rng = np.random.default_rng(21)
    if kind == "categorical":
        K, M = 32, 20
        return HMM(K, "categorical", startprob=rng.dirichlet(np.ones(K)), transmat=rng.dirichlet(np.ones(K), K),
                   emissionprob=rng.dirichlet(np.ones(M), K))
    K, D = 8, 3
    A = rng.standard_normal((K, D, D))
    return HMM(K, "gaussian", covariance_type="full", startprob=rng.dirichlet(np.ones(K)),
               transmat=rng.dirichlet(np.ones(K), K), means=2 * rng.standard_normal((K, D)),
               covars=A @ np.swapaxes(A, 1, 2) + np.eye(D))


def _hmm_data(rng, hmm):
    """(X, lengths): 1-4 sequences, R*K above the engine's two-thread cutoff (2e4)."""
    lengths = rng.integers(400, 1200, int(rng.integers(1, 5)))
    R = int(lengths.sum())
    if hmm.emission == "categorical":
        return rng.integers(0, hmm.n_symbols, R), lengths
    return rng.standard_normal((R, hmm.n_features)) * 2, lengths


def hmm_case(kind):
    """Inference on one shared HMM: forward-backward, score, filter, Viterbi, next-symbol prediction, sampling."""
    hmm = _hmm(kind)
    methods = ("forward_backward", "score", "filter", "decode", "predict_next", "sample")

    def build(rng):
        work = []
        for _ in range(THREADS):
            calls = []
            for _ in range(CALLS):
                name = methods[int(rng.integers(len(methods)))]
                if name == "sample":
                    calls.append(lambda n=int(rng.integers(100, 500)), sd=int(rng.integers(1 << 30)):  # noqa: B008
                                 hmm.sample(n, seed=sd))  # (drawn once, bound)
                else:
                    X, lengths = _hmm_data(rng, hmm)
                    calls.append(lambda f=getattr(hmm, name), X=X, lengths=lengths: f(X, lengths))  # noqa: B008
            work.append(calls)
        return work

    check(build, rounds=EVAL_ROUNDS)


def _lds():
    from rnnfast.statespace import LinearGaussian
    rng = np.random.default_rng(22)
    X, Y, U = 16, 8, 2
    A = rng.standard_normal((X, X))
    A *= 0.95 / max(abs(np.linalg.eigvals(A)))
    Q, R = rng.standard_normal((X, X)), rng.standard_normal((Y, Y))
    return LinearGaussian(X, Y, U, transition_matrix=A, control_matrix=rng.standard_normal((X, U)),
                          observation_matrix=rng.standard_normal((Y, X)), transition_covariance=Q @ Q.T / X + np.eye(X),
                          observation_covariance=R @ R.T / Y + np.eye(Y), initial_state_mean=rng.standard_normal(X))


def _lds_data(rng, lds):
    """(y [T,N,Y] or [T,Y] with some missing rows, u): T*X^3 above the engine's two-thread cutoff (1e5)."""
    T, N = int(rng.choice([60, 90])), int(rng.choice([1, 3, 8]))
    y = rng.standard_normal((T, N, lds.obs_size))
    y[rng.random((T, N)) < 0.1] = np.nan  # missing rows: several covariance groups
    u = rng.standard_normal((T, N, lds.input_size))
    return (y[:, 0], u[:, 0]) if N == 1 and rng.random() < 0.5 else (y, u)


def lds_case():
    """Inference on one shared LinearGaussian: filter, smoother (with pair covariances), likelihood, forecasts."""
    lds = _lds()

    def make(rng):
        y, u = _lds_data(rng, lds)
        k = int(rng.integers(5))
        if k == 0:
            return lambda: lds.filter(y, u)
        if k == 1:
            return lambda: lds.smooth(y, u, pair_covariances=True)
        if k == 2:
            return lambda: lds.loglikelihood(y, u)
        if k == 3:
            return lambda: lds.forecast(y, u, 3)
        uf = rng.standard_normal((4,) + u.shape[1:])
        return lambda: lds.predict(y, 4, u, uf)

    check(lambda rng: [[make(rng) for _ in range(CALLS)] for _ in range(THREADS)], rounds=EVAL_ROUNDS)


def statespace_fit_beside_inference_case(kind):
    """One thread changes the model again and again (HMM: fit from seed 0 or 1; LinearGaussian: set_parameters
    of all of one learned set or the other) while three score data: each score is exactly that of the starting
    parameters or of one of the two sets, never of a mix or of an EM iterate."""
    if kind == "hmm":
        model = _hmm("categorical")
        rng = np.random.default_rng(23)
        X, lengths = _hmm_data(rng, model)
        Xs, ls = _hmm_data(rng, model)

        def change(k):
            model.fit(X, lengths, n_iter=3, tol=None, init="random", seed=k % 2)

        def score():
            return model.score(Xs, ls)
    else:
        model = _lds()
        rng = np.random.default_rng(24)
        y, u = _lds_data(rng, model)
        ys, us = _lds_data(rng, model)
        sets = []
        for _ in range(2):
            m = _lds()
            m.fit(y, u, n_iter=1 + len(sets))
            sets.append(m.parameters())

        def change(k):
            model.set_parameters(**sets[k % 2])

        def score():
            return model.loglikelihood(ys, us)
    import copy
    expected = [score()]
    for k in range(2):
        twin = copy.deepcopy(model)
        if kind == "hmm":
            twin.fit(X, lengths, n_iter=3, tol=None, init="random", seed=k)
            expected.append(twin.score(Xs, ls))
        else:
            twin.set_parameters(**sets[k])
            expected.append(twin.loglikelihood(ys, us))
    if len(set(expected)) != 3:
        raise Mismatch(f"the three parameter sets do not score apart: {expected}")
    stop, errors = threading.Event(), []

    def changer():
        k = 0
        while not stop.is_set():
            change(k)
            k += 1

    def reader():
        for _ in range(30):
            s = _call(score)
            if isinstance(s, Exception) or s not in expected:
                errors.append(s)

    thread = threading.Thread(target=changer)
    thread.start()
    try:
        run_threaded([[reader] for _ in range(3)])
    finally:
        stop.set()
        thread.join()
    if errors:
        raise Mismatch(f"{len(errors)} of 90 scores beside the changes were none of the parameter sets': {errors[0]!r}")


def cases():
    out = {}
    for cell in CELLS:
        for dtype in ("float32", "float64"):
            for mode in ("eval", "train"):
                out[f"layer-{cell}-{dtype}-{mode}"] = lambda c=cell, d=dtype, m=mode: layer_case(c, d, m)
    for cell in ("lstm", "mrnn"):
        for dtype in ("float32", "float64"):
            out[f"layer-{cell}-{dtype}-no_grad"] = lambda c=cell, d=dtype: layer_no_grad_case(c, d)
    for dtype in ("float32", "float64"):
        out[f"separate-layers-{dtype}"] = lambda d=dtype: separate_layers_case(d)
        for kind in ("dense", "sparse"):
            out[f"esn-{kind}-{dtype}"] = lambda d=dtype, k=kind: esn_case(d, k)
        out[f"separate-esns-{dtype}"] = lambda d=dtype: separate_esns_case(d)
        out[f"esn-carried-state-{dtype}"] = lambda d=dtype: esn_carried_state_case(d)
        out[f"esn-fit-beside-predict-{dtype}"] = lambda d=dtype: esn_fit_beside_predict_case(d)
        for cell in ("lstm", "rnn", "gru", "mrnn"):
            out[f"charmodel-{cell}-{dtype}"] = lambda c=cell, d=dtype: char_model_case(c, d)
        for kind in ("linear", "embedding", "conditioned"):
            out[f"nn-{kind}-{dtype}"] = lambda k=kind, d=dtype: nn_case(k, d)
    for kind in ("categorical", "gaussian"):
        out[f"hmm-{kind}"] = lambda k=kind: hmm_case(k)
    out["lds"] = lds_case
    for kind in ("hmm", "lds"):
        out[f"statespace-fit-beside-inference-{kind}"] = lambda k=kind: statespace_fit_beside_inference_case(k)
    return out


def main(names):
    table = cases()
    for name in names:
        print(json.dumps({"case": name, "start": True}), flush=True)
        t0 = time.perf_counter()
        try:
            table[name]()
            ok, detail = True, ""
        except Exception as e:
            ok, detail = False, f"{type(e).__name__}: {e}"
        print(json.dumps({"case": name, "ok": ok, "detail": detail, "s": round(time.perf_counter() - t0, 3)}),
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(cases()))
