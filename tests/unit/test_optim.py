"""Tests of rnnfast.optim: each optimizer against update equations written out by hand and against
torch.optim step by step (same hyperparameters, random gradients, float64), state_dict round trips
(also through np.savez), clipping against torch.nn.utils, and bad arguments / non-finite gradients."""

import math

import numpy as np
import pytest

from rnnfast import nn, optim

from helpers import rel_err

SHAPES = {"w": (3, 4), "b": (4,)}


def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return nn.ParameterDict({k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()})


def grad_sequence(steps, seed=1):
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(steps)]


def set_grads(module, grads):
    for k, g in grads.items():
        module.grads[k][...] = g


# ---------------------------------------------------------------------------------------------
# the update equations, written out for two steps with the same scalar gradient sequence
# ---------------------------------------------------------------------------------------------

def run_scalar(opt_cls, steps_grads, p0=1.0, **hp):
    m = nn.ParameterDict(p=np.array([p0]))
    opt = opt_cls(m, **hp)
    out = []
    for g in steps_grads:
        m.grads["p"][...] = g
        opt.step()
        out.append(float(m.parameters()["p"][0]))
    return out


def test_sgd_by_hand():
    g1, g2, lr, mu, wd, damp = 0.5, -2.0, 0.1, 0.9, 0.01, 0.3
    p1, p2 = run_scalar(optim.SGD, [g1, g2], lr=lr)
    assert p1 == pytest.approx(1 - lr * g1, rel=1e-15) and p2 == pytest.approx(p1 - lr * g2, rel=1e-15)
    # momentum with dampening and weight decay: b1 = g1', b2 = mu b1 + (1 - damp) g2'
    p1, p2 = run_scalar(optim.SGD, [g1, g2], lr=lr, momentum=mu, dampening=damp, weight_decay=wd)
    d1 = g1 + wd * 1.0
    b1 = d1
    e1 = 1 - lr * b1
    d2 = g2 + wd * e1
    b2 = mu * b1 + (1 - damp) * d2
    assert p1 == pytest.approx(e1, rel=1e-15) and p2 == pytest.approx(e1 - lr * b2, rel=1e-15)
    # nesterov: step with g + mu b
    p1, p2 = run_scalar(optim.SGD, [g1, g2], lr=lr, momentum=mu, nesterov=True)
    b1 = g1
    e1 = 1 - lr * (g1 + mu * b1)
    b2 = mu * b1 + g2
    assert p1 == pytest.approx(e1, rel=1e-15) and p2 == pytest.approx(e1 - lr * (g2 + mu * b2), rel=1e-15)


def test_rmsprop_by_hand():
    g1, g2, lr, a, eps, mu = 0.5, -2.0, 0.01, 0.9, 1e-8, 0.8
    p1, p2 = run_scalar(optim.RMSprop, [g1, g2], lr=lr, alpha=a, eps=eps)
    s1 = (1 - a) * g1 ** 2
    e1 = 1 - lr * g1 / (math.sqrt(s1) + eps)
    s2 = a * s1 + (1 - a) * g2 ** 2
    assert p1 == pytest.approx(e1, rel=1e-14) and p2 == pytest.approx(e1 - lr * g2 / (math.sqrt(s2) + eps),
                                                                       rel=1e-14)
    # the lecture's rmsprop with momentum, centered
    p1, p2 = run_scalar(optim.RMSprop, [g1, g2], lr=lr, alpha=a, eps=eps, momentum=mu, centered=True)
    s1, m1 = (1 - a) * g1 ** 2, (1 - a) * g1
    b1 = g1 / (math.sqrt(s1 - m1 ** 2) + eps)
    e1 = 1 - lr * b1
    s2, m2 = a * s1 + (1 - a) * g2 ** 2, a * m1 + (1 - a) * g2
    b2 = mu * b1 + g2 / (math.sqrt(s2 - m2 ** 2) + eps)
    assert p1 == pytest.approx(e1, rel=1e-12) and p2 == pytest.approx(e1 - lr * b2, rel=1e-12)


