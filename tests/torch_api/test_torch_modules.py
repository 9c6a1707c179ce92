"""rnnfast.torch's modules against torch.nn's: constructor, parameters, outputs, final states, every gradient.

float64 on both sides: the two implementations differ only by rounding (measured ~1e-15), so the
tolerance is a few hundred ulps. float32 against a float64 baseline: at most 2x torch's own float32 error
(STYLE.md 12). Skipped when torch is not installed.
"""

import io
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import rnnfast  # noqa: E402
import rnnfast.torch as rt  # noqa: E402

F64 = dict(rtol=1e-12, atol=1e-12)

# (name, rnnfast class, torch class, constructor kwargs)
CELLS = [
    ("rnn_tanh", rt.RNN, nn.RNN, {}),
    ("rnn_relu", rt.RNN, nn.RNN, {"nonlinearity": "relu"}),
    ("lstm", rt.LSTM, nn.LSTM, {}),
    ("gru", rt.GRU, nn.GRU, {}),
]
CELL_IDS = [c[0] for c in CELLS]


def pair(cell, *args, seed=0, **kwargs):
    """(torch's module, rnnfast's module) built under the same seed: the same initial weights."""
    _, ours, theirs, extra = cell
    torch.manual_seed(seed)
    a = theirs(*args, **extra, **kwargs)
    torch.manual_seed(seed)
    b = ours(*args, **extra, **kwargs)
    return a, b


def loss_of(y, h):
    """A loss that weighs every output differently, so each gradient path is exercised."""
    w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    total = (y * w).sum()
    for s in (h if isinstance(h, tuple) else (h,)):
        total = total + (s * s).sum() * 0.5
    return total


def run(module, x, hx):
    y, h = module(x, hx)
    leaves = [x] + [t for t in (hx if isinstance(hx, tuple) else (hx,)) if t is not None] + list(module.parameters())
    grads = torch.autograd.grad(loss_of(y, h), leaves)
    return y, h, grads


def states(cell, L, D, N, H, dtype, batched=True):
    shape = (L * D, N, H) if batched else (L * D, H)
    h = torch.randn(shape, dtype=dtype, requires_grad=True)
    if cell[0] == "lstm":
        return (h, torch.randn(shape, dtype=dtype, requires_grad=True))
    return h


@pytest.mark.parametrize("layers,bidirectional,batch_first",
                         list(itertools.product([1, 2], [False, True], [False, True])))
