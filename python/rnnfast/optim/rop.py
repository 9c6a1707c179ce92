"""R-ops (forward-mode Jacobian-vector products J v) of the vanilla RNN and the MRNN on the C++ engine.

    Ry = rnnfast.rop.rnn_rop_engine(cache, v, dx=None, dh0=None)     # as reference.rnn_rop
    Ry = rnnfast.rop.mrnn_rop_engine(cache, v, dx=None, dh0=None)    # as reference.mrnn_rop

Drop-in replacements for rnnfast.reference.rnn_rop and mrnn_rop (same cache keys, same direction dicts,
same result up to rounding); the equations are in those functions and in csrc/include/rnnfast/rop.h.
The engine (csrc/cpu/rop.cpp) runs every term that does not depend on the previous step's R h as one
large GEMM over all steps, and only R h_{t-1} W^T plus an element-wise pass per step, with the GIL
released. Hessian-free training (rnnfast.optim.hessian_free.SequenceModel) calls these for its Gauss-Newton
products.

Extra, optional cache entries: "h0" may be None (zeros); the MRNN's "FX" and "FH" (the forward's f_x and
f_h, (T, N, F)) may be left out, and the engine then recomputes them (two more GEMMs per call).
reverse=True: the forward ran from t = T-1 down to 0 (the backward direction of a bidirectional layer).
"""

import numpy as np

from .. import _core
from .._util import checks
from ..reference.mrnn import MRNN_KEYS
from ..reference.rop import RNN_KEYS, _direction

__all__ = ["rnn_rop_engine", "mrnn_rop_engine"]


def _get(cache, key, shape, dtype, who):
    """cache[key] as a C-contiguous array of `shape` and `dtype` (an error naming the key otherwise)."""
    if key not in cache:
        raise KeyError(f"{who}: cache has no {key!r}")
    a = cache[key]
    if shape is None:  # any 2-D or 3-D shape: checked by the caller
        shape = (None,) * getattr(a, "ndim", 0)
    return checks.check_array(a, f"{who}: cache[{key!r}]", dtype, shape, finite=False)


