"""rnnfast's recurrent engines as torch custom operators (torch.library), with autograd and fake tensors.

One operator call runs one layer (both directions when bidirectional) over a whole sequence:

  rnnfast::recurrent_layer(x [T,N,C], h0 [D,N,H]?, c0 [D,N,H]?, weights, cell, bidirectional, training,
                           lengths [N]?, zoneout [D,T,N,H]?, zoneout_p)
      -> y [T,N,D*H], h_n [D,N,H], c_n [D,N,H] (LSTM; else empty), and what backward reads (empty when
         not training): h_prev [D,T,N,H], c_prev [D,T,N,H] (LSTM), gates [D,T,N,G*H], extra [D,T,N,H] (GRU)
  rnnfast::recurrent_layer_backward(x, weights, h_prev, c_prev, gates, extra, dy, dh_n, dc_n, cell,
                                    bidirectional, lengths?, zoneout?) -> dx, dh0, dc0, dweights

lengths: int32 on the CPU, a variable-length batch (row n runs its steps t < lengths[n]; y and dx are zero
past its end; rnnfast/recurrent.h). zoneout: the training mask (1: the unit takes its new value), per
direction; zoneout_p: eval's zoneout probability (the expectation), with no mask.

`weights` lists, per direction, W_ih [G*H,C], W_hh [G*H,H] and with bias b_ih [G*H], b_hh [G*H] (torch's
parameter order). Being operators with fake (meta) implementations, they are opaque nodes to
torch.compile: `torch.compile(model, fullgraph=True)` traces a model through them without a graph break,
and inductor compiles what surrounds them.

Memory: outputs and saved tensors are allocated by torch (its allocator, its device); on the CPU the engine
reads and writes them in place through `Tensor.numpy()` views (no copies: a contiguous input is seen as an
array), and only its workspace is rnnfast's, reused per thread. On CUDA the tensors go to the CUDA engine
through DLPack (CuPy views) and it runs on torch's current stream.
"""

import threading

import numpy as np
import torch
from torch import Tensor

from . import _engine as E

_local = threading.local()


def _work(n, dtype):
    """A workspace of n elements, reused by this thread's calls (a fresh one costs page faults)."""
    cache = getattr(_local, "work", None)
    if cache is None:
        cache = _local.work = {}
    a = cache.get(dtype)
    if a is None or a.size < n:
        a = cache[dtype] = np.empty(n, dtype)
    return a[:n]


def _np(t):
    """The tensor's memory as a NumPy array (a view: no copy), or None for None or an empty placeholder."""
    if t is None or t.numel() == 0:
        return None
    return t.detach().numpy()


def _split(weights, D):
    """Per direction: (W_ih, W_hh, b_ih or None, b_hh or None)."""
    per = len(weights) // D
    out = []
    for d in range(D):
        w = weights[d * per:(d + 1) * per]
        out.append((w[0], w[1], w[2] if per == 4 else None, w[3] if per == 4 else None))
    return out


def _forward_shapes(x, weights, cell, bidirectional, training):
    T, N, _ = x.shape
    D = 2 if bidirectional else 1
    H = weights[1].shape[1]
    G = E.GATES[cell]
    lstm, gru = cell == E.LSTM, G == 3
    empty = (0,)
    return [(T, N, D * H), (D, N, H), (D, N, H) if lstm else empty,
            (D, T, N, H) if training else empty,
            (D, T, N, H) if training and lstm else empty,
            (D, T, N, G * H) if training else empty,
            (D, T, N, H) if training and gru else empty]


