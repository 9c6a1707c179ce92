"""Echo state networks: the reservoir engine against the NumPy reference and reservoirpy, the ESN API
(stateful runs, batches, populations, ridge readout, generation), the datasets and argument errors.

Sizes are kept small (the whole file runs in a few seconds)."""

import numpy as np
import pytest
import scipy.sparse as sp

import rnnfast
from rnnfast import _core, datasets
from rnnfast import esn as esn_mod
from rnnfast.esn import ESN, population_sweep, run_population
from rnnfast.reference import esn as ref

from helpers import rel_err

DT = {"float64": np.float64, "float32": np.float32}


def _matrices(rng, N, I, density, dtype):
    if density < 1:
        W = sp.random_array((N, N), density=density, format="csr", rng=rng,
                            data_sampler=lambda size: rng.uniform(-1, 1, size))
        W = sp.csr_matrix(W, dtype=dtype)
    else:
        W = rng.uniform(-1, 1, (N, N)).astype(dtype)
    W = W * (0.9 / ref.spectral_radius(W))
    W_in = rng.uniform(-1, 1, (N, I)).astype(dtype)
    bias = rng.uniform(-0.2, 0.2, N).astype(dtype)
    return W, W_in, bias


def _population_inputs(rng, T, B, I, N, P, dtype):
    """Random inputs u (T, B, I) and per-member scales, leak rates and initial states of a population."""
    u = rng.normal(size=(T, B, I)).astype(dtype)
    sr = rng.uniform(0.5, 1.5, P).astype(dtype)
    ins = rng.uniform(0.5, 2.0, P).astype(dtype)
    leak = rng.uniform(0.1, 1.0, (P, N)).astype(dtype)
    x0 = rng.uniform(-0.5, 0.5, (P, B, N)).astype(dtype)
    return u, sr, ins, leak, x0


def _check_engine_against_reference(W, W_in, bias, u, sr, ins, leak, x0):
    """States and last state of the engine against the float64 reference, with bias and x0 and without."""
    tol = 1e-12 if u.dtype == np.float64 else 1e-4
    for b, x in ((bias, x0), (None, None)):
        states, x_last = _engine(u, W, W_in, b, sr, ins, leak, x)
        rs, rl = ref.reservoir_run(u.astype(np.float64), W.astype(np.float64), W_in, b, sr, ins, leak, x)
        assert rel_err(states, rs) <= tol
        assert rel_err(x_last, rl) <= tol


def _engine(u, W, W_in, bias, sr, ins, leak, x0):
    T, B, _ = u.shape
    P, N = leak.shape
    dt = u.dtype
    states = np.empty((T, P, B, N), dt)
    x_last = np.empty((P, B, N), dt)
    if sp.issparse(W):
        args = (None, W.indptr.astype(np.int32), W.indices.astype(np.int32), W.data.astype(dt))
    else:
        args = (W, None, None, None)
    _core.reservoir_run(u, *args, W_in, bias, sr, ins, leak, x0, states, x_last)
    return states, x_last


# ---------------------------------------------------------------------------------------------
# engine against the NumPy reference
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("density", [0.1, 1.0])
@pytest.mark.parametrize("B,P", [(1, 1), (3, 1), (2, 3)])
def test_engine_matches_reference(dtype, density, B, P):
    rng = np.random.default_rng(1)
    dt = DT[dtype]
    N, I, T = 40, 3, 30
    W, W_in, bias = _matrices(rng, N, I, density, dt)
    u, sr, ins, leak, x0 = _population_inputs(rng, T, B, I, N, P, dt)
    states, x_last = _engine(u, W, W_in, bias, sr, ins, leak, x0)
    # the reference in float64 is the trusted value for both dtypes
    W64 = W.astype(np.float64)
    rs, rl = ref.reservoir_run(u.astype(np.float64), W64, W_in, bias, sr, ins, leak, x0)
    tol = 1e-12 if dtype == "float64" else 1e-4
    assert rel_err(states, rs) <= tol
    assert rel_err(x_last, rl) <= tol
    assert states.dtype == dt


