"""The reservoir's matrices: the spectral radius, checks and conversions of supplied W, W_in, bias, W_fb."""

import numpy as np
import scipy.sparse as sp

from .._util import checks as _checks

_DENSE_EIG_MAX = 512           # spectral radius by dense eigvals up to this size, ARPACK above


def _real_array(value, name):
    """A list/tuple/array of real numbers -> float64 ndarray; TypeError naming `name` for anything else
    (strings, None, complex, bool, objects), never a silent cast."""
    try:
        a = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold real numbers, got {type(value).__name__}") from None
    if a.dtype == np.bool_ or a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a.astype(np.float64)


def spectral_radius(W):
    """Largest |eigenvalue| of W (dense or scipy.sparse), computed deterministically.

    N <= 512: dense ``numpy.linalg.eigvals``. Larger: ARPACK ``eigs(k=1, which='LM')`` with a fixed start
    vector and tol 1e-10 (a dense solve when ARPACK does not converge).
    """
    if not sp.issparse(W):
        W = _real_array(W, "W")
    elif W.dtype == np.bool_ or W.dtype.kind not in "fiu":
        raise TypeError(f"W must hold real numbers, got dtype {W.dtype}")
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"W must be a non-empty square matrix (N, N), got shape {W.shape}")
    if not np.isfinite(W.data if sp.issparse(W) else W).all():
        raise ValueError("W contains NaN or Inf")
    N = W.shape[0]
    if N <= _DENSE_EIG_MAX:
        dense = W.toarray() if sp.issparse(W) else np.asarray(W)
        return float(np.max(np.abs(np.linalg.eigvals(dense.astype(np.float64)))))
    import scipy.sparse.linalg as spla
    A = W.astype(np.float64) if sp.issparse(W) else np.asarray(W, dtype=np.float64)
    v0 = np.random.default_rng(20240601).uniform(-1.0, 1.0, N)
    try:
        vals = spla.eigs(A, k=1, which="LM", v0=v0, tol=1e-10, maxiter=max(1000, 20 * N),
                         ncv=min(N, 40), return_eigenvectors=False)
        return float(np.max(np.abs(vals)))
    except spla.ArpackNoConvergence:
        dense = A.toarray() if sp.issparse(A) else A
        return float(np.max(np.abs(np.linalg.eigvals(dense))))


def _acyclic(W):
    """Whether the directed graph of the sparse W's nonzeros has no cycle (no self-loop and every strongly
    connected component one node): then W is nilpotent."""
    from scipy.sparse.csgraph import connected_components
    if W.diagonal().any():
        return False
    n_components, _ = connected_components(W, directed=True, connection="strong")
    return n_components == W.shape[0]


def _as_w(W, N, dt):
    if sp.issparse(W):
        if W.dtype == np.bool_ or W.dtype.kind not in "fiu":
            raise TypeError(f"W must hold real numbers, got dtype {W.dtype}")
        if W.shape != (N, N):
            raise ValueError(f"W must have shape ({N}, {N}), got {W.shape}")
        W = sp.csr_matrix(W, dtype=dt, copy=True)  # never sort or merge the caller's matrix in place
        W.sum_duplicates()
        W.sort_indices()
        W.indptr = W.indptr.astype(np.int32)
        W.indices = W.indices.astype(np.int32)
        if not np.isfinite(W.data).all():
            raise ValueError("W contains NaN or Inf")
        return W
    return _matrix(W, "W", (N, N), dt)


def _matrix(a, name, shape, dt):
    if sp.issparse(a):
        a = a.toarray()
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception:
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}") from None
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) or a.dtype == np.bool_:
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {_checks.shape_str(shape)}, got {a.shape}")
    a = np.ascontiguousarray(a, dtype=dt)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return a