def test_adagrad_by_hand_and_min_char_rnn_form():
    g1, g2, lr = 0.5, -2.0, 0.1
    p1, p2 = run_scalar(optim.Adagrad, [g1, g2], lr=lr, eps=1e-10, initial_accumulator_value=0.1,
                        lr_decay=0.5)
    S1 = 0.1 + g1 ** 2
    e1 = 1 - lr * g1 / (math.sqrt(S1) + 1e-10)
    S2 = S1 + g2 ** 2
    assert p1 == pytest.approx(e1, rel=1e-15)
    assert p2 == pytest.approx(e1 - lr / (1 + 0.5) * g2 / (math.sqrt(S2) + 1e-10), rel=1e-15)
    # min-char-rnn: mem += g*g; p -= lr * g / np.sqrt(mem + 1e-8)
    p1, p2 = run_scalar(optim.Adagrad, [1e-5, 2e-5], lr=lr, eps=1e-8, eps_inside_sqrt=True)
    mem1 = 1e-10
    e1 = 1 - lr * 1e-5 / math.sqrt(mem1 + 1e-8)
    mem2 = mem1 + 4e-10
    assert p1 == pytest.approx(e1, rel=1e-15) and p2 == pytest.approx(e1 - lr * 2e-5 / math.sqrt(mem2 + 1e-8),
                                                                       rel=1e-15)


def test_adam_by_hand():
    g1, g2, lr, b1, b2, eps = 0.5, -2.0, 0.01, 0.8, 0.9, 1e-8
    p1, p2 = run_scalar(optim.Adam, [g1, g2], lr=lr, betas=(b1, b2), eps=eps)
    m1, v1 = (1 - b1) * g1, (1 - b2) * g1 ** 2
    e1 = 1 - lr / (1 - b1) * m1 / (math.sqrt(v1) / math.sqrt(1 - b2) + eps)  # = 1 - lr * sign(g1) approx.
    m2, v2 = b1 * m1 + (1 - b1) * g2, b2 * v1 + (1 - b2) * g2 ** 2
    e2 = e1 - lr / (1 - b1 ** 2) * m2 / (math.sqrt(v2) / math.sqrt(1 - b2 ** 2) + eps)
    assert p1 == pytest.approx(e1, rel=1e-14) and p2 == pytest.approx(e2, rel=1e-14)
    assert p1 == pytest.approx(1 - lr, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# against torch.optim, 5 steps of random gradients
# ---------------------------------------------------------------------------------------------

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, momentum=0.9)),
    ("RMSprop", dict(lr=1e-3, momentum=0.5, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=1e-2, centered=True, eps=1e-6)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.1, eps=1e-6)),
    ("Adam", dict()),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
]


@pytest.mark.parametrize("name,hp", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_against_torch(name, hp):
    torch = pytest.importorskip("torch")
    m = make_params()
    tparams = {k: torch.nn.Parameter(torch.from_numpy(p.copy())) for k, p in m.parameters().items()}
    opt = getattr(optim, name)(m, **hp)
    topt = getattr(torch.optim, name)(list(tparams.values()), **hp)
    for grads in grad_sequence(5):
        set_grads(m, grads)
        for k, g in grads.items():
            tparams[k].grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for k, p in m.parameters().items():
            assert rel_err(p, tparams[k].detach().numpy()) < 1e-12, k


def test_float32_parameters_stay_float32_and_match_torch():
    torch = pytest.importorskip("torch")
    m = make_params(dtype=np.float32)
    tp = {k: torch.nn.Parameter(torch.from_numpy(p.copy())) for k, p in m.parameters().items()}
    opt, topt = optim.Adam(m, lr=1e-2), torch.optim.Adam(list(tp.values()), lr=1e-2)
    for grads in grad_sequence(5):
        set_grads(m, grads)
        for k, g in grads.items():
            tp[k].grad = torch.from_numpy(g.astype(np.float32))
        opt.step()
        topt.step()
    for k, p in m.parameters().items():
        assert p.dtype == np.float32 and opt.state[k]["exp_avg"].dtype == np.float32
        assert rel_err(p, tp[k].detach().numpy()) < 1e-6


# ---------------------------------------------------------------------------------------------
# state_dict
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,hp", [CONFIGS[3], CONFIGS[6], CONFIGS[9], CONFIGS[11]],
                         ids=["SGD", "RMSprop", "Adagrad", "Adam"])
