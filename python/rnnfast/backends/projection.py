"""LSTM projections (proj_size, LSTMP) on any engine that runs the plain LSTM.

With m_t = o * tanh(c_t) (H wide) and h_t = W_hr m_t (P wide), the recurrent term W_hh h_{t-1} equals
(W_hh W_hr) m_{t-1}: the projected LSTM is a plain LSTM over m with the recurrent weight W_hh W_hr, whose
outputs are projected afterwards (y = m W_hr^T, h_n = W_hr m_n). Its only other difference is the first
step, whose recurrent term W_hh h0 comes from the P-wide initial state: it enters as P extra input
columns, x_aug = [x | h0 at the row's first step, zero elsewhere] with W_ih_aug = [W_ih | W_hh], and the
inner LSTM starts from m = 0. So every engine (CPU, CUDA, with lengths) runs projections through its
LSTM, at the cost of an H-wide instead of a P-wide recurrent product; the reference
(reference/lstmp.py) computes the projection step by step, and the tests hold the two together.

Backward: dm = dy W_hr, dm_n = dh_n W_hr into the inner backward; then
dW_hr = sum_t dy_t^T m_t + dh_n^T m_n + W_hh^T dW_eff, dW_hh = dW_ih_aug[:, C:] + dW_eff W_hr^T, and dh0 is
dx_aug's extra columns at the first step.
"""

import numpy as np

from .buffers import buffer as _buffer
from .cells import LSTM


def _first_steps(T, N, reverse, lengths, xp):
    """(t of each row's first step, rows): t = 0 forward; T-1 (or lengths-1) reverse."""
    rows = xp.arange(N)
    if not reverse:
        return xp.zeros(N, dtype=np.int64), rows
    if lengths is None:
        return xp.full(N, T - 1, dtype=np.int64), rows
    return xp.asarray(lengths.astype(np.int64) - 1), rows


class ProjectedEngine:
    """The engine interface (rnnfast.backends.cpu) for an LSTM with w['W_hr'], around a plain-LSTM engine."""

    def __init__(self, inner, xp=np):
        self.inner = inner
        self.xp = xp
        self.name = inner.name

    def forward(self, cell, x, h0, c0, w, out, reverse, training, scratch=None, lengths=None):
        assert cell == LSTM
        xp = self.xp
        T, N, C = x.shape
        W_hr = w["W_hr"]
        P, H = W_hr.shape
        dt = W_hr.dtype
        if x.dtype.kind in "iu":  # one-hot indices: the projection needs the dense rows
            raise TypeError("integer (one-hot index) x is not supported with proj_size")
        x_aug = _buffer(scratch, "proj_x", (T, N, C + P), dt, xp)
        x_aug[:, :, :C] = x
        x_aug[:, :, C:] = 0
        t0, rows = _first_steps(T, N, reverse, lengths, xp)
        if h0 is not None:
            x_aug[t0, rows, C:] = h0
        w_in = dict(W_ih=xp.concatenate([w["W_ih"], w["W_hh"]], axis=1), W_hh=w["W_hh"] @ W_hr,
                    b_ih=w["b_ih"], b_hh=w["b_hh"])
        m = _buffer(scratch, "proj_m", (T, N, H), dt, xp) if training else xp.empty((T, N, H), dt)
        m_n = xp.empty((N, H), dt)
        inner_out = {"y": m, "h_n": m_n, "c_n": out["c_n"]}
        args = (cell, x_aug, None, c0, w_in, inner_out, reverse, training, scratch)
        cache = self.inner.forward(*args) if lengths is None else self.inner.forward(*args, lengths=lengths)
        out["y"][...] = m @ W_hr.T
        out["h_n"][...] = m_n @ W_hr.T
        if not training:
            return None
        return dict(inner=cache, w=w, w_in=w_in, m=m, m_n=m_n, C=C, t0=t0, rows=rows)

    def backward(self, cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads, scratch=None):
        xp = self.xp
        w, w_in, m, m_n, C = cache["w"], cache["w_in"], cache["m"], cache["m_n"], cache["C"]
        W_hr, W_hh = w["W_hr"], w["W_hh"]
        T, N, H = m.shape
        P = W_hr.shape[0]
        dt = W_hr.dtype
        dm = None if dy is None else dy @ W_hr
        dm_n = None if dh_n is None else dh_n @ W_hr
        g_in = dict(W_ih=xp.zeros(w_in["W_ih"].shape, dt), W_hh=xp.zeros(w_in["W_hh"].shape, dt),
                    b_ih=grads["b_ih"], b_hh=grads["b_hh"])
        dx_aug = _buffer(scratch, "proj_dx", (T, N, C + P), dt, xp)
        dm0 = xp.empty((N, H), dt)
        self.inner.backward(cache["inner"], dm, dm_n, dc_n, dx_aug, False, dm0, dc0, g_in, scratch)
        if dx is not None:
            if accumulate_dx:
                dx += dx_aug[:, :, :C]
            else:
                dx[...] = dx_aug[:, :, :C]
        dh0[...] = dx_aug[cache["t0"], cache["rows"], C:]
        dW_eff = g_in["W_hh"]
        grads["W_ih"] += g_in["W_ih"][:, :C]
        grads["W_hh"] += g_in["W_ih"][:, C:] + dW_eff @ W_hr.T
        dW_hr = W_hh.T @ dW_eff
        if dy is not None:
            dW_hr += dy.reshape(T * N, P).T @ m.reshape(T * N, H)
        if dh_n is not None:
            dW_hr += dh_n.T @ m_n
        grads["W_hr"] += dW_hr
