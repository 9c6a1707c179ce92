"""Bad arguments: the exception torch.nn raises (same type, a message naming the argument); the limits of
issue #17's options (and NotImplementedError for one the flag table turns off); convert/revert."""

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import rnnfast.torch as rt  # noqa: E402

PAIRS = [(rt.RNN, nn.RNN), (rt.LSTM, nn.LSTM), (rt.GRU, nn.GRU)]

BAD_CONSTRUCTORS = [
    ((4, 0), {}, "hidden_size"),
    ((0, 4), {}, "input_size"),
    ((4, 5.0), {}, "hidden_size"),
    (("4", 5), {}, "input_size"),
    ((4, 5), {"num_layers": 0}, "num_layers"),
    ((4, 5), {"dropout": 1.5}, "dropout"),
    ((4, 5), {"dropout": True}, "dropout"),
    ((4, 5), {"bias": 1}, "bias"),
    ((4, 5), {"batch_first": "yes"}, "batch_first"),
]


@pytest.mark.parametrize("args,kwargs,word", BAD_CONSTRUCTORS)
@pytest.mark.parametrize("ours,theirs", PAIRS, ids=["RNN", "LSTM", "GRU"])
def test_constructor_errors_like_torch(ours, theirs, args, kwargs, word):
    with pytest.raises(Exception) as t:
        theirs(*args, **kwargs)
    with pytest.raises(type(t.value), match=word):
        ours(*args, **kwargs)


def test_constructor_errors_of_options():
    with pytest.raises(ValueError, match="nonlinearity"):
        rt.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="proj_size.*only supported for LSTM"):
        rt.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller"):
        rt.LSTM(3, 4, proj_size=4)
    with pytest.raises(TypeError, match="dtype"):
        rt.LSTM(3, 4, dtype=torch.float16)
    with pytest.raises(TypeError, match="reset_after"):
        rt.GRU(3, 4, reset_after=1)
    with pytest.raises(ValueError, match="zoneout"):
        rt.LSTM(3, 4, zoneout=1.0)
    with pytest.warns(UserWarning, match="dropout option adds dropout after all but last"):
        rt.LSTM(3, 4, dropout=0.3)


def test_issue_17_options_and_their_limits(monkeypatch):
    """proj_size, zoneout and PackedSequence run (tests/test_torch_modules.py); zoneout is LSTM's and GRU's and
    not combined with proj_size (as rnnfast's layers); convert shares weight_hr; an option the flag table
    SUPPORTS turns off is refused with NotImplementedError naming issue #17."""
    with pytest.raises(ValueError, match="zoneout is only supported for LSTM and GRU"):
        rt.RNN(3, 4, zoneout=0.1)
    with pytest.raises(ValueError, match="zoneout with proj_size"):
        rt.LSTM(3, 4, proj_size=2, zoneout=0.1)
    model = nn.Sequential(nn.LSTM(3, 4, proj_size=2))
    hr = model[0].weight_hr_l0
    rt.convert(model)
    assert type(model[0]) is rt.LSTM and model[0].weight_hr_l0 is hr
    from rnnfast.torch import _engine
    for flag in ("proj_size", "zoneout", "packed_sequence"):
        monkeypatch.setitem(_engine.SUPPORTS, flag, False)
    with pytest.raises(NotImplementedError, match=r"proj_size=2.*issue #17"):
        rt.LSTM(3, 4, proj_size=2)
    with pytest.raises(NotImplementedError, match=r"zoneout=0.1.*issue #17"):
        rt.GRU(3, 4, zoneout=0.1)
    packed = pack_padded_sequence(torch.randn(5, 2, 3), torch.tensor([5, 3]))
    with pytest.raises(NotImplementedError, match=r"PackedSequence.*issue #17"):
        rt.LSTM(3, 4)(packed)


