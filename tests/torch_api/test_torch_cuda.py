"""rnnfast.torch on CUDA tensors: DLPack views handed to rnnfast's CUDA engine on torch's current stream.

Two layers of checks:
* on every machine, the glue (rnnfast/torch/_ops.py's _cuda_forward/_cuda_backward: DLPack views, the
  engine writing torch's output tensors in place, direction slices, the stream torch names) runs on the
  CUDA emulation of tests/engines/cuda_emulation (the kernels compiled for the CPU, NumPy in CuPy's place) and must
  give what the CPU path gives;
* on a GPU (marked gpu: skipped cleanly without one), modules on device='cuda' against the same modules on
  the CPU, forward and every gradient, eager and compiled.
"""

import contextlib
import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import rnnfast.torch as rt  # noqa: E402
from rnnfast.backends import cells  # noqa: E402
from rnnfast.torch import _ops  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "engines"))  # tests/engines/cuda_emulation
from cuda_emulation import emulate  # noqa: E402

CELLS = {"rnn_tanh": cells.RNN_TANH, "lstm": cells.LSTM, "gru": cells.GRU, "gru_cho": cells.GRU_CHO}


@pytest.fixture(scope="module")
def core_emu():
    return emulate.build_or_skip()


class _Device(contextlib.nullcontext):
    id = 0


@pytest.fixture
def emulated(core_emu, monkeypatch):
    """The emulation in CuPy's place, plus what the torch glue uses of CuPy and torch.cuda."""
    emulate.install(core_emu, monkeypatch)
    streams = []
    monkeypatch.setattr(emulate.FAKE_CUPY.cuda, "ExternalStream", lambda ptr: emulate._Stream(ptr=ptr),
                        raising=False)
    monkeypatch.setattr(emulate.FAKE_CUPY.cuda, "Device", lambda *a: _Device())

    def current_stream(device=None):
        streams.append(device)
        return types.SimpleNamespace(cuda_stream=4242)

    monkeypatch.setattr(torch.cuda, "current_stream", current_stream)
    yield streams
    core_emu.emu_reset()


def _layer_args(cell, bidirectional, T=4, N=3, C=5, H=33, dt=torch.float64):
    D = 2 if bidirectional else 1
    G = cells.GATES[cell]
    g = torch.Generator().manual_seed(cell * 10 + D)
    weights = []
    for _ in range(D):
        weights += [0.3 * torch.randn(G * H, C, generator=g, dtype=dt),
                    0.3 * torch.randn(G * H, H, generator=g, dtype=dt),
                    0.1 * torch.randn(G * H, generator=g, dtype=dt),
                    0.1 * torch.randn(G * H, generator=g, dtype=dt)]
    x = torch.randn(T, N, C, generator=g, dtype=dt)
    h0 = 0.5 * torch.randn(D, N, H, generator=g, dtype=dt)
    c0 = 0.5 * torch.randn(D, N, H, generator=g, dtype=dt) if cell == 2 else None
    return x, h0, c0, weights


@pytest.mark.parametrize("bidirectional,varlen", [(False, False), (True, False), (True, True)],
                         ids=["uni", "bi", "bi_lengths_zoneout"])
