"""Forward-mode derivatives (Pearlmutter's R-operator) of the reference cells, for Gauss-Newton products.

R{f}(theta; v) = d/de f(theta + e v) at e = 0: the directional derivative of a network's outputs along a
parameter direction v, i.e. the Jacobian-vector product J v. Hessian-free optimization (Martens 2010;
Martens & Sutskever 2011) multiplies the Gauss-Newton matrix G = J^T H_L J by v as one R-op pass (J v),
the loss Hessian on the outputs (H_L J v), then one ordinary backward pass (J^T H_L J v).

Elman RNN (shapes as in :mod:`.cells`: T steps, N batch, C inputs, H hidden):

    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh,   h_t = act(a_t)
    R a_t = x_t V_ih^T + v_bih + v_bhh + h_{t-1} V_hh^T  +  R h_{t-1} W_hh^T  (+ R x_t W_ih^T)
    R h_t = act'(a_t) * R a_t                  tanh: 1 - h_t^2;  relu: [h_t > 0];   R h_{-1} = R h0

The first group of terms does not depend on R h: it is two big GEMMs over all (t, n) before the loop,
as the forward's input projection. Only R h_{t-1} W_hh^T (one (N, H) x (H, H) matmul) runs per step.
"""

import numpy as np

__all__ = ["rnn_rop"]

_DIRECTION_KEYS = ("W_ih", "W_hh", "b_ih", "b_hh", "h0", "x")


def _direction(direction, key, shape, dtype):
    v = direction.get(key)
    if v is None:
        return None
    v = np.asarray(v)
    if v.shape != shape:
        raise ValueError(f"rnn_rop: direction[{key!r}] must have shape {shape}, got {v.shape}")
    return v.astype(dtype, copy=False)


def rnn_rop(cache, direction):
    """R-op of :func:`rnn_forward`: the change of every hidden state along a direction.

    cache: the cache returned by ``rnn_forward`` (keys x, h0, y, W_ih, W_hh, nonlinearity; a caller with
    its own forward may build the same dict). direction: dict with any of W_ih, W_hh, b_ih, b_hh (parameter
    directions, shaped like the parameters), h0 (N, H) or (H,) (a direction of the initial state) and x
    (T, N, C) (a direction of the input); a missing or None entry is zero.

    Returns (Ry, Ra): Ry (T, N, H) = R h_t for every step (so R h_n = Ry[-1]) and Ra (T, N, H) = R a_t,
    the pre-activations' directional derivative. Computed in the cache's dtype.
    """
    unknown = set(direction) - set(_DIRECTION_KEYS)
    if unknown:
        raise ValueError(f"rnn_rop: unknown direction entries {sorted(unknown)}; expected some of "
                         f"{list(_DIRECTION_KEYS)}")
    x, h0, y = cache["x"], cache["h0"], cache["y"]
    W_ih, W_hh = cache["W_ih"], cache["W_hh"]
    T, N, H = y.shape
    C = x.shape[2]
    dt = y.dtype
    V_ih = _direction(direction, "W_ih", (H, C), dt)
    V_hh = _direction(direction, "W_hh", (H, H), dt)
    v_bih = _direction(direction, "b_ih", (H,), dt)
    v_bhh = _direction(direction, "b_hh", (H,), dt)
    v_x = _direction(direction, "x", (T, N, C), dt)
    v_h0 = direction.get("h0")
    if v_h0 is not None:
        v_h0 = np.asarray(v_h0)
        if v_h0.shape not in ((N, H), (H,)):
            raise ValueError(f"rnn_rop: direction['h0'] must have shape {(N, H)} or {(H,)}, got {v_h0.shape}")
        v_h0 = np.broadcast_to(v_h0.astype(dt, copy=False), (N, H))

    # Terms independent of R h: big GEMMs over all steps at once, (T*N, C) x (C, H) and (T*N, H) x (H, H).
    Ra = np.zeros((T, N, H), dt)
    if V_ih is not None:
        Ra += (x.reshape(T * N, C) @ V_ih.T).reshape(T, N, H)
    if v_x is not None:
        Ra += (v_x.reshape(T * N, C) @ W_ih.T).reshape(T, N, H)
    if V_hh is not None:
        h_prev = np.concatenate([h0[None], y[:-1]], axis=0)      # h_{t-1}: [h0, h_0, ..., h_{T-2}]
        Ra += (h_prev.reshape(T * N, H) @ V_hh.T).reshape(T, N, H)
    if v_bih is not None:
        Ra += v_bih
    if v_bhh is not None:
        Ra += v_bhh

    # act'(a_t) from the stored outputs, for all steps at once.
    dact = 1 - y * y if cache["nonlinearity"] == "tanh" else (y > 0).astype(dt)
    Ry = np.empty((T, N, H), dt)
    Rh = v_h0                                                    # R h_{t-1}; None means zero
    for t in range(T):
        if Rh is not None:
            Ra[t] += Rh @ W_hh.T                                  # the only per-step matmul
        Rh = Ry[t] = dact[t] * Ra[t]
    return Ry, Ra