def _bad_inputs(batch_first=False):
    x = torch.randn(5, 2, 3)
    return [
        ("4-D input", (torch.randn(5, 2, 3, 1),), None),
        ("wrong input_size", (torch.randn(5, 2, 4),), None),
        ("float64 input", (x.double(),), None),
        ("3-D hx with 2-D input", (torch.randn(5, 3), "h3"), None),
        ("2-D hx with 3-D input", (x, "h2"), None),
        ("hx of the wrong batch", (x, "hN"), None),
    ]


def _state(kind, lstm, L=1, N=2, H=4):
    shape = {"h3": (L, 1, H), "h2": (L, H), "hN": (L, N + 1, H)}[kind]
    h = torch.zeros(shape)
    return (h, h.clone()) if lstm else h


@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("ours,theirs", PAIRS, ids=["RNN", "LSTM", "GRU"])
def test_forward_errors_like_torch(ours, theirs, case):
    name, args, _ = _bad_inputs()[case]
    lstm = ours is rt.LSTM
    if len(args) == 2:
        args = (args[0], _state(args[1], lstm))
    with pytest.raises(Exception) as t:
        theirs(3, 4)(*args)
    with pytest.raises(type(t.value)) as e:
        ours(3, 4)(*args)
    # the message names what is wrong as torch's does
    key = {"4-D input": "2D or 3D", "wrong input_size": "input_size", "float64 input": "dtype",
           "3-D hx with 2-D input": "2-D", "2-D hx with 3-D input": "3-D", "hx of the wrong batch": "size"}[name]
    assert key in str(e.value) and key in str(t.value), (str(e.value), str(t.value))


def test_lstm_hx_must_be_a_pair():
    with pytest.raises(TypeError, match="hx"):
        rt.LSTM(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="input"):
        rt.GRU(3, 4)([[1.0, 2.0, 3.0]])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.LSTM(3, 5, num_layers=2, batch_first=True)
        self.blocks = nn.ModuleList([nn.GRU(5, 5, bidirectional=True), nn.RNN(10, 4, nonlinearity="relu")])
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        y, _ = self.enc(x)
        y, _ = self.blocks[0](y.transpose(0, 1))
        y, h = self.blocks[1](y)
        return self.head(h[-1])


def test_convert_swaps_modules_in_place_sharing_parameters_and_revert_undoes_it():
    torch.manual_seed(0)
    net = Net().double()
    params_before = list(net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=0.01)  # built before the swap: keeps working after
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    ref = net(x)
    out = rt.convert(net)
    assert out is net
    assert type(net.enc) is rt.LSTM and type(net.blocks[0]) is rt.GRU and type(net.blocks[1]) is rt.RNN
    assert net.blocks[1].nonlinearity == "relu" and net.enc.batch_first and net.blocks[0].bidirectional
    assert all(p is q for p, q in zip(net.parameters(), params_before))
    torch.testing.assert_close(net(x), ref, rtol=1e-12, atol=1e-12)
    opt.zero_grad()
    net(x).sum().backward()
    opt.step()
    assert all(p.grad is not None for p in net.parameters())
    after_step = net(x)
    rt.revert(net)
    assert type(net.enc) is nn.LSTM and type(net.blocks[0]) is nn.GRU and type(net.blocks[1]) is nn.RNN
    torch.testing.assert_close(net(x), after_step, rtol=1e-12, atol=1e-12)
    # a bare module is returned converted
    lstm = rt.convert(nn.LSTM(2, 3))
    assert type(lstm) is rt.LSTM and type(rt.revert(lstm)) is nn.LSTM


def test_convert_keeps_mode_and_dropout_quietly():
    net = nn.Sequential(nn.GRU(3, 4, num_layers=2, dropout=0.25))
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rt.convert(net)
    assert net[0].dropout == 0.25 and not net[0].training


def test_revert_refuses_what_torch_lacks():
    net = nn.Sequential(rt.GRU(3, 4, reset_after=False), rt.LSTM(4, 4, learn_initial_state=True))
    with pytest.raises(ValueError, match="0 uses reset_after=False"):
        rt.revert(net)
    with pytest.raises(TypeError, match="model"):
        rt.convert("not a model")
