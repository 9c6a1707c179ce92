"""The factored multiplicative RNN: reference, R-ops, C++ engine, rnnfast.MRNN, `rnnfast char --cell mrnn`.

* the reference (rnnfast.reference.mrnn_*) against central finite differences (float64) and against an
  independent formulation (one transition matrix W_hf diag(W_fx x) W_fh per one-hot input);
* R-ops (mrnn_rop, rnn_rop) against finite differences of y(theta + eps v);
* the "cpu" engine against the float64 reference (float64 and float32, tolerance from the float32
  reference's own error) over shapes with T, N, C, H, F = 1, and the layer's gradients against finite
  differences;
* bad arguments raise errors naming the argument; a tiny `rnnfast char train --cell mrnn` run learns.
"""

import json

import numpy as np
import pytest

import rnnfast
from rnnfast import _core, reference
from rnnfast.reference.mrnn import MRNN_KEYS
from rnnfast.reference.rop import RNN_KEYS

from helpers import fd_direction, numerical_grad, randn, rel_err


def ref_params(rng, C, H, F, dtype=np.float64, bias=True, scale=0.5):
    shapes = dict(W_fx=(F, C), W_fh=(F, H), W_hf=(H, F), W_hx=(H, C), b=(H,))
    p = {k: randn(rng, s, dtype, scale) for k, s in shapes.items()}
    if not bias:
        p["b"] = None
    return p


# ---------------------------------------------------------------------------------------------
# reference
# ---------------------------------------------------------------------------------------------

REF_SIZES = [(4, 3, 5, 6, 7), (1, 1, 1, 1, 1), (3, 2, 4, 5, 1), (2, 1, 3, 2, 8)]  # T, N, C, H, F


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("size", REF_SIZES, ids=lambda s: "x".join(map(str, s)))
def test_reference_gradients_match_finite_differences(size, bias):
    T, N, C, H, F = size
    rng = np.random.default_rng(0)
    P = ref_params(rng, C, H, F, bias=bias)
    x, h0 = randn(rng, (T, N, C)), randn(rng, (N, H), scale=0.5)
    dy, dh_n = randn(rng, (T, N, H)), randn(rng, (N, H))
    y, h_n, cache = reference.mrnn_forward(x, h0, **P)
    np.testing.assert_array_equal(h_n, y[-1])
    dx, dh0, g = reference.mrnn_backward(dy, dh_n, cache)
    assert (g["b"] is None) == (not bias)

    def loss():
        y, h_n, _ = reference.mrnn_forward(x, h0, **P)
        return float(np.sum(y * dy) + np.sum(h_n * dh_n))

    checks = {"x": (x, dx), "h0": (h0, dh0)}
    checks.update({k: (P[k], g[k]) for k in MRNN_KEYS if P[k] is not None})
    for name, (arr, analytic) in checks.items():
        num = numerical_grad(loss, arr)
        assert np.abs(num).max() > 1e-4, name  # not vacuous
        assert rel_err(analytic, num) <= 1e-6, name


def test_reference_is_an_input_dependent_transition_matrix():
    """For one-hot x_t = e_c the MRNN is h_t = tanh(W(c) h_{t-1} + W_hx e_c + b), W(c) = W_hf diag(W_fx[:, c]) W_fh."""
    T, N, C, H, F = 6, 3, 4, 5, 7
    rng = np.random.default_rng(1)
    P = ref_params(rng, C, H, F)
    idx = rng.integers(0, C, (T, N))
    x = np.eye(C)[idx]
    h0 = randn(rng, (N, H), scale=0.5)
    y, _, _ = reference.mrnn_forward(x, h0, **P)
    h = h0
    for t in range(T):
        new = np.empty_like(h)
        for n in range(N):
            c = idx[t, n]
            W = P["W_hf"] @ np.diag(P["W_fx"][:, c]) @ P["W_fh"]
            new[n] = np.tanh(W @ h[n] + P["W_hx"][:, c] + P["b"])
        h = new
        np.testing.assert_allclose(y[t], h, rtol=1e-12, atol=1e-12)


