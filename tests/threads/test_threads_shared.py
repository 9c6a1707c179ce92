"""One object shared by several threads gives, call for call, what the same calls give one after another.

The cases are in tests/threads/thread_cases.py (every layer cell in both modes and dtypes, both directions, random
shapes, forward + backward from several threads on one layer; ESN runs that touch no state, and the
errors for calls that continue the carried state at once; CharModel.evaluate/sample; the nn modules). They
run in worker processes with the engine's thread count pinned (RNNFAST_NUM_THREADS=2, NumPy's BLAS on one
thread), so that a lone call takes the engine's two-thread path on every machine; a worker that crashes
or hangs is replaced and the case it was running fails.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import thread_cases  # noqa: E402  (tests/ has no __init__.py)

WORKER = Path(__file__).with_name("thread_cases.py")
NAMES = list(thread_cases.cases())
PER_CASE_S = 60


def _run_workers(names):
    """{case: (ok, detail)} for every name; a worker that dies or hangs fails the case it was in."""
    env = dict(os.environ, RNNFAST_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1")
    results, remaining = {}, list(names)
    while remaining:
        started, lines, why = None, "", None
        try:
            proc = subprocess.run([sys.executable, str(WORKER), *remaining], env=env, capture_output=True, text=True,
                                  timeout=PER_CASE_S * len(remaining))
            lines, code, err = proc.stdout, proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as e:
            lines = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            code, err = None, "timed out"
        for line in lines.splitlines():
            rec = json.loads(line)
            if rec.get("start"):
                started = rec["case"]
            else:
                results[rec["case"]] = (rec["ok"], rec["detail"])
                started = None
        if started is not None:
            why = f"the worker process died in this case (status {code}): {err[-2000:]}"
            results[started] = (False, why)
        elif code != 0 and not all(n in results for n in remaining):
            pytest.fail(f"the thread-case worker failed before any case (status {code}): {err[-2000:]}")
        remaining = [n for n in remaining if n not in results]
    return results


@pytest.fixture(scope="module")
def outcomes():
    return _run_workers(NAMES)


@pytest.mark.parametrize("case", NAMES)
def test_shared_object_matches_serial_calls(outcomes, case):
    ok, detail = outcomes[case]
    assert ok, detail
