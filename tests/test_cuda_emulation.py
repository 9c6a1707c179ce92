"""The CUDA engine's kernels run on the CPU: the GPU tests' checks, on every machine.

tests/cuda_emulation/cuda_runtime.h stands in for the CUDA runtime: g++ compiles csrc/cuda/*.cu as C++,
each CUDA thread becomes a fiber, __syncthreads and warp shuffles are real barriers between them, and
"device memory" is host memory. The bindings (csrc/bindings_cuda.cpp) are built around them as module
_core_emu, and a NumPy stand-in for CuPy (allocations poisoned with NaN) takes CuPy's place, so the layers
on device='cuda', rnnfast/_cuda.py and the kernels run end to end and are compared with the CPU engine
and the float64 reference by the same test bodies as tests/test_cuda.py.

What this cannot show: anything about the real device (its memory model beyond barriers, warp
scheduling, speed, nvcc's code generation); the device's transcendental functions differ from the
host's polynomial ones used here. Those are gpu_check.sh's job.
"""

import contextlib
import importlib.util
import shutil
import subprocess
import sys
import sysconfig
import threading
import types
from pathlib import Path

import numpy as np
import pytest

import rnnfast
from rnnfast import _cuda

sys.path.insert(0, str(Path(__file__).parent))
import test_cuda as gpu_tests  # noqa: E402  (the test bodies; tests/ has no __init__.py)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def core_emu(tmp_path_factory):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    pybind11 = pytest.importorskip("pybind11")
    out = tmp_path_factory.mktemp("cuda_emu") / ("_core_emu" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = [cxx, "-std=c++20", "-O1", "-shared", "-fPIC", "-w",
           "-I", str(ROOT / "tests" / "cuda_emulation"), "-I", str(ROOT / "csrc" / "include"),
           "-I", pybind11.get_include(), "-I", sysconfig.get_paths()["include"],
           "-x", "c++", *(str(ROOT / "csrc" / "cuda" / f) for f in ("recurrent.cu", "mrnn.cu", "reservoir.cu")),
           "-x", "none", str(ROOT / "csrc" / "bindings_cuda.cpp"), str(ROOT / "tests" / "cuda_emulation" / "module.cpp"),
           "-o", str(out)]
    subprocess.run(cmd, check=True, timeout=600)
    spec = importlib.util.spec_from_file_location("_core_emu", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class DeviceArray(np.ndarray):
    """A host array playing a CuPy array: array modules see 'cupy', .get() copies to the host, and a
    NumPy array mixed into its arithmetic is a TypeError, as with CuPy (0-d arrays and scalars are fine)."""

    def get(self):
        return np.array(self)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        for a in inputs + (out or ()):
            if type(a) is np.ndarray and a.ndim > 0:
                raise TypeError(f"{ufunc.__name__}: a numpy.ndarray mixed with an (emulated) CuPy array")
        args = [a.view(np.ndarray) if isinstance(a, DeviceArray) else a for a in inputs]
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, DeviceArray) else o for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _device(result)


    def __array_function__(self, func, types, args, kwargs):  # np.concatenate, np.stack, ... as CuPy's
        def walk(a):
            if isinstance(a, (list, tuple)):
                for b in a:
                    walk(b)
            elif type(a) is np.ndarray and a.ndim > 0:
                raise TypeError(f"{func.__name__}: a numpy.ndarray mixed with an (emulated) CuPy array")
        if not _NESTED:  # the caller's call, not NumPy's own calls inside it
            walk(args)
            walk(list(kwargs.values()))
        _NESTED.append(func)
        try:
            return _device(super().__array_function__(func, types, args, kwargs))
        finally:
            _NESTED.pop()


_NESTED = []  # NumPy functions of device arrays in progress (NumPy calls others inside them)


DeviceArray.__module__ = "cupy"  # what rnnfast.nn.array_module looks at


def _device(r):
    if isinstance(r, tuple):
        return tuple(_device(x) for x in r)
    return r.view(DeviceArray) if type(r) is np.ndarray else r


def _poisoned_empty(shape, dtype=float, order="C"):
    if np.dtype(dtype).kind == "f":
        return _device(np.full(shape, np.nan, dtype, order))
    return _device(np.empty(shape, dtype, order))


def _to_device(a, dtype=None, **kwargs):
    """cupy.asarray: a device array stays itself (or a cast), a host array is copied over."""
    if isinstance(a, DeviceArray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return _device(np.array(a, dtype=dtype, copy=True))


def _numpy_fallback(name):
    fn = getattr(np, name)
    if not callable(fn) or isinstance(fn, type):
        return fn

    def call(*args, **kwargs):
        return _device(fn(*args, **kwargs))
    return call


FAKE_CUPY = types.ModuleType("cupy")
FAKE_CUPY.__dict__.update(
    ndarray=DeviceArray, empty=_poisoned_empty, asarray=_to_device, array=_to_device,
    asnumpy=lambda a: np.array(a), float32=np.float32, float64=np.float64, int32=np.int32, int64=np.int64,
    cuda=types.SimpleNamespace(get_current_stream=lambda: types.SimpleNamespace(ptr=0),
                               Device=lambda *a: types.SimpleNamespace(id=0)),
    __getattr__=_numpy_fallback)  # everything else: NumPy's function, results as device arrays
FAKE_CUPYX = types.ModuleType("cupyx")
FAKE_CUPYX.scatter_add = lambda a, idx, b: np.add.at(a, idx, b)


@pytest.fixture
def cp(core_emu, monkeypatch):
    monkeypatch.setattr(_cuda, "cupy", lambda: FAKE_CUPY)
    monkeypatch.setattr(_cuda, "_core", core_emu)
    monkeypatch.setitem(sys.modules, "cupy", FAKE_CUPY)  # for `import cupy` in rnnfast.nn.array_module
    monkeypatch.setitem(sys.modules, "cupyx", FAKE_CUPYX)
    return FAKE_CUPY


# a subset of tests/test_cuda.py's cases (the emulation runs ~100x slower than the CPU engine)
SHAPES = [s for s in gpu_tests.SHAPES if s[0] * s[1] * s[3] <= 2000] + [(3, 9, 3, 37, {"bidirectional": True})]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}N{}C{}H{}{}".format(*s[:4], "".join(s[4])))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", list(gpu_tests.CELLS))
def test_emulated_cuda_matches_cpu_engine_and_float64_reference(cp, cell, dtype, shape):
    gpu_tests.test_cuda_matches_cpu_engine_and_float64_reference(cp, cell, dtype, shape)


