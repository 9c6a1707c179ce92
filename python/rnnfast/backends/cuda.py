"""The CUDA engine: CuPy arrays in, the fused per-step kernels of csrc/cuda/recurrent.cu in the loop.

CuPy (cuBLAS) computes the large GEMMs outside the time loop: the input projections of all steps before
it, and dx, dW_ih, dW_hh and the bias gradients after backward. The kernels run on CuPy's current stream;
nothing here synchronises the device or the host, so a forward + backward can be captured in a CUDA
graph. Every array is allocated with CuPy (its memory pool); the C++ side only computes.

A layer reuses its internal buffers (projections, cache, workspace) from one call to the next. Each call
takes a set of its own from the layer's pool (rnnfast.backends.buffers.BufferPool), keyed by the stream it runs on
(`stream_key`): a set is handed only to a later call on the same stream, so the stream orders its reuse
after the kernels of the call before, with no host synchronisation. Threads may share a layer, on one
stream or on several.

Errors: every launch is checked for its own (configuration) errors. A kernel's execution error (an illegal
address, say) is reported by the next call that synchronises, which may be a CuPy call that knows nothing of
the kernel; RNNFAST_CUDA_SYNC=1 in the environment (or rnnfast._core.cuda_set_sync_checks(True)) makes every
launch wait for its kernel, so the error names the kernel, cell, pass, direction and step. For debugging:
it costs a host round trip per launch.

Imported only when a layer is put on device='cuda' (CuPy is an optional dependency: rnnfast[cuda]).
"""

import threading

import numpy as np

from .. import _core
from .._util.checks import check_dtype_shape
from .buffers import buffer as _buffer
from .cells import GATES, GRU, GRU_CHO, LSTM
from .devices import cupy

_PER_THREAD_STREAM = 2  # cudaStreamPerThread: one handle, a different stream in every host thread


def stream_key():
    """The current CUDA stream, as a key of the layers' buffer pools: its handle, and with the per-thread
    default stream (whose handle is the same in every thread) the thread too."""
    ptr = cupy().cuda.get_current_stream().ptr
    return (ptr, threading.get_ident()) if ptr == _PER_THREAD_STREAM else ptr


class GradsOrder:
    """Orders on the device the additions into one module's grads made from several streams.

    Called under the module's grads lock before each backward enqueues its additions: when the stream
    differs from the last one that added, the new stream waits (cudaStreamWaitEvent, no host sync) for an
    event recorded now on the last one, so the additions run one after another on the device as they were
    enqueued. While one stream is used (a training loop; graph capture) it does nothing.
    """

    def __init__(self):
        self.last = None

    def __call__(self):
        cp = cupy()
        stream = cp.cuda.get_current_stream()
        if self.last is not None and self.last.ptr != stream.ptr:
            event = cp.cuda.Event(disable_timing=True)
            event.record(self.last)
            stream.wait_event(event)
        self.last = stream


def as_cupy(a, name):
    """A CuPy view of `a` (CuPy array, __cuda_array_interface__ or a CUDA __dlpack__ object), zero-copy.

    NumPy arrays (and other host objects) are refused: mixing host and device arrays is an error, not a
    silent copy.
    """
    cp = cupy()
    if isinstance(a, cp.ndarray):
        return a
    if isinstance(a, np.ndarray):
        raise TypeError(f"{name} is a numpy.ndarray but the layer is on device='cuda': pass a CuPy array "
                        "(cupy.asarray(...)) or move the layer with .to('cpu')")
    if hasattr(a, "__cuda_array_interface__"):
        return cp.asarray(a)
    if hasattr(a, "__dlpack__") and hasattr(a, "__dlpack_device__"):
        device_type = a.__dlpack_device__()[0]
        if int(device_type) == 2:  # kDLCUDA
            return cp.from_dlpack(a)
        raise TypeError(f"{name} lives on the host (DLPack device type {int(device_type)}) but the layer is on "
                        "device='cuda'")
    raise TypeError(f"{name} must be a CuPy array (or expose __cuda_array_interface__ / __dlpack__), got "
                    f"{type(a).__name__}")


