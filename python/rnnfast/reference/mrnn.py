"""NumPy reference of the factored multiplicative RNN (MRNN), forward, backward and forward-mode R-op.

The MRNN of Sutskever, Martens & Hinton (2011, "Generating text with recurrent neural networks") gives
every input its own hidden-to-hidden matrix, W_hh(x) = W_hf diag(W_fx x) W_fh, factored through F
"factors" so that the characters share parameters. One step (x_t: [N,C], h: [N,H]):

    f_x = x_t W_fx^T                  (N, F)   input side of the factors
    f_h = h_{t-1} W_fh^T              (N, F)   hidden side of the factors
    m   = f_x * f_h                   (N, F)   the factors' multiplicative interaction
    a_t = m W_hf^T + x_t W_hx^T + b   (N, H)
    h_t = tanh(a_t)

Shapes: x (T, N, C); h0 (N, H); W_fx (F, C); W_fh (F, H); W_hf (H, F); W_hx (H, C); b (H,) or None.
As in cells.py, the input side (f_x and x W_hx^T + b for all steps) is two big matmuls before the
time loop; backward stores the per-step gradients and ends with big matmuls for dx and the weights.

The R-op (Pearlmutter 1994; Martens & Sutskever 2011 use it in Hessian-free training) is the forward-mode
directional derivative R{y} = lim (y(theta + eps v) - y(theta)) / eps for a direction v on the parameters
(and optionally on x and h0): one forward sweep of the linearised recurrence, no second derivatives.
"""

import numpy as np

from .rop import _direction, _zeros_if_none

__all__ = ["mrnn_forward", "mrnn_backward", "mrnn_rop", "MRNN_KEYS"]

MRNN_KEYS = ("W_fx", "W_fh", "W_hf", "W_hx", "b")


def _check(x, h0, W_fx, W_fh, W_hf, W_hx, b):
    """Shapes and one floating dtype for all; returns (T, N, C, F, H) and h0 (zeros when None)."""
    if not isinstance(x, np.ndarray) or x.ndim != 3:
        raise ValueError(f"mrnn_forward: x must be an array of shape (T, N, C), got {getattr(x, 'shape', x)}")
    dtype = x.dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"mrnn_forward: x must be float32 or float64, got {dtype}")
    T, N, C = x.shape
    W_fh = np.asarray(W_fh)
    if W_fh.ndim != 2:
        raise ValueError(f"mrnn_forward: W_fh must have shape (F, H), got {W_fh.shape}")
    F, H = W_fh.shape
    shapes = {"W_fx": (W_fx, (F, C)), "W_fh": (W_fh, (F, H)), "W_hf": (W_hf, (H, F)), "W_hx": (W_hx, (H, C))}
    if b is not None:
        shapes["b"] = (b, (H,))
    if h0 is not None:
        shapes["h0"] = (h0, (N, H))
    for name, (arr, shape) in shapes.items():
        arr = np.asarray(arr)
        if arr.shape != shape:
            raise ValueError(f"mrnn_forward: {name} must have shape {shape}, got {arr.shape}")
        if arr.dtype != dtype:
            raise TypeError(f"mrnn_forward: {name} has dtype {arr.dtype} but x has {dtype}; all inputs must "
                            "share one dtype")
    return (T, N, C, F, H), (np.zeros((N, H), dtype) if h0 is None else h0)


def mrnn_forward(x, h0, W_fx, W_fh, W_hf, W_hx, b):
    """Run the MRNN over x (T, N, C) from h0 (N, H; None: zeros).

    Returns (y, h_n, cache): y (T, N, H) all hidden states, h_n = y[-1] (N, H).
    """
    (T, N, C, F, H), h0 = _check(x, h0, W_fx, W_fh, W_hf, W_hx, b)
    X2 = x.reshape(T * N, C)
    FX = (X2 @ W_fx.T).reshape(T, N, F)                  # f_x of every step
    XH = (X2 @ W_hx.T).reshape(T, N, H)                  # x W_hx^T (+ b) of every step
    if b is not None:
        XH = XH + b
    FH = np.empty((T, N, F), x.dtype)                    # f_h of every step
    y = np.empty((T, N, H), x.dtype)
    h = h0
    for t in range(T):
        FH[t] = h @ W_fh.T
        h = np.tanh((FX[t] * FH[t]) @ W_hf.T + XH[t])
        y[t] = h
    cache = dict(x=x, h0=h0, y=y, FX=FX, FH=FH, W_fx=W_fx, W_fh=W_fh, W_hf=W_hf, W_hx=W_hx,
                 has_bias=b is not None)
    return y, y[-1].copy(), cache


