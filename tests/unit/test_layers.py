"""Tests of the layers rnnfast.RNN / LSTM / GRU (multi-layer, bidirectional, batch_first, ...).

* central finite-difference gradient checks (float64, "cpu" engine) of dx, dh0, dc0 and every
  entry of layer.grads, for every cell and option;
* the "cpu" engine against the "reference" engine (same weights) in float64 and float32;
* against torch.nn.RNN / LSTM / GRU with copied weights;
* behaviour: zero_grad, accumulation, eval mode, dtypes, names, learned initial state, determinism.

The single-layer NumPy reference itself is tested in test_reference.py.
"""

import numpy as np
import pytest

import rnnfast

from helpers import numerical_grad, randn, rel_err

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho"]
TORCH_CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]  # torch has no reset-before GRU
LAYER_OPTS = ("num_layers", "bias", "batch_first", "bidirectional")


# ---------------------------------------------------------------------------------------------
# helpers: one interface over the three layer classes
# ---------------------------------------------------------------------------------------------

def make_layer(cell, C, H, dtype="float64", **kw):
    kw.setdefault("seed", 0)
    if cell.startswith("rnn"):
        return rnnfast.RNN(C, H, nonlinearity=cell[4:], dtype=dtype, **kw)
    if cell == "lstm":
        return rnnfast.LSTM(C, H, dtype=dtype, **kw)
    return rnnfast.GRU(C, H, dtype=dtype, reset_after=(cell == "gru"), **kw)


def is_lstm(layer):
    return isinstance(layer, rnnfast.LSTM)


def shapes(layer, T, N, unbatched=False):
    """Shapes of (x, y, states) for a layer and sequence size."""
    L, D, H, C = layer.num_layers, layer.num_directions, layer.hidden_size, layer.input_size
    if unbatched:
        return (T, C), (T, D * H), (L * D, H)
    if layer.batch_first:
        return (N, T, C), (N, T, D * H), (L * D, N, H)
    return (T, N, C), (T, N, D * H), (L * D, N, H)


def make_problem(layer, T, N, seed=1, hx=True, unbatched=False, dy=True, dh_n=True, dc_n=True,
                 dtype=None):
    """Random inputs and upstream gradients (None where not wanted)."""
    rng = np.random.default_rng(seed)
    dtype = layer.dtype if dtype is None else dtype
    xs, ys, ss = shapes(layer, T, N, unbatched)
    lstm = is_lstm(layer)
    return dict(
        x=randn(rng, xs, dtype),
        h0=randn(rng, ss, dtype, 0.5) if hx else None,
        c0=randn(rng, ss, dtype, 0.5) if hx and lstm else None,
        dy=randn(rng, ys, dtype) if dy else None,
        dh_n=randn(rng, ss, dtype) if dh_n else None,
        dc_n=randn(rng, ss, dtype) if dc_n and lstm else None,
    )


def cast_problem(p, dtype):
    return {k: (None if v is None else v.astype(dtype)) for k, v in p.items()}


def forward(layer, p):
    lstm = is_lstm(layer)
    hx = None if p["h0"] is None else ((p["h0"], p["c0"]) if lstm else p["h0"])
    y, s = layer(p["x"], hx)
    h_n, c_n = s if lstm else (s, None)
    return dict(y=y, h_n=h_n, c_n=c_n)


def backward(layer, p):
    if is_lstm(layer):
        dx, (dh0, dc0) = layer.backward(p["dy"], (p["dh_n"], p["dc_n"]))
    else:
        dx, dh0 = layer.backward(p["dy"], p["dh_n"])
        dc0 = None
    return dict(dx=dx, dh0=dh0, dc0=dc0)


def run(layer, p):
    """zero_grad, forward, backward: outputs, input gradients and copies of layer.grads."""
    layer.zero_grad()
    out = forward(layer, p)
    out.update(backward(layer, p))
    out.update({"grad " + k: v.copy() for k, v in layer.grads.items()})
    return out


def loss(layer, p):
    """sum(y*dy) + sum(h_n*dh_n) (+ sum(c_n*dc_n)), the upstream gradients that are given."""
    out = forward(layer, p)
    total = 0.0
    for o, g in (("y", "dy"), ("h_n", "dh_n"), ("c_n", "dc_n")):
        if p[g] is not None:
            total += float(np.sum(out[o] * p[g]))
    return total