def check_array(a, name, dtype, shape):
    """A C-contiguous CuPy array of exactly this dtype and shape on the current device: rnnfast._util.checks
    for CuPy, plus what only the GPU has (arrays that expose their memory, the current device)."""
    cp = cupy()
    a = as_cupy(a, name)
    check_dtype_shape(a, name, dtype, shape)
    current = cp.cuda.Device().id
    device = getattr(getattr(a, "device", None), "id", current)
    if device != current:
        raise ValueError(f"{name} is on CUDA device {device} but the current device is {current}")
    return cp.ascontiguousarray(a)


def _ptr(a):
    """The device address of a's first element (0 for None); host arrays only in the CPU emulation of the
    kernels that tests/engines/test_cuda_emulation.py runs."""
    if a is None:
        return 0
    if isinstance(a, np.ndarray):
        return int(a.__array_interface__["data"][0])
    return int(a.data.ptr)


def _row_stride(a, name):
    """Elements between the rows of a [T,N,W] view (e.g. a column slice of [T,N,2H]), checked.

    The kernels address row n of step t at t*N*ld + n*ld: with N == 1 the row stride comes from the time
    axis (CuPy gives new or size-1 axes arbitrary strides), as the CPU bindings do.
    """
    T, N, W = a.shape
    item = a.dtype.itemsize
    st = a.strides
    row = st[1] if N > 1 else (st[0] if T > 1 else W * item)
    if (W > 1 and st[2] != item) or row % item or row // item < W or (T > 1 and st[0] != N * row):
        raise ValueError(f"{name} must be a [T,N,W] array with unit column stride and evenly spaced rows, "
                         f"got strides {st}")
    return row // item


class CudaEngine:
    """The engine interface of rnnfast.backends (forward, backward) on CuPy arrays."""

    name = "cuda"

    def forward(self, cell, x, h0, c0, w, out, reverse, training, scratch=None, lengths=None, zoneout=None):
        """lengths: host int32 (N,) or None; zoneout: a [T,N,H] CuPy mask, eval's p, or None."""
        cp = cupy()
        T, N, C = x.shape
        H = w["W_hh"].shape[1]
        G = GATES[cell]
        dt = x.dtype
        # input projections of all steps: one GEMM (cuBLAS)
        xp = _buffer(scratch, "xp", (T, N, G * H), dt, cp)
        cp.matmul(x.reshape(T * N, C), w["W_ih"].T, out=xp.reshape(T * N, G * H))
        if w["b_ih"] is not None:
            xp += w["b_ih"]
        w_hh_t = _buffer(scratch, "w_hh_t", (H, G * H), dt, cp)
        w_hh_t[...] = w["W_hh"].T
        h_prev = c_prev = gates = extra = None
        if training:
            h_prev = _buffer(scratch, "h_prev", (T, N, H), dt, cp)
            c_prev = _buffer(scratch, "c_prev", (T, N, H), dt, cp) if cell == LSTM else None
            gates = _buffer(scratch, "gates", (T, N, G * H), dt, cp)
            extra = _buffer(scratch, "extra", (T, N, H), dt, cp) if G == 3 else None
        work = _buffer(scratch, "work", (_core.cuda_workspace_size(cell, N, H, False),), dt, cp)
        y = out["y"]
        # the device copy of lengths (and the mask) kept in the scratch dict and the cache while the kernels
        # may still read them
        lengths_dev = None
        if lengths is not None:
            lengths_dev = _buffer(scratch, "lengths", (N,), np.dtype(np.int32), cp)
            lengths_dev[...] = cp.asarray(lengths)
        mask = None if zoneout is None or isinstance(zoneout, float) else zoneout
        if scratch is not None:
            scratch["zoneout_mask"] = mask
        _core.cuda_recurrent_forward(
            dt.name, cell, T, N, H, bool(reverse), bool(training), _ptr(xp), _ptr(w_hh_t), _ptr(w["b_hh"]),
            _ptr(h0), _ptr(c0), _ptr(y), _row_stride(y, "y"), _ptr(out["h_n"]), _ptr(out.get("c_n")),
            _ptr(h_prev), _ptr(c_prev), _ptr(gates), _ptr(extra), _ptr(work), cp.cuda.get_current_stream().ptr,
            _ptr(lengths_dev), _ptr(mask), zoneout if isinstance(zoneout, float) else 0.0)
        if not training:
            return None
        return dict(cell=cell, x=x, w=w, h_prev=h_prev, c_prev=c_prev, gates=gates, extra=extra, reverse=reverse,
                    lengths=lengths_dev, zoneout=mask)

    def backward(self, cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads, scratch=None):
        cp = cupy()
        x, w, cell = cache["x"], cache["w"], cache["cell"]
        T, N, C = x.shape
        H = w["W_hh"].shape[1]
        G = GATES[cell]
        GH, dt = G * H, x.dtype
        dG = _buffer(scratch, "dG", (T, N, GH), dt, cp)
        dGh = _buffer(scratch, "dGh", (T, N, GH), dt, cp) if cell == GRU else dG
        work = _buffer(scratch, "work_backward", (_core.cuda_workspace_size(cell, N, H, True),), dt, cp)
        _core.cuda_recurrent_backward(
            dt.name, cell, T, N, H, bool(cache["reverse"]), _ptr(w["W_hh"]), _ptr(cache["h_prev"]),
            _ptr(cache["c_prev"]), _ptr(cache["gates"]), _ptr(cache["extra"]), _ptr(dy),
            0 if dy is None else _row_stride(dy, "dy"), _ptr(dh_n), _ptr(dc_n), _ptr(dG), _ptr(dGh), _ptr(dh0),
            _ptr(dc0), _ptr(work), cp.cuda.get_current_stream().ptr, _ptr(cache.get("lengths")),
            _ptr(cache.get("zoneout")))
        # the large GEMMs over all steps (cuBLAS; a variable-length batch's rows past their end have zero dG)
        dG2 = dG.reshape(T * N, GH)
        dGh2 = dGh.reshape(T * N, GH)
        x2 = x.reshape(T * N, C)
        if not dx.flags.c_contiguous:
            raise ValueError("dx must be C-contiguous for the CUDA engine")
        dx2 = dx.reshape(T * N, C)
        if accumulate_dx:
            dx2 += dG2 @ w["W_ih"]
        else:
            cp.matmul(dG2, w["W_ih"], out=dx2)
        grads["W_ih"] += dG2.T @ x2
        h_prev2 = cache["h_prev"].reshape(T * N, H)
        if cell == GRU_CHO:  # the n rows of W_hh act on r*h (saved as extra)
            grads["W_hh"][:2 * H] += dG2[:, :2 * H].T @ h_prev2
            grads["W_hh"][2 * H:] += dG2[:, 2 * H:].T @ cache["extra"].reshape(T * N, H)
        else:
            grads["W_hh"] += dGh2.T @ h_prev2
        if grads["b_ih"] is not None:
            grads["b_ih"] += dG2.sum(axis=0)
        if grads["b_hh"] is not None:
            grads["b_hh"] += dGh2.sum(axis=0)



