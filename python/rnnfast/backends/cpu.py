"""The C++ CPU engine (csrc/cpu) behind the engine interface: one call per layer and direction, the GIL
released inside.

An engine runs one layer in one direction over a whole sequence:
  forward(cell, x, h0, c0, weights, out, reverse, training, scratch) -> cache (or None when not training)
  backward(cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads, scratch)
`out` holds the preallocated outputs: y (a [T,N,H] view, possibly a column slice of [T,N,2H]), h_n, c_n.
`grads` holds the arrays that parameter gradients are added to (W_ih, W_hh, b_ih, b_hh; the MRNN's
W_fx, W_fh, W_hf, W_hx, b). `scratch` is the call's dict of reused buffers (rnnfast.backends.buffers).
"""

import numpy as np

from .. import _core
from .buffers import buffer as _buffer
from .cells import GATES, LSTM


class CpuEngine:
    """The C++ engine (csrc/cpu): one call per layer and direction, the GIL released inside."""

    name = "cpu"

    def forward(self, cell, x, h0, c0, w, out, reverse, training, scratch=None):
        """x: [T,N,C] float, or int32 [T,N] one-hot indices (rnnfast/recurrent.h's x_index)."""
        T, N = x.shape[:2]
        H = w["W_hh"].shape[1]
        G = GATES[cell]
        dt = w["W_hh"].dtype
        cache = None
        h_prev = c_prev = gates = extra = None
        if training:
            h_prev = _buffer(scratch, "h_prev", (T, N, H), dt)
            c_prev = _buffer(scratch, "c_prev", (T, N, H), dt) if cell == LSTM else None
            gates = _buffer(scratch, "gates", (T, N, G * H), dt)
            extra = _buffer(scratch, "extra", (T, N, H), dt) if G == 3 else None
        work = _buffer(scratch, "work", (_core.recurrent_workspace_size(cell, T, N, H, False),), dt)
        run = _core.recurrent_forward_onehot if x.dtype == np.int32 else _core.recurrent_forward
        run(cell, x, h0, c0, w["W_ih"], w["W_hh"], w["b_ih"], w["b_hh"], out["y"], out["h_n"], out.get("c_n"),
            h_prev, c_prev, gates, extra, work, reverse, training)
        if training:
            cache = dict(cell=cell, x=x, w=w, h_prev=h_prev, c_prev=c_prev, gates=gates, extra=extra,
                         reverse=reverse)
        return cache

    def backward(self, cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads, scratch=None):
        """After an index forward, dx must be None (nothing is computed for it)."""
        x, w, cell = cache["x"], cache["w"], cache["cell"]
        T, N = x.shape[:2]
        H = w["W_hh"].shape[1]
        work = _buffer(scratch, "work_backward", (_core.recurrent_workspace_size(cell, T, N, H, True),),
                       w["W_hh"].dtype)
        if x.dtype == np.int32:
            _core.recurrent_backward_onehot(cell, x, w["W_ih"], w["W_hh"], cache["h_prev"], cache["c_prev"],
                                            cache["gates"], cache["extra"], dy, dh_n, dc_n, dh0, dc0,
                                            grads["W_ih"], grads["W_hh"], grads["b_ih"], grads["b_hh"], work,
                                            cache["reverse"])
            return
        _core.recurrent_backward(cell, x, w["W_ih"], w["W_hh"], cache["h_prev"], cache["c_prev"],
                                 cache["gates"], cache["extra"], dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0,
                                 grads["W_ih"], grads["W_hh"], grads["b_ih"], grads["b_hh"], work,
                                 cache["reverse"])


class MrnnCpuEngine:
    """The C++ engine (csrc/cpu/mrnn.cpp): one call per layer and direction, the GIL released inside.

    Same interface as CpuEngine (cell and c0/dc_n unused); weights w: W_fx, W_fh, W_hf, W_hx, b.
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