def mrnn_backward(dy, dh_n, cache):
    """Backprop through time for :func:`mrnn_forward`.

    dy (T, N, H) = dL/dy, dh_n (N, H) = dL/dh_n (either None: zero). Going backwards, with dh the total
    gradient on h_t:

        da   = dh * (1 - h_t^2)           (N, H)
        dm   = da W_hf                    (N, F)
        dfx  = dm * f_h,  dfh = dm * f_x  (N, F)
        dh_{t-1} = dfh W_fh               (N, H)

    then, over all steps at once: dW_hf = da^T m, dW_hx = da^T x, db = sum da, dW_fh = dfh^T h_prev,
    dW_fx = dfx^T x, dx = dfx W_fx + da W_hx. Returns (dx, dh0, grads), grads keyed by MRNN_KEYS
    (grads['b'] is None without bias).
    """
    x, y, FX, FH = cache["x"], cache["y"], cache["FX"], cache["FH"]
    T, N, H = y.shape
    F = FX.shape[2]
    dt = y.dtype
    dy = _zeros_if_none(dy, (T, N, H), dt, "dy")
    dh = _zeros_if_none(dh_n, (N, H), dt, "dh_n")
    dA = np.empty((T, N, H), dt)
    dFX = np.empty((T, N, F), dt)
    dFH = np.empty((T, N, F), dt)
    for t in reversed(range(T)):
        dh = dh + dy[t]
        dA[t] = dh * (1 - y[t] * y[t])
        dm = dA[t] @ cache["W_hf"]
        dFX[t] = dm * FH[t]
        dFH[t] = dm * FX[t]
        dh = dFH[t] @ cache["W_fh"]

    h_prev = np.concatenate([cache["h0"][None], y[:-1]], axis=0)
    flat = lambda a: a.reshape(T * N, -1)  # noqa: E731
    grads = {
        "W_fx": flat(dFX).T @ flat(x),
        "W_fh": flat(dFH).T @ flat(h_prev),
        "W_hf": flat(dA).T @ flat(FX * FH),
        "W_hx": flat(dA).T @ flat(x),
        "b": flat(dA).sum(axis=0) if cache["has_bias"] else None,
    }
    dx = (flat(dFX) @ cache["W_fx"] + flat(dA) @ cache["W_hx"]).reshape(x.shape)
    return dx, dh, grads


def mrnn_rop(cache, v, dx=None, dh0=None):
    """Forward-mode directional derivative R{y} (T, N, H) of :func:`mrnn_forward` along v.

    v: dict with some of MRNN_KEYS (missing or None: zero) shaped like the parameters; dx (T, N, C) and
    dh0 (N, H): optional directions on the input and the initial state. R{h_n} = R{y}[-1]. Per step:

        R f_x = x V_fx^T + Rx W_fx^T        R f_h = h_{t-1} V_fh^T + R h_{t-1} W_fh^T
        R m   = R f_x * f_h + f_x * R f_h
        R a   = m V_hf^T + R m W_hf^T + x V_hx^T + Rx W_hx^T + V_b
        R h_t = (1 - h_t^2) * R a
    """
    x, y, FX, FH = cache["x"], cache["y"], cache["FX"], cache["FH"]
    T, N, H = y.shape
    C, F = x.shape[2], FX.shape[2]
    dt = y.dtype
    shapes = {"W_fx": (F, C), "W_fh": (F, H), "W_hf": (H, F), "W_hx": (H, C), "b": (H,) if cache["has_bias"] else None}
    V = _direction(v, MRNN_KEYS, shapes, dt)
    Rx = _zeros_if_none(dx, x.shape, dt, "dx")
    Rh = _zeros_if_none(dh0, (N, H), dt, "dh0")
    X2, RX2 = x.reshape(T * N, C), Rx.reshape(T * N, C)
    RFX = (X2 @ V["W_fx"].T + RX2 @ cache["W_fx"].T).reshape(T, N, F)
    RXH = (X2 @ V["W_hx"].T + RX2 @ cache["W_hx"].T).reshape(T, N, H)
    if V["b"] is not None:
        RXH = RXH + V["b"]
    Ry = np.empty((T, N, H), dt)
    h = cache["h0"]
    for t in range(T):
        RFH = h @ V["W_fh"].T + Rh @ cache["W_fh"].T
        Rm = RFX[t] * FH[t] + FX[t] * RFH
        Ra = (FX[t] * FH[t]) @ V["W_hf"].T + Rm @ cache["W_hf"].T + RXH[t]
        Rh = (1 - y[t] * y[t]) * Ra
        Ry[t] = Rh
        h = y[t]
    return Ry