def errors(a, b):
    """rel_err of every entry of two result dicts (same keys, None in the same places)."""
    assert set(a) == set(b)
    errs = {}
    for k in a:
        if a[k] is None or b[k] is None:
            assert a[k] is None and b[k] is None, k
            continue
        assert a[k].shape == b[k].shape, k
        errs[k] = rel_err(a[k], b[k])
    return errs


def split(cfg):
    layer_kw, prob_kw = cfg
    return dict(layer_kw), dict(prob_kw)


def randomize_initial_state(layer, seed=7):
    """Give a learn_initial_state layer a non-zero learned h0 (c0)."""
    rng = np.random.default_rng(seed)
    layer.load_state_dict({k: randn(rng, v.shape, v.dtype, 0.5)
                           for k, v in layer.parameters().items() if k in ("h0", "c0")},
                          strict=False)


# ---------------------------------------------------------------------------------------------
# finite differences (float64, cpu engine)
# ---------------------------------------------------------------------------------------------

LEARNED = dict(learn_initial_state=True)
FD_CONFIGS = {
    "plain": ({}, {}),
    "two_layers": (dict(num_layers=2), {}),
    "bidirectional": (dict(bidirectional=True), {}),
    "two_layers_bidir_batch_first": (dict(num_layers=2, bidirectional=True, batch_first=True), {}),
    "no_bias_two_layers": (dict(bias=False, num_layers=2), {}),
    "learned_state": (dict(LEARNED, num_layers=2, bidirectional=True), dict(hx=False)),
    "learned_state_hx_given": (dict(learn_initial_state=True), {}),
    "no_hx_dy_only": ({}, dict(hx=False, dh_n=False, dc_n=False)),
    "dy_and_dc_n": (dict(num_layers=2), dict(dh_n=False)),
    "final_state_grads_only": (dict(num_layers=2, bidirectional=True), dict(dy=False)),
    "unbatched": (dict(num_layers=2, bidirectional=True), dict(unbatched=True)),
    "unbatched_batch_first": (dict(batch_first=True), dict(unbatched=True)),
}


@pytest.mark.parametrize("cfg", list(FD_CONFIGS))
@pytest.mark.parametrize("cell", CELLS)
def test_finite_differences(cell, cfg):
    layer_kw, prob_kw = split(FD_CONFIGS[cfg])
    layer = make_layer(cell, 3, 4, "float64", **layer_kw)
    if layer.learn_initial_state:
        randomize_initial_state(layer)
    p = make_problem(layer, T=3, N=2, **prob_kw)
    out = run(layer, p)
    assert set(layer.grads) == set(layer.parameters())

    checks = {"dx": (p["x"], out["dx"])}
    if p["h0"] is not None:
        checks["dh0"] = (p["h0"], out["dh0"])
    if p["c0"] is not None:
        checks["dc0"] = (p["c0"], out["dc0"])
    for name, arr in layer.parameters().items():
        checks["grads[" + name + "]"] = (arr, out["grad " + name])

    layer.eval()
    failures = {}
    for name, (arr, analytic) in checks.items():
        assert analytic.shape == arr.shape, name
        num = numerical_grad(lambda: loss(layer, p), arr)
        if name == "dx":
            assert np.abs(num).max() > 1e-3  # the loss depends on x: the check is not vacuous
        e = rel_err(analytic, num)
        if not e <= 1e-6:
            failures[name] = (e, float(np.abs(analytic - num).max()))
    assert not failures, f"(relative, absolute) errors vs finite differences: {failures}"


# ---------------------------------------------------------------------------------------------
# cpu engine vs reference engine
# ---------------------------------------------------------------------------------------------