@pytest.mark.parametrize("via_npz", [False, True])
def test_state_dict_round_trip_continues_identically(name, hp, via_npz, tmp_path):
    cls = getattr(optim, name)
    grads = grad_sequence(6)
    a = make_params()
    opt_a = cls(a, **hp)
    for g in grads[:3]:
        set_grads(a, g)
        opt_a.step()
    sd = opt_a.state_dict()
    for v in sd.values():
        assert isinstance(v, (str, bool, int, float, tuple, np.ndarray))
    assert sd["state.w.step"] == 3
    b = make_params(seed=5)
    b.load_state_dict(a.state_dict())
    opt_b = cls(b, lr=0.5)  # hyperparameters come from the state dict
    if via_npz:
        np.savez(tmp_path / "opt.npz", **sd)
        with np.load(tmp_path / "opt.npz") as f:
            sd = dict(f)
    opt_b.load_state_dict(sd)
    assert opt_b.defaults == opt_a.defaults
    for g in grads[3:]:
        for m, o in ((a, opt_a), (b, opt_b)):
            set_grads(m, g)
            o.step()
    for k in SHAPES:
        assert np.array_equal(a.parameters()[k], b.parameters()[k])
    sd_b = opt_b.state_dict()
    assert sd_b["state.w.step"] == 6
    sd_a = opt_a.state_dict()
    assert all(np.array_equal(sd_a[k], sd_b[k]) for k in sd_a)
    # the state dict is a copy
    buf = next(k for k in sd_a if k.startswith("state.w.") and not k.endswith("step"))
    sd_a[buf][...] = 99
    assert not (opt_a.state["w"][buf.rsplit(".", 1)[1]] == 99).any()


