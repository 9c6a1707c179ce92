"""Variable-length batches (lengths=) and dropout between layers.

* lengths: against torch with pack_padded_sequence(..., enforce_sorted=False) (outputs, final states and
  every gradient), the CPU engine against the reference (which runs each sequence by itself,
  reference/varlen.py) for the cells torch lacks and for both thread schedules, a full batch equal to
  no lengths, errors naming the argument;
* dropout: keep rate and scaling, the same masks in backward (a stack equals its layers run one by one
  with the mask applied), eval and p=0 without masks.
"""

import numpy as np
import pytest

import rnnfast
from rnnfast.backends import cells, engine_for, varlen

from helpers import numerical_grad, rel_err

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho"]
TORCH_CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def make_layer(cell, C, H, dtype="float64", **kw):
    if cell.startswith("rnn"):
        return rnnfast.RNN(C, H, nonlinearity=cell[4:], dtype=dtype, **kw)
    if cell == "lstm":
        return rnnfast.LSTM(C, H, dtype=dtype, **kw)
    return rnnfast.GRU(C, H, dtype=dtype, reset_after=cell == "gru", **kw)


def problem(layer, T, N, lengths, seed=1, hx=True):
    """Inputs and upstream gradients; dy is nonzero past each end too (it must not count there)."""
    rng = np.random.default_rng(seed)
    dt = layer.dtype
    D, H, L = layer.num_directions, layer.hidden_size, layer.num_layers
    xs = (N, T) if layer.batch_first else (T, N)
    lstm = isinstance(layer, rnnfast.LSTM)
    p = dict(x=rng.standard_normal(xs + (layer.input_size,)).astype(dt), lengths=np.asarray(lengths),
             dy=rng.standard_normal(xs + (D * H,)).astype(dt),
             h0=rng.standard_normal((L * D, N, H)).astype(dt) if hx else None,
             dh_n=rng.standard_normal((L * D, N, H)).astype(dt))
    p["c0"] = rng.standard_normal((L * D, N, H)).astype(dt) if hx and lstm else None
    p["dc_n"] = rng.standard_normal((L * D, N, H)).astype(dt) if lstm else None
    return p


def run(layer, p):
    layer.zero_grad()
    lstm = isinstance(layer, rnnfast.LSTM)
    hx = None if p["h0"] is None else ((p["h0"], p["c0"]) if lstm else p["h0"])
    y, s = layer(p["x"], hx, lengths=p["lengths"])
    h_n, c_n = s if lstm else (s, None)
    dx, ds = layer.backward(p["dy"], (p["dh_n"], p["dc_n"]) if lstm else p["dh_n"])
    dh0, dc0 = ds if lstm else (ds, None)
    out = dict(y=y, h_n=h_n, c_n=c_n, dx=dx, dh0=dh0 if p["h0"] is not None else None,
               dc0=dc0 if p["h0"] is not None else None)
    out.update({"grad " + k: g.copy() for k, g in layer.grads.items()})
    return out


def torch_run(torch, m, p, lstm, batch_first):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    t = {k: (None if v is None or k == "lengths" else torch.tensor(v, requires_grad=k in ("x", "h0", "c0")))
         for k, v in p.items()}
    packed = pack_padded_sequence(t["x"], torch.tensor(p["lengths"], dtype=torch.int64), batch_first=batch_first,
                                  enforce_sorted=False)
    hx = None if t["h0"] is None else ((t["h0"], t["c0"]) if lstm else t["h0"])
    out, s = m(packed, hx)
    T = p["x"].shape[1 if batch_first else 0]
    y, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    h_n, c_n = s if lstm else (s, None)
    total = (y * t["dy"]).sum() + (h_n * t["dh_n"]).sum()
    if lstm:
        total = total + (c_n * t["dc_n"]).sum()
    total.backward()
    res = dict(y=y, h_n=h_n, c_n=c_n, dx=t["x"].grad, dh0=None if t["h0"] is None else t["h0"].grad,
               dc0=None if t["c0"] is None else t["c0"].grad)
    res = {k: (None if v is None else v.detach().numpy()) for k, v in res.items()}
    for name, param in m.named_parameters():
        res["grad " + name] = param.grad.detach().numpy()
    return res


