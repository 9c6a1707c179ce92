"""rnnfast.statespace.LinearGaussian: the engine's Kalman filter and RTS smoother against the NumPy reference,
finite differences of the log-likelihood (Fisher's identity) and pykalman (filter, smoother, log-likelihood,
EM: 1e-8 relative in float64); missing rows, driving inputs, batches, EM, prediction, sampling; bad input."""

import numpy as np
import pytest

from rnnfast.reference import lgssm as ref
from rnnfast.statespace import LinearGaussian

try:  # the parity oracle (tests skip cleanly without it)
    from pykalman import KalmanFilter
except ImportError:
    KalmanFilter = None
needs_pykalman = pytest.mark.skipif(KalmanFilter is None, reason="needs pykalman")


def spd(n, rng, scale=1.0, floor=0.2):
    W = rng.standard_normal((n, n))
    return scale * (W @ W.T / n + floor * np.eye(n))


def random_model(X, Y, U=0, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    Q0, _ = np.linalg.qr(rng.standard_normal((X, X)))
    p = dict(transition_matrix=Q0 * rng.uniform(0.6, 0.98), observation_matrix=rng.standard_normal((Y, X)),
             transition_covariance=spd(X, rng, 0.3), observation_covariance=spd(Y, rng, 0.5),
             initial_state_mean=rng.standard_normal(X), initial_state_covariance=spd(X, rng),
             transition_offset=0.1 * rng.standard_normal(X), observation_offset=0.2 * rng.standard_normal(Y))
    if U:
        p.update(control_matrix=rng.standard_normal((X, U)), feedthrough_matrix=0.5 * rng.standard_normal((Y, U)))
    dt = np.dtype(dtype)
    return LinearGaussian(X, Y, U, dtype=dtype, **{k: np.asarray(v, dt) for k, v in p.items()})


def offsets_of(lds, u):
    """The per-step offsets B u_t + b, D u_t + d ([T,X], [T,Y]) of one sequence, as the reference takes them."""
    o = lds.transition_offset + (u @ lds.control_matrix.T if u is not None else 0)
    d = lds.observation_offset + (u @ lds.feedthrough_matrix.T if u is not None else 0)
    return np.broadcast_to(o, (len(u), lds.state_size)) if u is not None else o, \
        np.broadcast_to(d, (len(u), lds.obs_size)) if u is not None else d


def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(np.asarray(b)).max(), 1e-300))


def with_missing(y, rows, partial=()):
    y = y.copy()
    y[list(rows)] = np.nan
    for r in partial:
        y[r, 0] = np.nan  # one missing value makes the whole row missing
    return y


# ---- the engine against the reference --------------------------------------------------------------------
@pytest.mark.parametrize("X, Y, U, T, seed", [(1, 1, 0, 30, 0), (3, 2, 0, 50, 1), (5, 3, 2, 80, 2), (3, 7, 1, 40, 3),
                                              (16, 8, 0, 60, 4), (9, 13, 3, 25, 5)])
