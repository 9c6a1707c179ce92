"""Tests of rnnfast.losses: softmax_cross_entropy and mse against torch (masked: on the unmasked subset)
and by finite differences; target_mask specifications; bad arguments."""

import numpy as np
import pytest

from rnnfast import losses

from helpers import numerical_grad, randn, rel_err

T, N, K = 5, 3, 7


def torch_ce(logits, targets, weights=None):
    """torch's mean cross-entropy (optionally weighted over positions) and its gradient."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    tl = torch.from_numpy(logits.copy()).requires_grad_()
    nll = F.cross_entropy(tl.reshape(-1, logits.shape[-1]), torch.from_numpy(targets.reshape(-1)),
                          reduction="none")
    if weights is None:
        loss = nll.mean()
    else:
        w = torch.from_numpy(weights.reshape(-1).astype(logits.dtype))
        loss = (nll * w).sum() / w.sum()
    loss.backward()
    return loss.item(), tl.grad.numpy()


# ---------------------------------------------------------------------------------------------
# softmax_cross_entropy
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ce_against_torch(dtype):
    rng = np.random.default_rng(0)
    logits = randn(rng, (T, N, K), dtype, scale=3)
    targets = rng.integers(0, K, (T, N))
    loss, d = losses.softmax_cross_entropy(logits, targets)
    tloss, td = torch_ce(logits, targets)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert isinstance(loss, float) and d.dtype == dtype and d.shape == logits.shape
    assert abs(loss - tloss) <= tol * abs(tloss)
    assert rel_err(d, td) < tol


def test_ce_bool_mask_is_torch_on_the_unmasked_subset():
    rng = np.random.default_rng(1)
    logits = randn(rng, (T, N, K))
    targets = rng.integers(0, K, (T, N))
    mask = rng.random((T, N)) < 0.5
    mask[0, 0] = True
    loss, d = losses.softmax_cross_entropy(logits, targets, mask)
    tloss, td = torch_ce(logits[mask], targets[mask])
    assert abs(loss - tloss) < 1e-13 * tloss
    assert rel_err(d[mask], td) < 1e-13
    assert not d[~mask].any()


def test_ce_float_mask_weights():
    rng = np.random.default_rng(2)
    logits = randn(rng, (T, N, K))
    targets = rng.integers(0, K, (T, N))
    w = rng.random((T, N))
    loss, d = losses.softmax_cross_entropy(logits, targets, w)
    tloss, td = torch_ce(logits, targets, w)
    assert abs(loss - tloss) < 1e-13 * tloss
    assert rel_err(d, td) < 1e-13


def test_ce_finite_differences_with_mask():
    rng = np.random.default_rng(3)
    logits = randn(rng, (3, 2, 4))
    targets = rng.integers(0, 4, (3, 2))
    mask = losses.target_mask(3, 2, ("last", 2))
    _, d = losses.softmax_cross_entropy(logits, targets, mask)
    num = numerical_grad(lambda: losses.softmax_cross_entropy(logits, targets, mask)[0], logits)
    assert rel_err(d, num) < 1e-8


def test_ce_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [500.0, 1000.0, 999.0]])
    targets = np.array([1, 2])
    loss, d = losses.softmax_cross_entropy(logits, targets)
    tloss, td = torch_ce(logits, targets)
    assert np.isfinite(loss) and np.isfinite(d).all()
    assert abs(loss - tloss) < 1e-12 * tloss and rel_err(d, td) < 1e-12


def test_ce_uniform_logits_give_log_k():
    loss, _ = losses.softmax_cross_entropy(np.zeros((4, K)), np.arange(4))
    assert abs(loss - np.log(K)) < 1e-15


def test_ce_errors():
    logits = np.zeros((2, 3, K))
    targets = np.zeros((2, 3), int)
    with pytest.raises(ValueError, match="mask"):
        losses.softmax_cross_entropy(logits, targets, np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="mask"):
        losses.softmax_cross_entropy(logits, targets, np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="targets"):
        losses.softmax_cross_entropy(logits, np.full((2, 3), K))
    with pytest.raises(ValueError, match="targets"):
        losses.softmax_cross_entropy(logits, np.zeros((2, 4), int))
    with pytest.raises(TypeError, match="targets"):
        losses.softmax_cross_entropy(logits, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="logits"):
        losses.softmax_cross_entropy(np.zeros((2, 3, K), int), targets)
    with pytest.raises(ValueError, match="logits"):
        losses.softmax_cross_entropy(np.full((2, 3, K), np.inf), targets)
    with pytest.raises(ValueError, match="mask"):
        losses.softmax_cross_entropy(logits, targets, -np.ones((2, 3)))


# ---------------------------------------------------------------------------------------------
# mse
# ---------------------------------------------------------------------------------------------

def torch_half_mse(pred, target):
    torch = pytest.importorskip("torch")
    tp = torch.from_numpy(pred.copy()).requires_grad_()
    loss = 0.5 * torch.nn.functional.mse_loss(tp, torch.from_numpy(target))
    loss.backward()
    return loss.item(), tp.grad.numpy()


def test_mse_against_torch():
    rng = np.random.default_rng(4)
    pred, target = randn(rng, (T, N, 2)), randn(rng, (T, N, 2))
    loss, d = losses.mse(pred, target)
    tloss, td = torch_half_mse(pred, target)
    assert abs(loss - tloss) < 1e-14 * tloss and rel_err(d, td) < 1e-14
    assert abs(loss - 0.5 * np.mean((pred - target) ** 2)) < 1e-14 * loss


def test_mse_position_mask_broadcasts_over_last_dim():
    rng = np.random.default_rng(5)
    pred, target = randn(rng, (T, N, 3)), randn(rng, (T, N, 3))
    mask = losses.target_mask(T, N, "last")
    loss, d = losses.mse(pred, target, mask)
    tloss, td = torch_half_mse(pred[mask], target[mask])
    assert abs(loss - tloss) < 1e-14 * tloss and rel_err(d[mask], td) < 1e-14
    assert not d[~mask].any()


def test_mse_element_mask_subset_of_units():
    """The lecture's "desired activity of a subset of the units": an element mask."""
    rng = np.random.default_rng(6)
    pred, target = randn(rng, (T, N, 4)), randn(rng, (T, N, 4))
    mask = np.zeros((T, N, 4), bool)
    mask[..., :2] = True
    loss, d = losses.mse(pred, target, mask)
    tloss, td = torch_half_mse(pred[mask], target[mask])
    assert abs(loss - tloss) < 1e-14 * tloss and rel_err(d[mask], td) < 1e-14
    num = numerical_grad(lambda: losses.mse(pred, target, mask)[0], pred)
    assert rel_err(d, num) < 1e-8


