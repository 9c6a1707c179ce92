"""The CUDA engine against the CPU engine and the float64 reference (GPU tests: skipped without a GPU, failed
when one is visible but unusable: tests/conftest.py).

Every device allocation made by CuPy during these tests is poisoned with NaN (cupy.empty is patched), so
an element a kernel forgot to write shows up as NaN. Inputs are random, drawn afresh per case.
"""

import contextlib
import json
import threading

import numpy as np
import pytest

import rnnfast

CELLS = {
    "rnn_tanh": lambda **k: rnnfast.RNN(nonlinearity="tanh", **k),
    "rnn_relu": lambda **k: rnnfast.RNN(nonlinearity="relu", **k),
    "lstm": lambda **k: rnnfast.LSTM(**k),
    "gru": lambda **k: rnnfast.GRU(reset_after=True, **k),
    "gru_cho": lambda **k: rnnfast.GRU(reset_after=False, **k),
    "mrnn": lambda **k: rnnfast.MRNN(factors=7, **k),
}

# (T, N, C, H, options): batch sizes around the kernels' row blocks (1, 4, 8), hidden sizes around the
# 32-unit blocks, both directions, two layers, no bias.
SHAPES = [
    (1, 1, 3, 5, {}),
    (5, 1, 3, 20, {}),
    (4, 1, 2, 12, {"batch_first": True}),
    (7, 3, 4, 33, {}),
    (5, 8, 6, 32, {"bidirectional": True}),
    (4, 17, 5, 40, {"num_layers": 2}),
    (6, 9, 3, 16, {"bias": False, "batch_first": True}),
]


@pytest.fixture
def cp(monkeypatch):
    import cupy  # importable whenever the GPU tests run (conftest.gpu_probe)

    empty = cupy.empty

    def poisoned_empty(shape, dtype=float, order="C"):
        a = empty(shape, dtype, order)
        if np.dtype(dtype).kind == "f":
            a.fill(np.nan)
        return a

    monkeypatch.setattr(cupy, "empty", poisoned_empty)
    return cupy


def _data(layer, T, N, rng, dt):
    D, L, H = layer.num_directions, layer.num_layers, layer.hidden_size
    shape_x = (N, T, layer.input_size) if layer.batch_first else (T, N, layer.input_size)
    shape_y = (N, T, D * H) if layer.batch_first else (T, N, D * H)
    x = rng.standard_normal(shape_x).astype(dt)
    h0 = (0.5 * rng.standard_normal((L * D, N, H))).astype(dt)
    c0 = (0.5 * rng.standard_normal((L * D, N, H))).astype(dt)
    dy = rng.standard_normal(shape_y).astype(dt)
    dh = rng.standard_normal((L * D, N, H)).astype(dt)
    dc = rng.standard_normal((L * D, N, H)).astype(dt)
    return x, h0, c0, dy, dh, dc


def _assert_like_cpu(got, want_cpu, want_ref, dtype):
    """Every GPU result in `dtype`, all written, and within 2x the CPU engine's own error against the
    float64 reference (or a floor for the dtype)."""
    for k in want_ref:
        assert got[k].dtype == np.dtype(dtype), k
        assert np.isfinite(got[k]).all(), f"{k}: NaN left (an element was not written)"
        scale = max(1.0, float(np.abs(want_ref[k]).max()))
        err_gpu = float(np.abs(got[k] - want_ref[k]).max()) / scale
        err_cpu = float(np.abs(want_cpu[k] - want_ref[k]).max()) / scale
        tol = 1e-12 if dtype == "float64" else 5e-6
        assert err_gpu <= max(2 * err_cpu, tol), f"{k}: error {err_gpu:.2e} vs the CPU engine's {err_cpu:.2e}"


def _run(layer, x, h0, c0, dy, dh, dc, to_dev=lambda a: a, to_host=lambda a: a):
    lstm = isinstance(layer, rnnfast.LSTM)
    layer.zero_grad()
    hx = (to_dev(h0), to_dev(c0)) if lstm else to_dev(h0)
    y, state = layer(to_dev(x), hx)
    dhx = (to_dev(dh), to_dev(dc)) if lstm else to_dev(dh)
    dx, dstate = layer.backward(to_dev(dy), dhx)
    out = {"y": y, "dx": dx}
    if lstm:
        out.update(h_n=state[0], c_n=state[1], dh0=dstate[0], dc0=dstate[1])
    else:
        out.update(h_n=state, dh0=dstate)
    out.update({"grad_" + k: g for k, g in layer.grads.items()})
    return {k: to_host(v) for k, v in out.items()}


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}N{}C{}H{}{}".format(*s[:4], "".join(s[4])))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_cuda_matches_cpu_engine_and_float64_reference(cp, cell, dtype, shape):
    T, N, C, H, opts = shape
    rng = np.random.default_rng([T, N, H, len(cell), len(dtype)])
    cpu = CELLS[cell](input_size=C, hidden_size=H, dtype=dtype, seed=int(rng.integers(1 << 30)), **opts)
    gpu = CELLS[cell](input_size=C, hidden_size=H, dtype=dtype, **opts).to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    ref = CELLS[cell](input_size=C, hidden_size=H, dtype="float64", engine="reference", **opts)
    ref.load_state_dict({k: v.astype(np.float64) for k, v in cpu.state_dict().items()})
    data = _data(cpu, T, N, rng, np.dtype(dtype))

    got = _run(gpu, *data, to_dev=cp.asarray, to_host=cp.asnumpy)
    want_cpu = _run(cpu, *data)
    want_ref = _run(ref, *[a.astype(np.float64) for a in data])
    assert set(got) == set(want_ref)
    _assert_like_cpu(got, want_cpu, want_ref, dtype)


