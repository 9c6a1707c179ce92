"""Losses returning (loss, gradient), and the lecture's target specifications as masks.

    loss, dlogits = softmax_cross_entropy(logits, targets, mask)     # logits (..., K), targets (...)
    loss, dpred = mse(pred, target, mask)                            # 0.5 * mean squared error
    mask = target_mask(T, N, ("last", 5))                            # (T, N) bool

The loss is a Python float (summed in float64); the gradient has the input's dtype and array module.
A mask selects (bool) or weights (float >= 0) positions; the loss is the mean over the selected ones.
"""

import numpy as np

from .._util import checks as _checks
from .._util.arrays import array_module
from .._util.checks import check_array, check_index

__all__ = ["softmax_cross_entropy", "mse", "target_mask"]


def _float_input(a, name):
    xp = array_module(a)
    if not hasattr(a, "dtype") or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 array, got "
                        f"{getattr(a, 'dtype', type(a).__name__)}")
    if a.ndim < 1:
        raise ValueError(f"{name} must have at least 1 dimension, got shape {a.shape}")
    return xp, check_array(a, name, a.dtype, (None,) * a.ndim, xp)


def _weights(mask, shape, xp, dtype, what):
    """mask (bool or float >= 0) of exactly `shape` -> (weights array of dtype, total weight)."""
    if mask is None:
        n = int(np.prod(shape))
        if n == 0:
            raise ValueError(f"{what} has no positions to average over (shape {shape})")
        return None, float(n)
    if array_module(mask) is not xp or not hasattr(mask, "dtype"):
        raise TypeError(f"mask must be a {xp.__name__} array, got {type(mask).__name__}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask must have shape {_checks.shape_str(shape)}, got {tuple(mask.shape)}")
    if mask.dtype == bool:
        w = mask.astype(dtype)
    elif mask.dtype.kind == "f":
        if not bool(xp.isfinite(mask).all()) or bool((mask < 0).any()):
            raise ValueError("mask weights must be finite and >= 0")
        w = mask.astype(dtype, copy=False)
    else:
        raise TypeError(f"mask must be bool or floating point, got {mask.dtype.name}")
    total = float(w.sum(dtype=np.float64))
    if total <= 0:
        raise ValueError("mask selects no positions (all masked): the mean loss is undefined")
    return w, total


def softmax_cross_entropy(logits, targets, mask=None):
    """Mean over unmasked positions of -log softmax(logits)[target], in nats, and its gradient.

    logits: (..., K) float; targets: (...) integer in [0, K); mask: (...) bool, or float weights (then the
    loss is sum(w * nll) / sum(w)), or None. Returns (loss: float, dlogits like logits) where
    dlogits = w * (softmax(logits) - onehot(targets)) / sum(w). Stable: log-sum-exp after subtracting the max.
    Equals torch.nn.functional.cross_entropy(logits.reshape(-1, K), targets.reshape(-1)) without a mask.
    """
    xp, logits = _float_input(logits, "logits")
    K = logits.shape[-1]
    if K == 0:
        raise ValueError(f"logits must have at least one class (last axis), got shape {logits.shape}")
    if array_module(targets) is not xp or not hasattr(targets, "dtype"):
        raise TypeError(f"targets must be a {xp.__name__} integer array, got {type(targets).__name__}")
    if tuple(targets.shape) != logits.shape[:-1]:
        raise ValueError(f"targets must have shape {logits.shape[:-1]} (logits without the class axis), got "
                         f"{getattr(targets, 'shape', type(targets).__name__)}")
    targets = check_index(targets, "targets", xp, K, "number of classes")
    w, total = _weights(mask, targets.shape, xp, logits.dtype, "logits")

    z = logits - logits.max(axis=-1, keepdims=True)
    lse = xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
    logp = z - lse                                                    # (..., K) log softmax
    nll = -xp.take_along_axis(logp, targets[..., None].astype(np.int64), axis=-1)[..., 0]
    loss = float((nll if w is None else nll * w).sum(dtype=np.float64)) / total

    dlogits = xp.exp(logp)                                            # softmax, C-contiguous
    flat = dlogits.reshape(-1, K)
    flat[xp.arange(flat.shape[0]), targets.reshape(-1)] -= 1          # softmax - onehot
    scale = (1.0 / total) if w is None else (w / total)[..., None]
    dlogits *= scale
    return loss, dlogits.astype(logits.dtype, copy=False)


def mse(pred, target, mask=None):
    """0.5 * mean over unmasked elements of (pred - target)^2, and dpred = (pred - target) * w / sum(w).

    pred, target: same shape and dtype; mask: pred.shape (per element) or pred.shape[:-1] (per position,
    broadcast over the last dimension: all of that position's units count), bool or float weights, or None.
    The 0.5 makes dpred the plain residual; torch.nn.functional.mse_loss (reduction='mean') is twice this.
    """
    xp, pred = _float_input(pred, "pred")
    target = check_array(target, "target", pred.dtype, pred.shape, xp)
    if mask is not None and hasattr(mask, "shape") and tuple(mask.shape) == pred.shape[:-1]:
        w, _ = _weights(mask, pred.shape[:-1], xp, pred.dtype, "pred")
        w = xp.broadcast_to(w[..., None], pred.shape)
        total = float(w.sum(dtype=np.float64))
    else:
        w, total = _weights(mask, pred.shape, xp, pred.dtype, "pred")
    r = pred - target
    loss = 0.5 * float(((r * r) if w is None else (r * r * w)).sum(dtype=np.float64)) / total
    dpred = r / total if w is None else r * (w / total)
    return loss, dpred.astype(pred.dtype, copy=False)


def target_mask(T, N, spec="all"):
    """The lecture's target specifications as a (T, N) bool mask over time steps.

    spec: "all" (a target at every step), "last" (the final step only: e.g. desired final activities),
    or ("last", k) (the last k steps, 1 <= k <= T: e.g. attractors).
    """
    T = _checks.positive_int(T, "T")
    N = _checks.positive_int(N, "N")
    if isinstance(spec, str) and spec in ("all", "last"):
        k = T if spec == "all" else 1
    elif isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] == "last":
        k = _checks.positive_int(spec[1], "spec k")
        if k > T:
            raise ValueError(f"spec k must be <= T={T}, got {k}")
    else:
        raise ValueError(f"spec must be 'all', 'last' or ('last', k), got {spec!r}")
    _checks.check_memory(T * N, 1, f"target_mask(T={T}, N={N})")
    mask = np.zeros((T, N), bool)
    mask[T - k:] = True
    return mask
