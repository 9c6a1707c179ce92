"""Forward-mode R-op (Pearlmutter 1994) of the vanilla RNN of cells.py, and the direction helper shared
with mrnn.py.

R{y} = lim (y(theta + eps v) - y(theta)) / eps is the Jacobian-vector product J v: one forward sweep of
the linearised recurrence. Hessian-free training (Martens 2010; Martens & Sutskever 2011) needs it for
Gauss-Newton products G v = J^T H_L J v (R-op, then the loss's Hessian, then ordinary backprop).
"""

import numpy as np

__all__ = ["rnn_rop", "RNN_KEYS"]

RNN_KEYS = ("W_ih", "W_hh", "b_ih", "b_hh")


def _direction(v, keys, shapes, dtype, zeros=True):
    """v as a dict over `keys`: missing/None entries zero (None where shapes[k] is None: absent parameter;
    None for every missing entry when zeros=False, as rnnfast.rop passes them to the engine).

    Unknown keys, wrong shapes, and a direction on an absent parameter are errors naming the key.
    """
    if not hasattr(v, "get") or not hasattr(v, "keys"):
        raise TypeError(f"v must be a dict of arrays keyed by {list(keys)}, got {type(v).__name__}")
    unknown = sorted(set(v.keys()) - set(keys))
    if unknown:
        raise ValueError(f"v has unknown keys {unknown}; expected some of {list(keys)}")
    out = {}
    for k in keys:
        a = v.get(k)
        if shapes[k] is None:
            if a is not None:
                raise ValueError(f"v[{k!r}] given but the forward had no such parameter (bias=False)")
            out[k] = None
            continue
        if a is None:
            out[k] = np.zeros(shapes[k], dtype) if zeros else None
            continue
        a = np.asarray(a)
        if a.shape != shapes[k]:
            raise ValueError(f"v[{k!r}] must have shape {shapes[k]}, got {a.shape}")
        out[k] = a.astype(dtype, copy=False)
    return out


def _zeros_if_none(a, shape, dtype, name):
    if a is None:
        return np.zeros(shape, dtype)
    a = np.asarray(a)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a.astype(dtype, copy=False)


def rnn_rop(cache, v, dx=None, dh0=None):
    """R{y} (T, N, H) of cells.rnn_forward (tanh or relu) along v; R{h_n} = R{y}[-1].

    cache: from rnn_forward; v: dict with some of RNN_KEYS (missing or None: zero) shaped like the
    parameters; dx (T, N, C), dh0 (N, H): optional directions on the input and the initial state.

        R a_t = x_t V_ih^T + Rx_t W_ih^T + V_bih + h_{t-1} V_hh^T + R h_{t-1} W_hh^T + V_bhh
        R h_t = act'(a_t) * R a_t          tanh: 1 - h_t^2;  relu: [h_t > 0]
    """
    x, y, W_ih, W_hh = cache["x"], cache["y"], cache["W_ih"], cache["W_hh"]
    T, N, H = y.shape
    C = x.shape[2]
    dt = y.dtype
    bias = (H,) if cache["has_bias"] else None
    V = _direction(v, RNN_KEYS, {"W_ih": (H, C), "W_hh": (H, H), "b_ih": bias, "b_hh": bias}, dt)
    Rx = _zeros_if_none(dx, x.shape, dt, "dx")
    Rh = _zeros_if_none(dh0, (N, H), dt, "dh0")
    RXP = (x.reshape(T * N, C) @ V["W_ih"].T + Rx.reshape(T * N, C) @ W_ih.T).reshape(T, N, H)
    if bias is not None:
        RXP = RXP + (V["b_ih"] + V["b_hh"])
    Ry = np.empty((T, N, H), dt)
    h = cache["h0"]
    for t in range(T):
        Ra = RXP[t] + h @ V["W_hh"].T + Rh @ W_hh.T
        slope = (1 - y[t] * y[t]) if cache["nonlinearity"] == "tanh" else (y[t] > 0).astype(dt)
        Rh = slope * Ra
        Ry[t] = Rh
        h = y[t]
    return Ry