ENGINE_CONFIGS = {
    "plain": ({}, {}),
    "two_layers_bidir": (dict(num_layers=2, bidirectional=True), {}),
    "three_layers_no_hx": (dict(num_layers=3), dict(hx=False)),
    "batch_first_bidir_no_bias": (dict(batch_first=True, bidirectional=True, bias=False), {}),
    "learned_state": (dict(LEARNED, num_layers=2, bidirectional=True), dict(hx=False)),
    "dy_only": (dict(bidirectional=True), dict(dh_n=False, dc_n=False)),
    "final_state_grads_only": (dict(num_layers=2), dict(dy=False)),
    "unbatched": (dict(num_layers=2, bidirectional=True, batch_first=True), dict(unbatched=True)),
}
MODERATE = (20, 5, 13, 33)  # T, N, C, H
EDGE_SIZES = {"T1": (1, 3, 4, 5), "N1": (6, 1, 4, 5), "H1": (5, 3, 4, 1), "C1": (5, 3, 1, 5),
              "all1": (1, 1, 1, 1),
              "N40": (20, 40, 4, 5)}  # the backward accumulates dW_hh in chunks of 7 steps here: 7, 7, 6
ENGINE_CASES = ([(cfg, "moderate") for cfg in ENGINE_CONFIGS]
                + [(cfg, size) for cfg in ("plain", "two_layers_bidir") for size in EDGE_SIZES])


def size_of(name):
    return MODERATE if name == "moderate" else EDGE_SIZES[name]


def engine_pair(cell, C, H, layer_kw, dtype):
    cpu = make_layer(cell, C, H, dtype, engine="cpu", **layer_kw)
    if cpu.learn_initial_state:
        randomize_initial_state(cpu)
    ref = make_layer(cell, C, H, dtype, engine="reference", seed=123, **layer_kw)
    ref.load_state_dict(cpu.state_dict())
    return cpu, ref


@pytest.mark.parametrize("cfg,size", ENGINE_CASES, ids=[f"{c}-{s}" for c, s in ENGINE_CASES])
@pytest.mark.parametrize("cell", CELLS)
def test_cpu_engine_matches_reference_float64(cell, cfg, size):
    T, N, C, H = size_of(size)
    layer_kw, prob_kw = split(ENGINE_CONFIGS[cfg])
    cpu, ref = engine_pair(cell, C, H, layer_kw, "float64")
    p = make_problem(cpu, T, N, **prob_kw)
    errs = errors(run(cpu, p), run(ref, p))
    bad = {k: e for k, e in errs.items() if not e <= 1e-12}
    assert not bad, f"cpu vs reference (float64) relative errors: {bad}"


@pytest.mark.parametrize("cfg,size", ENGINE_CASES, ids=[f"{c}-{s}" for c, s in ENGINE_CASES])
@pytest.mark.parametrize("cell", CELLS)
def test_cpu_engine_matches_reference_float32(cell, cfg, size):
    T, N, C, H = size_of(size)
    layer_kw, prob_kw = split(ENGINE_CONFIGS[cfg])
    cpu32, ref32 = engine_pair(cell, C, H, layer_kw, "float32")
    ref64 = make_layer(cell, C, H, "float64", engine="reference", **layer_kw)
    ref64.load_state_dict(cpu32.state_dict())  # the same (float32-representable) weights
    p32 = make_problem(cpu32, T, N, **prob_kw)
    p64 = cast_problem(p32, np.float64)  # the same inputs, exactly

    truth = run(ref64, p64)
    got, baseline = run(cpu32, p32), run(ref32, p32)
    for k, v in got.items():
        assert v is None or v.dtype == np.float32, k
    e_cpu, e_base = errors(got, truth), errors(baseline, truth)
    bad = {k: (e_cpu[k], e_base[k]) for k in e_cpu
           if not (e_cpu[k] <= 2e-4 and e_cpu[k] <= max(2 * e_base[k], 2e-5))}
    assert not bad, f"float32 cpu vs float64 reference (cpu error, float32 reference error): {bad}"


# ---------------------------------------------------------------------------------------------
# against PyTorch
# ---------------------------------------------------------------------------------------------

TORCH_CONFIGS = {
    "plain": ({}, {}),
    "two_layers_bidir": (dict(num_layers=2, bidirectional=True), {}),
    "batch_first_no_bias_two_layers": (dict(batch_first=True, bias=False, num_layers=2), {}),
    "bidir_batch_first_no_hx": (dict(bidirectional=True, batch_first=True), dict(hx=False)),
    "dy_only": (dict(num_layers=2), dict(dh_n=False, dc_n=False)),
    "final_state_grads_only": (dict(num_layers=2, bidirectional=True), dict(dy=False)),
    "unbatched": (dict(num_layers=2, bidirectional=True), dict(unbatched=True)),
}
TORCH_CASES = ([(cfg, (5, 3, 4, 6)) for cfg in TORCH_CONFIGS]
               + [("plain", (1, 1, 1, 1)), ("two_layers_bidir", (7, 2, 5, 3))])