def compare(got, want, tol):
    assert set(got) == set(want), set(got) ^ set(want)
    bad = {}
    for k in got:
        if got[k] is None or want[k] is None:
            assert got[k] is None and want[k] is None, k
            continue
        assert got[k].shape == want[k].shape, (k, got[k].shape, want[k].shape)
        e = rel_err(got[k], want[k])
        if not e <= tol:
            bad[k] = e
    assert not bad, f"relative errors: {bad}"


TORCH_CASES = {
    "plain": (dict(), (6, 4, 3, 5), [6, 2, 5, 1]),
    "bidir_2layers": (dict(num_layers=2, bidirectional=True), (7, 5, 3, 4), [3, 7, 1, 6, 3]),
    "batch_first_bidir": (dict(batch_first=True, bidirectional=True), (5, 3, 2, 4), [2, 5, 4]),
    "rows_schedule": (dict(bidirectional=True), (6, 37, 3, 8), None),  # N >= 32: threads own rows
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(TORCH_CASES))
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_lengths_against_torch_packed(cell, case, dtype):
    torch = pytest.importorskip("torch")
    layer_kw, (T, N, C, H), lengths = TORCH_CASES[case]
    if lengths is None:
        lengths = np.random.default_rng(3).integers(1, T + 1, N)
    torch.manual_seed(0)
    kw = dict(layer_kw)
    if cell.startswith("rnn"):
        m = torch.nn.RNN(C, H, nonlinearity=cell[4:], **kw)
    else:
        m = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(C, H, **kw)
    m = m.to(getattr(torch, dtype))
    layer = make_layer(cell, C, H, dtype, **layer_kw)
    layer.load_state_dict({k: v.detach().numpy() for k, v in m.state_dict().items()})
    p = problem(layer, T, N, lengths)
    want = torch_run(torch, m, p, cell == "lstm", layer.batch_first)
    got = run(layer, p)
    compare(got, want, 2e-4 if dtype == "float32" else 1e-9)
    # past each end: zero output and zero input gradient
    y, dx = (got["y"], got["dx"]) if not layer.batch_first else (got["y"].swapaxes(0, 1), got["dx"].swapaxes(0, 1))
    for n, L in enumerate(lengths):
        assert not y[L:, n].any() and not dx[L:, n].any()


ENGINE_CASES = {
    # (layer options, (T, N, C, H)): by units on one thread, by units on two (H >= 128), by rows on two
    "units": (dict(num_layers=2, bidirectional=True), (6, 5, 3, 7)),
    "units_two_threads": (dict(), (4, 9, 3, 130)),
    "rows_two_threads": (dict(bidirectional=True, batch_first=True), (5, 40, 3, 20)),
    "learned_state": (dict(learn_initial_state=True, num_layers=2), (5, 6, 2, 4)),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(ENGINE_CASES))
@pytest.mark.parametrize("cell", CELLS)
def test_lengths_cpu_engine_matches_reference(cell, case, dtype):
    layer_kw, (T, N, C, H) = ENGINE_CASES[case]
    lengths = np.random.default_rng(N).integers(1, T + 1, N)
    lengths[0] = T
    ref = make_layer(cell, C, H, "float64", engine="reference", seed=5, **layer_kw)
    cpu = make_layer(cell, C, H, dtype, seed=5, **layer_kw)
    cpu.load_state_dict({k: v.astype(dtype) for k, v in ref.state_dict().items()})
    hx = not layer_kw.get("learn_initial_state")
    if not hx:  # a nonzero learned state
        rng = np.random.default_rng(2)
        sd = {k: (rng.standard_normal(v.shape) if k in ("h0", "c0") else v) for k, v in ref.state_dict().items()}
        ref.load_state_dict(sd)
        cpu.load_state_dict({k: v.astype(dtype) for k, v in sd.items()})
    p = problem(ref, T, N, lengths, hx=hx)
    want = run(ref, p)
    got = run(cpu, {k: v if v is None or k == "lengths" else v.astype(dtype) for k, v in p.items()})
    compare(got, want, 1e-4 if dtype == "float32" else 1e-10)


