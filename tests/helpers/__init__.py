"""What the test modules share: numeric helpers here; the CLI's runners (helpers.cli); generated texts
(helpers.texts). tests/conftest.py holds pytest's hooks and fixtures."""

import numpy as np

TINY = 1e-300


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
    differences of an R-op's forward (tests/unit/test_mrnn.py, tests/engines/test_rop_engine.py)."""
    def at(s):
        return run({k: (a if v.get(k) is None else a + s * eps * v[k]) if a is not None else None
                    for k, a in theta.items()})
    return (at(1) - at(-1)) / (2 * eps)