def test_mse_float32_and_errors():
    p = np.ones((2, 3), np.float32)
    loss, d = losses.mse(p, np.zeros((2, 3), np.float32))
    assert d.dtype == np.float32 and abs(loss - 0.5) < 1e-7
    with pytest.raises(TypeError, match="target"):
        losses.mse(p, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="target"):
        losses.mse(p, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="mask"):
        losses.mse(p, p, np.zeros(2, bool))
    with pytest.raises(ValueError, match="mask"):
        losses.mse(p, p, np.ones((4,), bool))


# ---------------------------------------------------------------------------------------------
# target_mask
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,steps", [("all", [0, 1, 2, 3]), ("last", [3]), (("last", 2), [2, 3]),
                                        (("last", 4), [0, 1, 2, 3]), (["last", 1], [3])])
def test_target_mask_specs(spec, steps):
    m = losses.target_mask(4, 3, spec)
    assert m.shape == (4, 3) and m.dtype == bool
    assert [t for t in range(4) if m[t].all()] == steps
    assert all(not m[t].any() for t in range(4) if t not in steps)


@pytest.mark.parametrize("spec,match", [(("last", 5), "spec"), (("last", 0), "spec"), ("first", "spec"),
                                        (("first", 2), "spec"), (("last", 1.5), "spec")])
def test_target_mask_errors(spec, match):
    with pytest.raises((ValueError, TypeError), match=match):
        losses.target_mask(4, 3, spec)
    with pytest.raises(ValueError, match=r"\bT\b"):
        losses.target_mask(0, 3)
