"""The CUDA engine's kernels run on the CPU: the GPU tests' checks, on every machine.

tests/engines/cuda_emulation (emulate.py, cuda_runtime.h) compiles csrc/cuda/*.cu as C++ against a stand-in CUDA
runtime (each CUDA thread a fiber; __syncthreads, __syncwarp and warp shuffles real barriers; "device
memory" host memory) and puts a NumPy stand-in for CuPy (allocations poisoned with NaN) in CuPy's place, so
the layers on device='cuda', rnnfast/backends/cuda.py and the kernels run end to end and are compared with the CPU
engine and the float64 reference by the same test bodies as tests/engines/test_cuda.py.

What this cannot show: anything about the real device (its memory model beyond barriers, warp
scheduling, speed, nvcc's code generation); the device's transcendental functions differ from the
host's polynomial ones used here. Those are gpu_check.sh's job.
"""

import contextlib
import ctypes
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

import rnnfast
from rnnfast.backends import cuda as _cuda

sys.path.insert(0, str(Path(__file__).parent))
import test_cuda as gpu_tests  # noqa: E402  (the test bodies; tests/engines has no __init__.py)
from cuda_emulation import emulate  # noqa: E402

pytestmark = pytest.mark.slow  # compiles the CUDA kernels for the CPU and runs them ~100x slower

ROOT = Path(__file__).resolve().parents[2]  # the repository


@pytest.fixture(scope="session")
def core_emu():
    return emulate.build_or_skip()


@pytest.fixture
def cp(core_emu, monkeypatch):
    emulate.install(core_emu, monkeypatch)
    yield emulate.FAKE_CUPY
    core_emu.emu_reset()


# a subset of tests/engines/test_cuda.py's cases (the emulation runs ~100x slower than the CPU engine)
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
        dtype, _T, N, H = args[0], args[2], args[3], args[4]
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


# ---- the row kernel's variants (the shapes' own cases are tests/engines/test_cuda.py's) -------------------------
@pytest.mark.parametrize("variant, shape", gpu_tests.VARIANT_CASES, ids=gpu_tests._variant_id)
@pytest.mark.parametrize("cell", list(gpu_tests.CELLS))
def test_emulated_cuda_row_kernel_variants(cp, cell, variant, shape):
    gpu_tests.test_cuda_row_kernel_variants_match_cpu_engine_and_float64_reference(cp, cell, variant, shape)


# Each mutation breaks one variant's code path and nothing else: the variant's tests must fail, the default
# kernel's pass. (file, exact text, replacement): a mutation whose text is gone fails this test, so it
# cannot go stale silently.
MUTATIONS = [
    # the slices of a warp meet by shuffles: one shuffle too few loses a slice's part (width < 32 only)
    ("step_kernel.cuh", "for (int off = kUnits / 2; off >= width; off >>= 1)",
     "for (int off = kUnits / 2; off > width; off >>= 1)"),
    # the warp barrier after staging V: without it a lane reads staged values the others have not written
    # yet (several units per thread only)
    ("step_kernel.cuh", "coalesced along k\n        __syncwarp();", "coalesced along k\n"),
]


@pytest.fixture(scope="session")
def mutant_core(tmp_path_factory):
    pytest.importorskip("pybind11")
    cuda = tmp_path_factory.mktemp("mutant_cuda")
    for f in (ROOT / "csrc" / "cuda").iterdir():
        (cuda / f.name).write_text(f.read_text())
    for name, old, new in MUTATIONS:
        text = (cuda / name).read_text()
        assert text.count(old) == 1, f"mutation target gone from {name}: {old!r}"
        (cuda / name).write_text(text.replace(old, new))
    try:
        return emulate.build(out_dir=tmp_path_factory.mktemp("mutant_build"), cuda_dir=cuda)
    except RuntimeError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("variant, broken", [((32, 1, "float64"), False), ((16, 1, "float32"), True),
                                             ((8, 1, "float64"), True), ((32, 4, "float32"), True)])
def test_emulated_variant_tests_catch_a_broken_variant(cp, mutant_core, monkeypatch, variant, broken):
    monkeypatch.setattr(_cuda, "_core", mutant_core)
    run = lambda: gpu_tests.test_cuda_row_kernel_variants_match_cpu_engine_and_float64_reference(  # noqa: E731
        cp, "lstm", variant, gpu_tests.VARIANT_SHAPES[1])
    if broken:
        with pytest.raises(AssertionError):
            run()
    else:
        run()  # the mutations leave the default kernel intact


# ---- the debug mode RNNFAST_CUDA_SYNC: a faulting kernel is named by its own launch ---------------------
@pytest.fixture
def sync_checks(cp):
    core = _cuda._core
    before = core.cuda_sync_checks()
    yield core
    core.emu_reset()
    core.cuda_set_sync_checks(before)


def _lstm_and_gradient(cp, bidirectional):
    layer = rnnfast.LSTM(3, 10, seed=0, bidirectional=bidirectional).to("cuda")
    x = cp.asarray(np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32))
    y, _ = layer(x)
    return layer, cp.ones_like(y)


