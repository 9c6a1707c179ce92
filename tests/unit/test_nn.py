"""Tests of rnnfast.nn: Linear, Embedding, one_hot, ModuleDict, ParameterDict, Conditioned.

Gradients by central finite differences in float64 and against torch.nn.Linear / Embedding; the
container's dotted names, live arrays and state dicts; Conditioned (the captioning RNN) against an
explicit concatenation and by finite differences; bad arguments name themselves.
"""

import numpy as np
import pytest

import rnnfast
from rnnfast import nn

from helpers import numerical_grad, randn, rel_err


def test_array_module_numpy():
    assert nn.array_module(np.zeros(2)) is np
    assert nn.array_module([1.0]) is np


# ---------------------------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_linear_finite_differences(bias):
    rng = np.random.default_rng(0)
    lin = nn.Linear(4, 3, bias=bias, dtype="float64", seed=1)
    x = randn(rng, (2, 5, 4))
    R = randn(rng, (2, 5, 3))

    def loss():
        return float((lin.forward(x) * R).sum())

    lin.forward(x)
    dx = lin.backward(R)
    assert rel_err(dx, numerical_grad(loss, x)) < 1e-8
    for name, p in lin.parameters().items():
        assert rel_err(lin.grads[name], numerical_grad(loss, p)) < 1e-8, name
    assert sorted(lin.parameters()) == (["bias", "weight"] if bias else ["weight"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_against_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    lin = nn.Linear(6, 5, dtype=dtype, seed=3)
    tl = torch.nn.Linear(6, 5).to(getattr(torch, dtype))
    with torch.no_grad():
        tl.weight.copy_(torch.from_numpy(lin.parameters()["weight"]))
        tl.bias.copy_(torch.from_numpy(lin.parameters()["bias"]))
    x = randn(rng, (3, 6), dtype)
    dy = randn(rng, (3, 5), dtype)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = tl(tx)
    ty.backward(torch.from_numpy(dy))
    y = lin(x)
    dx = lin.backward(dy)
    assert y.dtype == np.dtype(dtype) and dx.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-14
    assert rel_err(y, ty.detach().numpy()) < tol
    assert rel_err(dx, tx.grad.numpy()) < tol
    assert rel_err(lin.grads["weight"], tl.weight.grad.numpy()) < tol
    assert rel_err(lin.grads["bias"], tl.bias.grad.numpy()) < tol


def test_linear_init_range_and_seed():
    lin = nn.Linear(16, 8, seed=0)
    k = 1 / np.sqrt(16)
    for p in lin.parameters().values():
        assert p.dtype == np.float32 and np.abs(p).max() <= k
    assert np.array_equal(nn.Linear(16, 8, seed=0).parameters()["weight"], lin.parameters()["weight"])
    assert not np.array_equal(nn.Linear(16, 8, seed=1).parameters()["weight"], lin.parameters()["weight"])


def test_linear_grads_accumulate_and_zero():
    rng = np.random.default_rng(0)
    lin = nn.Linear(3, 2, dtype="float64", seed=0)
    x, dy = randn(rng, (4, 3)), randn(rng, (4, 2))
    lin(x)
    lin.backward(dy)
    once = lin.grads["weight"].copy()
    lin(x)
    lin.backward(dy)
    assert np.allclose(lin.grads["weight"], 2 * once)
    lin.zero_grad()
    assert not lin.grads["weight"].any() and not lin.grads["bias"].any()


def test_linear_errors():
    with pytest.raises(TypeError, match="in_features"):
        nn.Linear(2.0, 3)
    with pytest.raises(ValueError, match="out_features"):
        nn.Linear(2, 0)
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(2, 3, dtype="float16")
    with pytest.raises(TypeError, match="seed"):
        nn.Linear(2, 3, seed=1.5)
    lin = nn.Linear(2, 3)
    with pytest.raises(RuntimeError, match="forward"):
        lin.backward(np.zeros((1, 3), np.float32))
    with pytest.raises(TypeError, match=r"\bx\b"):
        lin(np.zeros((1, 2), np.float64))
    with pytest.raises(ValueError, match=r"\bx\b"):
        lin(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"\bx\b"):
        lin(np.full((1, 2), np.nan, np.float32))
    lin(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="dy"):
        lin.backward(np.zeros((4, 2), np.float32))
    lin.backward(np.zeros((4, 3), np.float32))
    with pytest.raises(RuntimeError, match="forward"):
        lin.backward(np.zeros((4, 3), np.float32))  # each forward is backpropagated once
    lin.eval()
    lin(np.zeros((4, 2), np.float32))
    with pytest.raises(RuntimeError, match="forward"):
        lin.backward(np.zeros((4, 3), np.float32))


# ---------------------------------------------------------------------------------------------
# Embedding and one_hot
# ---------------------------------------------------------------------------------------------

def test_embedding_finite_differences_repeated_indices():
    rng = np.random.default_rng(0)
    emb = nn.Embedding(5, 3, dtype="float64", seed=0)
    idx = np.array([[0, 2, 2], [4, 0, 2]])
    R = randn(rng, (2, 3, 3))

    def loss():
        return float((emb.forward(idx) * R).sum())

    emb.forward(idx)
    assert emb.backward(R) is None
    assert rel_err(emb.grads["weight"], numerical_grad(loss, emb.parameters()["weight"])) < 1e-8
    assert not emb.grads["weight"][[1, 3]].any()


def test_embedding_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    emb = nn.Embedding(7, 4, seed=2)
    te = torch.nn.Embedding(7, 4)
    with torch.no_grad():
        te.weight.copy_(torch.from_numpy(emb.parameters()["weight"]))
    idx = rng.integers(0, 7, (6, 3))
    dy = randn(rng, (6, 3, 4), np.float32)
    ty = te(torch.from_numpy(idx))
    ty.backward(torch.from_numpy(dy))
    y = emb(idx)
    emb.backward(dy)
    assert y.dtype == np.float32
    assert np.array_equal(y, ty.detach().numpy())
    assert rel_err(emb.grads["weight"], te.weight.grad.numpy()) < 1e-6


def test_embedding_errors():
    emb = nn.Embedding(4, 2)
    with pytest.raises(ValueError, match="idx"):
        emb(np.array([0, 4]))
    with pytest.raises(ValueError, match="idx"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match="idx"):
        emb(np.array([0.0]))
    with pytest.raises(RuntimeError, match="forward"):
        emb.backward(np.zeros((1, 2), np.float32))
    emb(np.array([1, 2]))
    with pytest.raises(ValueError, match="dy"):
        emb.backward(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="embedding_dim"):
        nn.Embedding(4, 0)


def test_one_hot():
    torch = pytest.importorskip("torch")
    idx = np.array([[0, 3], [2, 2]])
    oh = nn.one_hot(idx, 4)
    assert oh.shape == (2, 2, 4) and oh.dtype == np.float32
    assert np.array_equal(oh, torch.nn.functional.one_hot(torch.from_numpy(idx), 4).numpy())
    assert nn.one_hot(idx, 5, dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match="idx"):
        nn.one_hot(idx, 3)
    with pytest.raises(ValueError, match="num_classes"):
        nn.one_hot(idx, 0)


# ---------------------------------------------------------------------------------------------
# ModuleDict
# ---------------------------------------------------------------------------------------------

def make_model(dtype="float64"):
    return nn.ModuleDict(emb=nn.Embedding(5, 3, dtype=dtype, seed=0), rnn=rnnfast.RNN(3, 4, dtype=dtype, seed=1),
                         out=nn.Linear(4, 5, dtype=dtype, seed=2))


def test_moduledict_names_and_live_arrays():
    m = make_model()
    names = list(m.parameters())
    assert names == ["emb.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
                     "out.weight", "out.bias"]
    assert list(m.grads) == names
    assert m.rnn is m["rnn"] and len(m) == 3 and list(m) == ["emb", "rnn", "out"]
    m.parameters()["out.bias"][...] = 7
    assert (m.out.parameters()["bias"] == 7).all()
    m.out.grads["weight"][...] = 1
    assert (m.grads["out.weight"] == 1).all()
    m.zero_grad()
    assert not any(g.any() for g in m.grads.values())
    nested = nn.ModuleDict(model=m, extra=nn.ParameterDict(scale=np.ones(2)))
    assert "model.rnn.weight_hh_l0" in nested.parameters() and "extra.scale" in nested.grads


def test_moduledict_end_to_end_gradient():
    """Embedding -> RNN -> Linear chained by hand: finite differences through the whole model."""
    rng = np.random.default_rng(0)
    m = make_model()
    idx = rng.integers(0, 5, (4, 2))
    R = randn(rng, (4, 2, 5))

    def loss():
        y, _ = m.rnn(m.emb(idx))
        return float((m.out(y) * R).sum())

    loss()
    m.emb.backward(m.rnn.backward(m.out.backward(R))[0])
    params = m.parameters()
    for name in ("emb.weight", "rnn.weight_hh_l0", "out.weight"):
        assert rel_err(m.grads[name], numerical_grad(loss, params[name])) < 1e-7, name


def test_moduledict_state_dict_round_trip():
    a, b = make_model(), nn.ModuleDict(emb=nn.Embedding(5, 3, dtype="float64", seed=9),
                                       rnn=rnnfast.RNN(3, 4, dtype="float64", seed=8),
                                       out=nn.Linear(4, 5, dtype="float64", seed=7))
    sd = a.state_dict()
    sd["out.bias"][...] = 3  # a copy
    assert not (a.out.parameters()["bias"] == 3).all()
    b.load_state_dict(sd)
    assert all(np.array_equal(b.parameters()[k], sd[k]) for k in sd)


def test_moduledict_load_errors_write_nothing():
    m = make_model()
    before = m.state_dict()
    bad = m.state_dict()
    bad["out.weight"] = np.zeros((2, 2))
    bad["emb.weight"][...] = 5
    with pytest.raises(ValueError, match="out.weight"):
        m.load_state_dict(bad)
    assert all(np.array_equal(m.parameters()[k], before[k]) for k in before)
    extra = dict(before, **{"out.gain": np.ones(1)})
    with pytest.raises(ValueError, match="out.gain"):
        m.load_state_dict(extra)
    missing = dict(before)
    del missing["rnn.bias_hh_l0"]
    with pytest.raises(ValueError, match="rnn.bias_hh_l0"):
        m.load_state_dict(missing)
    m.load_state_dict(missing, strict=False)


def test_moduledict_train_eval_and_errors():
    m = make_model()
    m.eval()
    assert not m.rnn.training and not m.out.training and not m.training
    m.train()
    assert m.rnn.training and m.emb.training
    with pytest.raises(ValueError, match="module names"):
        nn.ModuleDict(**{"a": nn.Linear(1, 1)}, **{"b.c": nn.Linear(1, 1)})
    with pytest.raises(TypeError, match="'x'"):
        nn.ModuleDict(x=3)
    with pytest.raises(AttributeError, match="nope"):
        m.nope  # noqa: B018  (the attribute lookup is what raises)


# ---------------------------------------------------------------------------------------------
# Conditioned (the captioning RNN)
# ---------------------------------------------------------------------------------------------

C, V, H = 3, 2, 4


def make_cond(kind, **kw):
    cls = {"rnn": rnnfast.RNN, "lstm": rnnfast.LSTM, "gru": rnnfast.GRU}[kind]
    return nn.Conditioned(cls(C + V, H, dtype="float64", seed=0, **kw), cond_size=V)


def test_conditioned_equals_explicit_concatenation():
    rng = np.random.default_rng(0)
    cap = make_cond("rnn")
    x, v = randn(rng, (5, 2, C)), randn(rng, (2, V))
    y, h = cap(x, v)
    W = cap.parameters()["weight_ih_l0"]
    Wxh, Wih = W[:, :C], W[:, C:]
    p = cap.parameters()
    hh = np.zeros((2, H))
    for t in range(5):  # the lecture: h = tanh(W_xh x + W_hh h + W_ih v)
        hh = np.tanh(x[t] @ Wxh.T + hh @ p["weight_hh_l0"].T + v @ Wih.T + p["bias_ih_l0"] + p["bias_hh_l0"])
        assert rel_err(y[t], hh) < 1e-12


@pytest.mark.parametrize("kind,kw", [("rnn", {}), ("lstm", {}), ("gru", {"batch_first": True}),
                                     ("rnn", {"num_layers": 2, "bidirectional": True})])
def test_conditioned_finite_differences(kind, kw):
    rng = np.random.default_rng(1)
    cap = make_cond(kind, **kw)
    T, N = 4, 2
    x = randn(rng, (N, T, C) if kw.get("batch_first") else (T, N, C))
    v = randn(rng, (N, V))
    y0, _ = cap(x, v)
    R = randn(rng, y0.shape)

    def loss():
        return float((cap(x, v)[0] * R).sum())

    cap.zero_grad()
    cap(x, v)
    dx, dv = cap.backward(R)
    assert dx.shape == x.shape and dv.shape == v.shape
    assert rel_err(dx, numerical_grad(loss, x)) < 1e-7
    assert rel_err(dv, numerical_grad(loss, v)) < 1e-7
    W = cap.parameters()["weight_ih_l0"]
    assert rel_err(cap.grads["weight_ih_l0"], numerical_grad(loss, W)) < 1e-7


def test_conditioned_unbatched_and_dh0():
    rng = np.random.default_rng(2)
    cap = make_cond("rnn")
    x, v, h0 = randn(rng, (3, C)), randn(rng, (V,)), randn(rng, (1, H))
    y, h = cap(x, v, h0)
    R = randn(rng, y.shape)

    def loss():
        return float((cap(x, v, h0)[0] * R).sum())

    cap(x, v, h0)
    dx, dv, dh0 = cap.backward(R, return_dh0=True)
    assert rel_err(dv, numerical_grad(loss, v)) < 1e-7
    assert rel_err(dh0, numerical_grad(loss, h0)) < 1e-7


def test_conditioned_errors():
    with pytest.raises(ValueError, match="cond_size"):
        nn.Conditioned(rnnfast.RNN(3, 4), cond_size=3)
    with pytest.raises(TypeError, match="layer"):
        nn.Conditioned(nn.Linear(3, 4), cond_size=1)
    cap = make_cond("rnn")
    with pytest.raises(ValueError, match=r"\bv\b"):
        cap(np.zeros((2, 2, C)), np.zeros((3, V)))
    with pytest.raises(ValueError, match=r"\bx\b"):
        cap(np.zeros((2, 2, C + V)), np.zeros((2, V)))
    with pytest.raises(RuntimeError, match="forward"):
        cap.backward(np.zeros((2, 2, H)))


def test_modules_to_cpu_is_a_no_op_and_bad_devices_are_refused():
    from rnnfast.charmodel import CharModel

    lin = nn.Linear(3, 2, seed=0)
    w = lin.parameters()["weight"]
    assert lin.to("cpu") is lin and lin.parameters()["weight"] is w and lin.device == "cpu"
    model = nn.ModuleDict(a=lin, b=nn.Embedding(4, 3))
    assert model.to("cpu") is model
    for bad in ("tpu", None, "CUDA"):
        with pytest.raises(ValueError, match="device"):
            lin.to(bad)
        with pytest.raises(ValueError, match="device"):
            model.to(bad)
    if not rnnfast.build_info()["cuda_available"]:
        for obj in (lin, model, nn.Conditioned(rnnfast.RNN(5, 4), cond_size=2)):
            with pytest.raises(RuntimeError, match="cuda"):
                obj.to("cuda")
        with pytest.raises(RuntimeError, match="cuda"):
            CharModel(5, "lstm", hidden=4, device="cuda")
    assert lin.device == "cpu" and lin.parameters()["weight"] is w  # a refused move changes nothing


def test_module_dict_refuses_to_move_when_a_child_cannot():
    class Fixed:  # parameters and grads, but no to()
        def parameters(self):
            return {}
        grads = {}

    lin = nn.Linear(2, 2)
    md = nn.ModuleDict(a=lin, b=Fixed())
    assert md.device == "cpu"
    with pytest.raises(TypeError, match="no to"):
        md.to("cpu")