# the tiled step kernel (large batches): rows past a block's 32 or 64, hidden sizes past 32 units, k past
# the 32-wide shared tiles (C + H and G*H not multiples of 32), two layers and both directions
TILED_SHAPES = [(3, 70, 5, 40, {}), (2, 33, 3, 37, {"bidirectional": True}), (2, 9, 4, 20, {"num_layers": 2})]


@pytest.mark.gpu
@pytest.mark.parametrize("rows", [32, 64])
@pytest.mark.parametrize("shape", TILED_SHAPES, ids=lambda s: "T{}N{}C{}H{}{}".format(*s[:4], "".join(s[4])))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_cuda_tiled_kernel_matches_cpu_engine_and_float64_reference(cp, cell, dtype, shape, rows):
    from rnnfast.backends import cuda as _cuda

    before = _cuda._core.cuda_tiling()
    _cuda._core.cuda_set_tiling(rows, 1)  # every batch size takes the tiled kernel
    try:
        test_cuda_matches_cpu_engine_and_float64_reference(cp, cell, dtype, shape)
    finally:
        _cuda._core.cuda_set_tiling(*before)


@pytest.mark.gpu
def test_cuda_tiling_setting_is_checked(cp):
    from rnnfast.backends import cuda as _cuda

    before = _cuda._core.cuda_tiling()
    for bad in [(16, 64), (32, 0), (-1, 1)]:
        with pytest.raises(ValueError):
            _cuda._core.cuda_set_tiling(*bad)
    assert _cuda._core.cuda_tiling() == before
    before = _cuda._core.cuda_row_kernel()
    assert before == (32, 1)  # the defaults, until timings choose others
    for bad in [(64, 1), (4, 1), (32, 3), (16, 0)]:
        with pytest.raises(ValueError, match="width|units"):
            _cuda._core.cuda_set_row_kernel(*bad)
    assert _cuda._core.cuda_row_kernel() == before


# the row kernel's variants (csrc/cuda/step_kernel.cuh): (width, units per thread, dtype). Narrower slices
# split a warp's k between 2 or 4 groups of lanes that meet by shuffles; several units per thread (single-
# gate launches: every backward step) stage the batch rows in shared memory, a chunk of k at a time.
ROW_VARIANTS = [(16, 1, "float32"), (8, 1, "float64"), (32, 2, "float64"), (32, 4, "float32"), (8, 4, "float64")]
# one row and a partial block of units, both directions; 9 rows (a full and a partial row block) and, in
# the LSTM's backward, k past one staged chunk (which needs K > 256); then K > 256 for every cell, for two
# staged variants (the others have no chunks)
VARIANT_SHAPES = [(3, 1, 4, 37, {"bidirectional": True}), (2, 9, 3, 70, {})]
VARIANT_CASES = [(v, s) for v in ROW_VARIANTS for s in VARIANT_SHAPES] + \
    [(v, (2, 3, 2, 260, {})) for v in [(32, 4, "float32"), (8, 4, "float64")]]


def _variant_id(c):
    return f"w{c[0]}u{c[1]}{c[2][-2:]}" if len(c) == 3 else "T{}N{}C{}H{}{}".format(*c[:4], "".join(c[4]))


@pytest.mark.gpu
@pytest.mark.parametrize("variant, shape", VARIANT_CASES, ids=_variant_id)
@pytest.mark.parametrize("cell", list(CELLS))
def test_cuda_row_kernel_variants_match_cpu_engine_and_float64_reference(cp, cell, variant, shape):
    from rnnfast.backends import cuda as _cuda

    before = _cuda._core.cuda_row_kernel()
    _cuda._core.cuda_set_row_kernel(*variant[:2])
    try:
        test_cuda_matches_cpu_engine_and_float64_reference(cp, cell, variant[2], shape)
    finally:
        _cuda._core.cuda_set_row_kernel(*before)


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_cuda_eval_mode_and_default_state(cp, cell):
    rng = np.random.default_rng(1)
    cpu = CELLS[cell](input_size=4, hidden_size=24, dtype="float64", seed=3)
    gpu = CELLS[cell](input_size=4, hidden_size=24, dtype="float64", seed=3, device="cuda").eval()
    x = rng.standard_normal((9, 5, 4))
    y_cpu, _ = cpu(x)
    y_gpu, _ = gpu(cp.asarray(x))
    assert isinstance(y_gpu, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(y_gpu), y_cpu, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="backward"):
        gpu.backward(cp.zeros_like(y_gpu))


