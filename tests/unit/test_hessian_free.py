"""Tests of the Hessian-free optimizer (rnnfast.optim.HessianFree) and the RNN's R-op.

The R-op against central differences of the forward in float64; Gauss-Newton products against
J^T H_L J built from an explicit finite-difference Jacobian of a tiny model; symmetry and positive
semi-definiteness of G; CG on a small SPD system; damping and rejection (a trial point whose loss
rises or is NaN; a non-finite curvature product); loss reduction on small regression and
classification tasks; bad arguments.
"""

import math

import numpy as np
import pytest

import rnnfast
from rnnfast import losses, nn, optim
from rnnfast.hessian_free import SequenceModel, conjugate_gradient

T, N, C, H, K = 5, 3, 2, 4, 2


def make_model(nonlinearity="tanh", dtype="float64", batch_first=False, learn_initial_state=False, seed=0,
               hidden=H, out=K):
    rnn = rnnfast.RNN(C, hidden, nonlinearity=nonlinearity, dtype=dtype, batch_first=batch_first,
                      learn_initial_state=learn_initial_state, seed=seed)
    if learn_initial_state:
        rnn.parameters()["h0"][...] = np.random.default_rng(seed + 7).uniform(-0.5, 0.5, (1, hidden))
    return SequenceModel(rnn, nn.Linear(hidden, out, dtype=dtype, seed=seed + 1))


def random_like(params, seed):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(p.shape) for k, p in params.items()}


def flat(d, names):
    return np.concatenate([np.asarray(d[k], np.float64).ravel() for k in names])


def outputs_at(model, theta_dict, x):
    """Model outputs with the parameters set to theta_dict (then restored)."""
    params = model.parameters()
    saved = {k: p.copy() for k, p in params.items()}
    for k, p in params.items():
        p[...] = theta_dict[k]
    out, cache = model.forward(x)
    hidden = cache["y"].copy()
    for k, p in params.items():
        p[...] = saved[k]
    return out, hidden


# ---- R-op (reference.rnn_rop itself is checked against finite differences in tests/unit/test_mrnn.py) ----
def _model_of(cell, batch_first, learned):
    if cell == "rnn":
        return make_model(batch_first=batch_first, learn_initial_state=learned)
    rnn = rnnfast.MRNN(C, H, 3, dtype="float64", batch_first=batch_first, learn_initial_state=learned, seed=4)
    if learned:
        rnn.parameters()["h0"][...] = np.random.default_rng(9).uniform(-0.5, 0.5, (1, H))
    return SequenceModel(rnn, nn.Linear(H, K, dtype="float64", seed=5))


@pytest.mark.parametrize("cell", ["rnn", "mrnn"])
@pytest.mark.parametrize("batch_first,learned", [(False, False), (True, True)])
def test_sequence_model_rop_matches_finite_differences(cell, batch_first, learned):
    model = _model_of(cell, batch_first, learned)
    x = np.random.default_rng(1).standard_normal((N, T, C) if batch_first else (T, N, C))
    params = model.parameters()
    v = random_like(params, 2)
    _, cache = model.forward(x)
    Rout, Rh = model.rop(cache, v)
    eps = 1e-6
    plus = outputs_at(model, {k: p + eps * v[k] for k, p in params.items()}, x)
    minus = outputs_at(model, {k: p - eps * v[k] for k, p in params.items()}, x)
    for R, hi, lo in ((Rout, plus[0], minus[0]), (Rh, plus[1], minus[1])):
        fd = (hi - lo) / (2 * eps)
        assert np.abs(R - fd).max() <= 1e-7 * np.abs(fd).max()


def test_hessian_free_trains_an_mrnn():
    rng = np.random.default_rng(0)
    rnn = rnnfast.MRNN(C, H, 4, dtype="float64", seed=1)
    model = SequenceModel(rnn, nn.Linear(H, K, dtype="float64", seed=2))
    x = rng.standard_normal((T, 16, C))
    target = np.tanh(np.cumsum(x[..., :K], axis=0) * 0.5)  # depends on the past: the recurrence must learn
    opt = optim.HessianFree(model, loss="mse", damping=1.0, structural_damping=0.3)
    first = opt.step(x, target)["loss_before"]
    for _ in range(8):
        stats = opt.step(x, target)
    assert np.isfinite(stats["loss_after"]) and stats["loss_after"] < 0.5 * first
    assert all(np.isfinite(p).all() for p in model.parameters().values())


