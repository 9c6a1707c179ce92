"""The engines a recurrent layer can run on, behind one small interface.

An engine runs one layer in one direction over a whole sequence:
  forward(cell, x, h0, c0, weights, out, reverse, training) -> cache (or None when not training)
  backward(cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads)
`out` holds the preallocated outputs: y (a [T,N,H] view, possibly a column slice of [T,N,2H]), h_n, c_n.
`grads` holds the arrays W_ih, W_hh, b_ih, b_hh that parameter gradients are added to.

Cells are named by the codes the compiled module exports (defined once, in csrc/include/rnnfast/common.h).
"""

import threading

import numpy as np

from . import _core, reference

RNN_TANH, RNN_RELU, LSTM, GRU, GRU_CHO = (_core.CELL_CODES[c] for c in ("rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho"))
GATES = dict(_core.CELL_GATES)


def _buffer(scratch, key, shape, dtype, xp=np):
    """An array of this shape and dtype, reused from `scratch` (a dict the layer keeps) when it fits.

    Caches and workspaces are several MB per call; fresh ones cost a page fault per 4 KiB on first touch
    (measured: an LSTM forward in training mode at T=64, N=32, H=256 took 9.5 ms instead of 4.4). Only the
    internal arrays are reused: what a call returns to the user is always new. xp: numpy, or cupy for the
    CUDA engine. A scratch dict belongs to one call at a time (a forward, and in training mode its
    backward): the layers take it from a BufferPool and give it back when the call is done.
    """
    if scratch is None:
        return xp.empty(shape, dtype)
    a = scratch.get(key)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = scratch[key] = xp.empty(shape, dtype)
    return a


class BufferPool:
    """The scratch dicts of one layer: one per call in flight, reused by the calls that follow.

    A call takes a dict (the last one given back: a lone thread always gets the same buffers, so its calls
    cost what they cost with one dict) and gives it back when it is done: an eval-mode forward at its end,
    a training forward when its backward is done (or when the same thread's next forward replaces it).
    Calls made at the same time from several threads each get their own dict; measured, this keeps one
    thread's speed and lets 4 threads that share a layer run their calls side by side (RESULTS.md).

    `key` separates the dicts by where their last use is ordered: None on the CPU, the CUDA stream on the
    GPU (a dict whose kernels may still be running on one stream is never handed to a call on another).
    At most `keep` dicts per key are kept; a call beyond that allocates its own and drops it afterwards.

    No lock: dict.setdefault, list.pop and list.append are atomic (under the GIL, and each list's own lock
    in free-threaded CPython), which is all take and give need; the cap is approximate under contention.
    """

    def __init__(self, keep=8):
        self._free = {}
        self._keep = keep
        # the CPU's first dict, claimed by a non-blocking lock: the lone thread's fast path (a lock round trip
        # instead of the list's, ~0.3 us less per call; the smallest calls take ~35 us)
        self._home = {}
        self._home_taken = threading.Lock()

    def take(self, key=None):
        if key is None and self._home_taken.acquire(False):
            return self._home
        try:
            return self._free[key].pop()
        except (KeyError, IndexError):
            return {}

    def give(self, scratch, key=None):
        if scratch is self._home:
            self._home_taken.release()
            return
        free = self._free.get(key)
        if free is None:
            free = self._free.setdefault(key, [])
        if len(free) < self._keep:
            free.append(scratch)

    def __len__(self):
        """Dicts kept now and free to take (over all keys)."""
        return sum(len(v) for v in list(self._free.values())) + (not self._home_taken.locked())


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


ENGINES = {"cpu": CpuEngine(), "reference": ReferenceEngine()}