@pytest.mark.gpu
def test_cuda_learned_initial_state_and_unbatched(cp):
    rng = np.random.default_rng(2)
    cpu = rnnfast.LSTM(3, 10, dtype="float64", learn_initial_state=True, seed=4)
    cpu.load_state_dict({**cpu.state_dict(), "h0": rng.standard_normal((1, 10)), "c0": rng.standard_normal((1, 10))})
    gpu = rnnfast.LSTM(3, 10, dtype="float64", learn_initial_state=True).to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    x = rng.standard_normal((6, 3))  # unbatched (T, C)
    dy = rng.standard_normal((6, 10))
    y_c, _ = cpu(x)
    cpu.backward(dy)
    y_g, _ = gpu(cp.asarray(x))
    gpu.backward(cp.asarray(dy))
    np.testing.assert_allclose(cp.asnumpy(y_g), y_c, rtol=1e-12, atol=1e-12)
    for k in ("h0", "c0", "weight_hh_l0"):
        np.testing.assert_allclose(cp.asnumpy(gpu.grads[k]), cpu.grads[k], rtol=1e-10, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("cell", list(CELLS))
def test_cuda_unbatched_matches_cpu(cp, cell):
    rng = np.random.default_rng(6)
    cpu = CELLS[cell](input_size=3, hidden_size=21, dtype="float64", seed=2)
    gpu = CELLS[cell](input_size=3, hidden_size=21, dtype="float64").to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    x, dy = rng.standard_normal((7, 3)), rng.standard_normal((7, 21))
    y_c, _ = cpu(x)
    dx_c, _ = cpu.backward(dy)
    y_g, _ = gpu(cp.asarray(x))
    dx_g, _ = gpu.backward(cp.asarray(dy))
    np.testing.assert_allclose(cp.asnumpy(y_g), y_c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cp.asnumpy(dx_g), dx_c, rtol=1e-10, atol=1e-12)


@pytest.mark.gpu
def test_cuda_mixing_host_and_device_arrays_is_an_error(cp):
    gpu = rnnfast.GRU(3, 8, device="cuda")
    with pytest.raises(TypeError, match="numpy.ndarray.*cuda"):
        gpu(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(TypeError, match="h0"):
        gpu(cp.zeros((2, 1, 3), cp.float32), np.zeros((1, 1, 8), np.float32))
    with pytest.raises(TypeError, match="float32"):
        gpu(cp.zeros((2, 1, 3), cp.float64))


@pytest.mark.gpu
def test_cuda_array_to_a_cpu_layer_is_an_error(cp):
    cpu = rnnfast.GRU(3, 8)
    with pytest.raises(TypeError, match="device='cuda'"):
        cpu(cp.zeros((2, 1, 3), cp.float32))


@pytest.mark.gpu
def test_cuda_layer_round_trip_between_devices(cp):
    layer = rnnfast.LSTM(3, 8, seed=0)
    before = layer.state_dict()
    layer.to("cuda")
    assert all(isinstance(p, cp.ndarray) for p in layer.parameters().values())
    layer.to("cpu")
    for k, v in layer.state_dict().items():
        assert isinstance(v, np.ndarray)
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.gpu
def test_cuda_accepts_torch_cuda_tensors(cp):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    layer = rnnfast.LSTM(3, 8, dtype="float64", seed=0).to("cuda")
    x = torch.randn(4, 2, 3, dtype=torch.float64, device="cuda")
    y, _ = layer(x)
    y2, _ = layer(cp.asarray(x.cpu().numpy()))
    cp.testing.assert_allclose(y, y2, rtol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cuda_matches_cudnn_float64(cp, cell):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    T, N, C, H = 12, 5, 6, 48
    tl = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(C, H, dtype=torch.float64).cuda()
    layer = CELLS[cell](input_size=C, hidden_size=H, dtype="float64").to("cuda")
    layer.load_state_dict({k: cp.asarray(v.detach()) for k, v in tl.state_dict().items()})
    x = torch.randn(T, N, C, dtype=torch.float64, device="cuda", requires_grad=True)
    y_t, _ = tl(x)
    dy = torch.randn_like(y_t)
    y_t.backward(dy)
    y, _ = layer(cp.asarray(x.detach()))
    dx, _ = layer.backward(cp.asarray(dy))
    cp.testing.assert_allclose(y, cp.asarray(y_t.detach()), rtol=1e-10, atol=1e-12)
    cp.testing.assert_allclose(dx, cp.asarray(x.grad), rtol=1e-10, atol=1e-12)
    for name, p in tl.named_parameters():
        cp.testing.assert_allclose(layer.grads[name], cp.asarray(p.grad), rtol=1e-9, atol=1e-11)


@pytest.mark.gpu
def test_cuda_forward_backward_captures_in_a_graph(cp):
    """No host synchronisation inside forward/backward: the pair captures into a CUDA graph and replays."""
    rng = np.random.default_rng(5)
    layer = rnnfast.LSTM(4, 32, seed=1).to("cuda")
    x = cp.asarray(rng.standard_normal((10, 8, 4)).astype(np.float32))
    dy = cp.asarray(rng.standard_normal((10, 8, 32)).astype(np.float32))
    stream = cp.cuda.Stream(non_blocking=True)
    # the weights and inputs were uploaded on the legacy default stream, which a non-blocking stream does
    # not wait for: order the uploads before everything below by an event
    stream.wait_event(cp.cuda.get_current_stream().record())
    with stream:
        for _ in range(2):  # warm up: scratch buffers, the memory pool, cuBLAS handles
            layer.zero_grad()
            y, _ = layer(x)
            dx, _ = layer.backward(dy)
        want_y, want_dx, want_g = y.copy(), dx.copy(), layer.grads["weight_hh_l0"].copy()
        layer.zero_grad()
        stream.begin_capture()
        y, _ = layer(x)
        dx, _ = layer.backward(dy)
        graph = stream.end_capture()
        layer.zero_grad()
        graph.launch(stream)
    stream.synchronize()
    cp.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6)
    cp.testing.assert_allclose(dx, want_dx, rtol=1e-6, atol=1e-6)
    cp.testing.assert_allclose(layer.grads["weight_hh_l0"], want_g, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_cuda_memory_pool_flat_over_many_calls(cp):
    layer = rnnfast.GRU(8, 64, num_layers=2).to("cuda")
    x = cp.asarray(np.random.default_rng(0).standard_normal((20, 16, 8)).astype(np.float32))
    dy = cp.ones((20, 16, 64), cp.float32)
    pool = cp.get_default_memory_pool()
    for _ in range(20):
        layer(x)
        layer.backward(dy)
    cp.cuda.Device().synchronize()
    used = pool.used_bytes()
    for _ in range(500):
        layer(x)
        layer.backward(dy)
    cp.cuda.Device().synchronize()
    assert pool.used_bytes() <= used + (1 << 20), (used, pool.used_bytes())  # flat: no growth per call


@pytest.mark.gpu
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_reservoir_matches_cpu(cp, dense, dtype):
    from rnnfast.esn import run_population

    rng = np.random.default_rng(7)
    kw = dict(spectral_radius=0.9, leak_rate=0.3, input_scaling=0.5, bias_scaling=0.2, seed=3, dtype=dtype,
              density=1.0 if dense else 0.1)
    base = rnnfast.ESN(2, 70, 1, **kw)  # both built from the same supplied matrices (same population scales)
    mats = dict(W=base.W, W_in=base.W_in, bias=base.bias)
    cpu = rnnfast.ESN(2, 70, 1, **mats, **kw)
    gpu = rnnfast.ESN(2, 70, 1, device="cuda", **mats, **kw)
    u = rng.standard_normal((30, 5, 2)).astype(dtype)  # a batch of 5 sequences
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(gpu.run_reservoir(u), cpu.run_reservoir(u), rtol=tol, atol=tol)
    np.testing.assert_allclose(gpu.run_reservoir(u), cpu.run_reservoir(u), rtol=tol, atol=tol)  # stateful
    got = run_population(u, gpu, spectral_radii=[0.5, 1.1], input_scalings=[1.0, 0.2], leak_rates=[0.2, 0.9])
    want = run_population(u, cpu, spectral_radii=[0.5, 1.1], input_scalings=[1.0, 0.2], leak_rates=[0.2, 0.9])
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "mrnn"])
def test_cuda_index_input_matches_cpu(cp, cell):
    """Integer (one-hot index) input: the CUDA path builds the one-hot matrix; results equal the CPU gather."""
    rng = np.random.default_rng(8)
    cpu = CELLS[cell](input_size=11, hidden_size=20, dtype="float64", seed=3)
    gpu = CELLS[cell](input_size=11, hidden_size=20, dtype="float64").to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    idx = rng.integers(0, 11, (6, 4))
    dy = rng.standard_normal((6, 4, 20))
    y_c, _ = cpu(idx)
    dx_c, _ = cpu.backward(dy)
    y_g, _ = gpu(cp.asarray(idx))
    dx_g, _ = gpu.backward(cp.asarray(dy))
    assert dx_c is None and dx_g is None
    np.testing.assert_allclose(cp.asnumpy(y_g), y_c, rtol=1e-12, atol=1e-12)
    for k, g in cpu.grads.items():
        np.testing.assert_allclose(cp.asnumpy(gpu.grads[k]), g, rtol=1e-10, atol=1e-12, err_msg=k)


# ---- the training layer on CuPy arrays ------------------------------------------------------------
OPTIMIZERS = {
    "sgd_nesterov": lambda m, optim: optim.SGD(m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "rmsprop": lambda m, optim: optim.RMSprop(m, lr=0.01, momentum=0.9, centered=True),
    "adagrad": lambda m, optim: optim.Adagrad(m, lr=0.1, lr_decay=0.01),
    "adam": lambda m, optim: optim.Adam(m, lr=0.01, weight_decay=0.01),
}


@pytest.mark.gpu
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_cuda_training_modules_match_cpu(cp, opt_name):
    """Embedding -> Conditioned RNN -> Linear, masked cross-entropy + MSE, both clips and an optimizer, on
    CuPy arrays: the same numbers as on the CPU (float64), every step."""
    from rnnfast import losses, nn, optim

    rng = np.random.default_rng(11)
    T, N, C, V, H, K = 5, 3, 4, 2, 6, 7
    idx, tgt = rng.integers(0, K, (T, N)), rng.integers(0, K, (T, N))
    v, reg = rng.standard_normal((N, V)), rng.standard_normal((T, N, K))
    mask = rng.random((T, N)) < 0.7
    got = {}
    for dev in ("cpu", "cuda"):
        put = (lambda a: a) if dev == "cpu" else cp.asarray
        model = nn.ModuleDict(emb=nn.Embedding(K, C, dtype="float64", seed=1),
                              cap=nn.Conditioned(rnnfast.RNN(C + V, H, dtype="float64", seed=2), cond_size=V),
                              out=nn.Linear(H, K, dtype="float64", seed=3)).to(dev)
        opt = OPTIMIZERS[opt_name](model, optim)
        assert all(isinstance(p, cp.ndarray) == (dev == "cuda") for p in model.parameters().values())
        trace = []
        for _ in range(3):
            opt.zero_grad()
            y, _ = model.cap(model.emb(put(idx)), put(v))
            logits = model.out(y)
            l1, d1 = losses.softmax_cross_entropy(logits, put(tgt), mask=put(mask))
            l2, d2 = losses.mse(logits, put(reg), mask=put(mask))
            dx, dv = model.cap.backward(model.out.backward(d1 + 0.1 * d2))
            model.emb.backward(dx)
            norm = optim.clip_grad_norm_(model, 0.5)
            optim.clip_grad_value_(model, 0.02)
            opt.step()
            trace += [l1, l2, norm, nn.to_host(dv)]
        got[dev] = (trace, {k: nn.to_host(p) for k, p in model.parameters().items()},
                    {k: nn.to_host(a) for k, a in opt.state_dict().items() if k.startswith("state.")
                     and not k.endswith(".step")})
    (t_c, p_c, s_c), (t_g, p_g, s_g) = got["cpu"], got["cuda"]
    for a, b in zip(t_g, t_c):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert p_g.keys() == p_c.keys() and s_g.keys() == s_c.keys() and s_c
    for k in p_c:
        np.testing.assert_allclose(p_g[k], p_c[k], rtol=1e-10, atol=1e-12, err_msg=k)
    for k in s_c:
        assert isinstance(s_g[k], np.ndarray)  # state_dict() gives host arrays on every device
        np.testing.assert_allclose(s_g[k], s_c[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mrnn"])
def test_cuda_char_model_matches_cpu(cp, cell):
    """CharModel on device='cuda' (indices from the host, state and logits on the device) trains, evaluates
    and samples as on the CPU (float64; the CPU side runs its fused read-out)."""
    from rnnfast import losses, optim
    from rnnfast.charmodel import CharModel

    rng = np.random.default_rng(12)
    V, T, N = 9, 6, 3
    data = rng.integers(0, V, 300).astype(np.int32)
    got = {}
    for dev in ("cpu", "cuda"):
        model = CharModel(V, cell, hidden=12, layers=2, seed=4, dtype="float64", device=dev)
        assert model.device == dev
        opt = optim.Adam(model.modules(), lr=0.01)
        state = model.initial_state(N)
        trace = []
        for step in range(4):
            chunk = data[np.arange(N) * 90 + step * T + np.arange(T + 1)[:, None]]
            opt.zero_grad()
            loss, state = model.loss_and_backward(chunk[:-1], chunk[1:], state, loss_scale=2.0)
            trace += [loss, optim.clip_grad_norm_(opt, 1.0)]
            opt.step()
        logits, _ = model.forward(chunk[:-1], state)
        assert isinstance(logits, cp.ndarray) == (dev == "cuda")
        got[dev] = dict(trace=trace, weights=model.state_dict(), state=model.state_arrays(state),
                        val=model.evaluate(data[:200], losses, streams=4, chunk=16),
                        sample=model.sample([1, 2, 3], 12, 0.9, np.random.default_rng(0)),
                        # from the carried state (N = 3 streams: evaluation's 4 streams start from rows 0 1 2 0)
                        val_carried=model.evaluate(data[:200], losses, streams=4, chunk=16, state=state),
                        sample_carried=model.sample([1, 2, 3], 12, 0.9, np.random.default_rng(0), state=state))
    c, g = got["cpu"], got["cuda"]
    np.testing.assert_allclose(g["trace"], c["trace"], rtol=1e-10)
    for key in ("val", "val_carried"):
        np.testing.assert_allclose(g[key], c[key], rtol=1e-10)
    assert g["sample"] == c["sample"] and g["sample_carried"] == c["sample_carried"]
    assert c["val_carried"] != c["val"]
    for a, b in zip(g["state"], c["state"]):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for k in c["weights"]:
        assert isinstance(g["weights"][k], np.ndarray)
        np.testing.assert_allclose(g["weights"][k], c["weights"][k], rtol=1e-10, atol=1e-12, err_msg=k)


def _char_cli(argv, capsys):
    from helpers.cli import run_main

    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    return out


@pytest.mark.gpu
def test_cuda_char_cli_trains_resumes_on_the_cpu_and_samples(cp, tmp_path, capsys):
    """`rnnfast char train --device cuda` follows the CPU run step for step (float32), its checkpoint
    resumes on the CPU, `sample` reads it; --device auto picks the GPU, except for min-char-rnn's fused
    CPU loop."""
    from rnnfast import char

    text = tmp_path / "t.txt"
    words = np.random.default_rng(0).choice(["the", "fox", "runs", "over", "a", "dog"], 1200)
    text.write_text(" ".join(words) + "\n", encoding="utf-8")
    tiny = ["--text", str(text), "--cell", "lstm", "--hidden", "16", "--seq-len", "8", "--batch", "4",
            "--steps", "6", "--val-every", "3", "--val-chars", "256", "--sample-length", "10", "--no-progress",
            "--optimizer", "adam", "--lr", "0.01", "--clip", "1"]
    outs = {}
    for dev in ("cpu", "cuda"):
        outs[dev] = _char_cli(["char", "train", *tiny, "--device", dev, "--out", str(tmp_path / dev)], capsys)
        assert f"device {dev}" in outs[dev]
    w_c, w_g = (char.load_checkpoint(str(tmp_path / d))[1].state_dict() for d in ("cpu", "cuda"))
    assert w_c.keys() == w_g.keys()
    for k in w_c:
        np.testing.assert_allclose(w_g[k], w_c[k], rtol=2e-4, atol=2e-5, err_msg=k)
    m_c, m_g = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("cpu", "cuda"))
    assert m_g["steps"] == m_c["steps"] == 6
    np.testing.assert_allclose(m_g["val_bpc"]["history"], m_c["val_bpc"]["history"], rtol=1e-4)
    np.testing.assert_allclose(m_g["train_loss"]["latest"], m_c["train_loss"]["latest"], rtol=1e-4)
    out = _char_cli(["char", "train", *tiny, "--steps", "9", "--resume", "--device", "cpu",
                     "--out", str(tmp_path / "cuda")], capsys)
    assert "resuming" in out and "device cpu" in out
    assert json.loads((tmp_path / "cuda" / "metrics.json").read_text())["steps"] == 9
    assert _char_cli(["char", "sample", str(tmp_path / "cuda"), "--prime", "the fox", "--length", "20"],
                     capsys).startswith("the fox")
    out = _char_cli(["char", "train", *tiny, "--device", "auto", "--out", str(tmp_path / "auto")], capsys)
    assert "device cuda" in out
    out = _char_cli(["char", "train", "--text", str(text), "--preset", "min-char-rnn", "--steps", "5",
                     "--no-progress", "--device", "auto", "--out", str(tmp_path / "mc")], capsys)
    assert "device cpu" in out


@pytest.mark.gpu
def test_cuda_nan_input_is_stopped_by_the_optimizer_not_written_into_the_weights(cp):
    """On the GPU inputs are not scanned for NaN (that would synchronise every call); the optimizer's one
    check per step refuses the non-finite gradient before anything is updated."""
    from rnnfast import nn, optim

    lin = nn.Linear(3, 2, seed=0).to("cuda")
    opt = optim.Adam(lin, lr=0.1)
    before = nn.to_host(lin.parameters()["weight"])
    y = lin(cp.asarray(np.array([[1.0, np.nan, 0.0]], np.float32)))
    lin.backward(cp.ones_like(y))
    with pytest.raises(ValueError, match="weight.*NaN"):
        opt.step()
    np.testing.assert_array_equal(nn.to_host(lin.parameters()["weight"]), before)


@pytest.mark.gpu
def test_cuda_modules_round_trip_between_devices(cp):
    """nn modules and a ModuleDict move to the GPU and back with their parameters and gradients."""
    from rnnfast import nn

    model = nn.ModuleDict(emb=nn.Embedding(5, 3, seed=0), out=nn.Linear(3, 4, seed=1))
    before = {k: v.copy() for k, v in model.parameters().items()}
    model.to("cuda")
    assert model.device == "cuda" and model.emb.device == "cuda"
    assert all(isinstance(p, cp.ndarray) for p in model.parameters().values())
    y = model.out(model.emb(cp.asarray(np.array([[0, 4], [2, 2]]))))
    model.emb.backward(model.out.backward(cp.ones_like(y)))
    grads = {k: cp.asnumpy(g) for k, g in model.grads.items()}
    y = model.out(model.emb(cp.asarray(np.array([[1]]))))  # a forward whose backward never comes
    model.to("cpu")
    assert all(type(p) is np.ndarray for p in model.parameters().values())
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(v, before[k])
    for k, g in model.grads.items():
        assert type(g) is np.ndarray
        np.testing.assert_array_equal(g, grads[k])
    assert grads["emb.weight"][2].sum() != 0 and not grads["emb.weight"][1].any()  # index 2 twice, 1 never
    with pytest.raises(RuntimeError, match="backward"):
        model.out.backward(np.ones((1, 1, 4), np.float32))  # the move dropped what that forward kept


@pytest.mark.gpu
def test_cuda_gradient_flow_diagnostics_match_cpu(cp):
    from rnnfast import diagnostics

    rng = np.random.default_rng(9)
    cpu = rnnfast.LSTM(3, 16, dtype="float64", seed=2)
    gpu = rnnfast.LSTM(3, 16, dtype="float64", seed=2).to("cuda")
    x = rng.standard_normal((12, 2, 3))
    direction = rng.standard_normal((2, 16))
    want = diagnostics.gradient_norms_per_step(cpu, x, direction=direction)
    got = diagnostics.gradient_norms_per_step(gpu, cp.asarray(x), direction=cp.asarray(direction))
    assert type(got) is np.ndarray and got.shape == (12,)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert not any(g.any() for g in gpu.grads.values())  # the layer's gradients are restored (zero)
    r_c, r_g = diagnostics.recurrent_spectral_radius(cpu), diagnostics.recurrent_spectral_radius(gpu)
    assert r_c.keys() == r_g.keys()
    np.testing.assert_allclose([r_g[k] for k in r_c], [r_c[k] for k in r_c], rtol=1e-10)


@pytest.mark.gpu
def test_cuda_device_bookkeeping_of_modules(cp):
    """A ParameterDict over device arrays knows it is on the GPU (and moves back); a ModuleDict reports its
    children's device; arrays on both devices in one ParameterDict are refused."""
    from rnnfast import nn

    pd = nn.ParameterDict(w=cp.asarray(np.ones(3, np.float32)))
    assert pd.device == "cuda"
    pd.to("cpu")
    assert pd.device == "cpu" and type(pd.parameters()["w"]) is np.ndarray and type(pd.grads["w"]) is np.ndarray
    md = nn.ModuleDict(rnn=rnnfast.LSTM(3, 4, device="cuda"), out=nn.Linear(4, 2))
    assert md.device == "mixed"
    md.out.to("cuda")
    assert md.device == "cuda"
    with pytest.raises(TypeError, match="NumPy arrays or all CuPy"):
        nn.ParameterDict(a=np.ones(2), b=cp.ones(2))


def _stream_per_thread(cp):
    """A context manager factory: the calling thread's calls run on a new non-blocking stream (synchronised
    at the end of the block)."""
    @contextlib.contextmanager
    def on_own_stream():
        stream = cp.cuda.Stream(non_blocking=True)
        with stream:
            yield
        stream.synchronize()
    return on_own_stream


@pytest.mark.gpu
@pytest.mark.parametrize("cell", ["lstm", "mrnn"])
def test_cuda_layer_shared_by_threads_on_their_own_streams(cp, cell, stream_per_thread=None):
    """Four threads, each on its own stream, train one shared layer (forward + backward, random shapes):
    every result equals the same call made alone, each stream gets its own buffer set, and the gradients
    sum to the serial ones (in another order: within a few roundings)."""
    stream_per_thread = stream_per_thread or _stream_per_thread(cp)
    dt = np.float64
    layer = CELLS[cell](input_size=3, hidden_size=6, bidirectional=True, dtype="float64", seed=0, device="cuda")
    rng = np.random.default_rng(0)
    work = [[_data(layer, int(rng.integers(2, 5)), int(rng.integers(1, 4)), rng, dt) for _ in range(2)]
            for _ in range(4)]

    def calls(batch, out):
        for args in batch:
            x, h0, c0, dy, dh, dc = args
            hx = (cp.asarray(h0), cp.asarray(c0)) if cell == "lstm" else cp.asarray(h0)
            y, _ = layer(cp.asarray(x), hx)
            dx, _ = layer.backward(cp.asarray(dy))
            out.append((y, dx))

    serial = []
    for batch in work:
        calls(batch, serial)
    g_serial = {k: g.get() for k, g in layer.grads.items()}
    layer.zero_grad()
    outs = [[] for _ in work]
    barrier = threading.Barrier(len(work))

    def thread(i):
        barrier.wait()
        with stream_per_thread():
            calls(work[i], outs[i])

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    threaded = [r for out in outs for r in out]
    assert len(threaded) == len(serial)
    for (y1, dx1), (y2, dx2) in zip(serial, threaded):
        np.testing.assert_array_equal(y1.get(), y2.get())
        np.testing.assert_array_equal(dx1.get(), dx2.get())
    for k, g in layer.grads.items():
        np.testing.assert_allclose(g.get(), g_serial[k], rtol=1e-12, atol=1e-13, err_msg=k)
    keys = [k for k, sets in layer._pool()._free.items() if sets]
    assert len(keys) == 1 + len(work), keys  # the main thread's stream and each thread's own


# ---- the GPU tests' own gate (tests/conftest.py): a GPU that is there but unusable fails them ---------
def test_gpu_probe_fails_loudly_when_a_visible_gpu_is_unusable(monkeypatch):
    import conftest

    no_device = dict(rnnfast.build_info(), cuda_compiled=True, cuda_device_count=0, cuda_runtime_version=13000)
    monkeypatch.setattr(rnnfast, "build_info", lambda: no_device)
    monkeypatch.delenv("RNNFAST_TEST_GPU", raising=False)
    monkeypatch.setattr(conftest, "gpu_visible", lambda: None)
    state, reason = conftest.gpu_probe()
    assert state == "absent" and "no usable CUDA device" in reason  # no GPU here: skip, saying why
    monkeypatch.setattr(conftest, "gpu_visible", lambda: "GPU 0: NVIDIA H100 80GB HBM3")
    state, reason = conftest.gpu_probe()
    assert state == "broken" and "GPU visible (GPU 0: NVIDIA H100" in reason and "no usable CUDA device" in reason
    monkeypatch.setattr(rnnfast, "build_info", lambda: dict(no_device, cuda_compiled=False))
    assert conftest.gpu_probe() == ("broken", "GPU visible (GPU 0: NVIDIA H100 80GB HBM3) but the GPU tests "
                                    "cannot run: this rnnfast build has no CUDA engine (built without nvcc, "
                                    "or with RNNFAST_CUDA=OFF)")
    monkeypatch.setattr(conftest, "gpu_visible", lambda: None)
    monkeypatch.setenv("RNNFAST_TEST_GPU", "1")  # required (gpu_check.sh): fails even where none is seen
    assert conftest.gpu_probe()[0] == "broken"
    monkeypatch.setenv("RNNFAST_TEST_GPU", "0")
    assert conftest.gpu_probe() == ("absent", "RNNFAST_TEST_GPU=0")


def test_gpu_probe_needs_a_working_cupy(monkeypatch):
    import sys
    import types

    import conftest

    monkeypatch.setattr(rnnfast, "build_info", lambda: dict(cuda_compiled=True, cuda_device_count=1,
                                                            cuda_runtime_version=13000))
    broken = types.ModuleType("cupy")

    def fail(*a, **k):
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    broken.arange, broken.float32 = fail, np.float32
    monkeypatch.setitem(sys.modules, "cupy", broken)
    monkeypatch.setattr(conftest, "gpu_visible", lambda: "GPU 0: NVIDIA H100")
    monkeypatch.delenv("RNNFAST_TEST_GPU", raising=False)
    state, reason = conftest.gpu_probe()
    assert state == "broken" and "CuPy cannot use the GPU" in reason and "insufficient" in reason


def test_gpu_tests_fail_in_setup_when_the_probe_says_broken(monkeypatch):
    """The hook itself: a gpu-marked test errors (not skips) with the probe's reason."""
    import conftest

    class Item:
        def get_closest_marker(self, name):
            return object() if name == "gpu" else None

    monkeypatch.setattr(conftest, "_PROBE", ("broken", "GPU visible (x) but the GPU tests cannot run: y"))
    with pytest.raises(pytest.fail.Exception, match="cannot run: y"):
        conftest.pytest_runtest_setup(Item())
    monkeypatch.setattr(conftest, "_PROBE", ("absent", "no GPU"))
    conftest.pytest_runtest_setup(Item())  # absent: the collection hook has skipped it already


def test_test_log_keeps_each_result_as_it_happens(monkeypatch, tmp_path):
    """RNNFAST_TEST_LOG (gpu_check.sh): a line per test start and per result, failures with their report,
    written at once (a run cut short keeps them)."""
    import conftest

    log = tmp_path / "tests.jsonl"
    monkeypatch.setenv("RNNFAST_TEST_LOG", str(log))

    class Report:
        def __init__(self, when, outcome):
            self.nodeid, self.when, self.outcome, self.duration = "t.py::test_x", when, outcome, 0.25
            self.longreprtext = "E   AssertionError: y differs"

    conftest.pytest_runtest_logstart("t.py::test_x", None)
    conftest.pytest_runtest_logreport(Report("setup", "passed"))  # a passing setup is not worth a line
    conftest.pytest_runtest_logreport(Report("call", "failed"))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["event"], r.get("outcome")) for r in lines] == [("start", None), ("call", "failed")]
    assert lines[1]["report"] == "E   AssertionError: y differs" and lines[1]["seconds"] == 0.25


# issue 17's options on the CUDA path: lengths (pack_padded_sequence semantics), zoneout, dropout between
# layers, proj_size; the same masks as the CPU engine's (the layers draw them from equally seeded
# generators, in the same order), so both are compared with the float64 reference as above
OPTION_CASES = [
    ("lstm", (5, 4, 3, 33, {"bidirectional": True}), {"lengths": [5, 2, 4, 1]}),
    ("rnn_relu", (4, 3, 2, 20, {"batch_first": True}), {"lengths": [1, 4, 3]}),
    ("gru", (4, 3, 2, 20, {"bidirectional": True, "num_layers": 2}),
     {"lengths": [4, 1, 3], "zoneout": 0.3, "dropout": 0.4}),
    ("gru_cho", (4, 3, 2, 12, {"num_layers": 2}), {"lengths": [2, 4, 3], "zoneout": 0.3}),
    ("lstm", (3, 9, 2, 12, {"num_layers": 2, "bidirectional": True}), {"zoneout": 0.2, "dropout": 0.3}),
    ("lstm", (4, 3, 2, 12, {"num_layers": 2, "bidirectional": True}), {"lengths": [4, 2, 3], "proj_size": 5}),
]


def _option_id(case):
    cell, (T, N, C, H, opts), extra = case
    return f"{cell}-T{T}N{N}H{H}{''.join(opts)}-{'-'.join(k for k in extra)}"


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", OPTION_CASES, ids=_option_id)
def test_cuda_options_match_cpu_engine_and_float64_reference(cp, case, dtype):
    cell, (T, N, C, H, opts), extra = case
    extra = dict(extra)
    lengths = extra.pop("lengths", None)
    kw = dict(opts, **extra)
    cpu = CELLS[cell](input_size=C, hidden_size=H, dtype=dtype, seed=7, **kw)
    gpu = CELLS[cell](input_size=C, hidden_size=H, dtype=dtype, seed=7, **kw).to("cuda")
    ref = CELLS[cell](input_size=C, hidden_size=H, dtype="float64", engine="reference", seed=7, **kw)
    gpu.load_state_dict(cpu.state_dict())
    ref.load_state_dict({k: v.astype(np.float64) for k, v in cpu.state_dict().items()})
    rng = np.random.default_rng(3)
    P = kw.get("proj_size") or H
    D, L, bf = cpu.num_directions, cpu.num_layers, cpu.batch_first
    x = rng.standard_normal((N, T, C) if bf else (T, N, C)).astype(dtype)
    dy = rng.standard_normal((N, T, D * P) if bf else (T, N, D * P)).astype(dtype)
    h0, dh = (rng.standard_normal((L * D, N, P)).astype(dtype) for _ in range(2))
    c0, dc = (rng.standard_normal((L * D, N, H)).astype(dtype) for _ in range(2))

    def run(layer, to_dev=lambda a: a, to_host=lambda a: a, f64=False):
        conv = (lambda a: to_dev(a.astype(np.float64))) if f64 else to_dev
        lstm = isinstance(layer, rnnfast.LSTM)
        hx = (conv(h0), conv(c0)) if lstm else conv(h0)
        y, s = layer(conv(x), hx, lengths=lengths)
        dx, ds = layer.backward(conv(dy), (conv(dh), conv(dc)) if lstm else conv(dh))
        out = {"y": y, "dx": dx, "h_n": s[0] if lstm else s, "dh0": ds[0] if lstm else ds}
        out.update({"grad_" + k: g for k, g in layer.grads.items()})
        layer.eval()  # eval: zoneout's expectation, no dropout
        out["y_eval"] = layer(conv(x), hx, lengths=lengths)[0]
        layer.train()
        return {k: to_host(v) for k, v in out.items()}

    got = run(gpu, cp.asarray, cp.asnumpy)
    want_cpu = run(cpu)
    want_ref = run(ref, f64=True)
    _assert_like_cpu(got, want_cpu, want_ref, dtype)