def test_reference_dtype_float32_and_bad_inputs():
    rng = np.random.default_rng(2)
    P = ref_params(rng, 3, 4, 5, np.float32)
    x = randn(rng, (2, 2, 3), np.float32)
    y, h_n, cache = reference.mrnn_forward(x, None, **P)
    assert y.dtype == np.float32 and h_n.dtype == np.float32
    dx, dh0, g = reference.mrnn_backward(None, np.ones((2, 4), np.float32), cache)
    assert dx.dtype == np.float32 and all(g[k].dtype == np.float32 for k in MRNN_KEYS)
    with pytest.raises(TypeError, match="W_hf"):
        reference.mrnn_forward(x, None, **dict(P, W_hf=P["W_hf"].astype(np.float64)))
    with pytest.raises(ValueError, match="W_fx"):
        reference.mrnn_forward(x, None, **dict(P, W_fx=np.zeros((5, 2), np.float32)))
    with pytest.raises(ValueError, match="h0"):
        reference.mrnn_forward(x, np.zeros((3, 4), np.float32), **P)
    with pytest.raises(ValueError, match="x"):
        reference.mrnn_forward(x[0], None, **P)


# ---------------------------------------------------------------------------------------------
# R-ops (forward-mode directional derivatives) against finite differences of y(theta + eps v)
# ---------------------------------------------------------------------------------------------

ROP_CASES = {
    "all": dict(keys=None, dx=True, dh0=True, bias=True),
    "params_only": dict(keys=None, dx=False, dh0=False, bias=True),
    "one_matrix": dict(keys=("W_fh",), dx=False, dh0=False, bias=True),
    "inputs_only": dict(keys=(), dx=True, dh0=True, bias=True),
    "no_bias": dict(keys=None, dx=True, dh0=False, bias=False),
}


@pytest.mark.parametrize("case", list(ROP_CASES))
def test_mrnn_rop_matches_finite_differences(case):
    c = ROP_CASES[case]
    T, N, C, H, F = 5, 3, 4, 6, 5
    rng = np.random.default_rng(3)
    theta = ref_params(rng, C, H, F, bias=c["bias"])
    theta["x"], theta["h0"] = randn(rng, (T, N, C)), randn(rng, (N, H), scale=0.5)
    keys = [k for k in MRNN_KEYS if theta[k] is not None] if c["keys"] is None else list(c["keys"])
    v = {k: randn(rng, theta[k].shape) for k in keys}
    rx = randn(rng, (T, N, C)) if c["dx"] else None
    rh = randn(rng, (N, H)) if c["dh0"] else None

    def run(th):
        return reference.mrnn_forward(th["x"], th["h0"], *(th[k] for k in MRNN_KEYS))[0]

    _, _, cache = reference.mrnn_forward(theta["x"], theta["h0"], *(theta[k] for k in MRNN_KEYS))
    got = reference.mrnn_rop(cache, v, dx=rx, dh0=rh)
    want = fd_direction(run, theta, dict(v, x=rx, h0=rh))
    assert got.shape == (T, N, H)
    assert np.abs(want).max() > 1e-3
    assert rel_err(got, want) <= 1e-7


@pytest.mark.parametrize("nonlinearity,bias", [("tanh", True), ("tanh", False), ("relu", True)])
def test_rnn_rop_matches_finite_differences(nonlinearity, bias):
    T, N, C, H = 5, 3, 4, 6
    rng = np.random.default_rng(4)
    theta = dict(W_ih=randn(rng, (H, C), scale=0.5), W_hh=randn(rng, (H, H), scale=0.5),
                 b_ih=randn(rng, (H,)) if bias else None, b_hh=randn(rng, (H,)) if bias else None,
                 x=randn(rng, (T, N, C)), h0=randn(rng, (N, H), scale=0.5))
    v = {k: randn(rng, theta[k].shape) for k in RNN_KEYS if theta[k] is not None}
    rx, rh = randn(rng, (T, N, C)), randn(rng, (N, H))

    def run(th):
        return reference.rnn_forward(th["x"], th["h0"], *(th[k] for k in RNN_KEYS), nonlinearity=nonlinearity)[0]

    _, _, cache = reference.rnn_forward(theta["x"], theta["h0"], *(theta[k] for k in RNN_KEYS),
                                        nonlinearity=nonlinearity)
    got = reference.rnn_rop(cache, v, dx=rx, dh0=rh)
    want = fd_direction(run, theta, dict(v, x=rx, h0=rh))
    assert np.abs(want).max() > 1e-3
    assert rel_err(got, want) <= 1e-7


