"""The NumPy reference (rnnfast.reference) behind the engine interface: readable, slow, the oracle of the
tests. The reference runs forward in time; a reverse direction runs on the time-flipped sequence."""

import numpy as np

from .. import reference
from ..reference import mrnn as ref_mrnn
from ..reference.lstmp import lstmp_backward, lstmp_forward
from ..reference.varlen import varlen_backward, varlen_forward
from .cells import GRU, GRU_CHO, LSTM, RNN_RELU


class ReferenceEngine:
    """The NumPy reference (rnnfast.reference): readable, slow, the oracle of the tests.

    The reference runs forward in time; a reverse direction is run on the time-flipped sequence.
    """

    name = "reference"

    def forward(self, cell, x, h0, c0, w, out, reverse, training, scratch=None, lengths=None, zoneout=None):
        """zoneout: None, a (T, N, H) mask (1: the unit takes its new value) or, in eval, the probability p."""
        if (w.get("W_hr") is not None or zoneout is not None) and lengths is None:  # one sequence at a time too
            lengths = np.full(x.shape[1], x.shape[0], np.int32)
        if zoneout is not None and not isinstance(zoneout, np.ndarray):  # eval: the expectation
            zoneout = np.full(x.shape[:2] + (w["W_hh"].shape[1],), 1 - zoneout, x.dtype)
        if lengths is not None:
            return self._forward_varlen(cell, x, h0, c0, w, out, reverse, training, lengths, zoneout)
        xs = x[::-1] if reverse else x
        args = (w["W_ih"], w["W_hh"], w["b_ih"], w["b_hh"])
        c_n = None
        if cell == LSTM:
            y, h_n, c_n, cache = reference.lstm_forward(xs, h0, c0, *args)
        elif cell in (GRU, GRU_CHO):
            y, h_n, cache = reference.gru_forward(xs, h0, *args, reset_after=cell == GRU)
        else:
            y, h_n, cache = reference.rnn_forward(xs, h0, *args,
                                                  nonlinearity="relu" if cell == RNN_RELU else "tanh")
        out["y"][...] = y[::-1] if reverse else y
        out["h_n"][...] = h_n
        if c_n is not None:
            out["c_n"][...] = c_n
        return dict(cell=cell, ref=cache, reverse=reverse) if training else None

    def backward(self, cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads, scratch=None):
        if "varlen" in cache:
            return self._backward_varlen(cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads)
        cell, rev = cache["cell"], cache["reverse"]
        if dy is not None and rev:
            dy = dy[::-1]
        if cell == LSTM:
            dxs, dh0_, dc0_, g = reference.lstm_backward(dy, dh_n, dc_n, cache["ref"])
            dc0[...] = dc0_
        elif cell in (GRU, GRU_CHO):
            dxs, dh0_, g = reference.gru_backward(dy, dh_n, cache["ref"])
        else:
            dxs, dh0_, g = reference.rnn_backward(dy, dh_n, cache["ref"])
        if rev:
            dxs = dxs[::-1]
        if accumulate_dx:
            dx += dxs
        else:
            dx[...] = dxs
        dh0[...] = dh0_
        for k in ("W_ih", "W_hh", "b_ih", "b_hh"):
            if grads[k] is not None:
                grads[k] += g[k]

    # variable lengths: each sequence run by itself (reference/varlen.py)
    @staticmethod
    def _cell_fns(cell, w):
        args = (w["W_ih"], w["W_hh"], w["b_ih"], w["b_hh"])
        if cell == LSTM and w.get("W_hr") is not None:  # with a projection (proj_size)
            def fwd(xs, states):
                y, h_n, c_n, cache = lstmp_forward(xs, states[0], states[1], *args, w["W_hr"])
                return y, [h_n, c_n], cache

            def bwd(dy, dfinals, cache):
                dx, dh0, dc0, g = lstmp_backward(dy, dfinals[0], dfinals[1], cache)
                return dx, [dh0, dc0], g
        elif cell == LSTM:
            def fwd(xs, states, z=None):
                y, h_n, c_n, cache = reference.lstm_forward(xs, states[0], states[1], *args, zoneout=z)
                return y, [h_n, c_n], cache

            def bwd(dy, dfinals, cache):
                dx, dh0, dc0, g = reference.lstm_backward(dy, dfinals[0], dfinals[1], cache)
                return dx, [dh0, dc0], g
        elif cell in (GRU, GRU_CHO):
            def fwd(xs, states, z=None):
                y, h_n, cache = reference.gru_forward(xs, states[0], *args, reset_after=cell == GRU, zoneout=z)
                return y, [h_n], cache

            def bwd(dy, dfinals, cache):
                dx, dh0, g = reference.gru_backward(dy, dfinals[0], cache)
                return dx, [dh0], g
        else:
            def fwd(xs, states):
                y, h_n, cache = reference.rnn_forward(xs, states[0], *args,
                                                      nonlinearity="relu" if cell == RNN_RELU else "tanh")
                return y, [h_n], cache

            def bwd(dy, dfinals, cache):
                dx, dh0, g = reference.rnn_backward(dy, dfinals[0], cache)
                return dx, [dh0], g
        return fwd, bwd

    def _forward_varlen(self, cell, x, h0, c0, w, out, reverse, training, lengths, zoneout=None):
        fwd, _ = self._cell_fns(cell, w)
        states = [h0, c0] if cell == LSTM else [h0]
        y, finals, caches = varlen_forward(fwd, x, states, lengths, reverse, zoneout)
        out["y"][...] = y
        out["h_n"][...] = finals[0]
        if cell == LSTM:
            out["c_n"][...] = finals[1]
        return dict(cell=cell, w=w, varlen=caches, T=x.shape[0], reverse=reverse) if training else None

    def _backward_varlen(self, cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads):
        cell = cache["cell"]
        _, bwd = self._cell_fns(cell, cache["w"])
        dfinals = [dh_n, dc_n] if cell == LSTM else [dh_n]
        dxs, dstates, g = varlen_backward(bwd, dy, dfinals, cache["varlen"], cache["T"], cache["reverse"])
        if dx is not None:
            if accumulate_dx:
                dx += dxs
            else:
                dx[...] = dxs
        dh0[...] = dstates[0]
        if cell == LSTM:
            dc0[...] = dstates[1]
        for k in ("W_ih", "W_hh", "b_ih", "b_hh", "W_hr"):
            if grads.get(k) is not None:
                grads[k] += g[k]


class MrnnReferenceEngine:
    """rnnfast.reference.mrnn_forward / mrnn_backward; a reverse direction runs on the time-flipped input."""

    name = "reference"

    def forward(self, cell, x, h0, c0, w, out, reverse, training, scratch=None):
        xs = x[::-1] if reverse else x
        y, h_n, cache = ref_mrnn.mrnn_forward(xs, h0, *(w[k] for k in ref_mrnn.MRNN_KEYS))
        out["y"][...] = y[::-1] if reverse else y
        out["h_n"][...] = h_n
        return dict(ref=cache, reverse=reverse) if training else None

    def backward(self, cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads, scratch=None):
        rev = cache["reverse"]
        dxs, dh0_, g = ref_mrnn.mrnn_backward(None if dy is None else (dy[::-1] if rev else dy), dh_n, cache["ref"])
        dxs = dxs[::-1] if rev else dxs
        if accumulate_dx:
            dx += dxs
        else:
            dx[...] = dxs
        dh0[...] = dh0_
        for k in ref_mrnn.MRNN_KEYS:
            if grads[k] is not None:
                grads[k] += g[k]