@pytest.mark.parametrize("cell", ["lstm", "gru_cho"])
def test_lengths_index_input(cell):
    """Integer (one-hot index) input: the CPU engine's gather path equals the reference's one-hot rows."""
    T, N, C, H = 6, 4, 5, 6
    rng = np.random.default_rng(0)
    x = rng.integers(0, C, (T, N))
    lengths = np.array([6, 2, 4, 1])
    outs = []
    for engine in ("reference", "cpu"):
        layer = make_layer(cell, C, H, engine=engine, seed=3, num_layers=2, bidirectional=True)
        y, _ = layer(x, lengths=lengths)
        dy = np.random.default_rng(1).standard_normal(y.shape)
        layer.backward(dy)
        outs.append((y, {k: g.copy() for k, g in layer.grads.items()}))
    assert rel_err(outs[0][0], outs[1][0]) < 1e-10
    for k in outs[0][1]:
        assert rel_err(outs[0][1][k], outs[1][1][k]) < 1e-10, k


@pytest.mark.parametrize("cell", CELLS)
def test_full_lengths_equal_no_lengths(cell):
    T, N, C, H = 5, 33, 3, 8
    layer = make_layer(cell, C, H, num_layers=2, bidirectional=True, seed=1)
    p = problem(layer, T, N, np.full(N, T))
    a = run(layer, p)
    b = run(layer, dict(p, lengths=None))
    for k in a:
        assert (a[k] is None) == (b[k] is None)
        if a[k] is not None:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_lengths_unbatched_and_eval():
    layer = make_layer("lstm", 3, 4, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 3))
    y, (h, c) = layer(x, lengths=4)
    y4, (h4, c4) = layer(x[:4])
    np.testing.assert_allclose(y[:4], y4, rtol=1e-12, atol=1e-14)
    assert not y[4:].any()
    np.testing.assert_allclose(h, h4, rtol=1e-12, atol=1e-14)
    layer.eval()
    ye, _ = layer(x, lengths=[4])
    np.testing.assert_array_equal(ye, y)


@pytest.mark.parametrize("bad,err,match", [
    ([3, 0, 2], ValueError, r"lengths must lie in \[1, 4\]"),
    ([3, 5, 2], ValueError, r"lengths must lie in \[1, 4\]"),
    ([3, 2], ValueError, r"lengths must have shape \(3,\)"),
    ([[3, 2, 1]], ValueError, r"lengths must have shape \(3,\)"),
    (np.array([3.0, 2.0, 1.0]), TypeError, r"lengths must hold integers"),
    (np.array([True, True, True]), TypeError, r"lengths must hold integers"),
    (3, TypeError, r"lengths must be a 1-D array"),
    ("abc", TypeError, r"lengths must be a 1-D array"),
])
def test_bad_lengths(bad, err, match):
    layer = make_layer("gru", 2, 3)
    with pytest.raises(err, match=match):
        layer(np.zeros((4, 3, 2)), lengths=bad)


def test_core_checks_lengths():
    """The binding re-checks what the engine relies on: int32, shape (N,), values in [1, T]."""
    layer = make_layer("rnn_tanh", 2, 3)
    x = np.zeros((4, 2, 2))
    eng = engine_for("recurrent", "cpu", "cpu")
    w = layer._weights(0, 0, layer._params)
    out = dict(y=np.empty((4, 2, 3)), h_n=np.empty((2, 3)))
    for bad, msg in ((np.array([1, 5], np.int32), "values in"), (np.array([1, 2], np.int64), "int32"),
                     (np.array([1, 2, 3], np.int32), "shape")):
        with pytest.raises(ValueError, match="lengths.*" + msg):
            eng.forward(cells.RNN_TANH, x, np.zeros((2, 3)), None, w, out, False, False, lengths=bad)


# ---- dropout ----------------------------------------------------------------------------------------