def test_engine_parallel_path_matches_reference():
    # large enough population x batch for the engine's row-parallel CSR path (2^16 vector FMAs per step)
    rng = np.random.default_rng(2)
    N, I, T, B, P = 600, 2, 20, 20, 2
    W, W_in, bias = _matrices(rng, N, I, 0.1, np.float64)
    u = rng.normal(size=(T, B, I))
    sr, ins = np.array([0.8, 1.1]), np.array([1.0, 0.5])
    leak = np.full((P, N), 0.4)
    states, _ = _engine(u, W, W_in, bias, sr, ins, leak, None)
    rs, _ = ref.reservoir_run(u, W, W_in, bias, sr, ins, leak)
    assert rel_err(states, rs) <= 1e-12



# The engine's CSR paths: SELL slices for one long sequence (T >= 32 and padding small enough, else CSR
# rows), the batched SpMM (whole chunks of 4 vectors, single vectors and scalar lanes), the input term
# computed in the loop (I <= 32) or by one GEMM before it (I > 32), the in-register transpose of the
# batched states. N is no multiple of the slice or block sizes, the batch width no multiple of 4 vectors.
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("N,density,T,B,P,I", [
    (203, 0.1, 40, 1, 1, 2),      # SELL, several slices and column blocks, ragged last ones
    (1500, 0.1, 40, 1, 1, 1),     # SELL on two threads (its matrix > 1 MiB; rows split by slices)
    (37, 0.3, 33, 1, 1, 1),       # SELL, one column block
    (300, 0.004, 40, 1, 1, 1),    # too sparse for SELL: CSR rows
    (203, 0.1, 31, 1, 1, 2),      # too short for SELL: CSR rows
    (150, 0.2, 12, 40, 2, 3),     # batched, 80 lanes (a tail past the whole chunks)
    (130, 0.2, 10, 64, 1, 1),     # batched, whole chunks only
    (300, 0.004, 10, 67, 1, 1),   # batched, very sparse, 67 lanes (scalar tail)
    (500, 0.2, 6, 64, 1, 2),      # batched on two threads
    (203, 0.1, 40, 1, 1, 40),     # I > 32: input GEMM before the loop, one sequence
    (150, 0.2, 12, 40, 2, 40),    # I > 32, batched
])
def test_engine_csr_paths_match_reference(dtype, N, density, T, B, P, I):
    rng = np.random.default_rng(3)
    dt = DT[dtype]
    W, W_in, bias = _matrices(rng, N, I, density, dt)
    _check_engine_against_reference(W, W_in, bias, *_population_inputs(rng, T, B, I, N, P, dt))


# Dense W: one state takes the matrix-vector path (four rows at a time, a vector tail, a scalar tail; two
# threads split the rows when W > 1 MiB), a batch or population the packed GEMM.
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("N,T,B,P", [(7, 9, 1, 1), (203, 20, 1, 1), (600, 12, 1, 1), (37, 10, 3, 2)])
def test_engine_dense_paths_match_reference(dtype, N, T, B, P):
    rng = np.random.default_rng(5)
    dt = DT[dtype]
    W, W_in, bias = _matrices(rng, N, 2, 1.0, dt)
    _check_engine_against_reference(W, W_in, bias, *_population_inputs(rng, T, B, 2, N, P, dt))


def test_engine_dense_one_state_does_not_depend_on_the_thread_count(tmp_path):
    """W of 2.9 MB (float64, N = 600): two threads split the rows; the same sums as one thread, bit for bit."""
    import os
    import subprocess
    import sys

    code = ("import sys, numpy as np, rnnfast\n"
            "e = rnnfast.ESN(1, 600, 1, density=1.0, leak_rate=0.3, bias_scaling=0.2, seed=1)\n"
            "np.save(sys.argv[1], e.run_reservoir(np.random.default_rng(0).normal(size=(30, 1))))\n")
    out = {}
    for threads in ("1", "2"):
        path = tmp_path / f"t{threads}.npy"
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, RNNFAST_NUM_THREADS=threads))
        assert proc.returncode == 0, proc.stderr
        out[threads] = np.load(path)
    assert np.array_equal(out["1"], out["2"])