def reservoir_run(u3, w, indptr, indices, values, w_in, bias, sr_scale, in_scale, leak, x0):
    """The reservoir engine on the GPU, with the arguments of rnnfast._core.reservoir_run (host or device
    arrays, already validated by rnnfast.esn.ESN): returns (states (T, P, B, N), x_last (P, B, N)) as CuPy arrays,
    x_last a view of the last step's states.
    """
    cp = cupy()
    u3 = cp.asarray(u3)
    dt = u3.dtype
    T, B, I = u3.shape
    N = w_in.shape[0]
    P = len(sr_scale)

    def dev(a, dtype=dt):
        return None if a is None else cp.ascontiguousarray(cp.asarray(a, dtype=dtype))

    w_in_d = dev(w_in)
    uproj = (u3.reshape(T * B, I) @ w_in_d.T).reshape(T, B, N)  # one GEMM for all steps (cuBLAS)
    w_d, ip_d, ix_d, v_d = dev(w), dev(indptr, np.int32), dev(indices, np.int32), dev(values)
    sr_d, in_d, leak_d, bias_d = dev(sr_scale), dev(in_scale), dev(leak), dev(bias)
    x0_d = dev(x0)  # (P, B, N), as the CPU engine takes it
    states = cp.empty((T, P, B, N), dt)
    _core.cuda_reservoir_run(dt.name, T, B, N, P, _ptr(w_d), _ptr(ip_d), _ptr(ix_d), _ptr(v_d), _ptr(uproj),
                             _ptr(bias_d), _ptr(sr_d), _ptr(in_d), _ptr(leak_d), _ptr(x0_d), _ptr(states),
                             cp.cuda.get_current_stream().ptr)
    return states, states[T - 1]