def test_rop_rejects_bad_directions():
    rng = np.random.default_rng(5)
    P = ref_params(rng, 3, 4, 5, bias=False)
    _, _, cache = reference.mrnn_forward(randn(rng, (2, 2, 3)), None, **P)
    with pytest.raises(ValueError, match="W_hx"):
        reference.mrnn_rop(cache, {"W_hx": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="W_xx"):
        reference.mrnn_rop(cache, {"W_xx": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="'b'"):
        reference.mrnn_rop(cache, {"b": np.zeros(4)})  # the forward had no bias
    with pytest.raises(ValueError, match="dx"):
        reference.mrnn_rop(cache, {}, dx=np.zeros((2, 2, 4)))
    with pytest.raises(TypeError, match="v must be a dict"):
        reference.mrnn_rop(cache, [1, 2])
    np.testing.assert_array_equal(reference.mrnn_rop(cache, {}), np.zeros((2, 2, 4)))


# ---------------------------------------------------------------------------------------------
# the layer: cpu engine vs reference, finite differences
# ---------------------------------------------------------------------------------------------

def make_problem(layer, T, N, seed=1, hx=True, unbatched=False, dy=True, dh_n=True):
    rng = np.random.default_rng(seed)
    L, D, H, C = layer.num_layers, layer.num_directions, layer.hidden_size, layer.input_size
    if unbatched:
        xs, ys, ss = (T, C), (T, D * H), (L * D, H)
    elif layer.batch_first:
        xs, ys, ss = (N, T, C), (N, T, D * H), (L * D, N, H)
    else:
        xs, ys, ss = (T, N, C), (T, N, D * H), (L * D, N, H)
    dt = layer.dtype
    return dict(x=randn(rng, xs, dt), h0=randn(rng, ss, dt, 0.5) if hx else None,
                dy=randn(rng, ys, dt) if dy else None, dh_n=randn(rng, ss, dt) if dh_n else None)


def run(layer, p):
    layer.zero_grad()
    y, h_n = layer(p["x"], p["h0"])
    dx, dh0 = layer.backward(p["dy"], p["dh_n"])
    out = dict(y=y, h_n=h_n, dx=dx, dh0=dh0)
    out.update({"grad " + k: v.copy() for k, v in layer.grads.items()})
    return out


def errors(a, b):
    assert set(a) == set(b)
    return {k: rel_err(a[k], b[k]) for k in a}


def randomize_learned_state(layer):
    if layer.learn_initial_state:
        rng = np.random.default_rng(9)
        layer.load_state_dict({"h0": randn(rng, layer.parameters()["h0"].shape, layer.dtype, 0.5)}, strict=False)


CONFIGS = {
    "plain": ({}, {}),
    "two_layers_bidir": (dict(num_layers=2, bidirectional=True), {}),
    "batch_first_no_bias": (dict(batch_first=True, bias=False), {}),
    "learned_state": (dict(learn_initial_state=True, num_layers=2), dict(hx=False)),
    "dy_only": (dict(bidirectional=True), dict(dh_n=False)),
    "final_state_grads_only": (dict(num_layers=2), dict(dy=False)),
    "unbatched": (dict(num_layers=2, bidirectional=True, batch_first=True), dict(unbatched=True)),
}
SIZES = {"moderate": (20, 5, 13, 33, 17), "wide_factors": (6, 9, 7, 16, 70), "T1": (1, 3, 4, 5, 6),
         "N1": (6, 1, 4, 5, 6), "F1": (5, 3, 4, 5, 1), "H1": (5, 3, 4, 1, 3), "C1": (5, 3, 1, 5, 4),
         "all1": (1, 1, 1, 1, 1)}
CASES = ([(cfg, "moderate") for cfg in CONFIGS]
         + [(cfg, s) for cfg in ("plain", "two_layers_bidir") for s in SIZES if s != "moderate"])


def engine_pair(C, H, F, layer_kw, dtype):
    cpu = rnnfast.MRNN(C, H, F, dtype=dtype, seed=0, **layer_kw)
    randomize_learned_state(cpu)
    ref = rnnfast.MRNN(C, H, F, dtype=dtype, engine="reference", seed=1, **layer_kw)
    ref.load_state_dict(cpu.state_dict())
    return cpu, ref


@pytest.mark.parametrize("cfg,size", CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_cpu_engine_matches_reference_float64(cfg, size):
    T, N, C, H, F = SIZES[size]
    layer_kw, prob_kw = CONFIGS[cfg]
    cpu, ref = engine_pair(C, H, F, layer_kw, "float64")
    p = make_problem(cpu, T, N, **prob_kw)
    errs = errors(run(cpu, p), run(ref, p))
    bad = {k: e for k, e in errs.items() if not e <= 1e-12}
    assert not bad, f"cpu vs reference (float64) relative errors: {bad}"


@pytest.mark.parametrize("cfg,size", CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_cpu_engine_matches_reference_float32(cfg, size):
    T, N, C, H, F = SIZES[size]
    layer_kw, prob_kw = CONFIGS[cfg]
    cpu32, ref32 = engine_pair(C, H, F, layer_kw, "float32")
    ref64 = rnnfast.MRNN(C, H, F, dtype="float64", engine="reference", **layer_kw)
    ref64.load_state_dict(cpu32.state_dict())
    p32 = make_problem(cpu32, T, N, **prob_kw)
    p64 = {k: None if v is None else v.astype(np.float64) for k, v in p32.items()}
    truth = run(ref64, p64)
    got, baseline = run(cpu32, p32), run(ref32, p32)
    assert all(v.dtype == np.float32 for v in got.values())
    e_cpu, e_base = errors(got, truth), errors(baseline, truth)
    bad = {k: (e_cpu[k], e_base[k]) for k in e_cpu
           if not (e_cpu[k] <= 2e-4 and e_cpu[k] <= max(2 * e_base[k], 2e-5))}
    assert not bad, f"float32 cpu vs float64 reference (cpu error, float32 reference error): {bad}"


FD_CONFIGS = {
    "plain": ({}, {}),
    "two_layers_bidir_batch_first": (dict(num_layers=2, bidirectional=True, batch_first=True), {}),
    "no_bias": (dict(bias=False), {}),
    "learned_state": (dict(learn_initial_state=True, bidirectional=True), dict(hx=False)),
    "unbatched": (dict(num_layers=2), dict(unbatched=True)),
}


@pytest.mark.parametrize("cfg", list(FD_CONFIGS))
def test_layer_gradients_match_finite_differences(cfg):
    layer_kw, prob_kw = FD_CONFIGS[cfg]
    layer = rnnfast.MRNN(3, 4, 5, dtype="float64", seed=0, **layer_kw)
    randomize_learned_state(layer)
    p = make_problem(layer, 3, 2, **prob_kw)
    out = run(layer, p)
    assert set(layer.grads) == set(layer.parameters())
    checks = {"dx": (p["x"], out["dx"])}
    if p["h0"] is not None:
        checks["dh0"] = (p["h0"], out["dh0"])
    checks.update({f"grads[{k}]": (a, out["grad " + k]) for k, a in layer.parameters().items()})

    def loss():
        y, h_n = layer(p["x"], p["h0"])
        return float(np.sum(y * p["dy"]) + np.sum(h_n * p["dh_n"]))

    layer.eval()
    failures = {}
    for name, (arr, analytic) in checks.items():
        num = numerical_grad(loss, arr)
        assert np.abs(num).max() > 1e-5, name
        e = rel_err(analytic, num)
        if not e <= 1e-6:
            failures[name] = e
    assert not failures, f"relative errors vs finite differences: {failures}"


# ---------------------------------------------------------------------------------------------
# layer behaviour
# ---------------------------------------------------------------------------------------------

def test_parameter_names_shapes_and_init():
    layer = rnnfast.MRNN(10, 8, 12, num_layers=2, bidirectional=True, seed=3)
    params = layer.parameters()
    want = {}
    for lay, C in ((0, 10), (1, 16)):
        for sfx in ("", "_reverse"):
            s = f"_l{lay}{sfx}"
            want.update({"weight_fx" + s: (12, C), "weight_fh" + s: (12, 8), "weight_hf" + s: (8, 12),
                         "weight_hx" + s: (8, C), "bias" + s: (8,)})
    assert {k: v.shape for k, v in params.items()} == want
    for k, v in params.items():
        fan_in = 8 if k.startswith(("weight_fh", "bias")) else 12 if k.startswith("weight_hf") else v.shape[1]
        bound = 1 / np.sqrt(fan_in)
        assert v.dtype == np.float32 and np.abs(v).max() <= bound and np.abs(v).max() > 0.5 * bound, k
    again = rnnfast.MRNN(10, 8, 12, num_layers=2, bidirectional=True, seed=3)
    for k, v in again.parameters().items():
        np.testing.assert_array_equal(v, params[k], err_msg=k)
    assert repr(layer) == "MRNN(10, 8, factors=12, num_layers=2, bidirectional=True, dtype=float32)"
    assert set(rnnfast.MRNN(2, 3, 4, bias=False).parameters()) == {
        "weight_fx_l0", "weight_fh_l0", "weight_hf_l0", "weight_hx_l0"}


@pytest.mark.parametrize("engine", ["cpu", "reference"])
def test_grads_accumulate_eval_mode_and_backward_once(engine):
    layer = rnnfast.MRNN(3, 4, 5, dtype="float64", engine=engine, seed=0, num_layers=2)
    p = make_problem(layer, 4, 2)
    once = run(layer, p)
    layer(p["x"], p["h0"])
    again = layer.backward(p["dy"], p["dh_n"])
    np.testing.assert_array_equal(again[0], once["dx"])
    for k, g in layer.grads.items():
        assert rel_err(g, 2 * once["grad " + k]) <= 1e-14, k
    with pytest.raises(RuntimeError, match="backward"):
        layer.backward(p["dy"], p["dh_n"])
    layer.eval()
    y, h_n = layer(p["x"], p["h0"])
    np.testing.assert_array_equal(y, once["y"])
    np.testing.assert_array_equal(h_n, once["h_n"])
    with pytest.raises(RuntimeError):
        layer.backward(p["dy"], p["dh_n"])


def test_multiplicative_path_matters():
    """Zeroing W_hf leaves h_t = tanh(W_hx x_t + b); the default layer differs from that."""
    layer = rnnfast.MRNN(3, 4, 5, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x, h0 = randn(rng, (4, 2, 3)), randn(rng, (1, 2, 4))
    y, _ = layer(x, h0)
    P = layer.parameters()
    plain = np.tanh(x @ P["weight_hx_l0"].T + P["bias_l0"])
    assert np.abs(y - plain).max() > 1e-3
    P["weight_hf_l0"][...] = 0
    y0, _ = layer(x, h0)
    np.testing.assert_allclose(y0, plain, rtol=1e-14, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("factors,exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError),
                                         (None, TypeError), ("4", TypeError)])
def test_bad_factors(factors, exc):
    with pytest.raises(exc, match="factors"):
        rnnfast.MRNN(3, 4, factors)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden_size"):
        rnnfast.MRNN(3, 0, 4)
    with pytest.raises(ValueError, match="engine"):
        rnnfast.MRNN(3, 4, 4, engine="gpu")
    with pytest.raises((RuntimeError, NotImplementedError), match="cuda"):
        rnnfast.MRNN(3, 4, 4, device="cuda")
    with pytest.raises(TypeError, match="dtype"):
        rnnfast.MRNN(3, 4, 4, dtype="float16")


def test_bad_forward_and_backward_inputs():
    layer = rnnfast.MRNN(3, 4, 5, seed=0)
    x = np.zeros((2, 2, 3), np.float32)
    with pytest.raises(ValueError, match="x must have shape"):
        layer(np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match="x must be 3-D"):
        layer(np.zeros((2, 2, 2, 3), np.float32))
    with pytest.raises(TypeError, match="x must have dtype float32"):
        layer(x.astype(np.float64))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        layer([[1.0, 2.0, 3.0]])
    for bad in (np.nan, np.inf):
        xb = x.copy()
        xb[1, 0, 2] = bad
        with pytest.raises(ValueError, match="x contains NaN or Inf"):
            layer(xb)
    with pytest.raises(ValueError, match="h0 must have shape"):
        layer(x, np.zeros((1, 3, 4), np.float32))
    h0 = np.zeros((1, 2, 4), np.float32)
    h0[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="h0 contains NaN"):
        layer(x, h0)
    with pytest.raises(ValueError, match="at least one time step"):
        layer(np.zeros((0, 2, 3), np.float32))
    with pytest.raises(RuntimeError, match="backward"):
        layer.backward(np.zeros((2, 2, 4), np.float32))
    layer(x)
    with pytest.raises(ValueError, match="dy must have shape"):
        layer.backward(np.zeros((2, 2, 5), np.float32))
    with pytest.raises(TypeError, match="dh_n must have dtype"):
        layer.backward(None, np.zeros((1, 2, 4), np.float64))
    with pytest.raises(ValueError, match="state_dict\\['weight_hf_l0'\\] must have shape"):
        layer.load_state_dict({"weight_hf_l0": np.zeros((5, 4), np.float32)}, strict=False)


def _core_args(T=2, N=3, C=4, H=5, F=6, dt=np.float32, training=True):
    z = lambda *s: np.zeros(s, dt)  # noqa: E731
    return dict(x=z(T, N, C), h0=None, w_fx=z(F, C), w_fh=z(F, H), w_hf=z(H, F), w_hx=z(H, C), b=z(H),
                y=z(T, N, H), h_n=z(N, H), h_prev=z(T, N, H), h=z(T, N, H), fx=z(T, N, F), fh=z(T, N, F),
                work=z(_core.mrnn_workspace_size(T, N, H, F, training, False)), reverse=False, training=training)


def test_core_entry_points_validate_arguments():
    _core.mrnn_forward(**_core_args())  # the valid call runs
    _core.mrnn_forward(**_core_args(dt=np.float64, training=False))
    cases = [("w_hf", np.zeros((6, 5), np.float32), "w_hf.*shape \\(5, 6\\)"),
             ("b", np.zeros(5, np.float64), "'b'.*float32"),
             ("work", np.zeros(3, np.float32), "'work'.*shape"),
             ("fh", None, "'fh' is required"),
             ("y", np.zeros((2, 3, 5), np.float32)[:, :, ::-1], "'y'.*contiguous rows"),
             ("x", np.zeros((2, 3, 4), np.int32), "'x'.*float32 or float64"),
             ("w_fh", np.zeros((0, 5), np.float32), "factors")]
    for name, value, msg in cases:
        with pytest.raises(ValueError, match=msg):
            _core.mrnn_forward(**dict(_core_args(), **{name: value}))
    read_only = np.zeros((3, 5), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="'h_n' must be writable"):
        _core.mrnn_forward(**dict(_core_args(), h_n=read_only))
    with pytest.raises(ValueError, match="factors"):
        _core.mrnn_workspace_size(2, 3, 5, 0, True, False)


# ---------------------------------------------------------------------------------------------
# rnnfast char train --cell mrnn
# ---------------------------------------------------------------------------------------------

def test_char_train_mrnn(tmp_path, capsys):
    from rnnfast import char
    from rnnfast.__main__ import main

    from helpers.texts import make_text

    text = tmp_path / "input.txt"
    text.write_text(make_text(), encoding="utf-8")
    out = tmp_path / "run"
    argv = ["char", "train", "--text", str(text), "--out", str(out), "--cell", "mrnn", "--factors", "24",
            "--hidden", "32", "--seq-len", "16", "--batch", "4", "--steps", "40", "--log-every", "5",
            "--val-every", "0", "--lr", "0.01", "--no-progress", "--sample-length", "10"]
    assert main(argv) == 0
    so = capsys.readouterr().out
    assert "MRNN 1x32 with 24 factors" in so
    hist = json.loads((out / "metrics.json").read_text())["train_loss"]["history"]
    assert hist[-1][1] < hist[0][1] - 0.3, hist
    meta, model = char.load_checkpoint(str(out))
    assert meta["config"]["factors"] == 24 and isinstance(model.rnn, rnnfast.MRNN)
    assert model.rnn.parameters()["weight_fh_l0"].shape == (24, 32)
    assert main(["char", "sample", str(out), "--length", "12", "--seed", "0"]) == 0
    assert len(capsys.readouterr().out.strip()) >= 12

    with pytest.raises(SystemExit):
        main(["char", "train", "--text", str(text), "--out", str(tmp_path / "x"), "--factors", "0"])
    assert "must be >= 1" in capsys.readouterr().err
    assert main(["char", "train", "--text", str(text), "--out", str(tmp_path / "y"), "--cell", "gru",
                 "--factors", "8", "--no-progress"]) == 1
    assert "--factors applies to --cell mrnn" in capsys.readouterr().err
