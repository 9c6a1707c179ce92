"""rnnfast.statespace.HMM: the engine's forward-backward and Viterbi against the NumPy reference, brute-force
enumeration, finite differences and hmmlearn (CategoricalHMM, GaussianHMM: 1e-8 relative in float64); EM,
sampling, prediction; bad input."""

import itertools

import numpy as np
import pytest

from rnnfast import _core
from rnnfast.reference import hmm as ref
from rnnfast.statespace import HMM

try:  # the parity oracle (tests skip cleanly without it)
    from hmmlearn import hmm as hmmlearn
except ImportError:
    hmmlearn = None
needs_hmmlearn = pytest.mark.skipif(hmmlearn is None, reason="needs hmmlearn")


def random_model(K, M, rng, dtype=np.float64):
    pi = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K) * 0.7, size=K)
    B = rng.dirichlet(np.ones(M) * 0.7, size=K)
    return pi.astype(dtype), A.astype(dtype), B.astype(dtype)


def categorical(K, M, seed, dtype="float64"):
    pi, A, B = random_model(K, M, np.random.default_rng(seed), np.dtype(dtype))
    return HMM(K, "categorical", startprob=pi, transmat=A, emissionprob=B, dtype=dtype)


def gaussian(K, D, seed, covariance_type, dtype="float64"):
    rng = np.random.default_rng(seed)
    pi, A, _ = random_model(K, 2, rng)
    means = rng.standard_normal((K, D)) * 2
    if covariance_type == "diag":
        covars = rng.uniform(0.3, 2.0, (K, D))
    else:
        W = rng.standard_normal((K, D, D)) * 0.5
        covars = W @ np.swapaxes(W, 1, 2) + 0.3 * np.eye(D)
    return HMM(K, "gaussian", covariance_type=covariance_type, startprob=pi, transmat=A, means=means,
               covars=covars, reg_covar=0.0, dtype=dtype)


def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(np.asarray(b)).max(), 1e-300))


# ---- the engine against the reference --------------------------------------------------------------------
@pytest.mark.parametrize("K, M, lengths, seed", [
    (1, 3, [5], 0), (2, 2, [1], 1), (3, 5, [40, 1, 7], 2), (7, 11, [100, 33], 3), (17, 4, [60, 1, 1, 25], 4),
    (67, 9, [150, 80], 5)])
def test_forward_backward_equals_reference(K, M, lengths, seed):
    h = categorical(K, M, seed)
    X = np.random.default_rng(seed + 100).integers(0, M, sum(lengths))
    fb = h.forward_backward(X, lengths)
    ll, step, filt, post, xi = ref.forward_backward(h.startprob, h.transmat, h._framelogprob(X), lengths)
    assert rel(fb.loglik, ll) < 1e-12
    assert rel(fb.step_logprob, step) < 1e-12
    assert np.abs(fb.filtered - filt).max() < 1e-12
    assert np.abs(fb.posterior - post).max() < 1e-12
    assert rel(fb.xi_sum, xi) < 1e-12
    assert np.allclose(fb.posterior.sum(axis=1), 1, atol=1e-12)
    assert np.isclose(fb.xi_sum.sum(), sum(lengths) - len(lengths), rtol=1e-12)  # one transition per step
    assert h.score(X, lengths) == pytest.approx(float(ll.sum()), rel=1e-12)


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_forward_backward_and_viterbi_equal_reference(covariance_type, seed):
    h = gaussian(5, 3, seed, covariance_type)
    X, _ = h.sample(120, seed=seed)
    lengths = [50, 70]
    fb = h.forward_backward(X, lengths)
    ll, _, _, post, xi = ref.forward_backward(h.startprob, h.transmat, h._framelogprob(X), lengths)
    assert rel(fb.loglik, ll) < 1e-12 and np.abs(fb.posterior - post).max() < 1e-12 and rel(fb.xi_sum, xi) < 1e-12
    lp, path = h.decode(X, lengths)
    rlp, rpath = ref.viterbi(h.startprob, h.transmat, h._framelogprob(X), lengths)
    assert lp == pytest.approx(float(rlp.sum()), rel=1e-12)
    assert np.array_equal(path, rpath)


