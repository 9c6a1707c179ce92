"""The CUDA engine without a GPU: its kernels compiled for the CPU, and a NumPy stand-in for CuPy.

cuda_runtime.h beside this file stands in for the CUDA runtime: g++ compiles csrc/cuda/*.cu as C++, each
CUDA thread becomes a fiber, __syncthreads, __syncwarp and warp shuffles are real barriers between them,
and "device memory" is host memory. The bindings (csrc/bindings_cuda.cpp) are built around them as module
_core_emu (build()); FAKE_CUPY plays CuPy (allocations poisoned with NaN; a NumPy array mixed into device
arithmetic is a TypeError, as with CuPy), so the layers on device='cuda', rnnfast/backends/cuda.py and the kernels
run end to end. Streams and events are no-ops with host clocks (every call completes before it returns);
stream capture records the engine's launches and replays them (cuda_runtime.h), so a graph of engine calls
replays as on the device. CuPy operations themselves are not recorded: capture engine calls only.

Used by tests/engines/test_cuda_emulation.py (the GPU tests' bodies), and from the command line to run a GPU script
on the CPU (benchmarks/gpu_check.sh --dry-run):

    python tests/engines/cuda_emulation/emulate.py SCRIPT [ARGS...]
"""

import hashlib
import importlib.util
import os
import runpy
import shutil
import subprocess
import sys
import sysconfig
import time
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # the repository (this is tests/engines/cuda_emulation)
SOURCES = [ROOT / "csrc" / "cuda" / f for f in ("recurrent.cu", "mrnn.cu", "reservoir.cu")]
OTHER_SOURCES = [ROOT / "csrc" / "bindings_cuda.cpp", HERE / "module.cpp"]


def build_or_skip():
    """build() for a pytest fixture: the calling test is skipped where the emulation cannot be built (no
    pybind11, no g++)."""
    import pytest
    pytest.importorskip("pybind11")
    try:
        return build()
    except RuntimeError as e:  # no g++
        pytest.skip(str(e))