@pytest.mark.parametrize("reverse", [False, True])
def test_emulated_sync_checks_name_the_failing_kernel_and_step(cp, sync_checks, reverse):
    """A fault injected into one launch of an LSTM backward over T=5 (as an illegal address): with the debug
    mode on, that launch's own error names the kernel, cell, pass, direction and step. The backward of the
    forward direction runs t = 4, 3, 2, ... then the initial-state launch (6 launches); the reverse
    direction's runs next, t = 0, 1, 2, ...: the third launch of either is step t=2."""
    layer, dy = _lstm_and_gradient(cp, reverse)
    sync_checks.cuda_set_sync_checks(True)
    sync_checks.emu_fail_launch(6 + 2 if reverse else 2)
    with pytest.raises(RuntimeError) as err:
        layer.backward(dy)
    msg = str(err.value)
    assert "CUDA error in step_kernel<LstmBackward> (grid 1x1; 4 rows x 1 units x 32 wide per block)" in msg, msg
    assert f"of lstm backward, {'reverse' if reverse else 'forward'} direction, step t=2 of T=5: " \
           "an illegal memory access was encountered (RNNFAST_CUDA_SYNC: checked after this launch)" in msg, msg


def test_emulated_fault_without_sync_checks_still_raises_and_says_how_to_find_it(cp, sync_checks):
    """Without the debug mode the same fault surfaces later (here at the next launch, as on the device once
    the kernel has run), still an exception, which says how to name the kernel."""
    layer, dy = _lstm_and_gradient(cp, False)
    sync_checks.cuda_set_sync_checks(False)
    sync_checks.emu_fail_launch(2)
    with pytest.raises(RuntimeError, match="RNNFAST_CUDA_SYNC=1") as err:
        layer.backward(dy)
    assert "step t=1 of T=5" in str(err.value)  # the launch after the faulting one: not where it happened
    assert "may come from an earlier kernel" in str(err.value)


def test_emulated_sync_checks_blame_an_earlier_fault_on_no_launch_of_theirs(cp, sync_checks):
    """A fault nobody noticed (the last launch of a reservoir run, without the debug mode: no call after it
    synchronises) is reported by the next launch under the debug mode as an earlier failure, not its own."""
    esn = rnnfast.ESN(2, 20, 1, density=0.5, seed=0, dtype="float32", device="cuda")
    u = np.ones((6, 2), np.float32)
    sync_checks.cuda_set_sync_checks(False)
    sync_checks.emu_fail_launch(5)
    esn.run_reservoir(u)  # the fault goes unseen (as it can on the device until something synchronises)
    sync_checks.cuda_set_sync_checks(True)
    with pytest.raises(RuntimeError, match=r"CUDA error before reservoir_step<csr> .* step t=0 of T=6: an illegal "
                                           r"memory access .*an earlier kernel or call failed, not this one"):
        esn.run_reservoir(u)


def test_emulated_sync_checks_in_every_kernel_family(cp, sync_checks):
    """The debug mode's launch path is the one of the MRNN's and the reservoir's kernels too."""
    sync_checks.cuda_set_sync_checks(True)
    mrnn = rnnfast.MRNN(3, 8, factors=5, seed=0).to("cuda")
    sync_checks.emu_fail_launch(3)  # two launches per step: the second of step t=1
    with pytest.raises(RuntimeError, match=r"step_kernel<HiddenForward>.*of mrnn forward, forward direction, "
                                           r"step t=1 of T=4"):
        mrnn(cp.asarray(np.ones((4, 2, 3), np.float32)))
    sync_checks.emu_reset()
    esn = rnnfast.ESN(2, 20, 1, density=0.5, seed=0, dtype="float32", device="cuda")
    sync_checks.emu_fail_launch(4)
    with pytest.raises(RuntimeError, match=r"reservoir_step<csr>.*of esn reservoir forward, forward direction, "
                                           r"step t=4 of T=6"):
        esn.run_reservoir(np.ones((6, 2), np.float32))


@pytest.mark.parametrize("sync", [False, True])
def test_emulated_capture_replays_the_engine_calls(cp, core_emu, sync_checks, sync):
    """Stream capture in the emulation (what bench_gpu.py's graph timings use without a GPU): the engine's
    launches are recorded with their arguments and replayed, and nothing runs while recording; the debug
    mode does not synchronise a stream being captured (that would end the capture)."""
    core_emu.cuda_set_sync_checks(sync)
    from rnnfast.backends.cells import LSTM

    T, N, H = 4, 3, 12
    rng = np.random.default_rng(0)
    arrays = {k: cp.asarray(rng.standard_normal(shape).astype(np.float32))
              for k, shape in dict(xp=(T, N, 4 * H), w=(H, 4 * H), h0=(N, H), c0=(N, H)).items()}
    y, h_n, c_n = cp.empty((T, N, H), np.float32), cp.empty((N, H), np.float32), cp.empty((N, H), np.float32)
    work = cp.empty((core_emu.cuda_workspace_size(LSTM, N, H, False),), np.float32)
    p = _cuda._ptr

    def forward():
        core_emu.cuda_recurrent_forward("float32", LSTM, T, N, H, False, False, p(arrays["xp"]), p(arrays["w"]), 0,
                                        p(arrays["h0"]), p(arrays["c0"]), p(y), H, p(h_n), p(c_n), 0, 0, 0, 0,
                                        p(work), 0)

    forward()
    want = y.copy()
    stream = cp.cuda.Stream(non_blocking=True)
    y[...] = np.nan
    launches = core_emu.emu_launches()
    stream.begin_capture()
    forward()
    graph = stream.end_capture()
    assert core_emu.emu_launches() == launches and np.isnan(y).all()  # recorded, not run
    graph.launch(stream)
    assert core_emu.emu_launches() == launches + T
    np.testing.assert_array_equal(y, want)


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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", gpu_tests.OPTION_CASES, ids=gpu_tests._option_id)
def test_emulated_cuda_options(cp, case, dtype):
    gpu_tests.test_cuda_options_match_cpu_engine_and_float64_reference(cp, case, dtype)