@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_matches_torch_outputs_states_and_every_gradient(cell, layers, bidirectional, batch_first):
    T, N, C, H = 5, 3, 4, 6
    a, b = pair(cell, C, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                dtype=torch.float64)
    for name, p in a.named_parameters():
        assert torch.equal(p, b.get_parameter(name)), name  # same names, same initialisation
    x = torch.randn((N, T, C) if batch_first else (T, N, C), dtype=torch.float64, requires_grad=True)
    hx = states(cell, layers, 2 if bidirectional else 1, N, H, torch.float64)
    ya, ha, ga = run(a, x, hx)
    yb, hb, gb = run(b, x, hx)
    assert yb.shape == ya.shape and yb.dtype == ya.dtype
    torch.testing.assert_close(yb, ya, **F64)
    for s, t in zip(hb if isinstance(hb, tuple) else (hb,), ha if isinstance(ha, tuple) else (ha,)):
        torch.testing.assert_close(s, t, **F64)
    names = ["x", "hx", "cx"][:len(ga) - len(list(a.parameters()))] + [n for n, _ in a.named_parameters()]
    for name, g, h in zip(names, gb, ga):
        torch.testing.assert_close(g, h, **F64, msg=lambda m, name=name: f"gradient of {name}: {m}")


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_unbatched_input_and_no_hx_like_torch(cell):
    a, b = pair(cell, 3, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    ya, ha, ga = run(a, x, None)
    yb, hb, gb = run(b, x, None)
    assert yb.shape == ya.shape == (7, 10)
    torch.testing.assert_close(yb, ya, **F64)
    torch.testing.assert_close(hb, ha, **F64)
    for g, h in zip(gb, ga):
        torch.testing.assert_close(g, h, **F64)
    # an unbatched hx as well
    hx = states(cell, 2, 2, 1, 5, torch.float64, batched=False)
    torch.testing.assert_close(b(x, hx)[0], a(x, hx)[0], **F64)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_float32_error_at_most_twice_torchs_against_float64(cell):
    T, N, C, H = 20, 4, 8, 32
    a, b = pair(cell, C, H, num_layers=2, dtype=torch.float64)
    x = torch.randn(T, N, C, dtype=torch.float64, requires_grad=True)
    ref = run(a, x, None)
    errs = {}
    for name, m in (("torch", a), ("rnnfast", b)):
        m32 = m.float()
        x32 = x.detach().float().requires_grad_()
        y, h, g = run(m32, x32, None)
        errs[name] = max((y.double() - ref[0]).abs().max().item(),
                         max((p.double() - q).abs().max().item() for p, q in zip(g, ref[2])))
        m.double()
    assert errs["rnnfast"] <= 2 * errs["torch"] + 1e-6, errs


def test_gru_reset_after_false_matches_rnnfast_numpy_layer():
    """Cho et al.'s GRU is not in torch: the oracle is rnnfast.GRU(reset_after=False) on the same weights."""
    torch.manual_seed(0)
    b = rt.GRU(4, 6, num_layers=2, bidirectional=True, reset_after=False, dtype=torch.float64)
    ref = rnnfast.GRU(4, 6, num_layers=2, bidirectional=True, reset_after=False, dtype="float64")
    ref.load_state_dict({k: v.detach().numpy() for k, v in b.state_dict().items()})
    x = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    y, h = b(x)
    y_ref, h_ref = ref(x.detach().numpy())
    np.testing.assert_allclose(y.detach().numpy(), y_ref, **F64)
    np.testing.assert_allclose(h.detach().numpy(), h_ref, **F64)
    dy = torch.randn_like(y)
    y.backward(dy)
    dx_ref, _ = ref.backward(dy.numpy())
    np.testing.assert_allclose(x.grad.numpy(), dx_ref, **F64)
    for name, p in b.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), ref.grads[name], **F64, err_msg=name)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_dropout_between_layers_draws_like_torch(cell):
    """Same seed, same masks: dropout is torch's own, applied where torch applies it (after every layer but
    the last, in training mode only)."""
    a, b = pair(cell, 4, 6, num_layers=3, dropout=0.5, bidirectional=True, dtype=torch.float64)
    x = torch.randn(5, 2, 4, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(7)
    ya, ha, ga = run(a, x, None)
    torch.manual_seed(7)
    yb, hb, gb = run(b, x, None)
    torch.testing.assert_close(yb, ya, **F64)
    for g, h in zip(gb, ga):
        torch.testing.assert_close(g, h, **F64)
    # eval: no dropout, deterministic
    b.eval()
    a.eval()
    torch.testing.assert_close(b(x)[0], a(x)[0], **F64)
    torch.testing.assert_close(b(x)[0], b(x)[0], rtol=0, atol=0)


def test_learn_initial_state_trains_h0_and_c0():
    torch.manual_seed(0)
    m = rt.LSTM(3, 4, num_layers=2, learn_initial_state=True, dtype=torch.float64)
    assert m.h0.shape == m.c0.shape == (2, 4) and not m.h0.any()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    # with zero learned states the output is the plain module's
    plain = rt.LSTM(3, 4, num_layers=2, dtype=torch.float64)
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if k not in ("h0", "c0")})
    torch.testing.assert_close(m(x)[0], plain(x)[0], **F64)
    # the gradient of the learned state is the batch sum of the gradient of an explicit one
    with torch.no_grad():
        m.h0.normal_()
        m.c0.normal_()
    y, (h, c) = m(x)
    loss_of(y, (h, c)).backward()
    h0 = m.h0.detach()[:, None].expand(2, 2, 4).clone().requires_grad_()
    c0 = m.c0.detach()[:, None].expand(2, 2, 4).clone().requires_grad_()
    y2, hc2 = plain(x, (h0, c0))
    loss_of(y2, hc2).backward()
    torch.testing.assert_close(m.h0.grad, h0.grad.sum(1), **F64)
    torch.testing.assert_close(m.c0.grad, c0.grad.sum(1), **F64)