def test_engine_unsorted_duplicate_csr_indices():
    # the engine's layouts take CSR as given: unsorted columns and duplicate entries (summed)
    rng = np.random.default_rng(4)
    N, T = 100, 40
    rows = rng.integers(0, N, 1500)
    cols = rng.integers(0, N, 1500)
    vals = rng.uniform(-0.05, 0.05, 1500)
    W = sp.csr_matrix((vals, (rows, cols)), shape=(N, N))
    W.sum_duplicates()
    dense = W.toarray()
    perm = [np.r_[W.indptr[i]:W.indptr[i + 1]][::-1] for i in range(N)]     # reversed within rows
    order = np.concatenate(perm)
    ix, vv = W.indices[order], W.data[order]
    ix = np.concatenate([ix, ix[:1]])                                         # a duplicate of row 0..
    vv = np.concatenate([vv, [0.01]])
    indptr = W.indptr.copy()
    indptr[1:] += 1
    ix = np.concatenate([ix[-1:], ix[:-1]])
    vv = np.concatenate([vv[-1:], vv[:-1]])
    dense[0, ix[0]] += 0.01
    W_in, bias = rng.uniform(-1, 1, (N, 1)), rng.uniform(-0.2, 0.2, N)
    sr, ins, leak = np.ones(1), np.ones(1), np.full((1, N), 0.5)
    for B in (1, 64):
        u = rng.normal(size=(T, B, 1))
        states = np.empty((T, 1, B, N))
        x_last = np.empty((1, B, N))
        _core.reservoir_run(u, None, indptr.astype(np.int32), ix.astype(np.int32), vv, W_in, bias, sr, ins,
                            leak, None, states, x_last)
        rs, _ = ref.reservoir_run(u, dense, W_in, bias, sr, ins, leak)
        assert rel_err(states, rs) <= 1e-12


# ---------------------------------------------------------------------------------------------
# ESN: stateful runs, batches, populations
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("density", [0.2, 1.0])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_esn_states_match_reference(density, dtype):
    e = ESN(2, 60, 1, density=density, leak_rate=0.3, bias_scaling=0.3, seed=0, dtype=dtype)
    assert sp.issparse(e.W) == (density < 1)
    assert e.W.dtype == DT[dtype] and e.W_in.dtype == DT[dtype]
    assert abs(ref.spectral_radius(e.W) - 0.9) < 1e-5
    u = np.random.default_rng(0).normal(size=(50, 2))
    s = e.run_reservoir(u)
    assert s.shape == (50, 60) and s.dtype == DT[dtype]
    rs, _ = ref.reservoir_run(u[:, None], e.W.astype(np.float64), e.W_in.astype(np.float64),
                              e.bias.astype(np.float64), [1.0], [1.0], np.full((1, 60), 0.3))
    assert rel_err(s, rs[:, 0, 0]) <= (1e-12 if dtype == "float64" else 1e-4)


def test_float32_matches_float64():
    u = np.random.default_rng(0).normal(size=(80, 1))
    s64 = ESN(1, 100, 1, seed=4, leak_rate=0.5).run_reservoir(u)
    s32 = ESN(1, 100, 1, seed=4, leak_rate=0.5, dtype="float32").run_reservoir(u)
    assert s32.dtype == np.float32
    assert rel_err(s32, s64) <= 1e-4


def test_seed_reproducible_and_independent_streams():
    a, b = ESN(1, 30, 1, seed=5), ESN(1, 30, 1, seed=5)
    assert (a.W != b.W).nnz == 0 and np.array_equal(a.W_in, b.W_in)
    W = np.eye(30) * 0.5
    c = ESN(1, 30, 1, seed=5, W=W)
    assert np.array_equal(c.W_in, a.W_in)            # supplying W does not change W_in
    assert np.array_equal(c.W, W)                     # supplied matrices are used as they are
    assert c.base_spectral_radius == pytest.approx(0.5)


def test_supplied_sparse_matrix_converted_to_csr_int32():
    rng = np.random.default_rng(0)
    W = sp.random_array((30, 30), density=0.2, format="coo", rng=rng) * 0.3
    e = ESN(1, 30, 1, W=W, W_in=np.ones((30, 1)), bias=0.1)
    assert e.W.format == "csr" and e.W.indices.dtype == np.int32 and e.W.indptr.dtype == np.int32
    assert np.allclose(e.bias, 0.1)
    u = rng.normal(size=(20, 1))
    rs, _ = ref.reservoir_run(u[:, None], W.tocsr(), np.ones((30, 1)), np.full(30, 0.1), [1.0], [1.0],
                              np.ones((1, 30)))
    assert rel_err(e.run_reservoir(u), rs[:, 0, 0]) <= 1e-12