def torch_module(torch, cell, C, H, layer_kw, dtype):
    kw = {k: v for k, v in layer_kw.items() if k in LAYER_OPTS}
    if cell.startswith("rnn"):
        m = torch.nn.RNN(C, H, nonlinearity=cell[4:], **kw)
    elif cell == "lstm":
        m = torch.nn.LSTM(C, H, **kw)
    else:
        m = torch.nn.GRU(C, H, **kw)
    return m.to(dtype)


def torch_run(torch, m, p, lstm):
    t = {k: (None if v is None else torch.tensor(v, requires_grad=k in ("x", "h0", "c0")))
         for k, v in p.items()}
    hx = None if t["h0"] is None else ((t["h0"], t["c0"]) if lstm else t["h0"])
    y, s = m(t["x"], hx)
    h_n, c_n = s if lstm else (s, None)
    total = 0
    for o, g in ((y, "dy"), (h_n, "dh_n"), (c_n, "dc_n")):
        if t[g] is not None:
            total = total + (o * t[g]).sum()
    total.backward()
    out = dict(y=y, h_n=h_n, c_n=c_n, dx=t["x"].grad,
               dh0=None if t["h0"] is None else t["h0"].grad,
               dc0=None if t["c0"] is None else t["c0"].grad)
    out = {k: (None if v is None else v.detach().numpy()) for k, v in out.items()}
    for name, param in m.named_parameters():
        out["grad " + name] = (np.zeros(tuple(param.shape)) if param.grad is None
                               else param.grad.detach().numpy())
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cfg,size", TORCH_CASES,
                         ids=[f"{c}-{'x'.join(map(str, s))}" for c, s in TORCH_CASES])
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_against_torch(cell, cfg, size, dtype):
    torch = pytest.importorskip("torch")
    T, N, C, H = size
    layer_kw, prob_kw = split(TORCH_CONFIGS[cfg])
    torch.manual_seed(0)
    m = torch_module(torch, cell, C, H, layer_kw, getattr(torch, dtype))
    layer = make_layer(cell, C, H, dtype, **layer_kw)
    layer.load_state_dict({k: v.detach().numpy() for k, v in m.state_dict().items()})
    p = make_problem(layer, T, N, **prob_kw)

    want = torch_run(torch, m, p, is_lstm(layer))
    got = run(layer, p)
    if prob_kw.get("hx") is False:  # torch gives no dh0 when it made the zero state itself
        got["dh0"] = got["dc0"] = None
    errs = errors(got, want)
    tol = 2e-4 if dtype == "float32" else 1e-9
    bad = {k: e for k, e in errs.items() if not e <= tol}
    assert not bad, f"rnnfast vs torch relative errors: {bad}"


@pytest.mark.parametrize("cell", TORCH_CELLS)
@pytest.mark.parametrize("layer_kw", [{}, dict(num_layers=3, bidirectional=True), dict(bias=False),
                                      dict(num_layers=2, bias=False, bidirectional=True)])
def test_parameter_names_and_shapes_match_torch(cell, layer_kw):
    torch = pytest.importorskip("torch")
    m = torch_module(torch, cell, 5, 7, layer_kw, torch.float32)
    layer = make_layer(cell, 5, 7, "float32", **layer_kw)
    want = [(k, tuple(v.shape)) for k, v in m.state_dict().items()]
    assert [(k, v.shape) for k, v in layer.parameters().items()] == want
    assert [(k, v.shape) for k, v in layer.state_dict().items()] == want
    assert [(k, v.shape) for k, v in layer.grads.items()] == want


# ---------------------------------------------------------------------------------------------
# behaviour
# ---------------------------------------------------------------------------------------------

BEHAVIOUR_KW = dict(num_layers=2, bidirectional=True, learn_initial_state=True)