def test_framelogprob_equals_scipy_densities():
    from scipy.stats import multivariate_normal
    for ct in ("diag", "full"):
        h = gaussian(3, 4, 7, ct)
        X = np.random.default_rng(0).standard_normal((20, 4)) * 2
        flp = h._framelogprob(X)
        for k in range(3):
            cov = np.diag(h.covars[k]) if ct == "diag" else h.covars[k]
            assert np.allclose(flp[:, k], multivariate_normal(h.means[k], cov).logpdf(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_loglik_and_viterbi_by_enumerating_every_path(seed):
    K, M, T = 3, 4, 6
    h = categorical(K, M, seed)
    X = np.random.default_rng(seed).integers(0, M, T)
    joint = {}
    for z in itertools.product(range(K), repeat=T):
        p = h.startprob[z[0]] * h.emissionprob[z[0], X[0]]
        for t in range(1, T):
            p *= h.transmat[z[t - 1], z[t]] * h.emissionprob[z[t], X[t]]
        joint[z] = p
    total = sum(joint.values())
    assert h.score(X) == pytest.approx(np.log(total), rel=1e-13)
    post = h.predict_proba(X)
    for t in range(T):
        for k in range(K):
            assert post[t, k] == pytest.approx(sum(p for z, p in joint.items() if z[t] == k) / total, abs=1e-13)
    best = max(joint, key=joint.get)
    lp, path = h.decode(X)
    assert tuple(path) == best and lp == pytest.approx(np.log(joint[best]), rel=1e-13)
    # the next symbol: p(x_T+1 = m | x) by summing over the paths and the next state
    nxt = h.predict_next(X)
    for m in range(M):
        brute = sum(p * h.transmat[z[-1], j] * h.emissionprob[j, m] for z, p in joint.items() for j in range(K))
        assert nxt[0, m] == pytest.approx(brute / total, rel=1e-12)


def engine_fb(pi, A, flp, lengths):
    R, K = flp.shape
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    out = dict(filtered=np.empty((R, K)), emission=np.empty((R, K)), scale=np.empty(R), step_logprob=np.empty(R),
               loglik=np.empty(len(lengths)), posterior=np.empty((R, K)), xi_sum=np.empty((K, K)))
    _core.hmm_forward_backward(pi, A, np.ascontiguousarray(flp), offsets, **out)
    return out


def test_posteriors_and_transition_counts_are_the_loglik_gradients():
    """d log p(x) / d framelogprob[t, k] = posterior[t, k] and d log p(x) / d A[i, j] = xi_sum[i, j] / A[i, j]
    (Fisher's identity), by central differences through the engine (it takes A without renormalising)."""
    rng = np.random.default_rng(3)
    pi, A, _ = random_model(4, 2, rng)
    flp = rng.standard_normal((30, 4)) * 2
    lengths = [12, 18]
    base = engine_fb(pi, A, flp, lengths)
    eps = 1e-6
    for t, k in [(0, 1), (11, 3), (12, 0), (29, 2), (17, 1)]:
        up, down = flp.copy(), flp.copy()
        up[t, k] += eps
        down[t, k] -= eps
        fd = (engine_fb(pi, A, up, lengths)["loglik"].sum()
              - engine_fb(pi, A, down, lengths)["loglik"].sum()) / (2 * eps)
        assert fd == pytest.approx(base["posterior"][t, k], abs=1e-8)
    for i, j in [(0, 0), (1, 3), (3, 2)]:
        up, down = A.copy(), A.copy()
        up[i, j] += eps
        down[i, j] -= eps
        fd = (engine_fb(pi, up, flp, lengths)["loglik"].sum()
              - engine_fb(pi, down, flp, lengths)["loglik"].sum()) / (2 * eps)
        assert fd == pytest.approx(base["xi_sum"][i, j] / A[i, j], rel=1e-7)


def test_batch_equals_sequences_one_by_one():
    h = categorical(6, 5, 11)
    lengths = [37, 1, 64, 12, 90]
    X = np.random.default_rng(0).integers(0, 5, sum(lengths))
    fb = h.forward_backward(X, lengths)
    lp, path = h.decode(X, lengths)
    start, xi, vit = 0, np.zeros((6, 6)), 0.0
    for i, n in enumerate(lengths):
        one = h.forward_backward(X[start:start + n])
        assert fb.loglik[i] == pytest.approx(one.loglik[0], rel=1e-13)
        assert np.abs(fb.posterior[start:start + n] - one.posterior).max() < 1e-13
        xi += one.xi_sum
        l1, p1 = h.decode(X[start:start + n])
        assert np.array_equal(path[start:start + n], p1)
        vit += l1
        start += n
    assert rel(fb.xi_sum, xi) < 1e-13 and lp == pytest.approx(vit, rel=1e-13)


def test_float32_is_within_float32_rounding_of_the_float64_reference():
    h64 = categorical(12, 7, 5)
    h32 = HMM(12, "categorical", startprob=h64.startprob.astype(np.float32),
              transmat=h64.transmat.astype(np.float32), emissionprob=h64.emissionprob.astype(np.float32),
              dtype="float32")
    X = np.random.default_rng(1).integers(0, 7, 500)
    fb32, fb64 = h32.forward_backward(X), h64.forward_backward(X)
    assert fb32.posterior.dtype == np.float32 and fb32.xi_sum.dtype == np.float32
    # each step's float32 products carry ~1e-7 relative error; log p(x) is summed in float64
    assert rel(fb32.loglik, fb64.loglik) < 1e-5
    assert np.abs(fb32.posterior - fb64.posterior).max() < 1e-4
    assert rel(fb32.xi_sum, fb64.xi_sum) < 1e-4
    assert np.array_equal(h32.decode(X)[1], h64.decode(X)[1])


def test_impossible_sequences_score_minus_infinity_and_stop_em():
    pi = np.array([1.0, 0.0])
    A = np.array([[0.5, 0.5], [0.0, 1.0]])
    B = np.array([[1.0, 0.0], [0.0, 1.0]])     # state 0 emits 0 only, state 1 emits 1 only
    h = HMM(2, "categorical", startprob=pi, transmat=A, emissionprob=B)
    X = np.array([0, 1, 0, 0, 0, 1])           # 1 then 0: state 1 cannot go back
    lengths = [2, 2, 2]                        # (0,1) possible, (0,0) possible, (0,1) possible
    fb = h.forward_backward(X, lengths)
    assert np.isfinite(fb.loglik).all()
    fb = h.forward_backward(X, [3, 3])         # (0,1,0) impossible, (0,0,1) possible
    assert fb.loglik[0] == -np.inf and np.isfinite(fb.loglik[1])
    assert np.isnan(fb.posterior[:3]).all() and np.isfinite(fb.posterior[3:]).all()
    assert np.isfinite(fb.xi_sum).all()
    assert h.score(X, [3, 3]) == -np.inf
    with pytest.raises(ValueError, match="sequence 0 has probability zero"):
        h.fit(X, [3, 3], init="keep", n_iter=2)


# ---- hmmlearn parity ------------------------------------------------------------------------------------------
def hmmlearn_categorical(h, **kw):
    m = hmmlearn.CategoricalHMM(h.n_states, init_params="", **kw)
    m.startprob_, m.transmat_, m.emissionprob_ = h.startprob.copy(), h.transmat.copy(), h.emissionprob.copy()
    m.n_features = h.n_symbols
    return m


def hmmlearn_gaussian(h, **kw):
    m = hmmlearn.GaussianHMM(h.n_states, covariance_type=h.covariance_type, init_params="", covars_prior=0.0,
                             min_covar=0.0, **kw)
    m.startprob_, m.transmat_, m.means_ = h.startprob.copy(), h.transmat.copy(), h.means.copy()
    m.covars_ = h.covars.copy()
    return m


@needs_hmmlearn
@pytest.mark.parametrize("implementation", ["log", "scaling"])
@pytest.mark.parametrize("seed", [0, 1])
def test_categorical_parity_with_hmmlearn(implementation, seed):
    h = categorical(8, 6, seed)
    lengths = [200, 1, 57]
    X = np.random.default_rng(seed).integers(0, 6, sum(lengths))
    m = hmmlearn_categorical(h, implementation=implementation)
    assert h.score(X, lengths) == pytest.approx(m.score(X[:, None], lengths), rel=1e-8)
    ll, post = h.score_samples(X, lengths)
    mll, mpost = m.score_samples(X[:, None], lengths)
    assert ll == pytest.approx(mll, rel=1e-8) and np.abs(post - mpost).max() < 1e-8
    lp, path = h.decode(X, lengths)
    mlp, mpath = m.decode(X[:, None], lengths)
    assert lp == pytest.approx(mlp, rel=1e-8)
    # ties between equally likely paths are broken differently (ours: the lowest state, as argmax); the
    # paths agree elsewhere and score the same
    assert (path == mpath).mean() > 0.95
    ours = ref.viterbi(h.startprob, h.transmat, h._framelogprob(X), lengths)
    assert np.array_equal(path, ours[1])


@needs_hmmlearn
@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_gaussian_parity_with_hmmlearn(covariance_type):
    h = gaussian(4, 3, 2, covariance_type)
    X, _ = h.sample(300, seed=3)
    lengths = [120, 180]
    m = hmmlearn_gaussian(h)
    assert h.score(X, lengths) == pytest.approx(m.score(X, lengths), rel=1e-8)
    assert np.abs(h.predict_proba(X, lengths) - m.predict_proba(X, lengths)).max() < 1e-8
    lp, path = h.decode(X, lengths)
    mlp, mpath = m.decode(X, lengths)
    assert lp == pytest.approx(mlp, rel=1e-8) and np.array_equal(path, mpath)


@needs_hmmlearn
def test_categorical_em_parity_with_hmmlearn():
    h = categorical(5, 7, 4)
    lengths = [150, 90, 1]
    X = np.random.default_rng(4).integers(0, 7, sum(lengths))
    m = hmmlearn_categorical(h, n_iter=5, tol=-np.inf, implementation="scaling")
    m.fit(X[:, None], lengths)
    h.fit(X, lengths, n_iter=5, tol=None, init="keep")
    assert rel(h.startprob, m.startprob_) < 1e-8
    assert rel(h.transmat, m.transmat_) < 1e-8
    assert rel(h.emissionprob, m.emissionprob_) < 1e-8
    theirs = list(m.monitor_.history)  # the last few (the number depends on hmmlearn's version)
    assert h.history[-len(theirs):] == pytest.approx(theirs, rel=1e-8)


@needs_hmmlearn
@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_gaussian_em_parity_with_hmmlearn(covariance_type):
    truth = gaussian(3, 2, 6, covariance_type)
    X, _ = truth.sample(400, seed=6)
    h = gaussian(3, 2, 8, covariance_type)  # another start
    m = hmmlearn_gaussian(h, n_iter=4, tol=-np.inf)
    m.fit(X, [250, 150])
    h.fit(X, [250, 150], n_iter=4, tol=None, init="keep")
    for ours, theirs in [(h.startprob, m.startprob_), (h.transmat, m.transmat_), (h.means, m.means_),
                         (h.covars, m._covars_)]:
        assert rel(ours, theirs) < 1e-8


# ---- EM, restarts, sampling -------------------------------------------------------------------------------
def test_em_increases_the_likelihood_and_restarts_keep_the_best():
    truth = categorical(4, 6, 9)
    X, _ = truth.sample(3000, seed=1)
    lengths = [1000, 1000, 1000]
    h = HMM(4, "categorical", n_symbols=6)
    h.fit(X, lengths, n_iter=30, tol=None, seed=0)
    assert np.all(np.diff(h.history) >= -1e-9 * abs(h.history[0]))
    single = HMM(4, "categorical", n_symbols=6).fit(X, lengths, n_iter=30, tol=None, seed=7)
    best = HMM(4, "categorical", n_symbols=6).fit(X, lengths, n_iter=30, tol=None, n_init=3, seed=7)
    assert best.score(X, lengths) >= single.score(X, lengths)  # its first start is the single run's
    # a learned model explains its data better than the uniform model, and close to the truth
    uniform = np.log(6) * len(X)
    assert best.score(X, lengths) > -uniform and best.score(X, lengths) > truth.score(X, lengths) - 0.02 * len(X)


def test_gaussian_em_recovers_well_separated_states():
    truth = HMM(2, "gaussian", startprob=[0.5, 0.5], transmat=[[0.95, 0.05], [0.1, 0.9]],
                means=[[-3.0, 0.0], [3.0, 1.0]], covars=[[1.0, 0.5], [0.7, 1.2]])
    X, z = truth.sample(4000, seed=2)
    h = HMM(2, "gaussian").fit(X, n_iter=50, seed=0)
    order = np.argsort(h.means[:, 0])
    assert np.allclose(h.means[order], truth.means, atol=0.15)
    assert np.allclose(h.covars[order], truth.covars, rtol=0.15)
    assert np.allclose(h.transmat[np.ix_(order, order)], truth.transmat, atol=0.03)
    assert (order[h.predict(X)] == z).mean() > 0.97


def test_sample_follows_the_model():
    h = categorical(3, 4, 13)
    X, z = h.sample(60000, seed=5)
    counts = np.zeros((3, 3))
    np.add.at(counts, (z[:-1], z[1:]), 1)
    assert np.allclose(counts / counts.sum(axis=1, keepdims=True), h.transmat, atol=0.02)
    emit = np.zeros((3, 4))
    np.add.at(emit, (z, X), 1)
    assert np.allclose(emit / emit.sum(axis=1, keepdims=True), h.emissionprob, atol=0.02)
    g = gaussian(2, 2, 1, "full")
    Xg, zg = g.sample(20000, seed=1)
    for k in range(2):
        assert np.allclose(Xg[zg == k].mean(axis=0), g.means[k], atol=0.06)
        assert np.allclose(np.cov(Xg[zg == k].T), g.covars[k], atol=0.08)


def test_next_state_and_next_observation():
    h = gaussian(3, 2, 4, "diag")
    X, _ = h.sample(50, seed=0)
    filtered, step = h.filter(X, [20, 30])
    nxt = h.next_state_proba(X, [20, 30])
    assert np.allclose(nxt, filtered[[19, 49]] @ h.transmat, atol=1e-14)
    assert np.allclose(h.predict_next(X, [20, 30]), nxt @ h.means)
    assert step.sum() == pytest.approx(h.score(X, [20, 30]), rel=1e-12)


# ---- bad input ---------------------------------------------------------------------------------------------
def test_bad_parameters_name_the_argument():
    with pytest.raises(ValueError, match="transmat must sum to 1.*row 1"):
        HMM(2, transmat=[[0.5, 0.5], [0.4, 0.5]])
    with pytest.raises(ValueError, match="transmat must be non-negative"):
        HMM(2, transmat=[[1.5, -0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="startprob must sum to 1"):
        HMM(2, startprob=[0.3, 0.3])
    with pytest.raises(ValueError, match=r"transmat must have shape \(3, 3\)"):
        HMM(3, transmat=np.eye(2))
    with pytest.raises(ValueError, match="emissionprob contains NaN"):
        HMM(2, emissionprob=[[np.nan, 1.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"covars\[1\] must be positive definite"):
        HMM(2, "gaussian", covariance_type="full", means=np.zeros((2, 2)),
            covars=[np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match=r"covars\[0\] must be symmetric"):
        HMM(2, "gaussian", covariance_type="full", covars=[[[1.0, 0.5], [0.4, 1.0]], np.eye(2)])
    with pytest.raises(ValueError, match="covars must be positive"):
        HMM(2, "gaussian", covars=[[1.0, 0.0], [1.0, 1.0]])
    with pytest.raises(TypeError, match="transmat must have dtype float64, got float32"):
        HMM(2, transmat=np.full((2, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match="emission must be one of"):
        HMM(2, "poisson")
    with pytest.raises(ValueError, match="means and covars are for emission='gaussian'"):
        HMM(2, "categorical", means=np.zeros((2, 1)))
    with pytest.raises(TypeError, match="n_states must be an int"):
        HMM(2.0)


def test_bad_data_names_the_argument():
    h = categorical(3, 4, 0)
    with pytest.raises(ValueError, match="X holds symbol 4, the model has n_symbols=4"):
        h.score(np.array([0, 4]))
    with pytest.raises(ValueError, match="X must hold symbols >= 0"):
        h.score(np.array([0, -1]))
    with pytest.raises(TypeError, match="X must hold integer symbols"):
        h.score(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="lengths must sum to the number of observations"):
        h.score(np.array([0, 1, 2]), [2, 2])
    with pytest.raises(ValueError, match="lengths must all be >= 1"):
        h.score(np.array([0, 1, 2]), [3, 0])
    with pytest.raises(ValueError, match="not set"):
        HMM(3, "categorical", n_symbols=4).score(np.array([0, 1]))
    g = gaussian(2, 3, 0, "diag")
    with pytest.raises(TypeError, match="X must have dtype float64, got float32"):
        g.score(np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match="X must have 3 features"):
        g.score(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        g.score(np.full((5, 3), np.nan))
    with pytest.raises(ValueError, match="params must be"):
        h.fit(np.array([0, 1, 2]), params="stx")
    with pytest.raises(ValueError, match="init must be"):
        h.fit(np.array([0, 1, 2]), init="kmeans")


def test_engine_checks_its_arrays():
    K, R = 3, 5
    good = dict(startprob=np.ones(K) / K, transmat=np.ones((K, K)) / K, framelogprob=np.zeros((R, K)),
                offsets=np.array([0, R], np.int64), filtered=np.empty((R, K)), emission=np.empty((R, K)),
                scale=np.empty(R), step_logprob=np.empty(R), loglik=np.empty(1), posterior=np.empty((R, K)),
                xi_sum=np.empty((K, K)))
    _core.hmm_forward_backward(**good)
    for key, value, msg in [("offsets", np.array([0, 2, 2, R], np.int64), "increase strictly"),
                            ("offsets", np.array([0, R + 1], np.int64), "end at the number of rows"),
                            ("offsets", np.array([0, R], np.int32), "dtype int64"),
                            ("posterior", np.empty((R, K + 1)), "'posterior' must have shape"),
                            ("loglik", np.empty(2), "'loglik' must have shape"),
                            ("transmat", np.ones((K, K), np.float32) / K, "'framelogprob' must have dtype float32"),
                            ("framelogprob", np.asfortranarray(np.zeros((R, K))), "C-contiguous")]:
        with pytest.raises(ValueError, match=msg):
            _core.hmm_forward_backward(**{**good, key: value})


def test_models_deepcopy_and_pickle_with_their_own_lock():
    """HMM and LinearGaussian hold a lock for their writers: copies and pickles make a new one and score alike."""
    import copy
    import pickle

    from rnnfast.statespace import LinearGaussian
    rng = np.random.default_rng(3)
    h = HMM(3, "categorical", startprob=rng.dirichlet(np.ones(3)), transmat=rng.dirichlet(np.ones(3), 3),
            emissionprob=rng.dirichlet(np.ones(4), 3))
    X = rng.integers(0, 4, 50)
    lds = LinearGaussian(2, 1, transition_matrix=[[0.9, 0.1], [0.0, 0.8]])
    y = rng.standard_normal((30, 1))
    for twin_of in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        th, tl = twin_of(h), twin_of(lds)
        assert th._writing is not h._writing and tl._writing is not lds._writing
        assert th.score(X) == h.score(X) and tl.loglikelihood(y) == lds.loglikelihood(y)
        th.fit(X, n_iter=2, tol=None)
        tl.fit(y, n_iter=2)
        assert th.score(X) != h.score(X) and tl.loglikelihood(y) != lds.loglikelihood(y)  # the originals unchanged
