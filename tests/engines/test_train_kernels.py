"""The training-step fast paths of the `small` preset against the general code they replace.

* integer (one-hot index) input of the recurrent layers: the CPU engine's gather / scatter-add gives the
  one-hot matrix's outputs exactly and its parameter gradients to float rounding; dx is None;
* `_core.readout_xent` (read-out Linear + softmax cross-entropy, forward and backward in one call) against
  nn.Linear + losses.softmax_cross_entropy;
* `_core.adam_update` gives optim.Adam's NumPy numbers bit for bit; clipping's sum of squares;
* CharModel.loss_and_backward fused against unfused, and `rnnfast char train` with and without the fast
  paths (rnnfast.char.trainer.FUSED_READOUT).

Tolerances come from a float64 run: the fast float32 path's distance to it may be at most twice the general
float32 path's, plus a few float32 ulps of the values' scale (two float32 runs can each be exact by luck).
"""

import math

import numpy as np
import pytest

import rnnfast
from rnnfast import _core, char, losses, nn, optim
from rnnfast.charmodel import CharModel

from helpers.cli import run_main

V, H, T, N = 23, 16, 7, 5
EPS32 = float(np.finfo(np.float32).eps)


def _layer(kind, dtype, engine="cpu"):
    kw = dict(dtype=dtype, seed=3, engine=engine)
    if kind == "lstm":
        return rnnfast.LSTM(V, H, **kw)
    if kind == "lstm-2-bidir-batch-first":
        return rnnfast.LSTM(V, H, num_layers=2, bidirectional=True, batch_first=True, **kw)
    if kind == "gru":
        return rnnfast.GRU(V, H, **kw)
    if kind == "gru-cho":
        return rnnfast.GRU(V, H, reset_after=False, **kw)
    if kind == "rnn-relu":
        return rnnfast.RNN(V, H, nonlinearity="relu", **kw)
    if kind == "mrnn":
        return rnnfast.MRNN(V, H, 9, **kw)
    raise AssertionError(kind)


def _run(layer, x, dy, state=None):
    y, _ = layer.forward(x, state)
    dx, dh0 = layer.backward(dy)
    return y, dx, {k: g.copy() for k, g in layer.grads.items()}


def _close_to_reference(fast, general, ref, name):
    """|fast - ref| <= 2 |general - ref| + 8 eps32 max|ref| (elementwise maximum over the array)."""
    scale = np.abs(ref).max()
    e_fast, e_gen = np.abs(fast - ref).max(), np.abs(general - ref).max()
    assert e_fast <= 2 * e_gen + 8 * EPS32 * scale, (name, e_fast, e_gen, scale)


KINDS = ["lstm", "lstm-2-bidir-batch-first", "gru", "gru-cho", "rnn-relu", "mrnn"]


# batch 40: the engine scatters dW_ih's rows inside its time loop, and (20 steps) accumulates dW_hh in chunks
# of 7 steps
@pytest.mark.parametrize("steps,batch", [(T, N), (20, 40)])
@pytest.mark.parametrize("kind", KINDS)
def test_index_input_equals_the_one_hot_matrix(kind, steps, batch):
    rng = np.random.default_rng(0)
    bf = kind.endswith("batch-first")
    idx = rng.integers(0, V, (batch, steps) if bf else (steps, batch))
    dy = rng.standard_normal(idx.shape + ((2 * H,) if "bidir" in kind else (H,)))
    runs = {}
    for dt in ("float32", "float64"):
        for how in ("index", "one_hot"):
            layer = _layer(kind, dt)
            x = idx if how == "index" else nn.one_hot(idx, V, dtype=dt)
            runs[dt, how] = _run(layer, x, dy.astype(dt))
    for dt in ("float32", "float64"):
        (ya, dxa, ga), (yb, dxb, gb) = runs[dt, "index"], runs[dt, "one_hot"]
        assert np.array_equal(ya, yb)  # the gather is the GEMM on one-hot rows, number for number
        assert dxa is None and dxb is not None and dxb.shape == (*idx.shape, V)
        assert ga.keys() == gb.keys()
    ref = runs["float64", "one_hot"][2]
    for k in ref:
        _close_to_reference(runs["float32", "index"][2][k], runs["float32", "one_hot"][2][k], ref[k], k)
        np.testing.assert_allclose(runs["float64", "index"][2][k], ref[k], rtol=1e-12,
                                   atol=1e-13 * np.abs(ref[k]).max())