def test_filter_and_smoother_equal_reference(X, Y, U, T, seed):
    lds = random_model(X, Y, U, seed)
    rng = np.random.default_rng(seed + 10)
    u = rng.standard_normal((T, U)) if U else None
    _, y = lds.sample(T, u, seed=seed)
    y = with_missing(y, [3, 4, T - 1], partial=[T // 2])
    so, oo = offsets_of(lds, u)
    pm, pc, fm, fc, ll = ref.kalman_filter(lds.transition_matrix, lds.observation_matrix, lds.transition_covariance,
                                           lds.observation_covariance, lds.initial_state_mean,
                                           lds.initial_state_covariance, y, so, oo)
    sm, sc, pair = ref.rts_smoother(lds.transition_matrix, pm, pc, fm, fc)
    f = lds.filter(y, u)
    s = lds.smooth(y, u, pair_covariances=True)
    for ours, theirs in [(f.state_means, fm), (f.state_covariances, fc), (f.predicted_state_means, pm),
                         (f.predicted_state_covariances, pc), (s.state_means, sm), (s.state_covariances, sc),
                         (s.pair_covariances, pair)]:
        assert rel(ours, theirs) < 1e-10
    assert f.loglikelihood == pytest.approx(ll, rel=1e-12)
    assert lds.loglikelihood(y, u) == pytest.approx(ll, rel=1e-12)
    # covariances come out exactly symmetric
    for c in (f.state_covariances, s.state_covariances):
        assert np.array_equal(c, np.swapaxes(c, 1, 2))


def test_batch_with_several_missing_patterns_equals_one_by_one():
    lds = random_model(4, 3, 1, 7)
    T, N = 40, 5
    rng = np.random.default_rng(0)
    u = rng.standard_normal((T, N, 1))
    _, y = lds.sample(T, u, n_sequences=N, seed=1)
    y[5, 1] = np.nan
    y[10:13, 3] = np.nan
    y[10:13, 4] = np.nan        # the same pattern as sequence 3: one covariance group
    y[-1, 0, 2] = np.nan
    f, s = lds.filter(y, u), lds.smooth(y, u, pair_covariances=True)
    assert f.state_means.shape == (T, N, 4) and f.state_covariances.shape == (T, N, 4, 4)
    for n in range(N):
        f1, s1 = lds.filter(y[:, n], u[:, n]), lds.smooth(y[:, n], u[:, n], pair_covariances=True)
        assert f.loglikelihood[n] == pytest.approx(f1.loglikelihood, rel=1e-13)
        for a, b in [(f.state_means[:, n], f1.state_means), (f.state_covariances[:, n], f1.state_covariances),
                     (s.state_means[:, n], s1.state_means), (s.state_covariances[:, n], s1.state_covariances),
                     (s.pair_covariances[:, n], s1.pair_covariances)]:
            assert rel(a, b) < 1e-13


def test_masked_arrays_mark_missing_rows():
    lds = random_model(3, 2, 0, 1)
    _, y = lds.sample(30, seed=0)
    mask = np.zeros_like(y, dtype=bool)
    mask[[4, 9], 1] = True
    a = lds.smooth(np.ma.MaskedArray(y, mask))
    b = lds.smooth(with_missing(y, [4, 9]))
    assert np.array_equal(a.state_means, b.state_means)


def test_float32_is_within_float32_rounding_of_float64():
    l64 = random_model(6, 4, 0, 3)
    l32 = LinearGaussian(6, 4, dtype="float32", **{k: v.astype(np.float32) for k, v in l64.parameters().items()})
    _, y = l64.sample(200, seed=2)
    f32, f64 = l32.smooth(y.astype(np.float32)), l64.smooth(y)
    assert f32.state_means.dtype == np.float32
    assert rel(f32.state_means, f64.state_means) < 1e-4 and rel(f32.state_covariances, f64.state_covariances) < 1e-4
    assert l32.loglikelihood(y.astype(np.float32)) == pytest.approx(l64.loglikelihood(y), rel=1e-5)


# ---- finite differences: the smoother's statistics are the log-likelihood's gradients ---------------------
def test_smoothed_statistics_are_loglik_gradients():
    """Fisher's identity, d log p(y) / d theta = E[d log p(x, y) / d theta | y], gives from the smoother's
    means and covariances the gradients with respect to the initial mean, the offsets and A; central
    differences of the filter's log-likelihood must agree."""
    lds = random_model(3, 2, 1, 5)
    T = 60
    u = np.random.default_rng(0).standard_normal((T, 1))
    _, y = lds.sample(T, u, seed=3)
    y = with_missing(y, [7, 8, 30])
    p = lds.parameters()
    s = lds.smooth(y, u, pair_covariances=True)
    m, P, Pp = s.state_means, s.state_covariances, s.pair_covariances
    A, B, b, C, D, d = (p[k] for k in ("transition_matrix", "control_matrix", "transition_offset", "observation_matrix",
                                       "feedthrough_matrix", "observation_offset"))
    Qi, Ri = np.linalg.inv(p["transition_covariance"]), np.linalg.inv(p["observation_covariance"])
    obs = ~np.isnan(y).any(axis=1)
    grads = {
        "initial_state_mean": np.linalg.solve(p["initial_state_covariance"], m[0] - p["initial_state_mean"]),
        "transition_offset": Qi @ (m[1:] - m[:-1] @ A.T - u[1:] @ B.T - b).sum(axis=0),
        "observation_offset": Ri @ (y[obs] - m[obs] @ C.T - u[obs] @ D.T - d).sum(axis=0),
        # E[(x_t - A x_t-1 - o_t) x_t-1^T] summed, through Q^-1
        "transition_matrix": Qi @ ((Pp[1:] + np.einsum("ti,tj->tij", m[1:], m[:-1])).sum(axis=0)
                                   - A @ (P[:-1] + np.einsum("ti,tj->tij", m[:-1], m[:-1])).sum(axis=0)
                                   - np.einsum("ti,tj->ij", u[1:] @ B.T + b, m[:-1])),
    }
    eps = 1e-6
    for name, g in grads.items():
        flat = g.reshape(-1)
        for i in range(flat.size):
            up, down = p[name].copy(), p[name].copy()
            up.reshape(-1)[i] += eps
            down.reshape(-1)[i] -= eps
            fd = (LinearGaussian(3, 2, 1, **{**p, name: up}).loglikelihood(y, u)
                  - LinearGaussian(3, 2, 1, **{**p, name: down}).loglikelihood(y, u)) / (2 * eps)
            assert fd == pytest.approx(flat[i], rel=1e-6, abs=1e-6), (name, i)


# ---- pykalman parity ------------------------------------------------------------------------------------------
def pykalman_of(lds, u=None, T=None):
    p = lds.parameters()
    so = p["transition_offset"] if u is None else u[1:] @ p["control_matrix"].T + p["transition_offset"]
    oo = p["observation_offset"] if u is None else u @ p["feedthrough_matrix"].T + p["observation_offset"]
    return KalmanFilter(transition_matrices=p["transition_matrix"], observation_matrices=p["observation_matrix"],
                        transition_covariance=p["transition_covariance"],
                        observation_covariance=p["observation_covariance"], transition_offsets=so,
                        observation_offsets=oo, initial_state_mean=p["initial_state_mean"],
                        initial_state_covariance=p["initial_state_covariance"])


@needs_pykalman
@pytest.mark.parametrize("U", [0, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_filter_smoother_loglik_parity_with_pykalman(U, seed):
    lds = random_model(4, 3, U, seed)
    T = 120
    u = np.random.default_rng(seed).standard_normal((T, U)) if U else None
    _, y = lds.sample(T, u, seed=seed)
    y = with_missing(y, [0, 17, 18, 60])
    kf = pykalman_of(lds, u)
    ym = np.ma.masked_invalid(y)
    fm, fc = kf.filter(ym)
    sm, sc = kf.smooth(ym)
    f, s = lds.filter(y, u), lds.smooth(y, u)
    assert rel(f.state_means, fm) < 1e-8 and rel(f.state_covariances, fc) < 1e-8
    assert rel(s.state_means, sm) < 1e-8 and rel(s.state_covariances, sc) < 1e-8
    assert f.loglikelihood == pytest.approx(kf.loglikelihood(ym), rel=1e-8)


@needs_pykalman
@pytest.mark.parametrize("U", [0, 1])
def test_em_parity_with_pykalman(U):
    """pykalman's EM of the matrices, covariances and initial state with the offsets given (fixed); with
    inputs, B u_t + b and D u_t + d are pykalman's time-varying offsets and B, D, b, d stay fixed here."""
    truth = random_model(3, 2, U, 11)
    T = 150
    u = np.random.default_rng(1).standard_normal((T, U)) if U else None
    _, y = truth.sample(T, u, seed=4)
    y = with_missing(y, [10, 11, 90])
    start = random_model(3, 2, U, 12)
    if U:
        start.set_parameters(control_matrix=truth.control_matrix, feedthrough_matrix=truth.feedthrough_matrix)
    kf = pykalman_of(start, u)
    names = ["transition_matrix", "observation_matrix", "transition_covariance", "observation_covariance",
             "initial_state_mean", "initial_state_covariance"]
    kf.em(np.ma.masked_invalid(y), n_iter=4, em_vars=["transition_matrices", "observation_matrices"] + names[2:])
    start.fit(y, u, n_iter=4, em_vars=names)
    theirs = dict(transition_matrix=kf.transition_matrices, observation_matrix=kf.observation_matrices,
                  transition_covariance=kf.transition_covariance, observation_covariance=kf.observation_covariance,
                  initial_state_mean=kf.initial_state_mean, initial_state_covariance=kf.initial_state_covariance)
    for name in names:
        assert rel(getattr(start, name), theirs[name]) < 1e-8, name


# ---- EM ------------------------------------------------------------------------------------------------------
def test_em_of_everything_increases_the_likelihood_with_inputs_and_missing_rows():
    truth = random_model(2, 3, 1, 21)
    T, N = 200, 3
    u = np.random.default_rng(2).standard_normal((T, N, 1))
    _, y = truth.sample(T, u, n_sequences=N, seed=5)
    y[20:25, 0] = np.nan
    y[100, 2] = np.nan
    # from a perturbed truth (EM of a linear dynamical system has local optima: from pykalman's default
    # start, A = I, it stalls far from the truth here)
    rng = np.random.default_rng(0)
    start = {k: v + 0.3 * rng.standard_normal(v.shape) * (np.abs(v).max() + 0.1) for k, v in truth.parameters().items()
             if k not in ("transition_covariance", "observation_covariance", "initial_state_covariance")}
    lds = LinearGaussian(2, 3, 1, **start, transition_covariance=np.eye(2), observation_covariance=np.eye(3))
    lds.fit(y, u, n_iter=40)
    h = np.asarray(lds.history)
    assert np.all(np.diff(h) >= -1e-8 * np.abs(h[:-1]))
    # the learned model explains the data about as well as the truth (the state's basis is not identifiable)
    assert lds.loglikelihood(y, u) > truth.loglikelihood(y, u) - 0.02 * y.size
    # the input-output map is: the steady-state gain from u to y agrees
    def dc_gain(m):
        return m.observation_matrix @ np.linalg.solve(np.eye(2) - m.transition_matrix, m.control_matrix) \
            + m.feedthrough_matrix
    assert np.allclose(dc_gain(lds), dc_gain(truth), atol=0.15 * np.abs(dc_gain(truth)).max())


def test_em_respects_fixed_parameters_and_tolerance():
    truth = random_model(2, 2, 0, 3)
    _, y = truth.sample(300, seed=0)
    lds = random_model(2, 2, 0, 4)
    C = lds.observation_matrix.copy()
    lds.fit(y, n_iter=50, em_vars=["transition_matrix", "transition_covariance"], tol=1e-3)
    assert np.array_equal(lds.observation_matrix, C)
    assert len(lds.history) < 50


# ---- prediction and sampling -------------------------------------------------------------------------------
def test_forecast_and_predict():
    lds = random_model(3, 2, 1, 8)
    T = 50
    rng = np.random.default_rng(3)
    u = rng.standard_normal((T, 1))
    _, y = lds.sample(T, u, seed=1)
    f = lds.filter(y, u)
    p = lds.parameters()
    A, B, b, C, D, d = (p[k] for k in ("transition_matrix", "control_matrix", "transition_offset", "observation_matrix",
                                       "feedthrough_matrix", "observation_offset"))
    one = lds.forecast(y, u, 1)
    assert np.allclose(one, f.predicted_state_means[1:] @ C.T + u[1:] @ D.T + d, atol=1e-12)
    h = 4
    ahead = lds.forecast(y, u, h)
    for t in (0, 17, T - h - 1):
        x = f.state_means[t]
        for j in range(1, h + 1):
            x = A @ x + B @ u[t + j] + b
        assert np.allclose(ahead[t], C @ x + D @ u[t + h] + d, atol=1e-12)
    uf = rng.standard_normal((3, 1))
    means, covs = lds.predict(y, 3, u, uf)
    x, P = f.state_means[-1], f.state_covariances[-1]
    for j in range(3):
        x, P = A @ x + B @ uf[j] + b, A @ P @ A.T + p["transition_covariance"]
        assert np.allclose(means[j], C @ x + D @ uf[j] + d, atol=1e-12)
        assert np.allclose(covs[j], C @ P @ C.T + p["observation_covariance"], atol=1e-12)
    # a batch gives each sequence's own forecast
    yb = np.stack([y, y[::-1].copy()], axis=1)
    ub = np.stack([u, u[::-1].copy()], axis=1)
    assert np.allclose(lds.forecast(yb, ub, 2)[:, 0], lds.forecast(y, u, 2), atol=1e-12)


def test_sample_has_the_model_statistics():
    lds = random_model(2, 2, 0, 6)
    x, y = lds.sample(3, n_sequences=40000, seed=0)
    p = lds.parameters()
    assert np.allclose(x[0].mean(axis=0), p["initial_state_mean"], atol=0.03)
    assert np.allclose(np.cov(x[0].T), p["initial_state_covariance"], atol=0.05)
    w = x[1] - x[0] @ p["transition_matrix"].T - p["transition_offset"]
    assert np.allclose(np.cov(w.T), p["transition_covariance"], atol=0.03)
    v = y[2] - x[2] @ p["observation_matrix"].T - p["observation_offset"]
    assert np.allclose(v.mean(axis=0), 0, atol=0.02)
    assert np.allclose(np.cov(v.T), p["observation_covariance"], atol=0.03)


# ---- bad input ---------------------------------------------------------------------------------------------
def test_bad_parameters_name_the_argument():
    with pytest.raises(ValueError, match="observation_covariance must be positive definite"):
        LinearGaussian(2, 2, observation_covariance=np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match="transition_covariance must be positive semi-definite"):
        LinearGaussian(2, 1, transition_covariance=np.diag([1.0, -0.5]))
    with pytest.raises(ValueError, match="initial_state_covariance must be symmetric"):
        LinearGaussian(2, 1, initial_state_covariance=[[1.0, 0.2], [0.1, 1.0]])
    with pytest.raises(ValueError, match="transition_matrix contains NaN"):
        LinearGaussian(2, 1, transition_matrix=[[np.nan, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"observation_matrix must have shape \(1, 2\)"):
        LinearGaussian(2, 1, observation_matrix=np.ones((2, 2)))
    with pytest.raises(TypeError, match="unknown parameter 'transition_matrices'"):
        LinearGaussian(2, 1, transition_matrices=np.eye(2))
    with pytest.raises(TypeError, match="control_matrix must have dtype float64, got float32"):
        LinearGaussian(2, 1, 1, control_matrix=np.ones((2, 1), np.float32))
    lds = LinearGaussian(2, 1)
    with pytest.raises(ValueError, match="observation_covariance must be positive definite"):
        lds.observation_covariance = [[-1.0]]
    with pytest.raises(ValueError, match="em_vars: unknown parameter 'A'"):
        lds.fit(np.zeros((5, 1)), em_vars=["A"])


def test_bad_data_names_the_argument():
    lds = LinearGaussian(2, 2, 1)
    y = np.zeros((10, 2))
    with pytest.raises(ValueError, match="u .* is required"):
        lds.filter(y)
    with pytest.raises(ValueError, match=r"u must have shape \(10, 1\)"):
        lds.filter(y, np.zeros((9, 1)))
    with pytest.raises(ValueError, match="u contains NaN"):
        lds.filter(y, np.full((10, 1), np.nan))
    with pytest.raises(TypeError, match="y must have dtype float64, got float32"):
        lds.filter(y.astype(np.float32), np.zeros((10, 1)))
    with pytest.raises(ValueError, match=r"y must have shape \(T, 2\) or \(T, N, 2\)"):
        lds.filter(np.zeros((10, 3)), np.zeros((10, 1)))
    with pytest.raises(ValueError, match="y contains Inf"):
        lds.filter(np.full((10, 2), np.inf), np.zeros((10, 1)))
    with pytest.raises(ValueError, match="u is given but the model has input_size=0"):
        LinearGaussian(2, 2).filter(y, np.zeros((10, 1)))
    with pytest.raises(ValueError, match="longer than horizon=10"):
        LinearGaussian(2, 2).forecast(y, horizon=10)
    with pytest.raises(ValueError, match="u_future .* is required"):
        lds.predict(y, 2, np.zeros((10, 1)))


def test_a_singular_innovation_is_reported():
    # R positive definite but tiny against a huge, nearly singular C P C^T: the factorisation still works;
    # a covariance made singular after the checks (as a failed EM update could) is reported with its step
    lds = LinearGaussian(2, 2, observation_matrix=np.zeros((2, 2)))
    lds._p["observation_covariance"] = np.zeros((2, 2))  # bypasses the setter's check on purpose
    with pytest.raises(FloatingPointError, match="failed at step 0"):
        lds.filter(np.zeros((5, 2)))


def test_long_sequence_pipelined_smoother_equals_reference():
    """A sequence long enough for the engine's two-thread schedule (the smoother's gains computed by a second
    thread that follows the filter), with missing rows."""
    lds = random_model(6, 3, 0, 9)
    _, y = lds.sample(2500, seed=4)
    y = with_missing(y, [5, 1000, 2499])
    so, oo = offsets_of(lds, None)
    pm, pc, fm, fc, ll = ref.kalman_filter(lds.transition_matrix, lds.observation_matrix, lds.transition_covariance,
                                           lds.observation_covariance, lds.initial_state_mean,
                                           lds.initial_state_covariance, y, so, oo)
    sm, sc, pair = ref.rts_smoother(lds.transition_matrix, pm, pc, fm, fc)
    s = lds.smooth(y, pair_covariances=True)
    assert rel(s.state_means, sm) < 1e-10 and rel(s.state_covariances, sc) < 1e-10
    assert rel(s.pair_covariances, pair) < 1e-10
    assert lds.loglikelihood(y) == pytest.approx(ll, rel=1e-12)


def test_results_do_not_depend_on_the_thread_count(tmp_path):
    """One and two engine threads give the same bits (the Kalman smoother's gains on a second thread; the
    HMM's forward and backward passes on two threads)."""
    import os
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "sys.path.insert(0, sys.argv[2])\n"
            "from test_statespace_lgssm import random_model\n"
            "from rnnfast.statespace import HMM\n"
            "lds = random_model(8, 4, 1, 2)\n"
            "u = np.random.default_rng(0).standard_normal((3000, 1))\n"
            "_, y = lds.sample(3000, u, seed=1)\n"
            "s = lds.smooth(y, u, pair_covariances=True)\n"
            "rng = np.random.default_rng(1)\n"
            "h = HMM(20, startprob=rng.dirichlet(np.ones(20)), transmat=rng.dirichlet(np.ones(20), 20),\n"
            "        emissionprob=rng.dirichlet(np.ones(9), 20))\n"
            "fb = h.forward_backward(rng.integers(0, 9, 4000), [1500, 2500])\n"
            "np.savez(sys.argv[1], m=s.state_means, c=s.state_covariances, p=s.pair_covariances,\n"
            "         post=fb.posterior, xi=fb.xi_sum, ll=fb.loglik)\n")
    out = {}
    for threads in ("1", "2"):
        path = tmp_path / f"t{threads}.npz"
        proc = subprocess.run([sys.executable, "-c", code, str(path), os.path.dirname(__file__)], capture_output=True,
                              text=True, timeout=120, env=dict(os.environ, RNNFAST_NUM_THREADS=threads))
        assert proc.returncode == 0, proc.stderr
        out[threads] = dict(np.load(path))
    for key in out["1"]:
        assert np.array_equal(out["1"][key], out["2"][key]), key
