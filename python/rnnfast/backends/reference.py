"""The NumPy reference (rnnfast.reference) behind the engine interface: readable, slow, the oracle of the
tests. The reference runs forward in time; a reverse direction runs on the time-flipped sequence."""

from .. import reference
from ..reference import mrnn as ref_mrnn
from .cells import GRU, GRU_CHO, LSTM, RNN_RELU


class ReferenceEngine:
    """The NumPy reference (rnnfast.reference): readable, slow, the oracle of the tests.

    The reference runs forward in time; a reverse direction is run on the time-flipped sequence.
    """

    name = "reference"

    def forward(self, cell, x, h0, c0, w, out, reverse, training, scratch=None):
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