# ---- Gauss-Newton products ------------------------------------------------------------------------
def jacobians(model, x, names):
    """Explicit d(outputs)/d(theta) and d(hidden)/d(theta) by central differences, (outputs, P)."""
    params = model.parameters()
    theta = {k: p.copy() for k, p in params.items()}
    cols_out, cols_h = [], []
    eps = 1e-6
    for k in names:
        for j in range(params[k].size):
            hi, lo = {kk: vv.copy() for kk, vv in theta.items()}, {kk: vv.copy() for kk, vv in theta.items()}
            hi[k].ravel()[j] += eps
            lo[k].ravel()[j] -= eps
            (oh, hh), (ol, hl) = outputs_at(model, hi, x), outputs_at(model, lo, x)
            cols_out.append(((oh - ol) / (2 * eps)).ravel())
            cols_h.append(((hh - hl) / (2 * eps)).ravel())
    return np.stack(cols_out, axis=1), np.stack(cols_h, axis=1)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_gauss_newton_product_equals_explicit_jacobian_form(loss):
    rng = np.random.default_rng(3)
    model = make_model(seed=4)
    x = rng.standard_normal((T, N, C))
    mask = rng.uniform(0.2, 1.0, (T, N))                      # float weights: per-position scales matter
    if loss == "mse":
        y = rng.standard_normal((T, N, K))
    else:
        y = rng.integers(0, K, (T, N))
    lam, mu = 0.3, 0.7
    opt = optim.HessianFree(model, loss=loss, damping=lam, structural_damping=mu)
    names = list(model.parameters())
    J, Jh = jacobians(model, x, names)
    out, _ = model.forward(x)
    s = mask / mask.sum()
    if loss == "mse":                                          # 0.5 mean over elements: each of K counts
        HL = np.diag(np.repeat(s.ravel(), K) / K)
    else:
        z = np.exp(out - out.max(-1, keepdims=True))
        prob = (z / z.sum(-1, keepdims=True)).reshape(-1, K)
        blocks = [w * (np.diag(p) - np.outer(p, p)) for w, p in zip(s.ravel(), prob)]
        HL = np.zeros((len(blocks) * K,) * 2)
        for i, b in enumerate(blocks):
            HL[i * K:(i + 1) * K, i * K:(i + 1) * K] = b
    G = J.T @ HL @ J
    v = random_like(model.parameters(), 5)
    vf = flat(v, names)
    Gv = flat(opt.curvature_product(x, y, v, mask=mask), names)
    assert np.abs(Gv - G @ vf).max() <= 1e-6 * np.abs(G @ vf).max()
    # damped: + lambda v + mu lambda / N J_h^T J_h v (structural damping, per sequence)
    damped = flat(opt.curvature_product(x, y, v, mask=mask, damped=True), names)
    expect = G @ vf + lam * vf + mu * lam / N * (Jh.T @ (Jh @ vf))
    assert np.abs(damped - expect).max() <= 1e-6 * np.abs(expect).max()


def test_gauss_newton_matrix_is_symmetric_positive_semidefinite():
    rng = np.random.default_rng(6)
    model = make_model(seed=7, hidden=6, out=3)
    x = rng.standard_normal((8, 4, C))
    y = rng.integers(0, 3, (8, 4))
    opt = optim.HessianFree(model, loss="cross_entropy")
    names = list(model.parameters())
    for seed in range(3):
        u, v = random_like(model.parameters(), 10 + seed), random_like(model.parameters(), 20 + seed)
        uf, vf = flat(u, names), flat(v, names)
        Gu = flat(opt.curvature_product(x, y, u), names)
        Gv = flat(opt.curvature_product(x, y, v), names)
        assert uf @ Gv == pytest.approx(vf @ Gu, rel=1e-10)
        assert vf @ Gv >= 0 and uf @ Gu >= 0


# ---- conjugate gradient ---------------------------------------------------------------------------
@pytest.mark.parametrize("preconditioned", [False, True])
def test_cg_solves_a_small_spd_system(preconditioned):
    rng = np.random.default_rng(8)
    B = rng.standard_normal((20, 20))
    A = B @ B.T + np.diag(np.linspace(0.1, 10, 20))
    g = rng.standard_normal(20)
    M = np.diag(A) ** 0.75 if preconditioned else None
    x, saved, info = conjugate_gradient(lambda v: A @ v, g, precond=M, max_iters=200, tol=0.0)
    assert np.abs(A @ x + g).max() <= 1e-8 * np.abs(g).max()
    assert saved[-1][0] == info["iterations"] and [i for i, _ in saved] == sorted({i for i, _ in saved})
    assert info["phi"] == pytest.approx(-0.5 * g @ np.linalg.solve(A, g), rel=1e-10)
    # Martens' progress rule stops early with a nearly-minimal phi; a warm start at the answer stops at once
    x2, _, info2 = conjugate_gradient(lambda v: A @ v, g, precond=M, max_iters=200, tol=5e-4)
    assert info2["phi"] <= 0.99 * info["phi"]
    _, _, info3 = conjugate_gradient(lambda v: A @ v, g, x0=x, precond=M, max_iters=200)
    assert info3["iterations"] <= 2


