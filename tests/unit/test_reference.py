"""Tests of the NumPy reference RNN / LSTM / GRU (rnnfast.reference).

* central finite-difference gradient checks (float64) of dx, dh0, dc0 and
  every parameter gradient, for every cell / option, with and without bias;
* float32 forward close to float64 forward; dtypes preserved;
* None upstream gradients mean zero; edge cases T=1, N=1, odd sizes;
* comparison with torch.nn.RNN / LSTM / GRU when torch is installed.
"""

import numpy as np
import pytest

from rnnfast import reference as ref

G_OF = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3, "gru_reset_before": 3}
CELLS = list(G_OF)


# ---------------------------------------------------------------------------
# helpers: a uniform interface over the three cells
# ---------------------------------------------------------------------------

def make_inputs(cell, T, N, C, H, bias=True, dtype=np.float64, seed=0):
    """Random inputs; weights ~ U(-1/sqrt(H), 1/sqrt(H)) like PyTorch, scaled
    up a bit so that gates are not all near 0.5."""
    rng = np.random.default_rng(seed)
    G = G_OF[cell]
    k = 1.5 / np.sqrt(H)
    p = dict(
        x=rng.standard_normal((T, N, C)),
        h0=0.5 * rng.standard_normal((N, H)),
        W_ih=rng.uniform(-k, k, (G * H, C)),
        W_hh=rng.uniform(-k, k, (G * H, H)),
        b_ih=rng.uniform(-k, k, G * H) if bias else None,
        b_hh=rng.uniform(-k, k, G * H) if bias else None,
    )
    if cell == "lstm":
        p["c0"] = 0.5 * rng.standard_normal((N, H))
    return {key: (None if v is None else v.astype(dtype)) for key, v in p.items()}


def forward(cell, p):
    """Returns (outputs dict, cache)."""
    args = (p["x"], p["h0"])
    wargs = (p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"])
    if cell.startswith("rnn"):
        y, hn, cache = ref.rnn_forward(*args, *wargs, nonlinearity=cell[4:])
        return dict(y=y, h_n=hn), cache
    if cell == "lstm":
        y, hn, cn, cache = ref.lstm_forward(*args, p["c0"], *wargs)
        return dict(y=y, h_n=hn, c_n=cn), cache
    y, hn, cache = ref.gru_forward(*args, *wargs, reset_after=(cell == "gru"))
    return dict(y=y, h_n=hn), cache


def backward(cell, out_grads, cache):
    """Returns dict of input/parameter gradients."""
    dy, dhn = out_grads.get("y"), out_grads.get("h_n")
    if cell == "lstm":
        dx, dh0, dc0, grads = ref.lstm_backward(dy, dhn, out_grads.get("c_n"), cache)
        return dict(x=dx, h0=dh0, c0=dc0, **grads)
    bwd = ref.rnn_backward if cell.startswith("rnn") else ref.gru_backward
    dx, dh0, grads = bwd(dy, dhn, cache)
    return dict(x=dx, h0=dh0, **grads)


def random_out_grads(outs, seed=1):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in outs.items()}


def loss(cell, p, out_grads):
    """Scalar loss sum(y*Gy) + sum(h_n*Gh) (+ sum(c_n*Gc))."""
    outs, _ = forward(cell, p)
    return sum(float(np.sum(outs[k] * out_grads[k])) for k in out_grads)


def numerical_grad(cell, p, out_grads, name, eps=1e-6):
    arr = p[name]
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        lp = loss(cell, p, out_grads)
        arr[idx] = old - eps
        lm = loss(cell, p, out_grads)
        arr[idx] = old
        g[idx] = (lp - lm) / (2 * eps)
    return g


# ---------------------------------------------------------------------------
# finite differences
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T,N,C,H", [(4, 2, 3, 5), (1, 1, 1, 1), (2, 1, 5, 3)])
def test_finite_differences(cell, bias, T, N, C, H):
    p = make_inputs(cell, T, N, C, H, bias=bias)
    outs, cache = forward(cell, p)
    og = random_out_grads(outs)
    grads = backward(cell, og, cache)
    if not bias:
        assert grads["b_ih"] is None and grads["b_hh"] is None
    for name, arr in p.items():
        if arr is None:
            continue
        num = numerical_grad(cell, p, og, name)
        assert grads[name].shape == arr.shape, name
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8,
                                   err_msg=f"{cell} d{name}")


@pytest.mark.parametrize("cell", CELLS)
def test_none_upstream_gradients_mean_zero(cell):
    p = make_inputs(cell, 3, 2, 3, 4)
    outs, cache = forward(cell, p)
    og = random_out_grads(outs)
    for drop in og:
        zeroed = {k: (np.zeros_like(v) if k == drop else v) for k, v in og.items()}
        nones = {k: v for k, v in og.items() if k != drop}
        a, b = backward(cell, zeroed, cache), backward(cell, nones, cache)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{drop} -> d{k}")
    # all None: every gradient is zero
    for k, v in backward(cell, {}, cache).items():
        assert not np.any(v), k


