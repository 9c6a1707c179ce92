"""Shared pytest setup for rnnfast.

* tests marked ``gpu`` are skipped cleanly when ``rnnfast.build_info()["cuda_available"]`` is False
  (the markers themselves are registered in pyproject.toml);
* small numeric helpers used by the test modules (import them with ``from conftest import ...``;
  tests/ has no __init__.py, so pytest puts it on sys.path).
"""

import numpy as np
import pytest

TINY = 1e-300


def _cuda_available():
    try:
        import rnnfast

        return bool(rnnfast.build_info()["cuda_available"])
    except Exception:  # a broken import fails the tests themselves, not the collection hook
        return False


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items or _cuda_available():
        return
    reason = "needs a CUDA GPU: rnnfast.build_info()['cuda_available'] is False"
    skip = pytest.mark.skip(reason=reason)
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture
def cuda_available():
    return _cuda_available()


# ---------------------------------------------------------------------------------------------
# numeric helpers
# ---------------------------------------------------------------------------------------------

def randn(rng, shape, dtype=np.float64, scale=1.0):
    """Standard normal array (times scale) of the given shape and dtype."""
    return (scale * rng.standard_normal(shape)).astype(dtype)


def rel_err(a, b):
    """max|a - b| / max(max|b|, tiny); shapes must agree. b is the trusted value."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    if a.size == 0:
        return 0.0
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return np.inf
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), TINY))


def numerical_grad(f, arr, eps=1e-6):
    """Central finite differences of the scalar function f() w.r.t. every element of arr.

    arr is perturbed in place (and restored), so it must be an array f() reads.
    """
    g = np.zeros(arr.shape, dtype=np.float64)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        fp = f()
        arr[idx] = old - eps
        fm = f()
        arr[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g


def fd_direction(run, theta, v, eps=1e-6):
    """(y(theta + eps v) - y(theta - eps v)) / 2 eps for dicts theta, v (v's None: no change): central
    differences of an R-op's forward (tests/test_mrnn.py, tests/test_rop_engine.py)."""
    def at(s):
        return run({k: (a if v.get(k) is None else a + s * eps * v[k]) if a is not None else None
                    for k, a in theta.items()})
    return (at(1) - at(-1)) / (2 * eps)