def test_cg_stops_on_non_finite_curvature():
    calls = []

    def matvec(v):
        calls.append(1)
        return np.arange(1.0, 6.0) * v if len(calls) < 3 else v * np.nan
    x, saved, info = conjugate_gradient(matvec, np.ones(5) + np.arange(5), max_iters=50)
    assert info["stop"] == "curvature_nonfinite" and np.isfinite(x).all()


# ---- the optimizer --------------------------------------------------------------------------------
def regression_task(seed=0, dtype=np.float64, Tn=10, Nn=24):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((Tn, Nn, C)).astype(dtype)
    y = (0.3 * np.cumsum(x, axis=0)).astype(dtype)            # K = C = 2: running sums
    return x, y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_hf_reduces_the_loss_on_a_small_regression_task(dtype):
    x, y = regression_task(dtype=np.dtype(dtype))
    model = make_model(dtype=dtype, hidden=8, seed=1)
    opt = optim.HessianFree(model, loss="mse", damping=1.0, structural_damping=0.3, curvature_subset=12, seed=0)
    first = opt.loss(x, y)
    for _ in range(15):
        stats = opt.step(x, y)
        assert math.isfinite(stats["loss_after"]) and stats["loss_after"] <= stats["loss_before"]
        assert stats["cg_iterations"] >= 1
    assert opt.loss(x, y) < 0.2 * first
    assert all(p.dtype == np.dtype(dtype) for p in model.parameters().values())


def test_hf_reduces_cross_entropy_with_a_last_step_mask():
    rng = np.random.default_rng(2)
    Tn, Nn = 8, 32
    x = rng.standard_normal((Tn, Nn, C))
    labels = (x[:3, :, 0].sum(axis=0) > 0).astype(np.int64)  # decided by the first three steps
    y = np.broadcast_to(labels, (Tn, Nn)).copy()
    mask = losses.target_mask(Tn, Nn, "last")
    opt = optim.HessianFree(make_model(seed=3, hidden=8), loss="cross_entropy", damping=1.0,
                            structural_damping=0.1, preconditioner=False)
    first = opt.loss(x, y, mask)
    for _ in range(10):
        opt.step(x, y, mask=mask, curvature_subset=np.arange(0, Nn, 2))
    assert opt.loss(x, y, mask) < 0.5 * first


class _Wrapped:
    """An HF model around a SequenceModel whose trial points (parameters moved away from where it was
    built) give a higher loss (kind="worse": outputs pushed away from the targets), NaN outputs
    (kind="nan"), or whose R-op overflows (kind="rop_overflow")."""

    def __init__(self, inner, kind, target):
        self.inner, self.kind, self.target = inner, kind, target
        self.batch_axis = inner.batch_axis
        self.theta0 = {k: p.copy() for k, p in inner.parameters().items()}

    def parameters(self):
        return self.inner.parameters()

    def _moved(self):
        return sum(float(((p - self.theta0[k]) ** 2).sum()) for k, p in self.inner.parameters().items())

    def forward(self, x):
        out, cache = self.inner.forward(x)
        d2 = self._moved()
        if self.kind == "worse":
            out = out + 1e3 * d2 * np.sign(out - self.target)   # zero value and slope at theta0
        elif self.kind == "nan" and d2 > 0:
            out = out * np.nan
        elif self.kind == "far_nan" and d2 > self.radius2:
            out = out * np.nan
        return out, cache

    def backward(self, cache, dout, dhidden=None):
        return self.inner.backward(cache, dout, dhidden)

    def rop(self, cache, v):
        Rout, Rh = self.inner.rop(cache, v)
        return (Rout * np.inf, Rh) if self.kind == "rop_overflow" else (Rout, Rh)