@pytest.mark.parametrize("cell", CELLS)
def test_h_n_is_last_output(cell):
    p = make_inputs(cell, 3, 2, 3, 4)
    outs, cache = forward(cell, p)
    np.testing.assert_array_equal(outs["y"][-1], outs["h_n"])
    if cell == "lstm":
        np.testing.assert_array_equal(cache["c"][-1], outs["c_n"])


def test_gru_forms_differ_and_rnn_relu_nonnegative():
    p = make_inputs("gru", 3, 2, 3, 4)
    y1 = forward("gru", p)[0]["y"]
    y2 = forward("gru_reset_before", p)[0]["y"]
    assert not np.allclose(y1, y2)
    assert np.all(forward("rnn_relu", make_inputs("rnn_relu", 3, 2, 3, 4))[0]["y"] >= 0)


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cell", CELLS)
def test_float32_close_to_float64_and_dtype_preserved(cell, bias):
    p64 = make_inputs(cell, 5, 3, 4, 6, bias=bias)
    p32 = {k: (None if v is None else v.astype(np.float32)) for k, v in p64.items()}
    o64, c64 = forward(cell, p64)
    o32, c32 = forward(cell, p32)
    og64 = random_out_grads(o64)
    og32 = {k: v.astype(np.float32) for k, v in og64.items()}
    g64, g32 = backward(cell, og64, c64), backward(cell, og32, c32)
    for k in o64:
        assert o64[k].dtype == np.float64 and o32[k].dtype == np.float32, k
        np.testing.assert_allclose(o32[k], o64[k], rtol=1e-4, atol=1e-5, err_msg=k)
    for k in g64:
        if g64[k] is None:
            assert g32[k] is None
            continue
        assert g64[k].dtype == np.float64 and g32[k].dtype == np.float32, k
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-4, atol=1e-4, err_msg=k)


def test_mixed_dtypes_rejected():
    p = make_inputs("lstm", 2, 2, 3, 4)
    p["h0"] = p["h0"].astype(np.float32)
    with pytest.raises(TypeError):
        forward("lstm", p)


def test_shape_errors():
    p = make_inputs("gru", 2, 2, 3, 4)
    with pytest.raises(ValueError):
        ref.gru_forward(p["x"], p["h0"], p["W_ih"][:-1], p["W_hh"], p["b_ih"], p["b_hh"])
    with pytest.raises(ValueError):
        ref.gru_forward(p["x"], p["h0"], p["W_ih"], p["W_hh"], p["b_ih"], None)
    with pytest.raises(ValueError):
        ref.rnn_forward(p["x"], p["h0"], p["W_ih"][:4], p["W_hh"][:4], None, None,
                        nonlinearity="sigmoid")


# ---------------------------------------------------------------------------
# against PyTorch
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("T,N,C,H", [(5, 3, 4, 6), (1, 1, 2, 1)])
def test_against_torch(cell, bias, T, N, C, H):
    torch = pytest.importorskip("torch")
    p = make_inputs(cell, T, N, C, H, bias=bias, seed=3)
    if cell.startswith("rnn"):
        mod = torch.nn.RNN(C, H, nonlinearity=cell[4:], bias=bias)
    else:
        mod = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](C, H, bias=bias)
    mod = mod.double()
    names = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0",
             "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}
    with torch.no_grad():
        for ours, theirs in names.items():
            if p[ours] is not None:
                getattr(mod, theirs).copy_(torch.from_numpy(p[ours]))

    tx = torch.tensor(p["x"], requires_grad=True)
    th0 = torch.tensor(p["h0"][None], requires_grad=True)
    if cell == "lstm":
        tc0 = torch.tensor(p["c0"][None], requires_grad=True)
        ty, (thn, tcn) = mod(tx, (th0, tc0))
        touts = dict(y=ty, h_n=thn[0], c_n=tcn[0])
    else:
        ty, thn = mod(tx, th0)
        touts = dict(y=ty, h_n=thn[0])

    outs, cache = forward(cell, p)
    og = random_out_grads(outs, seed=4)
    for k in outs:
        np.testing.assert_allclose(outs[k], touts[k].detach().numpy(),
                                   rtol=1e-10, atol=1e-13, err_msg=k)

    tloss = sum((touts[k] * torch.from_numpy(og[k])).sum() for k in og)
    tloss.backward()
    tgrads = {"x": tx.grad.numpy(), "h0": th0.grad[0].numpy()}
    if cell == "lstm":
        tgrads["c0"] = tc0.grad[0].numpy()
    for ours, theirs in names.items():
        if p[ours] is not None:
            tgrads[ours] = getattr(mod, theirs).grad.numpy()

    grads = backward(cell, og, cache)
    for k, v in tgrads.items():
        np.testing.assert_allclose(grads[k], v, rtol=1e-10, atol=1e-12, err_msg=f"d{k}")
    if not bias:
        assert grads["b_ih"] is None and grads["b_hh"] is None
