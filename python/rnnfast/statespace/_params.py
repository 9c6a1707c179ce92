"""Argument checks of the state-space models: every failure names the argument and what was expected.

Parameters are converted to the model's dtype only from Python numbers, lists and integer arrays; a
floating-point array of the other precision is a TypeError (no silent casts).
"""

import threading

import numpy as np

from .._util import checks as _checks


def _tolerance(dtype):
    """How far from exact a probability sum or a symmetry may be: a few thousand ulps of the dtype."""
    return 1e-8 if np.dtype(dtype) == np.float64 else 1e-4


def param(value, name, dtype, shape, allow_neg_inf=False):
    """value as a C-contiguous array of `dtype` and exactly `shape` (None: any size), finite."""
    if value is None:
        raise TypeError(f"{name} is required")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and value.dtype != dtype:
            raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {value.dtype.name} "
                            f"(convert it with .astype({np.dtype(dtype).name!r}))")
        if value.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype.name}")
    else:
        try:
            probe = np.asarray(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}") from None
        if probe.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__} of "
                            f"{probe.dtype.name}")
    a = np.ascontiguousarray(value, dtype=dtype)
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise ValueError(f"{name} must have shape {_checks.shape_str(shape)}, got {tuple(a.shape)}")
    bad = ~np.isfinite(a)
    if allow_neg_inf:
        bad &= ~np.isneginf(a)
    if bad.any():
        raise ValueError(f"{name} contains NaN or Inf")
    return a


def stochastic(value, name, dtype, shape):
    """Probabilities along the last axis: >= 0 and summing to 1 (rows of a matrix, or a vector)."""
    a = param(value, name, dtype, shape)
    if (a < 0).any():
        raise ValueError(f"{name} must be non-negative (probabilities), its minimum is {a.min():.6g}")
    sums = a.sum(axis=-1, dtype=np.float64)
    off = np.abs(sums - 1.0)
    if (off > _tolerance(dtype) * max(1, a.shape[-1])).any():
        where = "" if a.ndim == 1 else f" (row {int(np.argmax(off))} sums to {sums.flat[np.argmax(off)]:.10g})"
        raise ValueError(f"{name} must sum to 1 along its last axis{where}" if a.ndim > 1 else
                         f"{name} must sum to 1, it sums to {float(sums):.10g}")
    return a


def covariance(value, name, dtype, n, definite=True):
    """A symmetric [n,n] covariance: positive definite (definite=True, checked by a Cholesky factorisation)
    or positive semi-definite (eigenvalues >= -tolerance * largest)."""
    a = param(value, name, dtype, (n, n))
    scale = float(np.abs(a).max()) if a.size else 0.0
    if float(np.abs(a - a.T).max(initial=0.0)) > _tolerance(dtype) * max(scale, 1e-300):
        raise ValueError(f"{name} must be symmetric")
    if definite:
        try:
            np.linalg.cholesky(a.astype(np.float64))
        except np.linalg.LinAlgError:
            raise ValueError(f"{name} must be positive definite") from None
    else:
        w = np.linalg.eigvalsh(a.astype(np.float64))
        if w.size and w[0] < -_tolerance(dtype) * max(float(w[-1]), 1e-300):
            raise ValueError(f"{name} must be positive semi-definite (its smallest eigenvalue is {w[0]:.6g})")
    return a


def offsets_of(lengths, n_rows, name="lengths"):
    """lengths (None: one sequence of n_rows) -> int64 offsets [S+1] (0, cumulative lengths)."""
    if lengths is None:
        if n_rows < 1:
            raise ValueError("X must hold at least one observation")
        return np.array([0, n_rows], dtype=np.int64)
    lengths = np.asarray(lengths)
    if lengths.dtype.kind not in "iu" or lengths.ndim != 1 or lengths.size < 1:
        raise TypeError(f"{name} must be a non-empty 1-D sequence of ints")
    if (lengths < 1).any():
        raise ValueError(f"{name} must all be >= 1, got {int(lengths.min())}")
    if int(lengths.sum()) != n_rows:
        raise ValueError(f"{name} must sum to the number of observations ({n_rows}), they sum to {int(lengths.sum())}")
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)


def rng_of(seed):
    """A numpy Generator from an int seed, None, or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(_checks.seed(seed))


class WriterLock:
    """The writers' lock of a model (setters, em_step, fit hold `_writing`), made anew by copy.deepcopy and
    pickle, which cannot copy a lock."""

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_writing", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__["_writing"] = threading.RLock()