@pytest.mark.parametrize("batched", [True, False])
def test_index_input_on_the_reference_engine_and_unbatched(batched):
    rng = np.random.default_rng(2)
    idx = rng.integers(0, V, (T, N) if batched else (T,))
    dy = rng.standard_normal((T, N, H) if batched else (T, H))
    a, b = _layer("lstm", "float64"), _layer("lstm", "float64", engine="reference")
    ya, dxa, ga = _run(a, idx, dy)
    yb, dxb, gb = _run(b, idx, dy)
    assert dxa is None and dxb is None and ya.shape == yb.shape == dy.shape
    np.testing.assert_allclose(ya, yb, rtol=1e-12, atol=1e-14)
    for k in ga:
        np.testing.assert_allclose(ga[k], gb[k], rtol=1e-10, atol=1e-13)


def test_index_input_errors():
    layer = _layer("lstm", "float32")
    with pytest.raises(ValueError, match="input_size"):
        layer.forward(np.full((T, N), V))
    with pytest.raises(ValueError, match="input_size"):
        layer.forward(np.full((T, N), -1))
    with pytest.raises(TypeError, match="one-hot indices"):
        layer.forward(np.zeros((T, N, 1), np.int64))
    from rnnfast.backends import engine_for
    from rnnfast.backends.cells import LSTM

    w = layer._weights(0, 0, layer.parameters())
    out = dict(y=np.empty((T, N, H), np.float32), h_n=np.empty((N, H), np.float32),
               c_n=np.empty((N, H), np.float32))
    with pytest.raises(ValueError, match="x_index"):  # the binding checks too
        engine_for("recurrent", "cpu", "cpu").forward(LSTM, np.full((T, N), V, np.int32), None, None, w, out, False,
                                                      False)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
def test_readout_xent_matches_linear_and_softmax_cross_entropy(dtype, bias):
    rng = np.random.default_rng(4)
    R, K = 37, 11
    x = rng.standard_normal((R, H)) * 2
    targets = rng.integers(0, K, R)
    scale = 3.0 / R
    results = {}
    for dt, fused in (("float64", False), (dtype, False), (dtype, True)):
        lin = nn.Linear(H, K, bias=bias, dtype=dt, seed=5)
        xs = x.astype(dt)
        if fused:
            logits, nll = np.empty((R, K), dt), np.empty(R, np.float64)
            dx = np.empty((R, H), dt)
            W = lin.parameters()
            total = _core.readout_xent(xs, W["weight"], W.get("bias"), targets.astype(np.int32), scale, logits, nll,
                                       lin.grads["weight"], lin.grads.get("bias"), dx)
            loss = total / R
        else:
            loss, dlogits = losses.softmax_cross_entropy(lin.forward(xs), targets)
            dx = lin.backward(dlogits * 3.0)
        results[dt, fused] = (loss, dx, {k: g.copy() for k, g in lin.grads.items()})
    ref, gen, fast = results["float64", False], results[dtype, False], results[dtype, True]
    assert abs(fast[0] - ref[0]) <= 2 * abs(gen[0] - ref[0]) + 8 * EPS32 * abs(ref[0])
    _close_to_reference(fast[1], gen[1], ref[1], "dx")
    for k in ref[2]:
        _close_to_reference(fast[2][k], gen[2][k], ref[2][k], k)
    # dw=None: the loss only (evaluation)
    lin = nn.Linear(H, K, bias=bias, dtype=dtype, seed=5)
    W = lin.parameters()
    total = _core.readout_xent(x.astype(dtype), W["weight"], W.get("bias"), targets.astype(np.int32), 1.0,
                               np.empty((R, K), dtype), np.empty(R), None, None, None)
    assert total / R == pytest.approx(fast[0], rel=1e-6)


def test_readout_xent_checks_targets():
    x, w = np.zeros((4, 3), np.float32), np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError, match="targets"):
        _core.readout_xent(x, w, None, np.array([0, 1, 5, 2], np.int32), 1.0, np.empty((4, 5), np.float32),
                           np.empty(4), None, None, None)