def build(out_dir=None, cuda_dir=None):
    """Compile _core_emu (about 15-30 s on 2 cores) and import it. Objects and the module are kept under
    build/cuda_emu in the repository (the module under out_dir if given) by a hash of their sources and
    compiler, so later calls only load them. cuda_dir replaces csrc/cuda (a mutated copy of the kernels, for
    the tests that show the emulated tests catch a broken kernel)."""
    cxx = shutil.which("g++")
    if cxx is None:
        raise RuntimeError("the CUDA emulation needs g++")
    import pybind11

    cuda_dir = Path(cuda_dir) if cuda_dir else ROOT / "csrc" / "cuda"
    cache = ROOT / "build" / "cuda_emu"
    flags = [cxx, "-std=c++20", "-O1", "-fPIC", "-w", "-I", str(HERE), "-I", str(ROOT / "csrc" / "include"),
             "-I", pybind11.get_include(), "-I", sysconfig.get_paths()["include"]]
    common = hashlib.sha256(" ".join(flags).encode())
    common.update(subprocess.run([cxx, "--version"], capture_output=True, check=True).stdout)
    for h in sorted((ROOT / "csrc" / "include" / "rnnfast").glob("*.h")) + [HERE / "cuda_runtime.h"]:
        common.update(h.read_bytes())
    kernels = b"".join(h.read_bytes() for h in sorted(cuda_dir.glob("*.cuh")))
    units = [(cuda_dir / s.name, kernels) for s in SOURCES] + [(f, b"") for f in OTHER_SOURCES]
    objects, jobs = [], []
    for src, extra in units:  # one object per translation unit, compiled in parallel where missing
        key = common.copy()
        key.update(src.read_bytes() + extra)
        obj = cache / "obj" / f"{src.stem}-{key.hexdigest()[:16]}.o"
        objects.append(obj)
        if not obj.exists():
            obj.parent.mkdir(parents=True, exist_ok=True)
            tmp = obj.with_suffix(f".tmp{os.getpid()}")
            jobs.append((subprocess.Popen(flags + ["-x", "c++", "-c", str(src), "-o", str(tmp)]), tmp, obj))
            if len([j for j in jobs if j[0].poll() is None]) >= (os.cpu_count() or 1):
                jobs[-1][0].wait()
    for proc, tmp, obj in jobs:
        if proc.wait(timeout=900) != 0:
            raise RuntimeError(f"compiling {obj.stem} for the CUDA emulation failed")
        tmp.replace(obj)  # atomic: a concurrent build never uses a half-written object
    folder = Path(out_dir or cache) / hashlib.sha256(" ".join(map(str, objects)).encode()).hexdigest()[:16]
    out = folder / ("_core_emu" + sysconfig.get_config_var("EXT_SUFFIX"))
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"tmp{os.getpid()}-{out.name}"
        subprocess.run([cxx, "-shared", *map(str, objects), "-o", str(tmp)], check=True, timeout=300)
        tmp.replace(out)
    # a name of its own per build: pybind11 keeps one module per name, and a mutant must not be the original
    spec = importlib.util.spec_from_file_location(f"emu_{folder.name}._core_emu", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- the CuPy stand-in --------------------------------------------------------------------------------
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


DeviceArray.__module__ = "cupy"  # what rnnfast._util.arrays.array_module looks at


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


class _Stream:
    """cupy.cuda.Stream: every emulated call has completed when it returns. Capture records the engine's
    launches (cuda_runtime.h) into a graph that launch() replays."""

    _current = []

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = ptr

    def __enter__(self):
        _Stream._current.append(self)
        return self

    def __exit__(self, *exc):
        _Stream._current.pop()

    def synchronize(self):
        pass

    def record(self, event=None):
        event = event or _Event()
        event.record(self)
        return event

    def wait_event(self, event):
        pass

    def begin_capture(self, mode=None):
        FAKE_CUPY._core.emu_begin_capture()

    def end_capture(self):
        return _Graph(FAKE_CUPY._core.emu_end_capture())


class _Graph:
    def __init__(self, graph_id):
        self.graph_id = graph_id

    def launch(self, stream=None):
        FAKE_CUPY._core.emu_graph_launch(self.graph_id)


class _Event:
    """cupy.cuda.Event with the host clock (emulated work is done when its call returns)."""

    def __init__(self, *args, **kwargs):
        self.t = None

    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        pass


def _elapsed_ms(start, stop):
    return (stop.t - start.t) * 1e3


_NULL_STREAM = _Stream()
_Stream.null = _NULL_STREAM

FAKE_CUPY = types.ModuleType("cupy")
FAKE_CUPY.__dict__.update(
    ndarray=DeviceArray, empty=_poisoned_empty, asarray=_to_device, array=_to_device,
    asnumpy=lambda a: np.array(a), float32=np.float32, float64=np.float64, int32=np.int32, int64=np.int64,
    cuda=types.SimpleNamespace(
        get_current_stream=lambda: _Stream._current[-1] if _Stream._current else _NULL_STREAM,
        Device=lambda *a: types.SimpleNamespace(id=0, synchronize=lambda: None), Stream=_Stream,
        Event=_Event, get_elapsed_time=_elapsed_ms, set_allocator=lambda *a: None,
        runtime=types.SimpleNamespace(getDeviceProperties=lambda i: {"name": b"CUDA emulation (CPU)",
                                                                       "multiProcessorCount": 1})),
    _core=None,  # set by install(): the emulated module that streams capture into
    __getattr__=_numpy_fallback)  # everything else: NumPy's function, results as device arrays
FAKE_CUPYX = types.ModuleType("cupyx")
FAKE_CUPYX.scatter_add = lambda a, idx, b: np.add.at(a, idx, b)


def install(core, monkeypatch=None):
    """Put the emulation in place of CuPy and the CUDA bindings: for the process, or through pytest's
    monkeypatch (undone after the test)."""
    from rnnfast.backends import cuda as _cuda
    from rnnfast.backends import devices

    FAKE_CUPY._core = core
    setattr_, setitem = (monkeypatch.setattr, monkeypatch.setitem) if monkeypatch else (setattr, dict.__setitem__)
    setattr_(devices, "_CUPY", FAKE_CUPY)  # rnnfast.backends.devices.cupy() returns it
    setattr_(_cuda, "_core", core)
    setitem(sys.modules, "cupy", FAKE_CUPY)  # for `import cupy` in rnnfast._util.arrays.array_module and scripts
    setitem(sys.modules, "cupyx", FAKE_CUPYX)


def main(argv):
    """Run a script (GPU code written against CuPy and rnnfast) on the emulation."""
    if not argv:
        raise SystemExit("usage: python tests/engines/cuda_emulation/emulate.py SCRIPT [ARGS...]")
    t0 = time.perf_counter()
    core = build()
    print(f"[cuda emulation] kernels built for the CPU in {time.perf_counter() - t0:.1f} s; running {argv[0]}",
          flush=True)
    install(core)
    sys.argv = list(argv)
    sys.path.insert(0, str(Path(argv[0]).resolve().parent))
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