def _sequence(cache, who):
    """(x, y, dtype, T, N, C, H) from cache['x'] (T, N, C) and cache['y'] (T, N, H)."""
    x = cache.get("x") if hasattr(cache, "get") else None
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        raise ValueError(f"{who}: cache['x'] must be an array of shape (T, N, C), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    dt = x.dtype
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{who}: cache['x'] must be float32 or float64, got {dt}")
    T, N, C = x.shape
    if min(T, N, C) < 1:
        raise ValueError(f"{who}: cache['x'] must have T, N, C >= 1, got shape {x.shape}")
    y = _get(cache, "y", None, dt, who)
    if y.ndim != 3 or y.shape[:2] != (T, N) or y.shape[2] < 1:
        raise ValueError(f"{who}: cache['y'] must have shape (T, N, H) = ({T}, {N}, H), got {y.shape}")
    return np.ascontiguousarray(x), y, dt, T, N, C, y.shape[2]


def _optional(a, shape, dtype, name, who):
    """None, or `a` as a C-contiguous array of `shape` in `dtype` (cast as the reference does)."""
    if a is None:
        return None
    a = np.asarray(a)
    if a.shape != shape:
        raise ValueError(f"{who}: {name} must have shape {shape}, got {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype)


def rnn_rop_engine(cache, v, dx=None, dh0=None, reverse=False):
    """R{y} (T, N, H) of the vanilla RNN (tanh or relu) along v, on the C++ engine.

    cache: x (T, N, C), y (T, N, H) the forward's outputs, h0 (N, H) or None, W_ih (H, C), W_hh (H, H),
    nonlinearity ('tanh' | 'relu'), has_bias, as reference.rnn_forward saves it. v: dict with some of
    W_ih, W_hh, b_ih, b_hh (missing or None: zero). dx (T, N, C), dh0 (N, H): optional directions on the
    input and the initial state. Returns a new array; R{h_n} is its last step (first when reverse).
    """
    who = "rnn_rop_engine"
    x, y, dt, T, N, C, H = _sequence(cache, who)
    nonlinearity = cache.get("nonlinearity", "tanh")
    checks.one_of(nonlinearity, f"{who}: cache['nonlinearity']", ("tanh", "relu"))
    W_ih = _get(cache, "W_ih", (H, C), dt, who)
    W_hh = _get(cache, "W_hh", (H, H), dt, who)
    h0 = None if cache.get("h0") is None else _get(cache, "h0", (N, H), dt, who)
    bias = (H,) if cache.get("has_bias", False) else None
    V = _direction(v, RNN_KEYS, {"W_ih": (H, C), "W_hh": (H, H), "b_ih": bias, "b_hh": bias}, dt, zeros=False)
    V = {k: None if a is None else np.ascontiguousarray(a) for k, a in V.items()}
    rx = _optional(dx, (T, N, C), dt, "dx", who)
    rh0 = _optional(dh0, (N, H), dt, "dh0", who)
    ry = np.empty((T, N, H), dt)
    _core.rnn_rop(x, h0, y, W_ih, W_hh, V["W_ih"], V["W_hh"], V["b_ih"], V["b_hh"], rx, rh0, ry, nonlinearity,
                  bool(reverse))
    return ry


def mrnn_rop_engine(cache, v, dx=None, dh0=None, reverse=False):
    """R{y} (T, N, H) of the multiplicative RNN along v, on the C++ engine.

    cache: x (T, N, C), y (T, N, H), h0 (N, H) or None, W_fx (F, C), W_fh (F, H), W_hf (H, F), W_hx (H, C),
    has_bias, and optionally FX, FH (T, N, F) (the forward's f_x, f_h; recomputed when absent), as
    reference.mrnn_forward saves it. v: dict with some of W_fx, W_fh, W_hf, W_hx, b (missing or None:
    zero). dx, dh0 as in rnn_rop_engine.
    """
    who = "mrnn_rop_engine"
    x, y, dt, T, N, C, H = _sequence(cache, who)
    W_fh = _get(cache, "W_fh", None, dt, who)
    if W_fh.ndim != 2 or W_fh.shape[1] != H or W_fh.shape[0] < 1:
        raise ValueError(f"{who}: cache['W_fh'] must have shape (F, H) with H = {H}, got {W_fh.shape}")
    F = W_fh.shape[0]
    W = {"W_fx": _get(cache, "W_fx", (F, C), dt, who), "W_fh": W_fh, "W_hf": _get(cache, "W_hf", (H, F), dt, who),
         "W_hx": _get(cache, "W_hx", (H, C), dt, who)}
    h0 = None if cache.get("h0") is None else _get(cache, "h0", (N, H), dt, who)
    have = [cache.get(k) is not None for k in ("FX", "FH")]
    if have[0] != have[1]:
        raise ValueError(f"{who}: cache must have both 'FX' and 'FH' or neither")
    fx = _get(cache, "FX", (T, N, F), dt, who) if have[0] else None
    fh = _get(cache, "FH", (T, N, F), dt, who) if have[1] else None
    shapes = {"W_fx": (F, C), "W_fh": (F, H), "W_hf": (H, F), "W_hx": (H, C),
              "b": (H,) if cache.get("has_bias", False) else None}
    V = _direction(v, MRNN_KEYS, shapes, dt, zeros=False)
    V = {k: None if a is None else np.ascontiguousarray(a) for k, a in V.items()}
    rx = _optional(dx, (T, N, C), dt, "dx", who)
    rh0 = _optional(dh0, (N, H), dt, "dh0", who)
    ry = np.empty((T, N, H), dt)
    work = np.empty(_core.mrnn_rop_workspace_size(T, N, F, fx is not None), dt)
    _core.mrnn_rop(x, h0, y, fx, fh, W["W_fx"], W["W_fh"], W["W_hf"], W["W_hx"], V["W_fx"], V["W_fh"], V["W_hf"],
                   V["W_hx"], V["b"], rx, rh0, ry, work, bool(reverse))
    return ry