@pytest.mark.parametrize("rows", [32, 64])
@pytest.mark.parametrize("shape", gpu_tests.TILED_SHAPES, ids=lambda s: "T{}N{}C{}H{}{}".format(*s[:4], "".join(s[4])))
@pytest.mark.parametrize("cell", list(gpu_tests.CELLS))
def test_emulated_cuda_tiled_kernel(cp, cell, shape, rows):
    dtype = "float64" if rows == 32 else "float32"  # both dtypes, both row tiles (float64 always takes 32)
    gpu_tests.test_cuda_tiled_kernel_matches_cpu_engine_and_float64_reference(cp, cell, dtype, shape, rows)


def test_emulated_cuda_tiling_setting(cp):
    gpu_tests.test_cuda_tiling_setting_is_checked(cp)


@pytest.mark.parametrize("cell", list(gpu_tests.CELLS))
def test_emulated_cuda_unbatched(cp, cell):
    gpu_tests.test_cuda_unbatched_matches_cpu(cp, cell)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_emulated_cuda_eval_mode(cp, cell):
    gpu_tests.test_cuda_eval_mode_and_default_state(cp, cell)


def test_emulated_cuda_learned_initial_state(cp):
    gpu_tests.test_cuda_learned_initial_state_and_unbatched(cp)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_emulated_cuda_reservoir(cp, dense, dtype):
    gpu_tests.test_cuda_reservoir_matches_cpu(cp, dense, dtype)


def test_emulation_catches_a_wrong_kernel(cp, monkeypatch):
    """The check is not vacuous: a kernel result that is off (here: dG scaled after the call) fails it."""
    real = cp
    orig = _cuda._core.cuda_recurrent_backward

    def broken(*args):
        orig(*args)
        # args[15] is the dG pointer: scale the W_ih-side gate gradients of the first step
        dtype, T, N, H = args[0], args[2], args[3], args[4]
        import ctypes
        n = N * H  # one step's rows of a single-gate cell
        buf = (ctypes.c_double if dtype == "float64" else ctypes.c_float) * n
        view = np.frombuffer(buf.from_address(args[15]), dtype=dtype)
        view *= 1.01

    monkeypatch.setattr(_cuda._core, "cuda_recurrent_backward", broken, raising=False)
    with pytest.raises(AssertionError):
        gpu_tests.test_cuda_matches_cpu_engine_and_float64_reference(real, "rnn_tanh", "float64",
                                                                      (3, 2, 3, 5, {}))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "mrnn"])
