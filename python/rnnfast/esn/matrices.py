"""The reservoir's matrices: checks and conversions of supplied W, W_in, bias, W_fb and leak rates."""

import numpy as np
import scipy.sparse as sp

from .._util import checks as _checks
from ..nn.init import spectral_radius as init_spectral_radius


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


def leak_vector(value, N, name="leak_rate"):
    """A leak rate, a scalar or one value per unit, all in [0, 1] -> float64 (N,)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        v = _checks.real_array(value, name)
        if v.shape != (N,):
            raise ValueError(f"{name} must be a scalar or have shape ({N},), got {v.shape}")
    else:
        v = np.full(N, _checks.real(value, name))
    if not (np.isfinite(v).all() and (v >= 0).all() and (v <= 1).all()):
        raise ValueError(f"{name} must lie in [0, 1]")
    return v


def input_scaling_of(value, input_size):
    """input_scaling: a scalar > 0 (float) or one value > 0 per input (float64 (I,))."""
    if not isinstance(value, (list, tuple, np.ndarray)):
        return _checks.real(value, "input_scaling", low=0, low_open=True)
    v = _checks.real_array(value, "input_scaling")
    if v.shape != (input_size,):
        raise ValueError(f"input_scaling must be a scalar or have shape ({input_size},), got {v.shape}")
    if not (np.isfinite(v).all() and (v > 0).all()):
        raise ValueError("input_scaling must be finite and > 0")
    return v


def random_reservoir(N, density, spectral_radius, rng):
    """A random W (N, N) scaled to the spectral radius, and whether it is nilpotent (then unscaled).

    density < 1: sparse CSR with round(density * N * N) (at least 1) nonzeros at uniformly random positions;
    density 1: dense. Nonzeros uniform(-1, 1). A W whose graph has no cycle is nilpotent: its spectral
    radius is 0 whatever the values, so it cannot be scaled (dividing by a computed ~0 radius gave entries
    of ~1e11); the caller refuses it.
    """
    if density < 1:
        nnz = int(round(density * N * N))
        W = sp.random_array((N, N), density=max(nnz, 1) / (N * N), format="csr", dtype=np.float64, rng=rng,
                            data_sampler=lambda size: rng.uniform(-1.0, 1.0, size))
        W = sp.csr_matrix(W)
    else:
        W = rng.uniform(-1.0, 1.0, (N, N))
    nilpotent = density < 1 and _acyclic(W)
    if not nilpotent:
        W = W * (spectral_radius / max(init_spectral_radius(W), 1e-12))
    return W, nilpotent
