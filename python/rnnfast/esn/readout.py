"""The ESN's ridge readout: float64 sufficient statistics accumulated chunk by chunk, solved per ridge value."""

import numpy as np
from scipy.linalg.blas import dsyr as _dsyr
from scipy.linalg.lapack import dposv as _dposv

from .. import _core
from .._util import checks as _checks


def _nrmse_parts(sse, n, y_std):
    """Mean over outputs of sqrt(sse/n) / std(y)."""
    return float(np.mean(np.sqrt(sse / n) / np.maximum(y_std, 1e-300)))


class RidgeAccumulator:
    """Sufficient statistics of ridge regression with an intercept, accumulated in float64.

    ``add(X, Y)`` with X (S, N), Y (S, O), any number of times; ``solve(ridge)`` -> (W_out (N, O),
    b_out (O,)) minimising |Y - X W_out - b_out|^2 + ridge |W_out|^2 (the intercept is not penalised).
    Rows are shifted by the mean of the first batch before accumulating, which keeps the centring
    (X^T X - S x_mean x_mean^T) accurate when the states have a large common offset.
    """

    def __init__(self, n_features, n_outputs):
        n_features = _checks.positive_int(n_features, "n_features")
        n_outputs = _checks.positive_int(n_outputs, "n_outputs")
        _checks.check_memory(n_features * (n_features + n_outputs), 8,
                             f"RidgeAccumulator(n_features={n_features}, n_outputs={n_outputs})")
        self.n_features, self.n_outputs = n_features, n_outputs
        self.xx = np.zeros((n_features, n_features), order="F")  # upper triangle (syrk), Fortran for BLAS
        self.xy = np.zeros((n_features, n_outputs))
        self.xs = np.zeros(n_features)
        self.ys = np.zeros(n_outputs)
        self.n = 0
        self._cx = None
        self._cy = None

    def add(self, X, Y):
        X, Y = _checks.real_array(X, "X"), _checks.real_array(Y, "Y")
        for a, name, width in ((X, "X", self.n_features), (Y, "Y", self.n_outputs)):
            if a.ndim != 2 or a.shape[-1] != width:
                raise ValueError(f"{name} must have shape (S, {width}), got {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"{name} contains NaN or Inf")
        X = X.reshape(-1, self.n_features)
        Y = Y.reshape(-1, self.n_outputs)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        self._add(X, Y)

    def _add(self, X, Y, scratch=None):
        """add() without the checks and copies, for callers whose X (S, N) or (steps, batch, N) (any row
        strides; float32 or float64) and Y (S, O) are finite (the engine's states): the searches accumulate
        tens of members per step chunk. The engine centres the rows and updates the statistics with the GIL
        released (rnnfast/ridge_stats.h). scratch: a float64 C-contiguous array of at least S*N entries for
        the centred rows (a search reuses one for every chunk and member)."""
        N = self.n_features
        S = X.size // N
        if S == 0:
            return
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        X3 = X[:, None, :] if X.ndim == 2 else X
        if min(X3.strides) < 0 or (N > 1 and X3.strides[2] != X3.itemsize):  # rows must be contiguous
            X3 = np.ascontiguousarray(X3)
        Y = np.ascontiguousarray(Y, dtype=np.float64).reshape(S, self.n_outputs)
        if self._cx is None:
            self._cx, self._cy = X3.mean(axis=(0, 1), dtype=np.float64), Y.mean(axis=0)
        if scratch is None or scratch.size < S * N:
            scratch = np.empty((S, N))
        _core.ridge_stats_add(X3, Y, self._cx, self._cy, self.xx, self.xy, self.xs, self.ys, scratch)
        self.n += S

    def solve(self, ridge, work=None):
        """(W_out, b_out) for one ridge value. work: an (N, N) Fortran-ordered float64 array the solve may
        overwrite (a search reuses one for every member instead of allocating N x N per solve)."""
        ridge = _checks.real(ridge, "ridge", low=0)
        if self.n == 0:
            raise ValueError("no training samples (is washout longer than the sequences?)")
        n = self.n
        xm, ym = self.xs / n, self.ys / n
        B = self.xy - n * np.outer(xm, ym)
        def system(a):
            """The centred Gram matrix plus the ridge, in the upper triangle (all the update wrote) of a copy
            of the statistics in `a` (overwritten)."""
            a = _dsyr(-float(n), xm, a=a, lower=0, overwrite_a=1)
            a[np.diag_indices_from(a)] += ridge
            return a

        # a Cholesky solve that reads only the upper triangle: one N x N copy (a search solves tens per task)
        if work is None:
            work = self.xx.copy(order="F")
        else:
            np.copyto(work, self.xx)
        _, W_out, info = _dposv(system(work), B, lower=0, overwrite_a=1)
        if info != 0:  # not positive definite (ridge 0 with collinear states): least squares, full matrix
            A = system(self.xx.copy(order="F"))
            W_out = np.linalg.lstsq(np.triu(A) + np.triu(A, 1).T, B, rcond=None)[0]
        b_out = (ym + self._cy) - (xm + self._cx) @ W_out
        return W_out, b_out


def _ridge_list(ridge, name="ridge"):
    """A float or a list of floats >= 0 -> (list of floats, was_list)."""
    if isinstance(ridge, (list, tuple, np.ndarray)):
        vals = [_checks.real(r, name, low=0) for r in np.asarray(ridge, dtype=object).ravel()]
        if not vals:
            raise ValueError(f"{name} must not be an empty list")
        was_list = True
    else:
        vals = [_checks.real(ridge, name, low=0)]
        was_list = False
    return vals, was_list
