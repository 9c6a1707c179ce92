"""LSTM with a recurrent projection (LSTMP; Sak et al. 2014; torch.nn.LSTM's proj_size): the reference.

Shapes as in :mod:`.cells`, with P = proj_size < H:

x (T, N, C)   h0 (N, P)   c0 (N, H)   W_ih (4H, C)   W_hh (4H, P)   W_hr (P, H)   y (T, N, P)

    [a_i a_f a_g a_o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
    c_t = f * c_{t-1} + i * g
    m_t = o * tanh(c_t)                 (N, H)
    h_t = m_t W_hr^T                    (N, P)   the state fed back and the output
"""

import numpy as np

from .cells import _input_projection, _zeros_if_none, sigmoid

__all__ = ["lstmp_forward", "lstmp_backward"]


def lstmp_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, W_hr):
    """Returns (y, h_n, c_n, cache); h0 / c0 may be None (zeros)."""
    T, N, _ = x.shape
    P, H = W_hr.shape
    dt = x.dtype
    h = np.zeros((N, P), dt) if h0 is None else h0
    c = np.zeros((N, H), dt) if c0 is None else c0
    h_first, c_first = h, c
    Xp = _input_projection(x, W_ih, b_ih)
    y = np.empty((T, N, P), dt)
    ms = np.empty((T, N, H), dt)
    cs = np.empty((T, N, H), dt)
    gates = np.empty((T, N, 4 * H), dt)
    for t in range(T):
        a = Xp[t] + h @ W_hh.T
        if b_hh is not None:
            a = a + b_hh
        i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
        g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c = f * c + i * g
        m = o * np.tanh(c)
        h = m @ W_hr.T
        gates[t] = np.concatenate([i, f, g, o], axis=1)
        cs[t], ms[t], y[t] = c, m, h
    cache = dict(x=x, h0=h_first, c0=c_first, y=y, m=ms, c=cs, gates=gates, W_ih=W_ih, W_hh=W_hh, W_hr=W_hr,
                 has_bias=b_ih is not None)
    return y, y[-1].copy(), cs[-1].copy(), cache


def lstmp_backward(dy, dh_n, dc_n, cache):
    """Returns (dx, dh0, dc0, grads) with grads W_ih, W_hh, b_ih, b_hh, W_hr.

        dm_t = dh_t W_hr,   dW_hr += dh_t^T m_t,   then the LSTM's step with dh replaced by dm;
        dh_{t-1} = dA_t W_hh  (P wide)
    """
    x, y, ms, cs, gates = cache["x"], cache["y"], cache["m"], cache["c"], cache["gates"]
    W_ih, W_hh, W_hr = cache["W_ih"], cache["W_hh"], cache["W_hr"]
    T, N, P = y.shape
    H = W_hr.shape[1]
    dt = y.dtype
    dy = _zeros_if_none(dy, (T, N, P), dt)
    dh = _zeros_if_none(dh_n, (N, P), dt)
    dc = _zeros_if_none(dc_n, (N, H), dt)
    dA = np.empty((T, N, 4 * H), dt)
    dW_hr = np.zeros_like(W_hr)
    for t in reversed(range(T)):
        dh = dh + dy[t]
        dW_hr += dh.T @ ms[t]
        dm = dh @ W_hr
        i, f, g, o = (gates[t][:, k * H:(k + 1) * H] for k in range(4))
        c_prev = cs[t - 1] if t > 0 else cache["c0"]
        tc = np.tanh(cs[t])
        do = dm * tc
        dc = dc + dm * o * (1 - tc * tc)
        dA[t] = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                                do * o * (1 - o)], axis=1)
        dc = dc * f
        dh = dA[t] @ W_hh
    h_prev = np.concatenate([cache["h0"][None], y[:-1]], axis=0)
    dA2 = dA.reshape(T * N, 4 * H)
    grads = {"W_ih": dA2.T @ x.reshape(T * N, -1), "W_hh": dA2.T @ h_prev.reshape(T * N, P),
             "b_ih": dA2.sum(axis=0) if cache["has_bias"] else None,
             "b_hh": dA2.sum(axis=0) if cache["has_bias"] else None, "W_hr": dW_hr}
    return (dA2 @ W_ih).reshape(T, N, -1), dh, dc, grads