class MrnnCudaEngine:
    """The multiplicative RNN on the GPU (csrc/cuda/mrnn.cu), with the engine interface."""

    name = "cuda"

    def forward(self, cell, x, h0, c0, w, out, reverse, training, scratch=None):
        cp = cupy()
        T, N, C = x.shape
        F, H = w["W_fh"].shape
        dt = x.dtype
        x2 = x.reshape(T * N, C)
        fx = _buffer(scratch, "fx", (T, N, F), dt, cp)  # f_x of all steps (kept for backward)
        cp.matmul(x2, w["W_fx"].T, out=fx.reshape(T * N, F))
        xh = _buffer(scratch, "xh", (T, N, H), dt, cp)
        cp.matmul(x2, w["W_hx"].T, out=xh.reshape(T * N, H))
        if w["b"] is not None:
            xh += w["b"]
        w_fh_t = _buffer(scratch, "w_fh_t", (H, F), dt, cp)
        w_fh_t[...] = w["W_fh"].T
        w_hf_t = _buffer(scratch, "w_hf_t", (F, H), dt, cp)
        w_hf_t[...] = w["W_hf"].T
        h_prev = h = fh = None
        if training:
            h_prev = _buffer(scratch, "h_prev", (T, N, H), dt, cp)
            h = _buffer(scratch, "h", (T, N, H), dt, cp)
            fh = _buffer(scratch, "fh", (T, N, F), dt, cp)
        work = _buffer(scratch, "work", (_core.cuda_mrnn_workspace_size(N, H, F, False),), dt, cp)
        y = out["y"]
        _core.cuda_mrnn_forward(dt.name, T, N, H, F, bool(reverse), bool(training), _ptr(fx), _ptr(xh),
                                _ptr(w_fh_t), _ptr(w_hf_t), _ptr(h0), _ptr(y), _row_stride(y, "y"),
                                _ptr(out["h_n"]), _ptr(h_prev), _ptr(h), _ptr(fh), _ptr(work),
                                cp.cuda.get_current_stream().ptr)
        if not training:
            return None
        return dict(x=x, w=w, h_prev=h_prev, h=h, fx=fx, fh=fh, reverse=reverse)

    def backward(self, cache, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0, grads, scratch=None):
        cp = cupy()
        x, w = cache["x"], cache["w"]
        T, N, C = x.shape
        F, H = w["W_fh"].shape
        dt = x.dtype
        dA = _buffer(scratch, "dA", (T, N, H), dt, cp)
        dFX = _buffer(scratch, "dFX", (T, N, F), dt, cp)
        dFH = _buffer(scratch, "dFH", (T, N, F), dt, cp)
        work = _buffer(scratch, "work_backward", (_core.cuda_mrnn_workspace_size(N, H, F, True),), dt, cp)
        _core.cuda_mrnn_backward(dt.name, T, N, H, F, bool(cache["reverse"]), _ptr(w["W_fh"]), _ptr(w["W_hf"]),
                                 _ptr(cache["h"]), _ptr(cache["fx"]), _ptr(cache["fh"]), _ptr(dy),
                                 0 if dy is None else _row_stride(dy, "dy"), _ptr(dh_n), _ptr(dA), _ptr(dFX),
                                 _ptr(dFH), _ptr(dh0), _ptr(work), cp.cuda.get_current_stream().ptr)
        # the large GEMMs over all steps (cuBLAS); m = f_x * f_h is recomputed rather than stored
        dA2, dFX2, dFH2 = dA.reshape(T * N, H), dFX.reshape(T * N, F), dFH.reshape(T * N, F)
        x2 = x.reshape(T * N, C)
        m2 = (cache["fx"] * cache["fh"]).reshape(T * N, F)
        grads["W_hf"] += dA2.T @ m2
        grads["W_hx"] += dA2.T @ x2
        grads["W_fx"] += dFX2.T @ x2
        grads["W_fh"] += dFH2.T @ cache["h_prev"].reshape(T * N, H)
        if grads["b"] is not None:
            grads["b"] += dA2.sum(axis=0)
        dx_new = dA2 @ w["W_hx"] + dFX2 @ w["W_fx"]
        if not dx.flags.c_contiguous:
            raise ValueError("dx must be C-contiguous for the CUDA engine")
        dx2 = dx.reshape(T * N, C)
        if accumulate_dx:
            dx2 += dx_new
        else:
            dx2[...] = dx_new

