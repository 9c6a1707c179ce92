"""rnnfast.MRNN: the factored multiplicative RNN of Sutskever, Martens & Hinton (2011).

    rnn = rnnfast.MRNN(input_size=86, hidden_size=512, factors=512)
    y, h_n = rnn(x)                                  # x: (T, N, C), or (N, T, C) with batch_first
    dx, dh0 = rnn.backward(dy, dh_n)
    rnn.grads["weight_fh_l0"]                        # accumulated until rnn.zero_grad()

Each input character gets its own transition matrix W_hf diag(W_fx x_t) W_fh, shared through F factors:

    f_x = W_fx x_t,  f_h = W_fh h_{t-1}              (F,)
    h_t = tanh(W_hf (f_x * f_h) + W_hx x_t + b)      (H,)

Parameters per layer l (and direction, suffix _reverse): weight_fx_l{l} (F, C_l), weight_fh_l{l} (F, H),
weight_hf_l{l} (H, F), weight_hx_l{l} (H, C_l), bias_l{l} (H,); C_l = input_size, or D*H above layer 0.
The layer machinery (stacking, directions, batch_first, unbatched input, learned initial state, checks)
is that of rnnfast.RNN (layers._RecurrentLayer); only the parameters and the engines differ.
"""

import numpy as np

from . import _checks, _core
from ._engines import _buffer
from .layers import _RecurrentLayer
from .reference import mrnn as ref

__all__ = ["MRNN"]


class MrnnCpuEngine:
    """The C++ engine (csrc/cpu/mrnn.cpp): one call per layer and direction, the GIL released inside.

    Same interface as _engines.CpuEngine (cell and c0/dc_n unused); weights w: W_fx, W_fh, W_hf, W_hx, b.
    """

    name = "cpu"

    def forward(self, cell, x, h0, c0, w, out, reverse, training, scratch=None):
        T, N, _ = x.shape
        F, H = w["W_fh"].shape
        dt = x.dtype
        h_prev = h = fx = fh = None
        if training:  # the cache: h_{t-1}, h_t (T, N, H); f_x, f_h (T, N, F)
            h_prev = _buffer(scratch, "h_prev", (T, N, H), dt)
            h = _buffer(scratch, "h", (T, N, H), dt)
            fx = _buffer(scratch, "fx", (T, N, F), dt)
            fh = _buffer(scratch, "fh", (T, N, F), dt)
        work = _buffer(scratch, "work", (_core.mrnn_workspace_size(T, N, H, F, training, False),), dt)
        _core.mrnn_forward(x, h0, w["W_fx"], w["W_fh"], w["W_hf"], w["W_hx"], w["b"], out["y"], out["h_n"],
                           h_prev, h, fx, fh, work, reverse, training)
        if not training:
            return None
        return dict(x=x, w=w, h_prev=h_prev, h=h, fx=fx, fh=fh, reverse=reverse)

    def backward(self, cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads, scratch=None):
        x, w = cache["x"], cache["w"]
        T, N, _ = x.shape
        F, H = w["W_fh"].shape
        work = _buffer(scratch, "work_backward", (_core.mrnn_workspace_size(T, N, H, F, True, True),), x.dtype)
        _core.mrnn_backward(x, w["W_fx"], w["W_fh"], w["W_hf"], w["W_hx"], cache["h_prev"], cache["h"],
                            cache["fx"], cache["fh"], dy, dh_n, dx, accumulate_dx, dh0, grads["W_fx"],
                            grads["W_fh"], grads["W_hf"], grads["W_hx"], grads["b"], work, cache["reverse"])


class MrnnReferenceEngine:
    """rnnfast.reference.mrnn_forward / mrnn_backward; a reverse direction runs on the time-flipped input."""

    name = "reference"

    def forward(self, cell, x, h0, c0, w, out, reverse, training, scratch=None):
        xs = x[::-1] if reverse else x
        y, h_n, cache = ref.mrnn_forward(xs, h0, *(w[k] for k in ref.MRNN_KEYS))
        out["y"][...] = y[::-1] if reverse else y
        out["h_n"][...] = h_n
        return dict(ref=cache, reverse=reverse) if training else None

    def backward(self, cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads, scratch=None):
        rev = cache["reverse"]
        dxs, dh0_, g = ref.mrnn_backward(None if dy is None else (dy[::-1] if rev else dy), dh_n, cache["ref"])
        dxs = dxs[::-1] if rev else dxs
        if accumulate_dx:
            dx += dxs
        else:
            dx[...] = dxs
        dh0[...] = dh0_
        for k in ref.MRNN_KEYS:
            if grads[k] is not None:
                grads[k] += g[k]


ENGINES = {"cpu": MrnnCpuEngine(), "reference": MrnnReferenceEngine()}


class MRNN(_RecurrentLayer):
    """Factored multiplicative RNN layer(s), the conventions of rnnfast.RNN plus `factors` (F >= 1).

    Initialisation: each matrix uniform in +-1/sqrt(fan-in) (W_fx, W_hx: C; W_fh: H; W_hf: F), the bias
    in +-1/sqrt(H) as the other layers.
    """

    _engines = ENGINES
    _cuda_engine = "MRNN_ENGINE"
    _cpu_takes_indices = False    # integer input becomes the one-hot matrix
    _weight_keys = (("weight_fx", "W_fx"), ("weight_fh", "W_fh"), ("weight_hf", "W_hf"), ("weight_hx", "W_hx"),
                    ("bias", "b"))

    def __init__(self, input_size, hidden_size, factors, num_layers=1, bias=True, batch_first=False,
                 bidirectional=False, dtype="float32", **kwargs):
        self.factors = _checks.positive_int(factors, "factors")
        super().__init__("mrnn", input_size, hidden_size, num_layers, bias, batch_first, bidirectional, dtype,
                         **kwargs)

    def _param_specs(self, in_size):
        F, H = self.factors, self.hidden_size
        specs = {"weight_fx": ((F, in_size), in_size), "weight_fh": ((F, H), H), "weight_hf": ((H, F), F),
                 "weight_hx": ((H, in_size), in_size)}
        if self.bias:
            specs["bias"] = ((H,), H)
        return {base: (shape, 1.0 / np.sqrt(fan_in)) for base, (shape, fan_in) in specs.items()}

    def __repr__(self):
        r = super().__repr__()
        head = f"{type(self).__name__}({self.input_size}, {self.hidden_size}"
        return f"{head}, factors={self.factors}" + r[len(head):]