def test_stateful_run_and_reset():
    e = ESN(1, 40, 1, seed=1, leak_rate=0.4)
    u = np.random.default_rng(0).normal(size=(60, 1))
    full = e.run_reservoir(u)
    assert np.array_equal(e.state, full[-1])
    e.reset()
    assert not e.state.any()
    part = np.concatenate([e.run_reservoir(u[:25]), e.run_reservoir(u[25:])])
    assert rel_err(part, full) <= 1e-14
    e.reset()
    assert rel_err(e.run_reservoir(u), full) == 0


@pytest.mark.parametrize("feedback", [False, True])
def test_from_state_reset_and_stateful_equal_the_stateful_calls(feedback):
    """reservoirpy's from_state / reset / stateful: the same results as setting the state first, and
    stateful=False leaves the carried state (and the fed-back output) as it was."""
    rng = np.random.default_rng(4)
    I = 1 if feedback else 2
    e = ESN(I, 40, 1, seed=5, leak_rate=0.5, feedback=feedback)
    u, y = rng.normal(size=(80, I)), rng.normal(size=(80, 1))
    e.fit(u, y, washout=5)
    x0 = rng.normal(size=40) * 0.1
    e.run_reservoir(u[:7], y[:7] if feedback else None)      # a carried state and fed-back output to keep
    carried, y_last = e.state, e._y_last

    for method in ("run_reservoir", "predict"):
        call = getattr(e, method)
        free = call(u[:9], from_state=x0, stateful=False)
        zero = call(u[:9], reset=True, stateful=False)
        assert np.array_equal(e.state, carried) and e._y_last is y_last
        twin = ESN(I, 40, 1, seed=5, leak_rate=0.5, feedback=feedback)
        twin.W_out, twin.b_out = e.W_out, e.b_out
        twin.state = x0
        assert np.array_equal(free, getattr(twin, method)(u[:9]))    # from x0, fed-back output from zeros
        twin.reset()
        assert np.array_equal(zero, getattr(twin, method)(u[:9]))
        end = twin.state
        assert np.array_equal(call(u[:9], reset=True), zero) and np.array_equal(e.state, end)  # stateful: stored
        e.state = carried
        e._y_last = y_last

    batch = rng.normal(size=(9, 3, I))
    per_seq = rng.normal(size=(3, 40)) * 0.1
    got = e.run_reservoir(batch, from_state=per_seq, stateful=False)
    for b in range(3):
        one = e.run_reservoir(batch[:, b], from_state=per_seq[b], stateful=False)
        assert rel_err(got[:, b], one) <= 1e-12  # (a batch runs other kernels, and feedback loops the roundings)
    with pytest.raises(ValueError, match="from_state"):
        e.predict(u, from_state=x0, reset=True)
    with pytest.raises(ValueError, match="from_state"):
        e.run_reservoir(u, from_state=np.zeros(39))
    with pytest.raises(TypeError, match="stateful"):
        e.predict(u, stateful="no")


def test_batch_equals_one_by_one_and_keeps_per_sequence_state():
    e = ESN(2, 50, 1, seed=2, leak_rate=0.6, bias_scaling=0.1)
    u = np.random.default_rng(1).normal(size=(40, 3, 2))
    batch = e.run_reservoir(u)
    assert batch.shape == (40, 3, 50) and e.state.shape == (3, 50)
    more = e.run_reservoir(u[:5])                    # continues each sequence from its own state
    for b in range(3):
        e.reset()
        one = e.run_reservoir(u[:, b])
        assert rel_err(batch[:, b], one) <= 1e-14
        assert rel_err(more[:, b], e.run_reservoir(u[:5, b])) <= 1e-14
    e.reset()
    e.run_reservoir(u)
    with pytest.raises(ValueError, match="reset"):
        e.run_reservoir(u[:, 0])                     # batch state, single sequence
    with pytest.raises(ValueError, match="reset"):
        e.run_reservoir(u[:, :2])


def test_list_of_sequences_like_reservoirpy():
    e = ESN(1, 30, 1, seed=3)
    rng = np.random.default_rng(2)
    seqs = [rng.normal(size=(n, 1)) for n in (20, 35, 20, 10)]
    out = e.run_reservoir(seqs)
    assert [o.shape for o in out] == [(20, 30), (35, 30), (20, 30), (10, 30)]
    last = e.state
    for s, o in zip(seqs, out):
        e.reset()
        assert rel_err(o, e.run_reservoir(s)) <= 1e-14
    assert np.array_equal(last, out[-1][-1])         # state afterwards: the last sequence's


