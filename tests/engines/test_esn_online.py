"""Online read-outs (LMS, RLS/FORCE) in the engine: against the NumPy reference, against reservoirpy's
LMS/RLS nodes in a Model with feedback, in both precisions, and their argument checks."""

import numpy as np
import pytest
import scipy.sparse as sp

import rnnfast
from rnnfast import _core
from rnnfast.esn import OnlineESN
from rnnfast.reference.online import online_run


def _problem(N=60, I=2, O=2, T=300, seed=0, dense=False):
    rng = np.random.default_rng(seed)
    W = sp.random(N, N, density=0.2, random_state=seed + 1, format="csr",
                  data_rvs=lambda n: np.random.default_rng(seed + 2).uniform(-1, 1, n))
    W = W * (0.9 / rnnfast.esn.spectral_radius(W))
    if dense:
        W = W.toarray()
    W_in = rng.uniform(-1, 1, (N, I)) * 0.5
    W_fb = rng.uniform(-1, 1, (N, O)) * 0.5
    bias = rng.uniform(-0.2, 0.2, N)
    u = rng.normal(size=(T, I))
    # a target the reservoir can learn: the inputs of the last two steps, squashed
    y = np.tanh(0.6 * u[:, :O] + 0.3 * np.roll(u, 1, axis=0)[:, :O])
    return W, W_in, W_fb, bias, u, y


def _esn(W, W_in, W_fb, bias, rule, feedback=True, dtype="float64", **kw):
    N, I = W_in.shape
    O = W_fb.shape[1]
    return OnlineESN(I, N, O, W=W, W_in=W_in, W_fb=W_fb if feedback else None, bias=bias, leak_rate=0.4,
                     feedback=feedback, rule=rule, dtype=dtype, **kw)