@pytest.mark.parametrize("kind", ["worse", "nan", "rop_overflow"])
def test_rejected_steps_raise_damping_and_leave_parameters_unchanged(kind):
    x, y = regression_task(Nn=8)
    model = _Wrapped(make_model(seed=5), kind, y)
    opt = optim.HessianFree(model, loss="mse", damping=0.5, structural_damping=0.2)
    before = {k: p.copy() for k, p in model.parameters().items()}
    lam = opt.damping
    for _ in range(2):
        stats = opt.step(x, y)
        assert not stats["accepted"] and stats["step_size"] == 0
        assert opt.damping == pytest.approx(lam * 1.5) and stats["damping"] == opt.damping
        lam = opt.damping
        assert stats["loss_after"] == stats["loss_before"]
        for k, p in model.parameters().items():
            assert np.isfinite(p).all()
            np.testing.assert_array_equal(p, before[k])
    if kind == "rop_overflow":
        assert stats["cg_stop"] == "curvature_nonfinite" and stats["cg_iterations"] == 0


def test_cg_backtracking_walks_past_non_finite_iterates():
    x, y = regression_task(Nn=8)
    probe = optim.HessianFree(make_model(seed=5), damping=0.05, preconditioner=False)
    probe.step(x, y)
    model = _Wrapped(make_model(seed=5), "far_nan", y)
    model.radius2 = 0.3 * float(probe._warm @ probe._warm)     # the last CG iterates give NaN
    opt = optim.HessianFree(model, damping=0.05, preconditioner=False)
    stats = opt.step(x, y)
    assert stats["accepted"] and 0 < stats["cg_backtrack"] < stats["cg_iterations"]
    assert stats["loss_after"] < stats["loss_before"]
    assert all(np.isfinite(p).all() for p in model.parameters().values())


def test_non_finite_loss_at_the_start_is_an_error_and_nothing_changes():
    x, y = regression_task(Nn=4)
    model = make_model()
    opt = optim.HessianFree(model)
    model.parameters()["readout.weight"][...] = 1e300            # outputs overflow to inf
    before = {k: p.copy() for k, p in model.parameters().items()}
    with pytest.raises(ValueError, match="loss|NaN|Inf"):
        opt.step(x, y)
    for k, p in model.parameters().items():
        np.testing.assert_array_equal(p, before[k])


def test_damping_falls_after_good_steps_and_warm_start_is_kept():
    x, y = regression_task(Nn=16)
    opt = optim.HessianFree(make_model(seed=2, hidden=8), damping=10.0, cg_decay=0.9)
    stats = opt.step(x, y)
    assert stats["accepted"] and stats["rho"] > 0.75 and opt.damping == pytest.approx(10.0 * 2 / 3)
    assert opt._warm is not None


# ---- arguments ------------------------------------------------------------------------------------
def test_bad_arguments_name_the_argument():
    model = make_model()
    x, y = regression_task(Nn=4, Tn=T)
    with pytest.raises(ValueError, match="damping"):
        optim.HessianFree(model, damping=-1.0)
    with pytest.raises(ValueError, match="structural_damping"):
        optim.HessianFree(model, structural_damping=-0.1)
    with pytest.raises(ValueError, match="loss"):
        optim.HessianFree(model, loss="hinge")
    with pytest.raises(ValueError, match="cg_max_iters"):
        optim.HessianFree(model, cg_max_iters=0)
    with pytest.raises(ValueError, match="curvature_subset"):
        optim.HessianFree(model, curvature_subset=1.5)
    with pytest.raises(TypeError, match="model"):
        optim.HessianFree(object())
    with pytest.raises(TypeError, match="rnn"):
        SequenceModel(rnnfast.LSTM(C, H, dtype="float64"), nn.Linear(H, K, dtype="float64"))
    with pytest.raises(ValueError, match="in_features"):
        SequenceModel(rnnfast.RNN(C, H, dtype="float64"), nn.Linear(H + 1, K, dtype="float64"))
    opt = optim.HessianFree((rnnfast.RNN(C, H, dtype="float64"), nn.Linear(H, K, dtype="float64")))
    with pytest.raises(ValueError, match="batch_x"):
        opt.step(x[0], y)
    with pytest.raises(TypeError, match="batch_x"):
        opt.step(x.astype(np.float32), y)
    with pytest.raises(ValueError, match="batch_y"):
        opt.step(x, y[:, :, :1])
    with pytest.raises(ValueError, match="batch_y"):
        opt.step(x, y[:, :2])
    with pytest.raises(ValueError, match="mask"):
        opt.step(x, y, mask=np.ones((T + 1, 4), bool))
    with pytest.raises(ValueError, match="curvature_subset"):
        opt.step(x, y, curvature_subset=np.array([0, 9]))
    with pytest.raises(ValueError, match="curvature_subset"):
        opt.step(x, y, curvature_subset=5)
    ce = optim.HessianFree(make_model(), loss="cross_entropy")
    with pytest.raises(TypeError, match="batch_y"):
        ce.step(x, np.zeros((T, 4)))