def _numpy_adam(p, g, m, v, t, lr, b1, b2, eps, wd):
    """optim.Adam's NumPy update, written out."""
    g = g + wd * p if wd else g
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps
    p -= (lr / (1 - b1 ** t)) * (m / denom)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adam_kernel_gives_numpys_numbers_bit_for_bit(dtype, wd):
    rng = np.random.default_rng(6)
    shapes = [(300, 7), (5,), (70001,)]  # the last one spans several of the kernel's tasks
    params = nn.ParameterDict({f"p{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)})
    copies = {k: p.copy() for k, p in params.parameters().items()}
    ms = {k: np.zeros_like(p) for k, p in copies.items()}
    vs = {k: np.zeros_like(p) for k, p in copies.items()}
    opt = optim.Adam(params, lr=1e-2, betas=(0.85, 0.99), eps=1e-6, weight_decay=wd)
    for t in range(1, 6):
        for k, g in params.grads.items():
            g[...] = rng.standard_normal(g.shape)
            _numpy_adam(copies[k], g, ms[k], vs[k], t, 1e-2, 0.85, 0.99, 1e-6, wd)
        opt.step()
    for k, p in params.parameters().items():
        assert np.array_equal(p, copies[k]), k
        assert np.array_equal(opt.state[k]["exp_avg"], ms[k]) and np.array_equal(opt.state[k]["exp_avg_sq"], vs[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite(dtype):
    rng = np.random.default_rng(5)
    for n in (0, 1, 15, 16, 17, 1000):
        g = (np.clip(rng.standard_normal(n), -1, 1) * np.finfo(dtype).max).astype(dtype)  # huge, still finite
        assert _core.all_finite(g)
        for pos in {0, n // 2, n - 1} if n else ():
            for bad in (np.nan, np.inf, -np.inf):
                h = g.copy()
                h[pos] = bad
                assert not _core.all_finite(h), (n, pos, bad)
    g = np.zeros((3, 4), dtype)
    g[2, 3] = np.nan
    assert not _core.all_finite(g)
    m = nn.ParameterDict(a=np.zeros(20, dtype))
    m.grads["a"][7] = np.inf
    opt = optim.Adam(m, lr=0.1)
    with pytest.raises(ValueError, match="non-finite"):
        opt.step()
    assert np.all(m.parameters()["a"] == 0)  # nothing was updated


def test_sum_squares_and_clip_norm():
    rng = np.random.default_rng(7)
    for dt in (np.float32, np.float64):
        g = rng.standard_normal(100003).astype(dt)
        assert _core.sum_squares(g) == pytest.approx(float((g.astype(np.float64) ** 2).sum()), rel=1e-13)
    m = nn.ParameterDict(a=np.zeros((30, 4), np.float32), b=np.zeros(7, np.float32))
    m.grads["a"][...] = 3.0
    m.grads["b"][...] = -4.0
    total = optim.clip_grad_norm_(m, 1.0)
    assert total == pytest.approx(math.sqrt(120 * 9 + 7 * 16))
    clipped = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in m.grads.values()))
    assert clipped == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mrnn"])
def test_loss_and_backward_fused_equals_unfused(cell):
    rng = np.random.default_rng(8)
    idx = rng.integers(0, V, (T + 1, N))
    res = {}
    for dt, fused in (("float64", False), ("float32", False), ("float32", True), ("float64", True)):
        model = CharModel(V, cell, H, 2, seed=9, dtype=dt)
        state = model.initial_state(N)
        for _ in range(2):  # the state carried into a second step
            model.zero_grad()
            loss, state = model.loss_and_backward(idx[:-1], idx[1:], state, loss_scale=float(T), fused=fused)
        grads = {f"{mn}.{k}": g.copy() for mn, m in model.modules().items() for k, g in m.grads.items()}
        res[dt, fused] = (loss, grads)
    ref, gen, fast = res["float64", False], res["float32", False], res["float32", True]
    assert abs(fast[0] - ref[0]) <= 2 * abs(gen[0] - ref[0]) + 8 * EPS32 * ref[0]
    for k in ref[1]:
        _close_to_reference(fast[1][k], gen[1][k], ref[1][k], k)
        np.testing.assert_allclose(res["float64", True][1][k], ref[1][k], rtol=1e-10,
                                   atol=1e-12 * np.abs(ref[1][k]).max())
    assert res["float64", True][0] == pytest.approx(ref[0], rel=1e-13)


def _train(capsys, text, out, *extra):
    code, _, err = run_main(["char", "train", "--text", text, "--out", str(out), "--no-progress", "--hidden", "32",
                             "--seq-len", "16", "--batch", "4", "--sample-length", "10", "--val-chars", "512",
                             "--log-every", "1", *extra], capsys)
    assert code == 0, err


def test_cli_small_preset_with_and_without_the_fast_paths(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(10)
    text = tmp_path / "t.txt"
    text.write_text("".join(rng.choice(list("abcde fghij\n"), 8000)), encoding="utf-8")
    common = ["--steps", "12", "--val-every", "6", "--save-every", "0"]
    a, b = tmp_path / "fast", tmp_path / "general"
    _train(capsys, str(text), a, *common)
    monkeypatch.setattr(char.trainer, "FUSED_READOUT", False)
    _train(capsys, str(text), b, *common)
    (ma, ma_model), (mb, mb_model) = char.load_checkpoint(str(a)), char.load_checkpoint(str(b))
    la, lb = np.array(ma["run"].history)[:, 1], np.array(mb["run"].history)[:, 1]
    assert la.shape == lb.shape == (12,)
    assert np.abs(la - lb).max() < 1e-5  # the same run to float32 rounding (it drifts only slowly here)
    wa, wb = ma_model.state_dict(), mb_model.state_dict()
    for k in wa:
        np.testing.assert_allclose(wa[k], wb[k], rtol=0, atol=1e-4)


_THREADS_RUN = r"""
import sys
import numpy as np
import rnnfast
rng = np.random.default_rng(0)
out = {}
for name, make in [("lstm", lambda: rnnfast.LSTM(19, 24, seed=1)), ("gru", lambda: rnnfast.GRU(19, 24, seed=1)),
                   ("gru-cho", lambda: rnnfast.GRU(19, 24, reset_after=False, seed=1)),
                   ("rnn", lambda: rnnfast.RNN(19, 24, seed=1))]:
    for N in (8, 40):   # 40: each of 2 threads gets its own batch rows (the by-rows schedule); 8: shared steps
        layer = make()
        idx = rng.integers(0, 19, (9, N))
        y, _ = layer.forward(idx)
        layer.backward(rng.standard_normal(y.shape).astype(np.float32))
        out[f"{name}{N}.y"] = y
        out.update({f"{name}{N}.{k}": g for k, g in layer.grads.items()})
# dense input, a hidden size that is not a whole number of unit blocks, both directions, float64 too
for name, cls, kw in [("lstm", rnnfast.LSTM, {}), ("gru", rnnfast.GRU, {}),
                      ("gru-cho", rnnfast.GRU, {"reset_after": False}), ("rnn", rnnfast.RNN, {})]:
    for N, dtype in ((8, np.float32), (3, np.float64), (40, np.float32)):
        layer = cls(13, 203, bidirectional=True, dtype=dtype, seed=2, **kw)
        y, _ = layer.forward(rng.standard_normal((7, N, 13)).astype(dtype))
        dx, _ = layer.backward(rng.standard_normal(y.shape).astype(dtype))
        out[f"x-{name}{N}.y"], out[f"x-{name}{N}.dx"] = y, dx
        out.update({f"x-{name}{N}.{k}": g for k, g in layer.grads.items()})
np.savez(sys.argv[1], **out)
"""


def test_results_do_not_depend_on_the_thread_count(tmp_path):
    """The by-rows schedule cuts the batch at multiples of the GEMM's register tile, the by-units schedule
    gives each thread whole GEMM panels: the same sums as on one thread, bit for bit (big enough that the
    engine does use 2 threads)."""
    import os
    import subprocess
    import sys

    files = {}
    for threads in ("1", "2"):
        files[threads] = tmp_path / f"t{threads}.npz"
        env = dict(os.environ, RNNFAST_NUM_THREADS=threads)
        code = _THREADS_RUN.replace("rnnfast.LSTM(19, 24", "rnnfast.LSTM(19, 256").replace(
            "rnnfast.GRU(19, 24", "rnnfast.GRU(19, 256").replace("rnnfast.RNN(19, 24", "rnnfast.RNN(19, 512")
        proc = subprocess.run([sys.executable, "-c", code, str(files[threads])], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    a, b = np.load(files["1"]), np.load(files["2"])
    assert a.files == b.files
    for k in a.files:
        assert np.array_equal(a[k], b[k]), k
