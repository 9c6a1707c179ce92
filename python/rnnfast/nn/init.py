"""Initialisation of trained RNNs: spectral radius, orthogonal matrices, the ESN-style recipe.

The lecture (after Jaeger's echo state networks and Sutskever et al. 2012/2013): set the hidden->hidden
weights sparse and random with the largest |eigenvalue| (spectral radius) near 1, so activity neither dies
nor explodes and the input "echoes" for a long time; choose the input scale with care; then train every
weight (e.g. with RMSprop + momentum). Below 1 the backward signal vanishes, above 1 it can explode.
"""

import re

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._util import checks as _checks
from .._util.arrays import array_module, to_host

__all__ = ["spectral_radius", "scale_to_spectral_radius", "orthogonal", "init_recurrent_esn",
           "recurrent_blocks"]

_GATE_NAMES = {1: (None,), 3: ("r", "z", "n"), 4: ("i", "f", "g", "o")}  # GRU, LSTM: PyTorch's order
_W_HH = re.compile(r"^(.*)weight_hh_l(\d+)(_reverse)?$")


_DENSE_EIG_MAX = 512  # exact eigenvalues up to this size; above it ARPACK (the dense solve costs n^3)


def _square(W, name="W"):
    """W (NumPy, CuPy or scipy.sparse) as a float64 host matrix, checked: real, square, non-empty, finite."""
    if sp.issparse(W):
        if W.dtype == np.bool_ or W.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {W.dtype}")
        values = W.data
    else:
        if not hasattr(W, "shape") or not hasattr(W, "dtype"):
            W = _checks.real_array(W, name)  # a list of lists of numbers, as numpy.asarray reads it
        W = to_host(W)
        if W.dtype == np.bool_ or W.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {W.dtype}")
        values = W
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix (n, n), got shape {W.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return W.astype(np.float64) if sp.issparse(W) else W.astype(np.float64, copy=False)


def _dense(W):
    return W.toarray() if sp.issparse(W) else W


def spectral_radius(W, iters=1000, seed=0, method="auto"):
    """max |eigenvalue| of the square matrix W, as a float: W NumPy, CuPy or scipy.sparse, computed on the
    host in float64, the same for the same seed (the one spectral radius of rnnfast: rnnfast.esn's too).

    method "auto": exact eigenvalues (numpy.linalg.eigvals) for n <= 512, ARPACK above. "eig": exact.
    "arnoldi": ARPACK's implicitly restarted Arnoldi (scipy.sparse.linalg.eigs, k=1, tol 1e-10, start
    vector from `seed`), the exact eigenvalues when it does not converge. "power": the power method's mean
    growth rate exp(mean log ||W v_k||) over the last half of `iters` steps; plain power iteration fails
    when the dominant eigenvalues are a complex pair or W is strongly non-normal, and this rate tends to
    the spectral radius in those cases too, but only approximately (about 1e-2 relative at 1000 steps).
    """
    W = _square(W)
    iters = _checks.positive_int(iters, "iters")
    _checks.one_of(method, "method", ("auto", "eig", "arnoldi", "power"))
    seed = _checks.seed(seed)
    n = W.shape[0]
    if method == "eig" or (method == "auto" and n <= _DENSE_EIG_MAX) or (method != "power" and n <= 2):
        return float(np.max(np.abs(np.linalg.eigvals(_dense(W)))))
    rng = np.random.default_rng(seed)
    if method != "power":
        try:
            vals = spla.eigs(W, k=1, which="LM", v0=rng.standard_normal(n), tol=1e-10,
                             maxiter=max(iters, 20 * n), ncv=min(n, 40), return_eigenvectors=False)
            return float(np.max(np.abs(vals)))
        except spla.ArpackNoConvergence:
            return float(np.max(np.abs(np.linalg.eigvals(_dense(W)))))
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    logs = []
    for _ in range(iters):
        v = W @ v
        norm = np.linalg.norm(v)
        if norm == 0:
            return 0.0  # W^k v = 0: nilpotent along v
        logs.append(np.log(norm))
        v /= norm
    return float(np.exp(np.mean(logs[len(logs) // 2:])))


def scale_to_spectral_radius(W, rho):
    """W * (rho / spectral_radius(W)): a new array of W's dtype and array module (W floating point)."""
    rho = _checks.real(rho, "rho", low=0, low_open=True)
    if not hasattr(W, "dtype"):
        raise TypeError(f"W must be an array (the result has its dtype and array module), got {type(W).__name__}")
    if W.dtype.kind in "iu":  # W.dtype.type(rho / r) would truncate to 0
        raise TypeError(f"W must be a floating-point array to be scaled, got {W.dtype.name}")
    r = spectral_radius(W)
    if r == 0:
        raise ValueError("W has spectral radius 0 (e.g. nilpotent or zero): it cannot be scaled to rho")
    return W * W.dtype.type(rho / r)


def orthogonal(shape, gain=1.0, rng=None, dtype="float32"):
    """A (semi-)orthogonal matrix times gain, as torch.nn.init.orthogonal_: QR of a Gaussian matrix with
    the signs of R's diagonal folded into Q (so Q is Haar-distributed). shape (rows, cols...) is
    flattened to (rows, prod(cols)); rows <= cols gives orthonormal rows, else orthonormal columns."""
    if not isinstance(shape, (tuple, list)) or len(shape) < 2:
        raise ValueError(f"shape must have at least 2 dimensions, got {shape!r}")
    shape = tuple(_checks.positive_int(s, "shape") for s in shape)
    gain = _checks.real(gain, "gain")
    dtype = _checks.as_dtype(dtype)
    rows, cols = shape[0], int(np.prod(shape[1:], dtype=object))
    _checks.check_memory(3 * rows * cols, 8, f"orthogonal(shape={shape})")
    a = _checks.rng(rng).standard_normal((rows, cols))
    if rows < cols:
        a = a.T
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype)


def recurrent_blocks(module):
    """[(key, param name, row slice)] for every hidden->hidden gate block of a module's parameters.

    key is the parameter name ("weight_hh_l0", "rnn.weight_hh_l1_reverse") for a plain RNN and
    "<name>[gate]" for LSTM (gates i, f, g, o) and GRU (r, z, n); the slice selects the block's H rows.
    """
    if not hasattr(module, "parameters"):
        raise TypeError(f"layer must have parameters(), got {type(module).__name__}")
    out = []
    for name, W in module.parameters().items():
        if not _W_HH.match(name):
            continue
        H = W.shape[1]
        G = W.shape[0] // H
        if W.ndim != 2 or W.shape[0] != G * H or G not in _GATE_NAMES:
            raise ValueError(f"{name} must be (G*H, H) with G in 1, 3, 4 gates, got shape {W.shape}")
        for gi, gate in enumerate(_GATE_NAMES[G]):
            key = name if gate is None else f"{name}[{gate}]"
            out.append((key, name, slice(gi * H, (gi + 1) * H)))
    if not out:
        raise ValueError("layer has no recurrent weights (no parameter named like 'weight_hh_l0')")
    return out


def _sparse_block(H, per_row, rho, rng):
    """H x H, `per_row` N(0, 1) entries at random columns of each row, scaled to spectral radius rho."""
    for _ in range(20):  # very sparse matrices can be nilpotent (radius 0): draw again
        W = np.zeros((H, H))
        for row in range(H):
            cols = rng.choice(H, size=per_row, replace=False)
            W[row, cols] = rng.standard_normal(per_row)
        r = spectral_radius(W)
        if r > 1e-8:
            return W * (rho / r)
    raise ValueError(f"could not draw a sparse {H}x{H} matrix with {per_row} connections per unit and a "
                     "non-zero spectral radius: raise density")


def init_recurrent_esn(layer, spectral_radius=1.1, density=None, input_scale=1.0, bias=0.0, seed=None):
    """The ESN-style initialisation of a trained RNN (Sutskever et al. 2012/2013; the lecture), in place.

    Every hidden->hidden block (each layer and direction; each gate block separately for LSTM/GRU) becomes
    a sparse matrix with round(density * H) (at least 1) N(0, 1) entries per row at random columns, scaled
    to exactly `spectral_radius`. density=None means 15 incoming connections per unit (Sutskever's choice),
    i.e. min(1, 15/H). Input weights weight_ih_* become U(-a, a) with a = input_scale / sqrt(fan_in)
    (input_scale=1 is PyTorch's range when fan_in = H). Biases are set to `bias` (None leaves them).
    Learned initial states are untouched. `layer` is anything with parameters() named like the recurrent
    layers' (RNN/LSTM/GRU, Conditioned, or a ModuleDict holding them). Returns layer.
    """
    rho = _checks.real(spectral_radius, "spectral_radius", low=0, low_open=True)
    if density is not None:
        density = _checks.real(density, "density", low=0, low_open=True, high=1)
    input_scale = _checks.real(input_scale, "input_scale", low=0, low_open=True)
    if bias is not None:
        bias = _checks.real(bias, "bias")
    rng = np.random.default_rng(_checks.seed(seed))
    blocks = recurrent_blocks(layer)
    params = layer.parameters()
    companions = set()
    for _, name, rows in blocks:
        W = params[name]
        H = W.shape[1]
        per_row = min(H, 15) if density is None else max(1, int(round(density * H)))
        W[rows] = array_module(W).asarray(_sparse_block(H, per_row, rho, rng).astype(W.dtype))
        prefix, lay, rev = _W_HH.match(name).groups()
        companions.update(f"{prefix}{kind}_l{lay}{rev or ''}" for kind in ("weight_ih", "bias_ih", "bias_hh"))
    for name, p in params.items():
        if name not in companions:
            continue
        if "weight_ih" in name:
            a = input_scale / np.sqrt(p.shape[1])
            p[...] = array_module(p).asarray(rng.uniform(-a, a, p.shape).astype(p.dtype))
        elif bias is not None:
            p[...] = bias
    return layer