@pytest.mark.parametrize("cell", CELLS)
def test_zero_grad(cell):
    layer = make_layer(cell, 3, 4, **BEHAVIOUR_KW)
    p = make_problem(layer, 4, 2, hx=False)
    run(layer, p)
    assert all(np.abs(g).max() > 0 for g in layer.grads.values())
    arrays = {k: id(v) for k, v in layer.grads.items()}
    layer.zero_grad()
    assert set(layer.grads) == set(layer.parameters())
    for k, g in layer.grads.items():
        assert not np.any(g), k
        assert g.shape == layer.parameters()[k].shape and g.dtype == layer.dtype
    assert {k: id(v) for k, v in layer.grads.items()} == arrays  # zeroed in place


@pytest.mark.parametrize("engine", ["cpu", "reference"])
@pytest.mark.parametrize("cell", CELLS)
def test_grads_accumulate(cell, engine):
    layer = make_layer(cell, 3, 4, engine=engine, **BEHAVIOUR_KW)
    randomize_initial_state(layer)
    p = make_problem(layer, 4, 2, hx=False)
    once = run(layer, p)
    forward(layer, p)
    second = backward(layer, p)
    for k in ("dx", "dh0", "dc0"):  # input gradients are returned, not accumulated
        if once[k] is not None:
            np.testing.assert_array_equal(second[k], once[k], err_msg=k)
    for k, g in layer.grads.items():
        assert rel_err(g, 2 * once["grad " + k]) <= 1e-14, k


@pytest.mark.parametrize("cell", CELLS)
def test_eval_mode(cell):
    layer = make_layer(cell, 3, 4, **BEHAVIOUR_KW)
    p = make_problem(layer, 4, 2)
    train_out = forward(layer, p)
    assert layer.eval() is layer and layer.training is False
    eval_out = forward(layer, p)
    for k, v in train_out.items():
        if v is not None:
            np.testing.assert_array_equal(eval_out[k], v, err_msg=k)
    with pytest.raises(RuntimeError):
        backward(layer, p)
    assert layer.train() is layer and layer.training is True
    forward(layer, p)
    backward(layer, p)


def test_eval_forward_discards_earlier_training_cache():
    layer = rnnfast.GRU(3, 4, dtype="float64", seed=0)
    x = np.ones((2, 1, 3))
    layer(x)
    layer.eval()
    layer(x)
    with pytest.raises(RuntimeError):
        layer.backward(np.ones((2, 1, 4)))


@pytest.mark.parametrize("cell", CELLS)
def test_backward_twice_raises(cell):
    layer = make_layer(cell, 3, 4)
    p = make_problem(layer, 3, 2)
    forward(layer, p)
    backward(layer, p)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    with pytest.raises(RuntimeError):
        backward(layer, p)
    for k, v in layer.grads.items():  # the failed call added nothing
        np.testing.assert_array_equal(v, grads[k], err_msg=k)


@pytest.mark.parametrize("engine", ["cpu", "reference"])
@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
def test_dtypes(cell, dtype, engine):
    layer = make_layer(cell, 3, 4, dtype, engine=engine, **BEHAVIOUR_KW)
    want = np.dtype(dtype)
    assert layer.dtype == want
    for k in list(layer.parameters()) + list(layer.grads):
        assert layer.parameters()[k].dtype == want and layer.grads[k].dtype == want, k
    for unbatched in (False, True):
        out = run(layer, make_problem(layer, 3, 2, unbatched=unbatched))
        for k, v in out.items():
            if v is not None:
                assert v.dtype == want, k


@pytest.mark.parametrize("cell", CELLS)
def test_output_shapes(cell):
    for kw in ({}, dict(batch_first=True, num_layers=2, bidirectional=True)):
        layer = make_layer(cell, 3, 4, **kw)
        for unbatched in (False, True):
            xs, ys, ss = shapes(layer, 5, 2, unbatched)
            out = run(layer, make_problem(layer, 5, 2, unbatched=unbatched))
            assert out["y"].shape == ys and out["h_n"].shape == ss and out["dx"].shape == xs
            assert out["dh0"].shape == ss
            if is_lstm(layer):
                assert out["c_n"].shape == ss and out["dc0"].shape == ss


@pytest.mark.parametrize("cell", CELLS)
def test_h_n_is_last_output(cell):
    layer = make_layer(cell, 3, 4, num_layers=2, bidirectional=True)
    out = forward(layer, make_problem(layer, 5, 2))
    H = 4
    np.testing.assert_array_equal(out["h_n"][2], out["y"][-1, :, :H])  # last layer, forward
    np.testing.assert_array_equal(out["h_n"][3], out["y"][0, :, H:])  # last layer, reverse


