"""The CUDA engine against the CPU engine and the float64 reference (GPU tests: skipped without a GPU).

Every device allocation made by CuPy during these tests is poisoned with NaN (cupy.empty is patched), so
an element a kernel forgot to write shows up as NaN. Inputs are random, drawn afresh per case.
"""

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
    cupy = pytest.importorskip("cupy")
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
    for k in want_ref:
        assert got[k].dtype == np.dtype(dtype), k
        assert np.isfinite(got[k]).all(), f"{k}: NaN left (an element was not written)"
        scale = max(1.0, float(np.abs(want_ref[k]).max()))
        err_gpu = float(np.abs(got[k] - want_ref[k]).max()) / scale
        err_cpu = float(np.abs(want_cpu[k] - want_ref[k]).max()) / scale
        tol = 1e-12 if dtype == "float64" else 5e-6
        assert err_gpu <= max(2 * err_cpu, tol), f"{k}: error {err_gpu:.2e} vs the CPU engine's {err_cpu:.2e}"


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