@torch.library.custom_op("rnnfast::recurrent_layer", mutates_args=())
def recurrent_layer(x: Tensor, h0: Tensor | None, c0: Tensor | None, weights: list[Tensor], cell: int,
                    bidirectional: bool, training: bool, lengths: Tensor | None = None,
                    zoneout: Tensor | None = None, zoneout_p: float = 0.0
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    outs = [torch.empty(s, dtype=x.dtype, device=x.device)
            for s in _forward_shapes(x, weights, cell, bidirectional, training)]
    x = x.contiguous()
    h0 = None if h0 is None else h0.contiguous()
    c0 = None if c0 is None else c0.contiguous()
    lengths = None if lengths is None else lengths.contiguous()
    zoneout = None if zoneout is None else zoneout.contiguous()
    if x.device.type == "cuda":
        _cuda_forward(x, h0, c0, weights, cell, bidirectional, training, outs, lengths, zoneout, zoneout_p)
    else:
        _cpu_forward(x, h0, c0, weights, cell, bidirectional, training, outs, lengths, zoneout, zoneout_p)
    return tuple(outs)


@recurrent_layer.register_fake
def _(x, h0, c0, weights, cell, bidirectional, training, lengths=None, zoneout=None, zoneout_p=0.0):
    return tuple(x.new_empty(s) for s in _forward_shapes(x, weights, cell, bidirectional, training))


def _cpu_forward(x, h0, c0, weights, cell, bidirectional, training, outs, lengths=None, zoneout=None, zoneout_p=0.0):
    D = 2 if bidirectional else 1
    T, N, _ = x.shape
    H = weights[1].shape[1]
    y, h_n, c_n, h_prev, c_prev, gates, extra = (_np(t) for t in outs)
    xa, h0a, c0a, za = _np(x), _np(h0), _np(c0), _np(zoneout)
    la = None if lengths is None else lengths.numpy()
    dt = xa.dtype
    work = _work(E._core.recurrent_workspace_size(cell, T, N, H, False), dt)
    for d, (w_ih, w_hh, b_ih, b_hh) in enumerate(_split(weights, D)):
        def at(a, d=d):
            return None if a is None else a[d]
        E._core.recurrent_forward(cell, xa, at(h0a), at(c0a), _np(w_ih), _np(w_hh), _np(b_ih), _np(b_hh),
                                  y[:, :, d * H:(d + 1) * H], h_n[d], at(c_n), at(h_prev), at(c_prev), at(gates),
                                  at(extra), work, bool(d), training, la, at(za), zoneout_p)


@torch.library.custom_op("rnnfast::recurrent_layer_backward", mutates_args=())
def recurrent_layer_backward(x: Tensor, weights: list[Tensor], h_prev: Tensor, c_prev: Tensor, gates: Tensor,
                             extra: Tensor, dy: Tensor, dh_n: Tensor, dc_n: Tensor, cell: int,
                             bidirectional: bool, lengths: Tensor | None = None,
                             zoneout: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
    dx, dh0, dc0, dweights = _backward_outputs(x, weights, cell, bidirectional, torch.empty, torch.zeros)
    args = (x.contiguous(), weights, h_prev, c_prev, gates, extra, dy.contiguous(), dh_n.contiguous(),
            dc_n.contiguous(), cell, bidirectional, dx, dh0, dc0, dweights,
            None if lengths is None else lengths.contiguous(), None if zoneout is None else zoneout.contiguous())
    if x.device.type == "cuda":
        _cuda_backward(*args)
    else:
        _cpu_backward(*args)
    return dx, dh0, dc0, dweights


def _backward_outputs(x, weights, cell, bidirectional, empty, zeros):
    T, N, C = x.shape
    D = 2 if bidirectional else 1
    H = weights[1].shape[1]
    kw = dict(dtype=x.dtype, device=x.device)
    # parameter gradients are added to by the engine: they start at zero
    return (empty((T, N, C), **kw), empty((D, N, H), **kw), empty((D, N, H) if cell == E.LSTM else (0,), **kw),
            [zeros(w.shape, **kw) for w in weights])


@recurrent_layer_backward.register_fake
def _(x, weights, h_prev, c_prev, gates, extra, dy, dh_n, dc_n, cell, bidirectional, lengths=None, zoneout=None):
    def new(shape, dtype, device):
        return x.new_empty(shape)
    return _backward_outputs(x, weights, cell, bidirectional, new, new)


def _cpu_backward(x, weights, h_prev, c_prev, gates, extra, dy, dh_n, dc_n, cell, bidirectional,
                  dx, dh0, dc0, dweights, lengths=None, zoneout=None):
    D = 2 if bidirectional else 1
    T, N, _ = x.shape
    H = weights[1].shape[1]
    xa, dya, dxa = _np(x), _np(dy), _np(dx)
    h_prev, c_prev, gates, extra, dh_n, dc_n, dh0, dc0 = (
        _np(t) for t in (h_prev, c_prev, gates, extra, dh_n, dc_n, dh0, dc0))
    work = _work(E._core.recurrent_workspace_size(cell, T, N, H, True), xa.dtype)
    la = None if lengths is None else lengths.numpy()
    za = _np(zoneout)
    grads = _split(dweights, D)
    for d, (w_ih, w_hh, _, _) in enumerate(_split(weights, D)):
        def at(a, d=d):
            return None if a is None else a[d]
        g_ih, g_hh, g_bi, g_bh = grads[d]
        E._core.recurrent_backward(cell, xa, _np(w_ih), _np(w_hh), h_prev[d], at(c_prev), gates[d], at(extra),
                                   None if dya is None else dya[:, :, d * H:(d + 1) * H], at(dh_n), at(dc_n),
                                   dxa, d > 0, dh0[d], at(dc0), _np(g_ih), _np(g_hh), _np(g_bi), _np(g_bh),
                                   work, bool(d), la, at(za))


# ---- CUDA: DLPack views for rnnfast's CUDA engine, on torch's current stream ---------------------------
def _cuda_stream(cp, device):
    return cp.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream)


def _cuda_forward(x, h0, c0, weights, cell, bidirectional, training, outs, lengths=None, zoneout=None, zoneout_p=0.0):
    cp, engine = E.cuda_engine()
    D = 2 if bidirectional else 1
    H = weights[1].shape[1]
    with cp.cuda.Device(x.device.index), _cuda_stream(cp, x.device):
        v = [None if t is None or t.numel() == 0 else cp.from_dlpack(t.detach()) for t in outs]
        y, h_n, c_n, h_prev, c_prev, gates, extra = v
        xc = cp.from_dlpack(x.detach())
        h0c = None if h0 is None else cp.from_dlpack(h0.detach())
        c0c = None if c0 is None else cp.from_dlpack(c0.detach())
        la = None if lengths is None else lengths.numpy()
        zc = None if zoneout is None else cp.from_dlpack(zoneout.detach())
        for d, ws in enumerate(_split(weights, D)):
            w = dict(zip(("W_ih", "W_hh", "b_ih", "b_hh"),
                         (None if t is None else cp.from_dlpack(t.detach()) for t in ws)))
            out = {"y": y[:, :, d * H:(d + 1) * H], "h_n": h_n[d]}
            if c_n is not None:
                out["c_n"] = c_n[d]
            # the engine takes its caches from the scratch dict when they are there with the right shape:
            # handing it views of torch's outputs makes it write them in place
            scratch = {k: a[d] for k, a in (("h_prev", h_prev), ("c_prev", c_prev), ("gates", gates),
                                            ("extra", extra)) if a is not None}
            zo = zc[d] if zc is not None else (float(zoneout_p) if zoneout_p else None)
            engine.forward(cell, xc, None if h0c is None else h0c[d], None if c0c is None else c0c[d], w, out,
                           bool(d), training, scratch, lengths=la, zoneout=zo)


def _cuda_backward(x, weights, h_prev, c_prev, gates, extra, dy, dh_n, dc_n, cell, bidirectional,
                   dx, dh0, dc0, dweights, lengths=None, zoneout=None):
    cp, engine = E.cuda_engine()
    D = 2 if bidirectional else 1
    H = weights[1].shape[1]

    def view(t):
        return None if t is None or t.numel() == 0 else cp.from_dlpack(t.detach())

    with cp.cuda.Device(x.device.index), _cuda_stream(cp, x.device):
        xc, dyc, dxc = view(x), view(dy), view(dx)
        h_prev, c_prev, gates, extra, dh_n, dc_n, dh0, dc0 = (
            view(t) for t in (h_prev, c_prev, gates, extra, dh_n, dc_n, dh0, dc0))
        grads = _split(dweights, D)
        ld = None if lengths is None else cp.asarray(lengths.numpy())
        zc = view(zoneout)
        for d, ws in enumerate(_split(weights, D)):
            def at(a, d=d):
                return None if a is None else a[d]
            names = ("W_ih", "W_hh", "b_ih", "b_hh")
            w = dict(zip(names, (view(t) for t in ws)))
            g = dict(zip(names, (view(t) for t in grads[d])))
            cache = dict(cell=cell, x=xc, w=w, h_prev=h_prev[d], c_prev=at(c_prev), gates=gates[d],
                         extra=at(extra), reverse=bool(d), lengths=ld, zoneout=at(zc))
            engine.backward(cache, None if dyc is None else dyc[:, :, d * H:(d + 1) * H], at(dh_n), at(dc_n),
                            dxc, d > 0, dh0[d], at(dc0), g, {})


# ---- autograd -----------------------------------------------------------------------------------------
def _setup_context(ctx, inputs, output):
    # the inputs as called: trailing arguments left at their defaults may be absent
    x, h0, c0, weights, cell, bidirectional, training, lengths, zoneout, _ = (tuple(inputs) + (None,) * 3)[:10]
    _, _, _, h_prev, c_prev, gates, extra = output
    ctx.mark_non_differentiable(h_prev, c_prev, gates, extra)
    ctx.save_for_backward(x, h_prev, c_prev, gates, extra, lengths, zoneout, *weights)
    ctx.cell, ctx.bidirectional, ctx.training = cell, bidirectional, training
    ctx.has_h0, ctx.has_c0 = h0 is not None, c0 is not None


def _backward(ctx, dy, dh_n, dc_n, *_):
    if not ctx.training:
        raise RuntimeError("rnnfast.torch: this forward ran without saving what backward needs (training=False)")
    x, h_prev, c_prev, gates, extra, lengths, zoneout, *weights = ctx.saved_tensors
    dx, dh0, dc0, dweights = torch.ops.rnnfast.recurrent_layer_backward(
        x, weights, h_prev, c_prev, gates, extra, dy, dh_n, dc_n, ctx.cell, ctx.bidirectional, lengths, zoneout)
    grads = (dx, dh0 if ctx.has_h0 else None, dc0 if ctx.has_c0 else None, list(dweights))
    # one entry per input as the call passed them (the dispatcher leaves out trailing defaults)
    return grads + (None,) * (len(ctx.needs_input_grad) - len(grads))


recurrent_layer.register_autograd(_backward, setup_context=_setup_context)