@pytest.mark.parametrize("cell", list(CELLS.values()), ids=list(CELLS))
def test_cuda_glue_on_the_emulation_matches_the_cpu_path(emulated, cell, bidirectional, varlen):
    """varlen: a variable-length batch (PackedSequence's path) and, for LSTM and GRU, a zoneout mask."""
    x, h0, c0, weights = _layer_args(cell, bidirectional)
    extra = {}
    if varlen:
        extra["lengths"] = torch.tensor([4, 2, 1], dtype=torch.int32)
        if cell != 0:
            g = torch.Generator().manual_seed(9)
            extra["zoneout"] = torch.bernoulli(torch.full((2,) + tuple(x.shape[:2]) + (h0.shape[2],), 0.7,
                                                          dtype=x.dtype), generator=g)
    shapes = _ops._forward_shapes(x, weights, cell, bidirectional, True)
    cpu = [torch.full(s, float("nan"), dtype=x.dtype) for s in shapes]
    emu = [torch.full(s, float("nan"), dtype=x.dtype) for s in shapes]
    _ops._cpu_forward(x, h0, c0, weights, cell, bidirectional, True, cpu, **extra)
    _ops._cuda_forward(x, h0, c0, weights, cell, bidirectional, True, emu, **extra)
    assert emulated, "torch.cuda.current_stream was not asked"
    names = ["y", "h_n", "c_n", "h_prev", "c_prev", "gates", "extra"]
    for name, a, b in zip(names, emu, cpu):
        if name in ("y", "h_n", "c_n", "h_prev", "c_prev"):  # the engines' gate caches differ in layout
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=lambda m, name=name: f"{name}: {m}")
    y, h_n, c_n = cpu[:3]
    g = torch.Generator().manual_seed(5)
    dy, dh_n = torch.randn(y.shape, generator=g, dtype=x.dtype), torch.randn(h_n.shape, generator=g, dtype=x.dtype)
    dc_n = torch.randn(c_n.shape, generator=g, dtype=x.dtype)
    results = []
    for run, outs in ((_ops._cpu_backward, cpu), (_ops._cuda_backward, emu)):
        grads = _ops._backward_outputs(x, weights, cell, bidirectional, torch.empty, torch.zeros)
        run(x, weights, *outs[3:], dy, dh_n, dc_n, cell, bidirectional, *grads, **extra)
        results.append(grads)
    (dx, dh0, dc0, dw), (ex, eh0, ec0, ew) = results
    torch.testing.assert_close(ex, dx, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(eh0, dh0, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ec0, dc0, rtol=1e-10, atol=1e-12)
    for a, b in zip(ew, dw):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ---- on a GPU -----------------------------------------------------------------------------------------
MODULES = [(rt.RNN, {}), (rt.LSTM, {}), (rt.GRU, {}), (rt.GRU, {"reset_after": False})]


def _cuda_ready():
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device here")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("cls,kw", MODULES, ids=["rnn", "lstm", "gru", "gru_cho"])
def test_cuda_module_matches_cpu_module(cls, kw, dtype):
    _cuda_ready()
    torch.manual_seed(0)
    cpu = cls(5, 40, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64, **kw)
    gpu = cls(5, 40, num_layers=2, bidirectional=True, batch_first=True, dtype=dtype, device="cuda", **kw)
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(9, 7, 5, dtype=torch.float64)
    xg = x.to("cuda", dtype).requires_grad_()
    x.requires_grad_()
    y, h = cpu(x)
    side = torch.cuda.Stream()  # torch's current stream is the one the engine must use
    with torch.cuda.stream(side):
        yg, hg = gpu(xg)
        (yg.square().sum() + (hg[0] if isinstance(hg, tuple) else hg).sum()).backward()
    torch.cuda.synchronize()
    (y.square().sum() + (h[0] if isinstance(h, tuple) else h).sum()).backward()
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-3, atol=2e-4)
    assert yg.device.type == "cuda" and yg.dtype == dtype
    torch.testing.assert_close(yg.double().cpu(), y.detach(), **tol)
    torch.testing.assert_close(xg.grad.double().cpu(), x.grad, **tol)
    for (n, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        torch.testing.assert_close(q.grad.double().cpu(), p.grad, **tol, msg=lambda m, n=n: f"{n}: {m}")


@pytest.mark.gpu
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_cuda_module_compiles_fullgraph():
    _cuda_ready()
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = rt.LSTM(8, 32, num_layers=2, device="cuda")
    x = torch.randn(6, 4, 8, device="cuda")
    ref = m(x)[0]
    torch.testing.assert_close(torch.compile(m, fullgraph=True)(x)[0], ref)