def test_state_dicts_load_both_ways_and_save_load_round_trip():
    a, b = pair(CELLS[2], 4, 6, num_layers=2, bidirectional=True, seed=1)
    torch.manual_seed(2)
    fresh = rt.LSTM(4, 6, num_layers=2, bidirectional=True)
    fresh.load_state_dict(a.state_dict())            # torch -> rnnfast (strict)
    back = nn.LSTM(4, 6, num_layers=2, bidirectional=True)
    back.load_state_dict(fresh.state_dict())         # rnnfast -> torch (strict)
    x = torch.randn(5, 3, 4)
    torch.testing.assert_close(fresh(x)[0], a(x)[0])
    torch.testing.assert_close(back(x)[0], a(x)[0])
    assert list(b.state_dict()) == list(a.state_dict())
    # torch.save / torch.load: the whole module and its state dict
    buf = io.BytesIO()
    torch.save({"model": fresh, "state": fresh.state_dict()}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    torch.testing.assert_close(loaded["model"](x)[0], fresh(x)[0], rtol=0, atol=0)
    buf = io.BytesIO()
    torch.save(fresh.state_dict(), buf)
    buf.seek(0)
    other = rt.LSTM(4, 6, num_layers=2, bidirectional=True)
    other.load_state_dict(torch.load(buf))          # weights_only=True: plain tensors
    torch.testing.assert_close(other(x)[0], fresh(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
@pytest.mark.parametrize("cell", CELLS[1:], ids=CELL_IDS[1:])
def test_torch_optimizers_train_the_same_parameters(cell, opt):
    a, b = pair(cell, 3, 5, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64)
    heads = []
    for _ in (a, b):
        torch.manual_seed(3)
        heads.append(nn.Linear(10, 2, dtype=torch.float64))
    xs = torch.randn(4, 6, 7, 3, dtype=torch.float64)
    targets = torch.randn(4, 6, 2, dtype=torch.float64)
    for m, head in zip((a, b), heads):
        params = list(m.parameters()) + list(head.parameters())
        o = getattr(torch.optim, opt)(params, lr=0.05)
        for x, t in zip(xs, targets):
            o.zero_grad()
            y, _ = m(x)
            nn.functional.mse_loss(head(y[:, -1]), t).backward()
            o.step()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-10, atol=1e-10, msg=lambda m, n=n: f"{n}: {m}")


def test_dtype_and_device_follow_the_module():
    m = rt.GRU(3, 4)
    assert m.weight_ih_l0.dtype == torch.float32
    y, h = m(torch.randn(2, 1, 3))
    assert y.dtype == h.dtype == torch.float32
    m.double()
    y, h = m(torch.randn(2, 1, 3, dtype=torch.float64))
    assert y.dtype == h.dtype == torch.float64
    m.to(torch.float32)
    assert m(torch.randn(2, 1, 3))[0].dtype == torch.float32
    assert rt.LSTM(3, 4, dtype=torch.float64).weight_hh_l0.dtype == torch.float64
    assert "LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)" == repr(
        rt.LSTM(3, 4, 2, batch_first=True, bidirectional=True))


def test_cpu_tensors_reach_the_engine_without_copies(monkeypatch):
    """The engine gets NumPy views of the caller's contiguous input, of the parameters and of the output
    tensors (same addresses), in forward and backward."""
    from rnnfast.torch import _engine

    seen = []
    real = _engine._core

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def recurrent_forward(self, *args):
            seen.append(("forward", args))
            return real.recurrent_forward(*args)

        def recurrent_backward(self, *args):
            seen.append(("backward", args))
            return real.recurrent_backward(*args)

    monkeypatch.setattr(_engine, "_core", Spy())

    def addr(a):
        return a.__array_interface__["data"][0]

    m = rt.LSTM(4, 6)
    x = torch.randn(5, 3, 4, requires_grad=True)
    y, (h, c) = m(x)
    (y.sum() + h.sum()).backward()
    (_, fwd), (_, bwd) = seen
    assert addr(fwd[1]) == x.data_ptr()
    assert addr(fwd[4]) == m.weight_ih_l0.data_ptr() and addr(fwd[5]) == m.weight_hh_l0.data_ptr()
    assert addr(fwd[6]) == m.bias_ih_l0.data_ptr()
    assert addr(fwd[8]) == y.data_ptr() and addr(fwd[9]) == h.data_ptr() and addr(fwd[10]) == c.data_ptr()
    assert addr(bwd[1]) == x.data_ptr() and addr(bwd[11]) == x.grad.data_ptr()
    assert addr(bwd[15]) == m.weight_ih_l0.grad.data_ptr()


def test_caches_saved_only_when_a_gradient_can_be_asked_for(monkeypatch):
    """The engine's training flag (save what backward needs): on with grad mode and something requiring
    grad; off under no_grad and when nothing requires grad. The outputs are the same either way."""
    from rnnfast.torch import _engine

    flags = []
    real = _engine._core

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def recurrent_forward(self, *args):
            flags.append(args[17])  # training (after reverse; lengths and zoneout follow)
            return real.recurrent_forward(*args)

    monkeypatch.setattr(_engine, "_core", Spy())
    m = rt.GRU(3, 4)
    x = torch.randn(4, 2, 3)
    y_train = m(x)[0]
    with torch.no_grad():
        y0 = m(x)[0]
    m.requires_grad_(False)
    y1 = m(x)[0]
    assert flags == [True, False, False]
    assert y_train.requires_grad and not y1.requires_grad
    torch.testing.assert_close(y0, y_train.detach(), rtol=0, atol=0)
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)


# ---- issue #17's options: PackedSequence input, proj_size, zoneout ----------------------------------------
def _packed_case(cell, bidirectional, proj_size=0, layers=2):
    """(torch's module, rnnfast's, unsorted lengths, hx, the leaves for gradients: x (padded), hx)."""
    T, N, C, H = 6, 4, 3, 5
    kw = dict(num_layers=layers, bidirectional=bidirectional, dtype=torch.float64)
    if proj_size:
        kw["proj_size"] = proj_size
    a, b = pair(cell, C, H, **kw)
    x = torch.randn(T, N, C, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 6, 1, 4])  # unsorted: sorted_indices/unsorted_indices are not the identity
    D = 2 if bidirectional else 1
    h = torch.randn(layers * D, N, proj_size or H, dtype=torch.float64, requires_grad=True)
    hx = (h, torch.randn(layers * D, N, H, dtype=torch.float64, requires_grad=True)) if cell[0] == "lstm" else h
    return a, b, lengths, hx, [x] + list(hx if isinstance(hx, tuple) else (hx,))