@pytest.mark.parametrize("cell", CELLS)
def test_batch_first_and_unbatched_agree_with_time_major(cell):
    tm = make_layer(cell, 3, 4, num_layers=2, bidirectional=True)
    bf = make_layer(cell, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    bf.load_state_dict(tm.state_dict())
    p = make_problem(tm, 5, 3)
    a = run(tm, p)
    q = dict(p, x=p["x"].transpose(1, 0, 2).copy(), dy=p["dy"].transpose(1, 0, 2).copy())
    b = run(bf, q)
    for k in ("y", "dx"):
        assert rel_err(b[k].transpose(1, 0, 2), a[k]) <= 1e-14, k
    for k in a:
        if k not in ("y", "dx") and a[k] is not None:
            assert rel_err(b[k], a[k]) <= 1e-14, k
    # one unbatched sequence == the same sequence as a batch of one
    n = 1
    u = {k: (None if v is None else v[:, n].copy()) for k, v in p.items()}
    one = {k: (None if v is None else v[:, n:n + 1].copy()) for k, v in p.items()}
    cu, c1 = run(tm, u), run(tm, one)
    for k in cu:
        if cu[k] is not None:
            want = c1[k] if k.startswith("grad ") else c1[k][:, 0]
            assert rel_err(cu[k], want) <= 1e-14, k


@pytest.mark.parametrize("cell", CELLS)
def test_learned_initial_state_used_when_hx_is_none(cell):
    layer = make_layer(cell, 3, 4, **BEHAVIOUR_KW)
    assert all(not np.any(layer.parameters()[k]) for k in ("h0", "c0") if k in layer.parameters())
    randomize_initial_state(layer)
    params = layer.parameters()
    N = 3
    p = make_problem(layer, 4, N, hx=False)
    learned = forward(layer, p)
    explicit = dict(p, h0=np.repeat(params["h0"][:, None, :], N, axis=1))
    if is_lstm(layer):
        explicit["c0"] = np.repeat(params["c0"][:, None, :], N, axis=1)
    given = forward(layer, explicit)
    for k, v in learned.items():
        if v is not None:
            np.testing.assert_array_equal(v, given[k], err_msg=k)
    plain = make_layer(cell, 3, 4, num_layers=2, bidirectional=True)  # zeros when not learned
    plain.load_state_dict({k: v for k, v in layer.state_dict().items() if k not in ("h0", "c0")})
    assert not np.allclose(forward(plain, p)["y"], learned["y"])


@pytest.mark.parametrize("cell", CELLS)
def test_learned_initial_state_grad_is_sum_of_dh0(cell):
    layer = make_layer(cell, 3, 4, **BEHAVIOUR_KW)
    randomize_initial_state(layer)
    out = run(layer, make_problem(layer, 4, 3, hx=False))
    assert rel_err(out["grad h0"], out["dh0"].sum(axis=1)) <= 1e-14
    if is_lstm(layer):
        assert rel_err(out["grad c0"], out["dc0"].sum(axis=1)) <= 1e-14


@pytest.mark.parametrize("cell", CELLS)
def test_learned_initial_state_gets_no_grad_when_hx_given(cell):
    """With an explicit hx the learned h0/c0 are not used, so their gradient must stay zero."""
    layer = make_layer(cell, 3, 4, **BEHAVIOUR_KW)
    randomize_initial_state(layer)
    out = run(layer, make_problem(layer, 4, 3, hx=True))
    assert np.abs(out["dh0"]).max() > 0  # the explicit h0 does get a gradient
    for k in ("h0", "c0"):
        if k in layer.grads:
            assert not np.any(layer.grads[k]), f"grads[{k!r}] = {layer.grads[k]}"


@pytest.mark.parametrize("cell", CELLS)
def test_deterministic(cell):
    layer = make_layer(cell, 5, 6, "float32", num_layers=2, bidirectional=True)
    p = make_problem(layer, 9, 4)
    a, b = run(layer, p), run(layer, p)
    for k, v in a.items():
        if v is not None:
            np.testing.assert_array_equal(b[k], v, err_msg=k)


@pytest.mark.parametrize("cell", CELLS)
def test_seed_reproducible_init(cell):
    a = make_layer(cell, 5, 6, num_layers=2, bidirectional=True, seed=42)
    b = make_layer(cell, 5, 6, num_layers=2, bidirectional=True, seed=42)
    c = make_layer(cell, 5, 6, num_layers=2, bidirectional=True, seed=43)
    for k, v in a.parameters().items():
        np.testing.assert_array_equal(b.parameters()[k], v, err_msg=k)
        assert not np.array_equal(c.parameters()[k], v), k
        bound = 1 / np.sqrt(6)  # PyTorch's init: U(-1/sqrt(H), 1/sqrt(H))
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.5 * bound, k


def test_parameters_are_live_and_state_dict_is_a_copy():
    layer = rnnfast.LSTM(3, 4, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((3, 2, 3))
    y0 = layer(x)[0].copy()
    sd = layer.state_dict()
    sd["weight_hh_l0"][...] = 0  # a copy: the layer does not change
    np.testing.assert_array_equal(layer(x)[0], y0)
    layer.parameters()["weight_hh_l0"][...] = 0  # the layer's own array
    assert not np.array_equal(layer(x)[0], y0)
    layer.load_state_dict(dict(layer.state_dict(), weight_hh_l0=sd["weight_hh_l0"] * 0 + 1))
    assert np.all(layer.parameters()["weight_hh_l0"] == 1)


def test_load_state_dict_converts_dtype_and_non_strict_keeps_missing():
    src = rnnfast.GRU(3, 4, dtype="float64", seed=1)
    dst = rnnfast.GRU(3, 4, dtype="float32", seed=2)
    keep = dst.parameters()["bias_hh_l0"].copy()
    partial = {k: v for k, v in src.state_dict().items() if k != "bias_hh_l0"}
    assert dst.load_state_dict(partial, strict=False) is dst
    np.testing.assert_array_equal(dst.parameters()["bias_hh_l0"], keep)
    for k, v in partial.items():
        assert dst.parameters()[k].dtype == np.float32
        np.testing.assert_array_equal(dst.parameters()[k], v.astype(np.float32))


@pytest.mark.parametrize("cell", CELLS)
def test_non_contiguous_inputs(cell):
    layer = make_layer(cell, 3, 4, bidirectional=True)
    p = make_problem(layer, 4, 3)
    a = run(layer, p)

    def strided(v):  # the same values in a non-contiguous (Fortran-ordered) array
        return None if v is None else np.asfortranarray(v)

    q = {k: strided(v) for k, v in p.items()}
    assert not q["x"].flags.c_contiguous
    b = run(layer, q)
    for k, v in a.items():
        if v is not None:
            np.testing.assert_array_equal(b[k], v, err_msg=k)


@pytest.mark.parametrize("cell", CELLS)
def test_inputs_not_modified(cell):
    layer = make_layer(cell, 3, 4, num_layers=2, bidirectional=True)
    p = make_problem(layer, 4, 3)
    saved = {k: (None if v is None else v.copy()) for k, v in p.items()}
    run(layer, p)
    for k, v in p.items():
        if v is not None:
            np.testing.assert_array_equal(v, saved[k], err_msg=k)


def test_gru_variants_and_relu_differ():
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    a = rnnfast.GRU(3, 4, dtype="float64", seed=0, reset_after=True)
    b = rnnfast.GRU(3, 4, dtype="float64", seed=0, reset_after=False)
    assert not np.allclose(a(x)[0], b(x)[0])
    r = rnnfast.RNN(3, 4, nonlinearity="relu", dtype="float64", seed=0)
    assert np.all(r(x)[0] >= 0) and np.any(r(x)[0] == 0)


def test_repr_and_build_info():
    assert "LSTM" in repr(rnnfast.LSTM(3, 4, num_layers=2, bidirectional=True))
    info = rnnfast.build_info()
    for key in ("version", "blas", "cuda_compiled", "cuda_available", "cuda_device_count",
                "compiler"):
        assert key in info, key
    assert info["version"] == rnnfast.__version__
    assert isinstance(info["cuda_available"], bool)
    assert info["cuda_available"] == (info["cuda_compiled"] and info["cuda_device_count"] > 0)