def test_emulated_cuda_index_input(cp, cell):
    gpu_tests.test_cuda_index_input_matches_cpu(cp, cell)


def test_emulated_cuda_mixing_and_round_trip(cp):
    gpu_tests.test_cuda_mixing_host_and_device_arrays_is_an_error(cp)
    gpu_tests.test_cuda_layer_round_trip_between_devices(cp)


@pytest.mark.parametrize("opt_name", list(gpu_tests.OPTIMIZERS))
def test_emulated_cuda_training_modules(cp, opt_name):
    gpu_tests.test_cuda_training_modules_match_cpu(cp, opt_name)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mrnn"])
def test_emulated_cuda_char_model(cp, cell):
    gpu_tests.test_cuda_char_model_matches_cpu(cp, cell)


def test_emulated_cuda_char_cli(cp, tmp_path, capsys):
    gpu_tests.test_cuda_char_cli_trains_resumes_on_the_cpu_and_samples(cp, tmp_path, capsys)


def test_emulated_cuda_nan_stopped_by_the_optimizer(cp):
    gpu_tests.test_cuda_nan_input_is_stopped_by_the_optimizer_not_written_into_the_weights(cp)


def test_emulated_cupy_arrays_refuse_numpy_arrays(cp):
    """The stand-in is strict where CuPy is: a NumPy array in device arithmetic or in a NumPy function of
    device arrays is a TypeError (so the emulated runs would show a host array leaking into device code)."""
    d, h = cp.ones(3), np.ones(3)
    assert rnnfast.nn.array_module(d) is cp and isinstance(d.get(), np.ndarray)
    for f in (lambda: d + h, lambda: np.concatenate([d, h]), lambda: cp.stack([d, h]), lambda: np.add(h, d)):
        with pytest.raises(TypeError, match="numpy.ndarray mixed"):
            f()
    assert isinstance(d * 2.0 + np.float64(1.0), cp.ndarray) and isinstance(cp.zeros_like(d), cp.ndarray)


def test_emulated_cuda_modules_round_trip(cp):
    gpu_tests.test_cuda_modules_round_trip_between_devices(cp)


def test_emulated_cuda_gradient_flow_diagnostics(cp):
    gpu_tests.test_cuda_gradient_flow_diagnostics_match_cpu(cp)


def test_emulated_cuda_device_bookkeeping(cp):
    gpu_tests.test_cuda_device_bookkeeping_of_modules(cp)


@pytest.mark.parametrize("cell", ["lstm", "mrnn"])
def test_emulated_cuda_layer_shared_by_threads(cp, monkeypatch, cell):
    """The shared-layer test with a stream per thread: the emulated streams are numbers (what the layers key
    their buffer sets by), and the emulated kernels run one at a time (the emulator's fibers are
    process-wide, so it is not thread-safe itself; a GPU orders each stream's launches too)."""
    lock = threading.Lock()
    core = _cuda._core

    class OneLaunchAtATime:
        def __getattr__(self, name):
            f = getattr(core, name)
            if not callable(f):
                return f

            def call(*args):
                with lock:
                    return f(*args)
            return call

    monkeypatch.setattr(_cuda, "_core", OneLaunchAtATime())
    current = threading.local()
    waits = []

    class Event:  # the emulated launches are synchronous: recording and waiting only need to be seen
        def record(self, stream):
            self.stream = stream.ptr

    def stream():
        ptr = getattr(current, "ptr", 0)
        return types.SimpleNamespace(ptr=ptr, wait_event=lambda event: waits.append((event.stream, ptr)))

    monkeypatch.setattr(cp.cuda, "get_current_stream", stream)
    monkeypatch.setattr(cp.cuda, "Event", lambda disable_timing=False: Event(), raising=False)
    counter = iter(range(100, 1000))

    @contextlib.contextmanager
    def own_stream():
        current.ptr = next(counter)
        yield

    gpu_tests.test_cuda_layer_shared_by_threads_on_their_own_streams(cp, cell, stream_per_thread=own_stream)
    # the gradients' additions from the threads' streams were ordered on the device: each stream that added after
    # another one waited for an event recorded on it
    assert waits and all(a != b for a, b in waits)