@pytest.mark.parametrize("density", [0.1, 1.0])
def test_population_equals_members_alone(density):
    base = ESN(2, 50, 1, density=density, spectral_radius=0.9, input_scaling=0.5, leak_rate=0.5,
               bias_scaling=0.2, seed=6)
    u = np.random.default_rng(3).normal(size=(30, 2, 2))
    radii, scalings = [0.5, 0.9, 1.3], [0.5, 1.0, 2.0]
    per_unit = np.linspace(0.2, 1.0, 50)
    leaks = [0.5, 1.0, per_unit]
    states = run_population(u, base, spectral_radii=radii, input_scalings=scalings, leak_rates=leaks)
    assert states.shape == (3, 30, 2, 50)
    for p in range(3):
        alone = ESN(2, 50, 1, W=base.W * (radii[p] / 0.9), W_in=base.W_in * (scalings[p] / 0.5),
                    bias=base.bias, leak_rate=leaks[p])
        assert rel_err(states[p], alone.run_reservoir(u)) <= 1e-12
    single = run_population(u[:, 0], base, spectral_radii=radii)      # (T, I) input, scalars broadcast
    assert single.shape == (3, 30, 50)
    assert rel_err(single[1], ESN(2, 50, 1, density=density, spectral_radius=0.9, input_scaling=0.5,
                                  leak_rate=0.5, bias_scaling=0.2, seed=6).run_reservoir(u[:, 0])) <= 1e-12
    with pytest.raises(ValueError, match="same length"):
        run_population(u, base, spectral_radii=[0.5, 1.0], input_scalings=[1.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("P,B,N", [(11, 1, 37), (16, 1, 64), (5, 3, 29), (9, 2, 8)])
def test_population_blocks_equal_members_alone(dtype, P, B, N):
    """Populations wider than one SIMD block (the states' transposed copy in whole 8 x 8 / 4 x 4 blocks plus
    edges) and one sequence per member (the search's input-term path): every member equals its ESN alone."""
    base = ESN(1, N, 1, density=0.2, spectral_radius=1.0, input_scaling=1.0, bias_scaling=0.1, seed=P + N,
               dtype=dtype)
    rng = np.random.default_rng(P * B)
    u = rng.uniform(-1, 1, size=(23, B, 1))
    radii = list(np.linspace(0.3, 1.4, P))
    scalings = list(np.geomspace(0.1, 3.0, P))
    leaks = list(np.linspace(0.05, 1.0, P))
    states = run_population(u, base, spectral_radii=radii, input_scalings=scalings, leak_rates=leaks)
    assert states.shape == (P, 23, B, N)
    tol = 1e-12 if dtype == "float64" else 2e-5
    for p in range(P):
        alone = ESN(1, N, 1, W=base.W * radii[p], W_in=base.W_in * scalings[p], bias=base.bias,
                    leak_rate=leaks[p], dtype=dtype)
        assert rel_err(states[p], alone.run_reservoir(u)) <= tol, p


# ---------------------------------------------------------------------------------------------
# readout
# ---------------------------------------------------------------------------------------------

def test_fit_matches_reference_ridge_with_chunks_and_washout(monkeypatch):
    monkeypatch.setattr(esn_mod.model, "_CHUNK_BYTES", 40 * 8 * 7)      # 7-step chunks
    rng = np.random.default_rng(4)
    e = ESN(2, 40, 2, seed=7, leak_rate=0.5, bias_scaling=0.5, ridge=1e-4)
    u = rng.normal(size=(100, 3, 2))
    y = rng.normal(size=(100, 3, 2))
    states = ESN(2, 40, 2, seed=7, leak_rate=0.5, bias_scaling=0.5).run_reservoir(u)
    e.fit(u, y, washout=10)
    W_ref, b_ref = ref.ridge_fit(states[10:].reshape(-1, 40), y[10:].reshape(-1, 2), 1e-4)
    assert rel_err(e.W_out, W_ref) <= 1e-9 and rel_err(e.b_out, b_ref) <= 1e-9
    assert e.n_samples_ == 90 * 3
    assert np.array_equal(e.state, states[-1])       # fit leaves the state at the end of training
    pred = e.predict(u[:7])
    assert pred.shape == (7, 3, 2)


def test_ridge_list_picks_lowest_validation_nrmse():
    mg = datasets.mackey_glass(1200)
    u, y = mg[:-1], mg[1:]
    ridges = [1e-12, 1e-6, 1e-2, 10.0]
    e = ESN(1, 80, 1, seed=8, leak_rate=0.3, bias_scaling=0.2)
    e.fit(u[:800], y[:800], washout=50, ridge=ridges, validation=(u[800:], y[800:]))
    scores = e.validation_scores_
    assert list(scores) == ridges
    assert e.ridge_ == min(scores, key=scores.get)
    assert scores[10.0] > scores[e.ridge_]
    state_after = e.state
    # every score is what a single-ridge fit followed by predict gives
    for r in ridges:
        f = ESN(1, 80, 1, seed=8, leak_rate=0.3, bias_scaling=0.2, ridge=r)
        f.fit(u[:800], y[:800], washout=50)
        assert np.array_equal(f.state, state_after)            # validation leaves the training state
        assert scores[r] == pytest.approx(datasets.nrmse(y[800:], f.predict(u[800:])), rel=1e-6)
    with pytest.raises(ValueError, match="validation"):
        e.fit(u[:800], y[:800], ridge=ridges)


def test_mackey_glass_one_step_nrmse():
    # measured: NRMSE 5.0e-4 (N=300, 3000 training steps); the bound leaves a 4x margin
    mg = datasets.mackey_glass(5000)
    u, y = mg[:-1], mg[1:]
    e = ESN(1, 300, 1, spectral_radius=0.9, leak_rate=1.0, bias_scaling=0.2, ridge=1e-7, seed=0)
    e.fit(u[:3000], y[:3000], washout=100)
    assert datasets.nrmse(y[3000:], e.predict(u[3000:])) < 2e-3


def test_generate_closed_loop_equals_manual_loop():
    mg = datasets.mackey_glass(1500)
    u, y = mg[:-1], mg[1:]
    e = ESN(1, 100, 1, seed=9, leak_rate=0.3, bias_scaling=0.2, ridge=1e-7)
    e.fit(u[:1000], y[:1000], washout=100)
    gen = e.generate(30, warmup=u[1000:1100])
    assert gen.shape == (30, 1)
    f = ESN(1, 100, 1, seed=9, leak_rate=0.3, bias_scaling=0.2, ridge=1e-7)
    f.fit(u[:1000], y[:1000], washout=100)
    p = f.predict(u[1000:1100])[-1:]                 # prediction of the value after the warm-up
    manual = [p]
    for _ in range(29):
        p = f.predict(p)
        manual.append(p)
    assert rel_err(gen, np.concatenate(manual)) <= 1e-12
    assert datasets.nrmse(y[1099:1109], gen[:10]) < 0.05       # the first steps follow the series


def test_feedback_teacher_forcing_and_sine_generator():
    u, y = datasets.sine_frequency(5000, seed=0)
    e = ESN(1, 200, 1, spectral_radius=0.8, input_scaling=10.0, leak_rate=0.5, bias_scaling=0.5,
            feedback=True, seed=1, ridge=1e-6)
    assert e.W_fb.shape == (200, 1)
    # teacher-forced states are the reservoir driven by [u_t, y_{t-1}]
    s = e.run_reservoir(u[:50], y[:50])
    yprev = np.concatenate([[[0.0]], y[:49]])
    rs, _ = ref.reservoir_run(np.concatenate([u[:50], yprev], 1)[:, None], e.W,
                              np.concatenate([e.W_in, e.W_fb], 1), e.bias, [1.0], [1.0],
                              np.full((1, 200), 0.5))
    assert rel_err(s, rs[:, 0, 0]) <= 1e-12
    e.reset()
    e.fit(u[:3000], y[:3000], washout=200, feedback_noise=1e-2, seed=0)
    gen = e.generate(2000, inputs=u[3000:])
    # measured 0.05 over 2000 closed-loop steps
    assert datasets.nrmse(y[3000:], gen) < 0.2


def test_against_reservoirpy_states_and_readout():
    pytest.importorskip("reservoirpy")
    from reservoirpy.nodes import Reservoir, Ridge
    mg = datasets.mackey_glass(1500)
    u, y = mg[:-1], mg[1:]
    for density, lr in ((0.1, 0.3), (1.0, np.linspace(0.1, 1.0, 100))):
        e = ESN(1, 100, 1, density=density, leak_rate=lr, bias_scaling=0.2, seed=3, ridge=1e-5)
        r = Reservoir(W=e.W.copy(), Win=e.W_in.copy(), bias=e.bias.copy(), lr=lr)
        assert rel_err(e.run_reservoir(u[:300]), r.run(u[:300])) <= 1e-12
        e.reset()
        r.reset()
        readout = Ridge(ridge=1e-5)
        model = r >> readout
        model.fit(u[:1000], y[:1000], warmup=50)
        e.fit(u[:1000], y[:1000], washout=50)
        assert rel_err(e.predict(u[1000:]), model.run(u[1000:])) <= 1e-8
        # several sequences (reservoirpy: each from the current state, warm-up dropped from each)
        e.reset()
        r.reset()
        readout = Ridge(ridge=1e-5)
        model = r >> readout
        U = np.stack([u[:300], u[300:600]])          # reservoirpy: (series, T, I)
        Y = np.stack([y[:300], y[300:600]])
        model.fit(U, Y, warmup=20)
        e.fit([U[0], U[1]], [Y[0], Y[1]], washout=20)
        assert rel_err(e.predict(u[1000:]), model.run(u[1000:])) <= 1e-8


def test_population_sweep_picks_best():
    mg = datasets.mackey_glass(1600)
    u, y = mg[:-1], mg[1:]
    base = ESN(1, 60, 1, seed=11, leak_rate=0.3, bias_scaling=0.2, ridge=1e-7)
    radii, scalings = [0.5, 1.0, 0.5, 1.0], [0.2, 0.2, 1.0, 1.0]
    res = population_sweep(base, u[:1000], y[:1000], u[1000:], y[1000:], spectral_radii=radii,
                           input_scalings=scalings, ridge=[1e-8, 1e-4], washout=50)
    assert res["scores"].shape == (4, 2)
    p, k = np.unravel_index(np.argmin(res["scores"]), (4, 2))
    assert res["best"]["spectral_radius"] == radii[p] and res["best"]["ridge"] == res["ridges"][k]
    # a member on its own gives the same score
    alone = ESN(1, 60, 1, W=base.W * (radii[p] / 0.9), W_in=base.W_in * scalings[p], bias=base.bias,
                leak_rate=0.3, ridge=res["ridges"][k])
    alone.fit(u[:1000], y[:1000], washout=50)
    assert res["best"]["nrmse"] == pytest.approx(datasets.nrmse(y[1000:], alone.predict(u[1000:])), rel=1e-6)
    best = res["esn"]
    assert rel_err(best.predict(u[1100:1110]), alone.predict(u[1100:1110])) <= 1e-6


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------

def test_datasets():
    mg = datasets.mackey_glass(600)
    assert mg.shape == (600, 1) and np.array_equal(mg, datasets.mackey_glass(600))
    assert 0.2 < mg[200:].min() and mg[200:].max() < 1.5 and mg[200:].std() > 0.1
    assert not np.array_equal(datasets.mackey_glass(50, seed=1), mg[:50])
    u, y = datasets.narma(300, seed=0)
    assert u.shape == y.shape == (300, 1) and 0 <= u.min() and u.max() <= 0.5
    t = 150                                           # y[t] = y_{t+1} of the NARMA-10 recurrence
    expect = 0.3 * y[t - 1, 0] + 0.05 * y[t - 1, 0] * y[t - 10:t, 0].sum() + 1.5 * u[t - 9, 0] * u[t, 0] + 0.1
    assert y[t, 0] == pytest.approx(expect)
    f, s = datasets.sine_frequency(1000, seed=0)
    assert f.shape == s.shape == (1000, 1) and np.abs(s).max() <= 1
    assert np.allclose(s[:, 0], np.sin(2 * np.pi * np.cumsum(f[:, 0])))
    assert datasets.nrmse(s, s) == 0
    assert datasets.nrmse(s, np.zeros_like(s) + s.mean()) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(spectral_radius=0.0), ValueError, "spectral_radius"),
    (dict(spectral_radius=-1.0), ValueError, "spectral_radius"),
    (dict(density=0.0), ValueError, "density"),
    (dict(density=1.5), ValueError, "density"),
    (dict(leak_rate=1.5), ValueError, "leak_rate"),
    (dict(leak_rate=np.ones(3)), ValueError, "leak_rate"),
    (dict(input_scaling=0.0), ValueError, "input_scaling"),
    (dict(ridge=-1.0), ValueError, "ridge"),
    (dict(dtype="float16"), TypeError, "dtype"),
    (dict(dtype="int32"), TypeError, "dtype"),
    (dict(W=np.eye(5)), ValueError, "W"),
    (dict(W_in=np.ones((20, 3))), ValueError, "W_in"),
    (dict(bias=np.ones(3)), ValueError, "bias"),
    (dict(W_fb=np.ones((20, 1))), ValueError, "W_fb"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(device="tpu"), ValueError, "device"),
    (dict(device="cuda"), RuntimeError, "cuda_available"),
])
def test_constructor_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ESN(2, 20, 1, **kwargs)


