"""torch.autograd.gradcheck in float64 over rnnfast.torch's custom operators: every cell, every option.

Finite differences of the whole module (input, initial states, every parameter), so the engine's backward
is checked against its own forward, independently of torch's modules.
"""

import pytest

torch = pytest.importorskip("torch")
import rnnfast.torch as rt  # noqa: E402

CELLS = {
    "rnn_tanh": (rt.RNN, {}),
    "rnn_relu": (rt.RNN, {"nonlinearity": "relu"}),
    "lstm": (rt.LSTM, {}),
    "gru": (rt.GRU, {}),
    "gru_cho": (rt.GRU, {"reset_after": False}),
}
# each option on its own, then all of them at once
OPTIONS = {
    "plain": {},
    "no_bias": {"bias": False},
    "bidirectional": {"bidirectional": True},
    "two_layers": {"num_layers": 2},
    "batch_first": {"batch_first": True},
    "learned_state": {"learn_initial_state": True},
    "all": {"num_layers": 2, "bidirectional": True, "batch_first": True, "bias": False},
}


@pytest.mark.parametrize("option,with_hx", [(o, False) for o in OPTIONS] + [("plain", True), ("all", True)],
                         ids=[o for o in OPTIONS] + ["plain_given_state", "all_given_state"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_gradcheck(cell, option, with_hx):
    cls, extra = CELLS[cell]
    kw = dict(OPTIONS[option], **extra)
    torch.manual_seed(0)
    m = cls(3, 4, dtype=torch.float64, **kw)
    if kw.get("learn_initial_state"):
        with torch.no_grad():
            for n in ("h0", "c0"):
                if hasattr(m, n):
                    getattr(m, n).normal_()
    T, N = 3, 2
    LD = m.num_layers * (2 if m.bidirectional else 1)
    x = torch.randn((N, T, 3) if m.batch_first else (T, N, 3), dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    states = []
    if with_hx:
        states = [torch.randn(LD, N, 4, dtype=torch.float64, requires_grad=True)
                  for _ in range(2 if cell == "lstm" else 1)]

    def f(x, *rest):
        ps, ss = rest[:len(params)], rest[len(params):]
        hx = None if not ss else (tuple(ss) if cell == "lstm" else ss[0])
        y, h = torch.func.functional_call(m, dict(zip(names, ps)), (x, hx))
        return (y,) + (h if isinstance(h, tuple) else (h,))

    assert torch.autograd.gradcheck(f, (x, *params, *states), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_unbatched():
    torch.manual_seed(0)
    m = rt.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)

    def f(x, h, c):
        y, (hn, cn) = m(x, (h, c))
        return y, hn, cn

    assert torch.autograd.gradcheck(f, (x, h, c), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("case", ["packed_lstm", "packed_gru", "proj", "proj_packed", "zoneout_lstm",
                                  "zoneout_gru"])
def test_gradcheck_issue_17_options(case):
    """PackedSequence input (unsorted lengths), proj_size (two layers) and zoneout (training: the masks drawn
    again under the same seed at every evaluation); bidirectional, with given initial states."""
    torch.manual_seed(0)
    kw = dict(bidirectional=True, dtype=torch.float64)
    if case.startswith("proj"):  # two layers: the second's input is the projections, 2 * proj_size wide
        kw.update(proj_size=2, num_layers=2)
    if case.startswith("zoneout"):
        kw["zoneout"] = 0.4
    cls = rt.GRU if case.endswith("gru") else rt.LSTM
    m = cls(3, 4, **kw)
    lstm = cls is rt.LSTM
    T, N = 4, 3
    x = torch.randn(T, N, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([2, 4, 1])
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    P = kw.get("proj_size", 4)
    LD = 2 * m.num_layers
    states = [torch.randn(LD, N, P, dtype=torch.float64, requires_grad=True)]
    if lstm:
        states.append(torch.randn(LD, N, 4, dtype=torch.float64, requires_grad=True))
    packed = "packed" in case

    def f(x, *rest):
        ps, ss = rest[:len(params)], rest[len(params):]
        hx = tuple(ss) if lstm else ss[0]
        inp = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False) if packed else x
        torch.manual_seed(1)  # zoneout: the same masks at every evaluation
        y, h = torch.func.functional_call(m, dict(zip(names, ps)), (inp, hx))
        return (y.data if packed else y,) + (h if isinstance(h, tuple) else (h,))

    assert torch.autograd.gradcheck(f, (x, *params, *states), eps=1e-6, atol=1e-7, rtol=1e-5)