def _run_packed(module, lengths, hx, leaves):
    packed = nn.utils.rnn.pack_padded_sequence(leaves[0], lengths, enforce_sorted=False)  # a graph per run
    y, h = module(packed, hx)
    grads = torch.autograd.grad(loss_of(y.data, h), leaves + list(module.parameters()))
    return y, h, grads


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_packed_sequence_matches_torch(cell, bidirectional):
    """PackedSequence in, PackedSequence out (the same batch_sizes and indices), final states in the batch's
    order, and every gradient (input, initial states, parameters), as torch.nn's module."""
    a, b, packed, hx, leaves = _packed_case(cell, bidirectional)
    ya, ha, ga = _run_packed(a, packed, hx, leaves)
    yb, hb, gb = _run_packed(b, packed, hx, leaves)
    assert isinstance(yb, nn.utils.rnn.PackedSequence)
    assert torch.equal(yb.batch_sizes, ya.batch_sizes)
    assert torch.equal(yb.sorted_indices, ya.sorted_indices) and torch.equal(yb.unsorted_indices, ya.unsorted_indices)
    torch.testing.assert_close(yb.data, ya.data, **F64)
    for s, t in zip(hb if isinstance(hb, tuple) else (hb,), ha if isinstance(ha, tuple) else (ha,)):
        torch.testing.assert_close(s, t, **F64)
    assert len(gb) == len(ga)
    for g, t in zip(gb, ga):
        torch.testing.assert_close(g, t, **F64)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_proj_size_matches_torch(bidirectional, packed):
    """LSTM with proj_size: weight_hr_l{k} named and initialised as torch's; outputs, h_n (proj_size wide),
    c_n and every gradient as torch.nn.LSTM, on a tensor and on a PackedSequence."""
    lstm = CELLS[2]
    a, b, pk, hx, leaves = _packed_case(lstm, bidirectional, proj_size=2)
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]
    for name, p in a.named_parameters():
        assert torch.equal(p, b.get_parameter(name)), name
    if packed:
        ya, ha, ga = _run_packed(a, pk, hx, leaves)
        yb, hb, gb = _run_packed(b, pk, hx, leaves)
        ya, yb = ya.data, yb.data
    else:
        ya, ha, ga = run(a, leaves[0], hx)
        yb, hb, gb = run(b, leaves[0], hx)
    assert yb.shape == ya.shape and hb[0].shape == ha[0].shape and hb[1].shape == ha[1].shape
    torch.testing.assert_close(yb, ya, **F64)
    torch.testing.assert_close(hb[0], ha[0], **F64)
    torch.testing.assert_close(hb[1], ha[1], **F64)
    for g, t in zip(gb, ga):
        torch.testing.assert_close(g, t, **F64)


@pytest.mark.parametrize("cls", [rt.LSTM, rt.GRU], ids=["lstm", "gru"])
def test_zoneout_matches_rnnfast_layers(cls):
    """zoneout as rnnfast's layers: eval mode (the expectation) against rnnfast.LSTM/GRU's eval with the same
    weights; training draws masks from torch's generator (seeded: repeatable) and differs from eval."""
    torch.manual_seed(0)
    m = cls(3, 5, num_layers=2, bidirectional=True, zoneout=0.3, dtype=torch.float64)
    ours = (rnnfast.LSTM if cls is rt.LSTM else rnnfast.GRU)(3, 5, num_layers=2, bidirectional=True,
                                                             zoneout=0.3, dtype="float64")
    ours.load_state_dict({k: v.detach().numpy() for k, v in m.state_dict().items()})
    ours.eval()
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    m.eval()
    ye, _ = m(x)
    np.testing.assert_allclose(ye.detach().numpy(), ours(x.numpy())[0], rtol=1e-12, atol=1e-12)
    m.train()
    torch.manual_seed(5)
    y1, _ = m(x)
    torch.manual_seed(5)
    y2, _ = m(x)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert (y1 - ye).abs().max() > 1e-3
