"""torch.compile(model, fullgraph=True) over models containing rnnfast.torch modules, and torch.library's own
checks of the custom operators (schema, fake implementation, autograd registration)."""

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import rnnfast.torch as rt  # noqa: E402
from rnnfast.torch import _ops  # noqa: E402,F401

# inductor's own import of a deprecated torch.jit API (torch 2.13), not ours: pyproject turns warnings into errors
COMPILE_WARNINGS = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


@pytest.mark.parametrize("cell", [0, 2, 3, 4], ids=["rnn_tanh", "lstm", "gru", "gru_cho"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_opcheck_of_the_custom_ops(cell, bidirectional):
    """torch.library.opcheck: schema, fake tensor and autograd registration tests of both operators."""
    D = 2 if bidirectional else 1
    G = {0: 1, 2: 4, 3: 3, 4: 3}[cell]
    T, N, C, H = 3, 2, 3, 4
    dt = torch.float64
    torch.manual_seed(0)
    weights = []
    for _ in range(D):
        weights += [torch.randn(G * H, C, dtype=dt), torch.randn(G * H, H, dtype=dt),
                    torch.randn(G * H, dtype=dt), torch.randn(G * H, dtype=dt)]
    weights = [w.mul_(0.3).requires_grad_() for w in weights]
    x = torch.randn(T, N, C, dtype=dt, requires_grad=True)
    h0 = torch.randn(D, N, H, dtype=dt, requires_grad=True)
    c0 = torch.randn(D, N, H, dtype=dt, requires_grad=True) if cell == 2 else None
    torch.library.opcheck(torch.ops.rnnfast.recurrent_layer.default, (x, h0, c0, weights, cell, bidirectional, True))
    out = torch.ops.rnnfast.recurrent_layer(x.detach(), h0.detach(), c0, [w.detach() for w in weights], cell,
                                            bidirectional, True)
    y, h_n, c_n, h_prev, c_prev, gates, extra = out
    args = (x.detach(), [w.detach() for w in weights], h_prev, c_prev, gates, extra, torch.randn_like(y),
            torch.randn_like(h_n), torch.randn_like(c_n), cell, bidirectional)
    torch.library.opcheck(torch.ops.rnnfast.recurrent_layer_backward.default, args)


class Model(nn.Module):
    def __init__(self, cls, **kw):
        super().__init__()
        self.emb = nn.Linear(5, 8)
        self.rnn = cls(8, 16, num_layers=2, batch_first=True, **kw)
        self.head = nn.Linear(16 * (2 if kw.get("bidirectional") else 1), 3)

    def forward(self, x):
        y, _ = self.rnn(torch.tanh(self.emb(x)))
        return self.head(y[:, -1])


@pytest.mark.slow
@COMPILE_WARNINGS
@pytest.mark.parametrize("cls,kw", [(rt.LSTM, {"dropout": 0.2}), (rt.GRU, {"bidirectional": True})],
                         ids=["lstm_dropout", "gru_bidirectional"])
def test_compile_fullgraph_matches_eager_forward_and_backward(cls, kw):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = Model(cls, **kw)
    model.eval()  # dropout off: the compiled graph draws its own random numbers
    compiled = torch.compile(model, fullgraph=True)  # raises on any graph break
    x = torch.randn(4, 7, 5)
    ref = model(x)
    ref.square().sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    out = compiled(x)
    out.square().sum().backward()
    torch.testing.assert_close(out, ref)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g)
    # training mode with dropout compiles too (a second graph), and gradients flow
    model.train()
    model.zero_grad()
    compiled(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.slow
@COMPILE_WARNINGS
def test_converted_model_compiles_fullgraph_where_torchs_breaks():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = Model(nn.LSTM)
    x = torch.randn(2, 4, 5)
    with pytest.raises(Exception):  # noqa: B017  (torch's own LSTM: dynamo refuses it, allow_rnn=False; the
        # exception's class is torch's internal business)
        torch.compile(model, fullgraph=True)(x)
    torch._dynamo.reset()
    ref = model(x)
    rt.convert(model)
    torch.testing.assert_close(torch.compile(model, fullgraph=True)(x), ref)