@pytest.mark.parametrize("rule", ["rls", "lms"])
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("feedback", [True, False])
def test_engine_matches_reference(rule, dense, feedback):
    W, W_in, W_fb, bias, u, y = _problem(dense=dense)
    kw = dict(alpha=1e-2, forgetting=0.999) if rule == "rls" else dict(learning_rate=0.01)
    esn = _esn(W, W_in, W_fb, bias, rule, feedback, **kw)
    # two calls: the second continues the state, the fed-back output, W_out, b_out, P and S
    out = np.concatenate([esn.partial_fit(u[:170], y[:170]), esn.partial_fit(u[170:], y[170:])])
    Win_full = np.concatenate([W_in, W_fb], axis=1) if feedback else W_in
    ref = online_run(u, W, Win_full, bias, 0.4, y, np.zeros((60, 2)), np.zeros(2), rule=rule, feedback=feedback,
                     **kw)
    scale = np.abs(ref["outputs"]).max()
    np.testing.assert_allclose(out, ref["outputs"], rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(esn.W_out, ref["W_out"], rtol=0, atol=1e-9 * np.abs(ref["W_out"]).max())
    np.testing.assert_allclose(esn.b_out, ref["b_out"], rtol=0, atol=1e-9 * max(1.0, np.abs(ref["b_out"]).max()))
    np.testing.assert_allclose(esn.state, ref["x"], rtol=0, atol=1e-10)
    if rule == "rls":
        np.testing.assert_allclose(esn.P, ref["P"], rtol=0, atol=1e-9 * np.abs(ref["P"]).max())
        assert esn.S == pytest.approx(ref["S"], rel=1e-12)


@pytest.mark.parametrize("rule", ["rls", "lms"])
def test_matches_reservoirpy(rule):
    pytest.importorskip("reservoirpy")
    from reservoirpy.nodes import LMS, RLS, Reservoir
    W, W_in, W_fb, bias, u, y = _problem(N=80, T=400, seed=3)
    kw = dict(alpha=1e-3, forgetting=0.995) if rule == "rls" else dict(learning_rate=0.02)
    esn = _esn(W, W_in, W_fb, bias, rule, **kw)
    out = esn.partial_fit(u, y)
    res = Reservoir(W=W, Win=np.concatenate([W_in, W_fb], axis=1), bias=bias, lr=0.4)
    ro = RLS(**kw) if rule == "rls" else LMS(**kw)
    model = res << (res >> ro)                     # reservoir >> readout, readout fed back to the reservoir
    out_rpy = model.partial_fit(u, y)
    np.testing.assert_allclose(out, out_rpy, rtol=0, atol=1e-8 * np.abs(out_rpy).max())
    np.testing.assert_allclose(esn.W_out, ro.Wout, rtol=0, atol=1e-8 * np.abs(ro.Wout).max())
    np.testing.assert_allclose(esn.b_out, ro.bias, rtol=0, atol=1e-8 * max(1.0, np.abs(ro.bias).max()))
    if rule == "rls":
        np.testing.assert_allclose(esn.P, ro.P, rtol=0, atol=1e-8 * np.abs(ro.P).max())
    # then both run on their own (predict: the output fed back)
    u2 = np.random.default_rng(9).normal(size=(50, 2))
    np.testing.assert_allclose(esn.predict(u2), model.run(u2), rtol=0, atol=1e-7 * np.abs(out_rpy).max())


@pytest.mark.parametrize("rule, kw", [("rls", dict(alpha=1e-2)), ("lms", dict(learning_rate=0.02))])
def test_online_readout_learns_a_memory_task(rule, kw):
    """Trained online, the read-out then predicts unseen steps (no learning) far better than the mean."""
    W, W_in, W_fb, bias, u, y = _problem(N=100, T=3000, seed=5)
    esn = _esn(W, W_in, W_fb, bias, rule, feedback=False, **kw)
    esn.partial_fit(u[:2500], y[:2500])
    pred = esn.predict(u[2500:])
    nrmse = np.sqrt(np.mean((pred - y[2500:]) ** 2)) / y[2500:].std()
    assert nrmse < (0.2 if rule == "rls" else 0.5), nrmse


def test_float32_close_to_float64():
    W, W_in, W_fb, bias, u, y = _problem()
    e64 = _esn(W, W_in, W_fb, bias, "rls", alpha=1e-1)
    e32 = _esn(W, W_in, W_fb, bias, "rls", alpha=1e-1, dtype="float32")
    o64, o32 = e64.partial_fit(u, y), e32.partial_fit(u, y)
    assert o32.dtype == np.float32 and e32.P.dtype == np.float32
    # float32's error against the float64 run, relative to the signal: RLS amplifies rounding early on
    assert np.abs(o32 - o64).max() < 1e-3 * np.abs(o64).max()


def test_fit_and_generate_sine_with_force():
    """FORCE learning of a sine generator: no input, the output fed back, then it runs on its own."""
    T = 2000
    y = np.sin(2 * np.pi * np.arange(T) / 50)[:, None]
    esn = OnlineESN(0, 300, 1, feedback=True, rule="rls", alpha=1e-2, spectral_radius=1.2, leak_rate=0.5,
                    feedback_scaling=1.0, density=0.1, seed=1)
    esn.fit(None, y, washout=100)
    gen = esn.predict(np.zeros((200, 0)))
    t = np.arange(T, T + 200)
    assert np.sqrt(np.mean((gen[:, 0] - np.sin(2 * np.pi * t / 50)) ** 2)) < 0.1


def test_thread_count_does_not_change_results():
    W, W_in, W_fb, bias, u, y = _problem(N=300, T=60)
    before = _core.build_info()["threads"]
    outs = []
    try:
        for n in (1, 2):
            _core.set_num_threads(n)
            esn = _esn(W, W_in, W_fb, bias, "rls", alpha=1e-1)
            outs.append((esn.partial_fit(u, y), esn.P.copy()))
    finally:
        _core.set_num_threads(before)
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_long_run_switching_thread_counts_is_exact():
    """A run of over 4 segments (128 steps) on 2 engine threads times its segments and may switch to one
    thread (it always tries one segment on each): the outputs and P equal a one-thread run bit for bit and
    the NumPy reference to rounding, on a quiet machine and with another process busy on a core."""
    import subprocess
    import sys
    W, W_in, W_fb, bias, u, y = _problem(N=300, T=1100, seed=7)
    before = _core.build_info()["threads"]
    runs = {}
    try:
        for name, n, busy in (("one", 1, False), ("two", 2, False), ("two, loaded", 2, True)):
            _core.set_num_threads(n)
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                esn = _esn(W, W_in, W_fb, bias, "rls", alpha=1e-1)
                runs[name] = (esn.partial_fit(u, y), esn.P.copy(), esn.W_out.copy())
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
    finally:
        _core.set_num_threads(before)
    for name in ("two", "two, loaded"):
        for a, b in zip(runs["one"], runs[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    ref = online_run(u, W, np.concatenate([W_in, W_fb], axis=1), bias, 0.4, y, np.zeros((300, 2)), np.zeros(2),
                     rule="rls", feedback=True, alpha=1e-1)
    np.testing.assert_allclose(runs["one"][0], ref["outputs"], rtol=0, atol=1e-8 * np.abs(ref["outputs"]).max())


def test_argument_errors():
    W, W_in, W_fb, bias, u, y = _problem()
    with pytest.raises(ValueError, match="rule"):
        _esn(W, W_in, W_fb, bias, "sgd")
    with pytest.raises(ValueError, match="alpha"):
        _esn(W, W_in, W_fb, bias, "rls", alpha=0)
    with pytest.raises(ValueError, match="forgetting"):
        _esn(W, W_in, W_fb, bias, "rls", forgetting=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        _esn(W, W_in, W_fb, bias, "lms", learning_rate=-1)
    with pytest.raises(TypeError, match="ridge"):
        OnlineESN(1, 10, 1, ridge=1e-3)
    esn = _esn(W, W_in, W_fb, bias, "rls")
    with pytest.raises(ValueError, match="same number of steps"):
        esn.partial_fit(u[:10], y[:9])
    with pytest.raises(ValueError, match="y"):
        esn.partial_fit(u[:10], y[:10, :1])
    with pytest.raises(ValueError, match="washout"):
        esn.fit(u[:10], y[:10], washout=10)
    with pytest.raises(ValueError, match="W_out"):
        esn.W_out = np.zeros((3, 3))
        esn.partial_fit(u[:10], y[:10])


def test_core_checks_name_the_argument():
    N, O, T = 8, 1, 5
    args = dict(u=np.zeros((T, 1)), w=np.eye(N), indptr=None, indices=None, values=None, w_in=np.zeros((N, 2)),
                bias=None, leak=np.ones(N), targets=np.zeros((T, O)), x=np.zeros(N), y=np.zeros(O),
                w_out=np.zeros((N, O)), b_out=np.zeros(O), P=np.eye(N), S=np.zeros(1), states=None,
                outputs=np.zeros((T, O)), feedback=True, train=True, rule="rls", fit_bias=True,
                learning_rate=0.1, forgetting=1.0)
    _core.online_readout(**args)
    for name, bad in (("w_in", np.zeros((N, 1))), ("P", np.eye(N + 1)), ("targets", np.zeros((T + 1, O))),
                      ("leak", np.ones(N, np.float32)), ("rule", "x"), ("forgetting", 0.0)):
        with pytest.raises((ValueError, TypeError), match=name):
            _core.online_readout(**dict(args, **{name: bad}))