def test_call_errors():
    with pytest.raises(ValueError, match="input_size"):
        ESN(0, 20, 1)
    with pytest.raises(TypeError, match="reservoir_size"):
        ESN(1, 20.0, 1)
    e = ESN(2, 20, 1, seed=0)
    u = np.zeros((10, 2))
    with pytest.raises(ValueError, match="fit"):
        e.predict(u)
    with pytest.raises(ValueError, match="fit"):
        e.generate(5)
    with pytest.raises(ValueError, match="u.*2 features"):
        e.run_reservoir(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="u must have shape"):
        e.run_reservoir(np.zeros(10))
    bad = u.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="u contains NaN"):
        e.run_reservoir(bad)
    with pytest.raises(ValueError, match=r"u\[1\] contains NaN"):
        e.run_reservoir([u, bad])
    with pytest.raises(TypeError, match="u must hold real numbers"):
        e.run_reservoir(u.astype(np.complex128))
    with pytest.raises(TypeError, match="u must be"):
        e.run_reservoir("abc")
    with pytest.raises(ValueError, match="y must match u"):
        e.fit(u, np.zeros((9, 1)))
    with pytest.raises(ValueError, match="y must have 1 features"):
        e.fit(u, np.zeros((10, 2)))
    ynan = np.zeros((10, 1))
    ynan[0] = np.inf
    with pytest.raises(ValueError, match="y contains NaN"):
        e.fit(u, ynan)
    with pytest.raises(ValueError, match="washout"):
        e.fit(u, np.zeros((10, 1)), washout=10)
    with pytest.raises(ValueError, match="washout"):
        e.fit(u, np.zeros((10, 1)), washout=-1)
    with pytest.raises(ValueError, match="input_size == output_size"):
        e.fit(u, np.zeros((10, 1))).generate(3)
    with pytest.raises(ValueError, match="feedback_noise"):
        e.fit(u, np.zeros((10, 1)), feedback_noise=0.1)
    with pytest.raises(TypeError, match="esn"):
        run_population(u, None, spectral_radii=[0.5])
    with pytest.raises(ValueError, match="spectral_radii"):
        run_population(u, e, spectral_radii=[0.5, -1.0])
    # float32 ESN takes float64 data (cast), integer data too
    f = ESN(2, 20, 1, seed=0, dtype="float32")
    assert f.run_reservoir(np.ones((5, 2), dtype=np.int64)).dtype == np.float32


def test_exports():
    assert hasattr(rnnfast.esn, "ESN") and callable(datasets.mackey_glass)


def test_supplied_sparse_w_is_not_modified():
    import scipy.sparse as sp
    # row 0 holds a duplicate column, row 2 unsorted columns: canonicalising would rewrite these arrays
    W = sp.csr_matrix((np.array([0.1, 0.2, -0.3, 0.4, 0.5]), np.array([1, 1, 0, 2, 0]),
                       np.array([0, 2, 3, 5])), shape=(3, 3))
    before = (W.indptr.copy(), W.indices.copy(), W.data.copy())
    from rnnfast import ESN
    ESN(1, 3, 1, W=W, seed=0).run_reservoir(np.ones((4, 1)))
    for a, b in zip(before, (W.indptr, W.indices, W.data)):
        np.testing.assert_array_equal(a, b)