def test_dropout_statistics():
    """Each layer's output but the last: elements kept with probability 1 - p, scaled by 1/(1 - p)."""
    p = 0.3
    layer = make_layer("rnn_tanh", 4, 64, num_layers=2, dropout=p, seed=0)
    x = np.random.default_rng(0).standard_normal((50, 40, 4))
    layer(x)
    mask = layer._per_thread.saved[-1][0]
    vals = np.unique(mask)
    np.testing.assert_allclose(vals, [0.0, 1 / (1 - p)])
    keep = (mask != 0).mean()
    n = mask.size
    assert abs(keep - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n), keep
    # eval mode and p=0: no masks, the same outputs as a layer without dropout
    layer.eval()
    plain = make_layer("rnn_tanh", 4, 64, num_layers=2, seed=0)
    plain.eval()
    np.testing.assert_array_equal(layer(x)[0], plain(x)[0])
    layer.train()
    zero = make_layer("rnn_tanh", 4, 64, num_layers=2, dropout=0.0, seed=0)
    zero(x)
    assert zero._per_thread.saved[-1] == []


def test_dropout_seeded():
    x = np.random.default_rng(0).standard_normal((5, 3, 4))
    a = make_layer("gru", 4, 6, num_layers=3, dropout=0.5, seed=11)
    b = make_layer("gru", 4, 6, num_layers=3, dropout=0.5, seed=11)
    ya, yb = a(x)[0], b(x)[0]
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, a(x)[0])  # the next call draws new masks