def test_load_state_dict_errors():
    m = make_params()
    opt = optim.Adam(m)
    set_grads(m, grad_sequence(1)[0])
    opt.step()
    sd = opt.state_dict()
    before = {k: v.copy() for k, v in opt.state["w"].items() if k != "step"}
    sd["state.w.exp_avg"] = sd["state.w.exp_avg"] + 1  # a valid entry next to each bad one
    with pytest.raises(ValueError, match="SGD"):
        optim.SGD(make_params(), lr=0.1).load_state_dict(sd)
    bad = dict(sd, **{"state.w.exp_avg": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="state.w.exp_avg"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="nope"):
        opt.load_state_dict(dict(sd, **{"state.nope.exp_avg": np.zeros(1)}))
    with pytest.raises(ValueError, match="momentum_buffer"):
        opt.load_state_dict(dict(sd, **{"state.w.momentum_buffer": np.zeros((3, 4))}))
    with pytest.raises(ValueError, match="betas"):
        opt.load_state_dict(dict(sd, betas=(0.9, 1.0)))
    with pytest.raises(ValueError, match="state.w.step"):
        opt.load_state_dict(dict(sd, **{"state.w.step": -1}))
    assert all(np.array_equal(opt.state["w"][k], v) for k, v in before.items())  # nothing written
    assert opt.defaults["betas"] == (0.9, 0.999)


# ---------------------------------------------------------------------------------------------
# params forms, lr, zero_grad, non-finite gradients, bad hyperparameters
# ---------------------------------------------------------------------------------------------

def test_params_as_list_dict_and_container():
    a, b = make_params(0), make_params(1)
    assert optim.SGD([a, b], lr=1).param_names == ["0.w", "0.b", "1.w", "1.b"]
    assert optim.SGD({"enc": a, "dec": b}, lr=1).param_names == ["enc.w", "enc.b", "dec.w", "dec.b"]
    assert optim.SGD(nn.ModuleDict(enc=a), lr=1).param_names == ["enc.w", "enc.b"]
    with pytest.raises(TypeError, match="params"):
        optim.SGD(np.zeros(3), lr=1)
    with pytest.raises(TypeError, match="params"):
        optim.SGD([a, 3], lr=1)
    with pytest.raises(ValueError, match="same array twice"):
        optim.SGD([a, a], lr=1)  # would be updated twice per step
    with pytest.raises(ValueError, match="no parameters"):
        optim.SGD(nn.ParameterDict(), lr=1)


def test_lr_settable_and_zero_grad():
    m = nn.ParameterDict(p=np.array([1.0]))
    opt = optim.SGD(m, lr=0.1)
    m.grads["p"][...] = 1
    opt.lr = 0.5
    opt.step()
    assert m.parameters()["p"][0] == 0.5 and opt.defaults["lr"] == 0.5
    opt.zero_grad()
    assert m.grads["p"][0] == 0
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_gradient_raises_and_writes_nothing(bad):
    m = make_params()
    opt = optim.RMSprop(m, momentum=0.9)
    set_grads(m, grad_sequence(1)[0])
    opt.step()
    params = {k: p.copy() for k, p in m.parameters().items()}
    state = {k: {b: np.copy(v) for b, v in st.items()} for k, st in opt.state.items()}
    set_grads(m, grad_sequence(1, seed=3)[0])
    m.grads["b"][2] = bad
    with pytest.raises(ValueError, match="'b'"):
        opt.step()
    for k, p in m.parameters().items():
        assert np.array_equal(p, params[k])
        assert all(np.array_equal(opt.state[k][b], v) for b, v in state[k].items())


BAD_HP = [
    (optim.SGD, dict(lr=-0.1), ValueError, "lr"),
    (optim.SGD, dict(lr=0.1, momentum=-1), ValueError, "momentum"),
    (optim.SGD, dict(lr=0.1, nesterov=True), ValueError, "nesterov"),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "nesterov"),
    (optim.SGD, dict(lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
    (optim.SGD, dict(lr="0.1"), TypeError, "lr"),
    (optim.SGD, dict(lr=math.nan), ValueError, "lr"),
    (optim.SGD, dict(lr=0.1, nesterov=1), TypeError, "nesterov"),
    (optim.RMSprop, dict(alpha=1.5), ValueError, "alpha"),
    (optim.RMSprop, dict(eps=0), ValueError, "eps"),
    (optim.RMSprop, dict(momentum=-0.1), ValueError, "momentum"),
    (optim.RMSprop, dict(centered="yes"), TypeError, "centered"),
    (optim.Adagrad, dict(lr_decay=-1), ValueError, "lr_decay"),
    (optim.Adagrad, dict(initial_accumulator_value=-1), ValueError, "initial_accumulator_value"),
    (optim.Adagrad, dict(eps=-1e-10), ValueError, "eps"),
    (optim.Adam, dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\]"),
    (optim.Adam, dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
    (optim.Adam, dict(betas=0.9), TypeError, "betas"),
    (optim.Adam, dict(eps=0.0), ValueError, "eps"),
]


@pytest.mark.parametrize("cls,hp,exc,match", BAD_HP)
def test_bad_hyperparameters(cls, hp, exc, match):
    with pytest.raises(exc, match=match):
        cls(make_params(), **hp)


# ---------------------------------------------------------------------------------------------
# clipping
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("max_norm,norm_type", [(0.5, 2.0), (100.0, 2.0), (0.5, math.inf), (100.0, math.inf)])
def test_clip_grad_norm_against_torch(max_norm, norm_type):
    torch = pytest.importorskip("torch")
    a, b = make_params(0), make_params(1)
    grads = grad_sequence(2)
    set_grads(a, grads[0])
    set_grads(b, grads[1])
    tp = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in list(SHAPES.values()) * 2]
    for t, g in zip(tp, [*grads[0].values(), *grads[1].values()]):
        t.grad = torch.from_numpy(g.copy())
    total = optim.clip_grad_norm_([a, b], max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type)
    assert isinstance(total, float) and total == pytest.approx(ttotal.item(), rel=1e-14)
    ours = [*a.grads.values(), *b.grads.values()]
    for g, t in zip(ours, tp):
        assert rel_err(g, t.grad.numpy()) < 1e-14
    clipped = max(abs(g).max() for g in ours) if norm_type == math.inf else \
        math.sqrt(sum((g ** 2).sum() for g in ours))
    assert clipped == pytest.approx(min(total, max_norm), rel=1e-5)


def test_clip_grad_norm_nonfinite():
    m = make_params()
    set_grads(m, grad_sequence(1)[0])
    m.grads["w"][0, 0] = np.inf
    before = m.grads["b"].copy()
    with pytest.raises(ValueError, match="'w'"):
        optim.clip_grad_norm_(m, 1.0)
    total = optim.clip_grad_norm_(m, 1.0, error_if_nonfinite=False)
    assert total == math.inf and np.array_equal(m.grads["b"], before)
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm_(m, -1.0)
    with pytest.raises(ValueError, match="norm_type"):
        optim.clip_grad_norm_(m, 1.0, norm_type=1)


def test_clip_grad_value_against_torch_and_optimizer_as_params():
    torch = pytest.importorskip("torch")
    m = make_params()
    grads = grad_sequence(1)[0]
    set_grads(m, grads)
    opt = optim.SGD(m, lr=0.1)
    optim.clip_grad_value_(opt, 0.7)
    for k, g in grads.items():
        t = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64))
        t.grad = torch.from_numpy(g.copy())
        torch.nn.utils.clip_grad_value_([t], 0.7)
        assert np.array_equal(m.grads[k], t.grad.numpy())
    assert abs(m.grads["w"]).max() == 0.7
    with pytest.raises(ValueError, match="clip_value"):
        optim.clip_grad_value_(m, 0)
