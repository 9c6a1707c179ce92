"""Shared pytest setup for rnnfast.

* tests marked ``gpu`` run when a GPU is usable, are skipped when none is there, and FAIL (in setup, with
  the reason) when a GPU is visible but unusable: a broken driver, runtime or build must not pass as "no
  GPU". RNNFAST_TEST_GPU=1 requires a usable GPU (benchmarks/gpu_check.sh sets it); RNNFAST_TEST_GPU=0
  skips the GPU tests. (The markers themselves are registered in pyproject.toml.)
* RNNFAST_TEST_LOG=FILE appends one JSON line per test as it finishes (and one as it starts), so a run cut
  short keeps every result and traceback so far (benchmarks/gpu_check.sh).
* the helpers the test modules share are in tests/helpers (``from helpers import rel_err``; pytest puts
  tests/ on sys.path for this conftest).
"""

import glob
import json
import os
import shutil
import subprocess
import time
import warnings

import pytest


def gpu_visible():
    """A description of the NVIDIA GPU this machine shows (nvidia-smi -L, or the driver's device files), or
    None. CUDA_VISIBLE_DEVICES set to nothing (or -1) hides them, as it does from CUDA."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return None
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        gpus = [line for line in out.splitlines() if line.startswith("GPU ")]
        if gpus:
            return gpus[0]
    nodes = sorted(glob.glob("/dev/nvidia[0-9]*"))
    return f"device file {nodes[0]} (nvidia-smi lists no GPU)" if nodes else None


def gpu_probe():
    """('usable' | 'absent' | 'broken', reason) for the GPU tests (see the module docstring)."""
    want = os.environ.get("RNNFAST_TEST_GPU", "auto").strip()
    if want == "0":
        return "absent", "RNNFAST_TEST_GPU=0"
    visible = gpu_visible()
    reason = None
    try:
        import rnnfast

        info = rnnfast.build_info()
    except Exception as e:  # noqa: BLE001 (any failure is the reason)
        reason = f"import rnnfast failed: {e!r}"
    else:
        if not info["cuda_compiled"]:
            reason = "this rnnfast build has no CUDA engine (built without nvcc, or with RNNFAST_CUDA=OFF)"
        elif info["cuda_device_count"] == 0:
            reason = (f"no usable CUDA device: no GPU or driver, or a driver older than the CUDA runtime "
                      f"{info['cuda_runtime_version']} the engine was built with")
    if reason is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # CuPy's own import-time notices are not the question here
                import cupy

                if int(cupy.arange(4, dtype=cupy.float32).sum().item()) != 6:
                    reason = "CuPy computed a wrong sum on the GPU"
        except Exception as e:  # noqa: BLE001
            reason = f"CuPy cannot use the GPU: {e!r}"
    if reason is None:
        return "usable", "a GPU is usable"
    if visible is None and want != "1":
        return "absent", f"needs a CUDA GPU ({reason})"
    why = f"GPU visible ({visible})" if visible else "RNNFAST_TEST_GPU=1"
    return "broken", f"{why} but the GPU tests cannot run: {reason}"


_PROBE = None


def _probe_once():
    global _PROBE
    if _PROBE is None:
        _PROBE = gpu_probe()
    return _PROBE


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    state, reason = _probe_once()
    if state == "absent":
        skip = pytest.mark.skip(reason=reason)
        for item in gpu_items:
            item.add_marker(skip)


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is not None:
        state, reason = _probe_once()
        if state == "broken":
            pytest.fail(reason, pytrace=False)


@pytest.fixture
def cuda_available():
    """rnnfast.build_info()['cuda_available']: the engine has a device (CuPy not asked)."""
    import rnnfast

    return bool(rnnfast.build_info()["cuda_available"])


def _log(record):
    path = os.environ.get("RNNFAST_TEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def pytest_runtest_logstart(nodeid, location):
    _log({"test": nodeid, "event": "start", "time": time.time()})


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        record = {"test": report.nodeid, "event": report.when, "outcome": report.outcome,
                  "seconds": round(report.duration, 3)}
        if report.outcome != "passed":
            record["report"] = report.longreprtext[-20000:]
        _log(record)