@pytest.mark.parametrize("engine", ["cpu", "reference"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dropout_gradients_equal_layers_with_the_mask(cell, engine):
    """A 2-layer stack with dropout = layer 0, times the mask it drew, into layer 1: outputs and every
    gradient, with lengths and both directions."""
    T, N, C, H = 6, 4, 3, 5
    kw = dict(bidirectional=True, engine=engine)
    stack = make_layer(cell, C, H, num_layers=2, dropout=0.4, seed=2, **kw)
    l0 = make_layer(cell, C, H, seed=0, **kw)
    l1 = make_layer(cell, 2 * H, H, seed=0, **kw)
    sd = stack.state_dict()
    l0.load_state_dict({k: v for k, v in sd.items() if "_l0" in k})
    l1.load_state_dict({k.replace("_l1", "_l0"): v for k, v in sd.items() if "_l1" in k})
    lengths = np.array([6, 3, 5, 1])
    p = problem(stack, T, N, lengths)
    lstm = cell == "lstm"
    stack.zero_grad()
    y, _ = stack(p["x"], (p["h0"], p["c0"]) if lstm else p["h0"], lengths=lengths)
    (mask,) = stack._per_thread.saved[-1]  # the mask drawn for layer 0's output (rows in the engines' order)
    order = varlen.row_order(lengths)
    mask = mask[:, varlen.inverse(order)]
    dx, _ = stack.backward(p["dy"], (p["dh_n"], p["dc_n"]) if lstm else p["dh_n"])
    got = dict(y=y, dx=dx, **{"grad " + k: g for k, g in stack.grads.items()})
    hx0 = (p["h0"][:2], p["c0"][:2]) if lstm else p["h0"][:2]
    hx1 = (p["h0"][2:], p["c0"][2:]) if lstm else p["h0"][2:]
    y0, s0 = l0(p["x"], hx0, lengths=lengths)
    y1, s1 = l1(y0 * mask, hx1, lengths=lengths)
    np.testing.assert_allclose(got["y"], y1, rtol=1e-12, atol=1e-14)
    dh = (p["dh_n"][2:], p["dc_n"][2:]) if lstm else p["dh_n"][2:]
    d1, ds1 = l1.backward(p["dy"], dh)
    dh = (p["dh_n"][:2], p["dc_n"][:2]) if lstm else p["dh_n"][:2]
    d0, ds0 = l0.backward(d1 * mask, dh)
    np.testing.assert_allclose(got["dx"], d0, rtol=1e-12, atol=1e-14)
    for k, g in l0.grads.items():
        np.testing.assert_allclose(got["grad " + k], g, rtol=1e-12, atol=1e-14, err_msg=k)
    for k, g in l1.grads.items():
        np.testing.assert_allclose(got["grad " + k.replace("_l0", "_l1")], g, rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("bad,err", [(1.0, ValueError), (-0.1, ValueError), ("0.5", TypeError),
                                     (float("nan"), ValueError)])
def test_bad_dropout(bad, err):
    with pytest.raises(err, match="dropout"):
        make_layer("lstm", 2, 3, num_layers=2, dropout=bad)


# ---- LSTM projections (proj_size) -------------------------------------------------------------------

PROJ_CASES = {
    "plain": (dict(), (5, 3, 4, 6, 3), None),
    "bidir_2layers_packed": (dict(num_layers=2, bidirectional=True), (6, 4, 3, 5, 2), [6, 2, 5, 1]),
    "batch_first_packed": (dict(batch_first=True), (5, 3, 2, 7, 4), [4, 5, 1]),
}


def proj_problem(layer, T, N, lengths, seed=1):
    p = problem(layer, T, N, lengths if lengths is not None else np.full(N, T), seed=seed)
    rng = np.random.default_rng(seed + 1)
    P, LD = layer.proj_size, layer.num_layers * layer.num_directions
    p["h0"] = rng.standard_normal((LD, N, P)).astype(layer.dtype)
    p["dh_n"] = rng.standard_normal((LD, N, P)).astype(layer.dtype)
    xs = p["x"].shape[:2]
    p["dy"] = rng.standard_normal(xs + (layer.num_directions * P,)).astype(layer.dtype)
    return p


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")  # torch's own fallback
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(PROJ_CASES))
def test_proj_size_against_torch(case, dtype):
    torch = pytest.importorskip("torch")
    layer_kw, (T, N, C, H, P), lengths = PROJ_CASES[case]
    torch.manual_seed(0)
    m = torch.nn.LSTM(C, H, proj_size=P, **layer_kw).to(getattr(torch, dtype))
    layer = rnnfast.LSTM(C, H, dtype=dtype, proj_size=P, **layer_kw)
    sd = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    assert set(sd) == set(layer.state_dict())
    layer.load_state_dict(sd)
    p = proj_problem(layer, T, N, lengths)
    if lengths is None:
        want = torch_run_plain(torch, m, p, layer.batch_first)
    else:
        want = torch_run(torch, m, p, True, layer.batch_first)
    got = run(layer, p)
    compare(got, want, 2e-4 if dtype == "float32" else 1e-9)


def torch_run_plain(torch, m, p, batch_first):
    t = {k: (None if v is None or k == "lengths" else torch.tensor(v, requires_grad=k in ("x", "h0", "c0")))
         for k, v in p.items()}
    y, (h_n, c_n) = m(t["x"], (t["h0"], t["c0"]))
    ((y * t["dy"]).sum() + (h_n * t["dh_n"]).sum() + (c_n * t["dc_n"]).sum()).backward()
    res = dict(y=y, h_n=h_n, c_n=c_n, dx=t["x"].grad, dh0=t["h0"].grad, dc0=t["c0"].grad)
    res = {k: v.detach().numpy() for k, v in res.items()}
    for name, param in m.named_parameters():
        res["grad " + name] = param.grad.detach().numpy()
    return res


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_proj_size_cpu_engine_matches_reference(dtype):
    """The CPU engine's projection (an LSTM over m, rnnfast/backends/projection.py) against the step-by-step reference
    (reference/lstmp.py), with lengths, both directions, two layers, dropout and a learned initial state."""
    T, N, C, H, P = 6, 5, 3, 7, 3
    kw = dict(num_layers=2, bidirectional=True, proj_size=P, learn_initial_state=True, seed=4)
    ref = rnnfast.LSTM(C, H, dtype="float64", engine="reference", **kw)
    rng = np.random.default_rng(2)
    sd = {k: (rng.standard_normal(v.shape) if k in ("h0", "c0") else v) for k, v in ref.state_dict().items()}
    ref.load_state_dict(sd)
    cpu = rnnfast.LSTM(C, H, dtype=dtype, **kw)
    cpu.load_state_dict({k: v.astype(dtype) for k, v in sd.items()})
    lengths = np.array([6, 1, 4, 6, 2])
    p = proj_problem(ref, T, N, lengths)
    p["h0"] = p["c0"] = None
    want = run(ref, p)
    got = run(cpu, {k: v if v is None or k == "lengths" else v.astype(dtype) for k, v in p.items()})
    compare(got, want, 1e-4 if dtype == "float32" else 1e-10)
    assert want["grad weight_hr_l1_reverse"].any() and want["grad h0"].any()


@pytest.mark.parametrize("kw,err", [(dict(proj_size=7), ValueError), (dict(proj_size=9), ValueError),
                                    (dict(proj_size=-1), ValueError), (dict(proj_size=2.0), TypeError)])
def test_bad_proj_size(kw, err):
    with pytest.raises(err, match="proj_size"):
        rnnfast.LSTM(3, 7, **kw)
    with pytest.raises(ValueError, match="proj_size"):
        rnnfast.GRU(3, 7, proj_size=2)


# ---- zoneout ----------------------------------------------------------------------------------------

ZONEOUT_CASES = {
    "units_bidir_2layers": (dict(num_layers=2, bidirectional=True), (6, 5, 3, 7), True),
    "rows_two_threads": (dict(batch_first=True), (4, 40, 3, 20), True),
    "units_two_threads": (dict(bidirectional=True), (3, 4, 2, 130), False),
    "learned_state": (dict(learn_initial_state=True), (5, 3, 2, 4), True),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(ZONEOUT_CASES))
@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_cho"])
def test_zoneout_cpu_engine_matches_reference(cell, case, dtype):
    """Training (the same masks: the same generator) and eval (the expectation), with lengths."""
    layer_kw, (T, N, C, H), with_lengths = ZONEOUT_CASES[case]
    lengths = np.random.default_rng(N).integers(1, T + 1, N) if with_lengths else np.full(N, T)
    ref = make_layer(cell, C, H, "float64", engine="reference", zoneout=0.3, seed=5, **layer_kw)
    cpu = make_layer(cell, C, H, dtype, zoneout=0.3, seed=5, **layer_kw)
    cpu.load_state_dict({k: v.astype(dtype) for k, v in ref.state_dict().items()})
    hx = not layer_kw.get("learn_initial_state")
    p = problem(ref, T, N, lengths, hx=hx)
    pc = {k: v if v is None or k == "lengths" else v.astype(dtype) for k, v in p.items()}
    want = run(ref, p)
    got = run(cpu, pc)
    compare(got, want, 1e-4 if dtype == "float32" else 1e-10)
    ref.eval()
    cpu.eval()
    hxr = None if not hx else ((p["h0"], p["c0"]) if cell == "lstm" else p["h0"])
    hxc = None if not hx else ((pc["h0"], pc["c0"]) if cell == "lstm" else pc["h0"])
    ye = cpu(pc["x"], hxc, lengths=lengths)[0]
    assert rel_err(ye, ref(p["x"], hxr, lengths=lengths)[0]) < (1e-4 if dtype == "float32" else 1e-10)


@pytest.mark.parametrize("engine", ["cpu", "reference"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_zoneout_finite_differences(cell, engine):
    """Gradients of a fixed mask's loss (the generator reseeded before each forward) by central differences."""
    T, N, C, H = 4, 3, 2, 3
    layer = make_layer(cell, C, H, engine=engine, zoneout=0.4, bidirectional=True, seed=3)
    p = problem(layer, T, N, [4, 2, 3])

    def loss():
        layer.generator = np.random.default_rng(9)
        lstm = cell == "lstm"
        y, s = layer(p["x"], (p["h0"], p["c0"]) if lstm else p["h0"], lengths=p["lengths"])
        h = s[0] if lstm else s
        return float(np.sum(y * p["dy"]) + np.sum(h * p["dh_n"]) + (np.sum(s[1] * p["dc_n"]) if lstm else 0.0))

    layer.generator = np.random.default_rng(9)
    got = run(layer, p)
    assert not np.all(layer.generator.random(1) == 0)  # (the generator was used)
    for key, arr in (("dx", p["x"]), ("dh0", p["h0"]),
                     ("grad weight_hh_l0_reverse", layer._params["weight_hh_l0_reverse"])):
        assert rel_err(got[key], numerical_grad(loss, arr)) < 1e-7, key


def test_zoneout_keeps_units_with_probability_p():
    """In training a unit keeps its previous value with probability p; in eval none is kept exactly."""
    p = 0.3
    layer = make_layer("gru", 4, 50, zoneout=p, seed=1)
    x = np.random.default_rng(0).standard_normal((40, 30, 4))
    y, _ = layer(x)
    kept = (y[1:] == y[:-1]).mean()
    n = y[1:].size
    assert abs(kept - p) < 5 * np.sqrt(p * (1 - p) / n), kept
    layer.eval()
    ye, _ = layer(x)
    assert (ye[1:] == ye[:-1]).mean() < 0.01


@pytest.mark.parametrize("kw,err", [(dict(zoneout=1.0), ValueError), (dict(zoneout=-0.5), ValueError),
                                    (dict(zoneout="x"), TypeError)])
def test_bad_zoneout(kw, err):
    with pytest.raises(err, match="zoneout"):
        rnnfast.GRU(3, 4, **kw)
    with pytest.raises(ValueError, match="zoneout"):
        rnnfast.RNN(3, 4, zoneout=0.2)
    with pytest.raises(ValueError, match="zoneout"):
        rnnfast.LSTM(3, 4, zoneout=0.2, proj_size=2)


# ---- the ESN's padded batches (lengths=) --------------------------------------------------------------

def test_esn_lengths_equal_each_sequence_alone():
    from rnnfast.esn import ESN
    T, B, I, O = 12, 5, 2, 3
    rng = np.random.default_rng(0)
    u = rng.standard_normal((T, B, I))
    y = rng.standard_normal((T, B, O))
    L = np.array([12, 4, 9, 4, 1])
    seqs_u = [u[:n, b] for b, n in enumerate(L)]
    seqs_y = [y[:n, b] for b, n in enumerate(L)]
    a, b = ESN(I, 40, O, seed=3, leak_rate=0.5), ESN(I, 40, O, seed=3, leak_rate=0.5)
    states = a.run_reservoir(u, lengths=L, reset=True)
    assert states.shape == (T, B, 40)
    for k, n in enumerate(L):
        alone = b.run_reservoir(seqs_u[k], reset=True)
        np.testing.assert_allclose(states[:n, k], alone, rtol=1e-12, atol=1e-14)
        assert not states[n:, k].any()
        np.testing.assert_allclose(a.state[k], alone[-1], rtol=1e-12, atol=1e-14)  # its own last step
    # fit on the padded batch = fit on the list of its sequences (the padding never counts)
    a.reset()
    b.reset()
    a.fit(u, y, washout=1, lengths=L, ridge=1e-3)
    b.fit(seqs_u, seqs_y, washout=1, ridge=1e-3)
    np.testing.assert_allclose(a.W_out, b.W_out, rtol=1e-9, atol=1e-12)
    assert a.n_samples_ == b.n_samples_ == sum(max(n - 1, 0) for n in L)
    pa = a.predict(u, lengths=L, reset=True)
    pb = b.predict(seqs_u, reset=True)
    for k, n in enumerate(L):
        np.testing.assert_allclose(pa[:n, k], pb[k], rtol=1e-9, atol=1e-12)
        assert not pa[n:, k].any()
    # the carried (B, N) state continues each sequence from its own end
    cont = a.run_reservoir(u[:2], lengths=[2, 1, 2, 2, 1])
    assert cont.shape == (2, B, 40)


@pytest.mark.parametrize("bad,err", [([3, 0], ValueError), ([3, 9], ValueError), ([3], ValueError),
                                     (np.array([1.5, 2.0]), TypeError)])
def test_esn_bad_lengths(bad, err):
    from rnnfast.esn import ESN
    e = ESN(1, 10, 1, seed=0)
    with pytest.raises(err, match="lengths"):
        e.run_reservoir(np.zeros((4, 2, 1)), lengths=bad)


def test_mrnn_refuses_lengths():
    layer = rnnfast.MRNN(2, 3, factors=2)
    with pytest.raises(NotImplementedError, match="lengths"):
        layer(np.zeros((3, 2, 2), np.float32), lengths=[3, 1])
