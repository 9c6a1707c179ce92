"""Next-generation reservoir computing (NVAR; Gauthier, Bollt, Griffith & Barbosa 2021): a nonlinear vector
autoregression whose features are the delayed inputs and their monomials, with a ridge read-out.

    nvar = rnnfast.esn.NVAR(delay=2, order=2, strides=1, ridge=2.5e-6)
    nvar.fit(u_train, y_train, washout=2)       # features of u, then a ridge read-out
    y_pred = nvar.predict(u_test)               # continues from the inputs fit saw last

Features (reservoirpy 0.4's ``NVAR`` node, the same values in the same order; the equations are in
:mod:`rnnfast.reference.nvar`): with k = delay, s = strides, n = order, at each step t
``linear_t = [u_t, u_{t-s}, ..., u_{t-(k-1)s}]`` (zeros before the first input) and ``nonlinear_t`` = every
monomial of degree n of linear_t's entries (itertools.combinations_with_replacement order). Computed for
the whole sequence at once (no loop over steps). Like reservoirpy's node it is stateful: the last k*s
inputs are kept between calls (``reset()`` clears them). The read-out is rnnfast.ESN's: ridge regression
with an unregularised intercept (reservoirpy's ``Ridge(fit_bias=True)``), from float64 statistics.
"""

import itertools
from math import comb

import numpy as np

from .._util import checks as _checks
from .readout import RidgeAccumulator, _ridge_list

__all__ = ["NVAR"]

_CHUNK_ELEMENTS = 1 << 22  # monomial products computed per chunk of steps


class NVAR:
    """Nonlinear vector autoregression: delayed inputs, their degree-``order`` monomials, a ridge read-out.

    delay (k >= 1): delayed copies of the input; order (n >= 1): degree of the monomials; strides (s >= 1):
    steps between the delayed copies; ridge (>= 0).
    """

    def __init__(self, delay, order, strides=1, ridge=0.0):
        self.delay = _checks.positive_int(delay, "delay")
        self.order = _checks.positive_int(order, "order")
        self.strides = _checks.positive_int(strides, "strides")
        _ridge_list(ridge)
        self.ridge = _checks.real(ridge, "ridge")
        self.input_size = None
        self.W_out = self.b_out = None
        self._store = None     # (k*s, I): the last inputs, most recent first (reservoirpy's store)
        self._idx = None

    def __repr__(self):
        return (f"NVAR(delay={self.delay}, order={self.order}, strides={self.strides}, ridge={self.ridge}, "
                f"input_size={self.input_size}, fitted={self.W_out is not None})")

    @property
    def linear_size(self):
        return None if self.input_size is None else self.delay * self.input_size

    @property
    def feature_size(self):
        """k*I + C(k*I + n - 1, n): the linear part and the monomials."""
        if self.input_size is None:
            return None
        d = self.linear_size
        return d + comb(d + self.order - 1, self.order)

    def reset(self):
        """Forget the stored inputs (the next call starts from zeros)."""
        if self.input_size is not None:
            self._store = np.zeros((self.delay * self.strides, self.input_size))

    def _init(self, I):
        if self.input_size is None:
            d = self.delay * I
            n_mono = comb(d + self.order - 1, self.order)
            _checks.check_memory(n_mono * self.order, 8, f"NVAR(delay={self.delay}, order={self.order}) on "
                                                         f"{I} inputs: {n_mono} monomials")
            self.input_size = I
            self._idx = np.array(list(itertools.combinations_with_replacement(range(d), self.order)),
                                 dtype=np.intp).reshape(-1, self.order)
            self.reset()
        elif I != self.input_size:
            raise ValueError(f"u must have {self.input_size} features (as before), got {I}")

    def _array(self, a, name, width=None):
        if not isinstance(a, np.ndarray):
            if isinstance(a, (str, bytes)) or not hasattr(a, "__array__") and not isinstance(a, (list, tuple)):
                raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
            a = np.asarray(a)
        if a.dtype == np.bool_ or a.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(f"{name} must have shape (T, F) with T, F >= 1, got {a.shape}")
        if width is not None and a.shape[1] != width:
            raise ValueError(f"{name} must have {width} features, got shape {a.shape}")
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or Inf")
        return a

    def features(self, u):
        """u (T, I) -> features (T, feature_size), continuing from the stored inputs (which are updated)."""
        u = self._array(u, "u")
        self._init(u.shape[1])
        k, s, I = self.delay, self.strides, self.input_size
        T = u.shape[0]
        hist = self._store[::-1]                           # oldest first
        full = np.concatenate([hist, u])                   # full[k*s + t] = u_t
        ks = k * s
        lin = np.empty((T, k * I))
        for j in range(k):                                 # block j: u_{t - j s}
            lin[:, j * I:(j + 1) * I] = full[ks - j * s:ks - j * s + T]
        n_mono = self._idx.shape[0]
        out = np.empty((T, k * I + n_mono))
        out[:, :k * I] = lin
        step = max(1, _CHUNK_ELEMENTS // max(1, n_mono * self.order))
        for t0 in range(0, T, step):
            out[t0:t0 + step, k * I:] = np.prod(lin[t0:t0 + step][:, self._idx], axis=2)
        self._store = full[-ks:][::-1].copy()
        return out

    def fit(self, u, y, washout=0):
        """Features of u (continuing from the stored inputs), then the ridge read-out on the steps after
        ``washout`` (the first k*s steps see zeros for the inputs before u). Returns self."""
        washout = _checks.positive_int(washout, "washout", minimum=0)
        X = self.features(u)
        y = self._array(y, "y")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"u and y must have the same number of steps, got {X.shape[0]} and {y.shape[0]}")
        if washout >= X.shape[0]:
            raise ValueError(f"washout={washout} leaves no training steps (u has {X.shape[0]})")
        acc = RidgeAccumulator(X.shape[1], y.shape[1])
        acc.add(X[washout:], y[washout:])
        self.W_out, self.b_out = acc.solve(self.ridge)
        return self

    def predict(self, u):
        """u (T, I) -> features @ W_out + b_out (T, O), continuing from the stored inputs."""
        if self.W_out is None:
            raise RuntimeError("NVAR.predict needs a fitted read-out: call fit first")
        return self.features(self._array(u, "u", self.input_size)) @ self.W_out + self.b_out

    def generate(self, n_steps, delta=True):
        """Closed loop: each prediction becomes the next input (outputs must have the input's width).
        delta=True: the read-out predicts the change u_{t+1} - u_t (Gauthier et al.'s forecasting), else
        u_{t+1} itself. Starts from the stored inputs; returns (n_steps, I)."""
        n_steps = _checks.positive_int(n_steps, "n_steps")
        delta = _checks.boolean(delta, "delta")
        if self.W_out is None:
            raise RuntimeError("NVAR.generate needs a fitted read-out: call fit first")
        if self.W_out.shape[1] != self.input_size:
            raise ValueError(f"generate needs outputs of the input's width ({self.input_size}), "
                             f"the read-out has {self.W_out.shape[1]}")
        out = np.empty((n_steps, self.input_size))
        u = self._store[0].copy()
        feats = None
        for t in range(n_steps):
            if feats is None:  # features of the last stored input are recomputed from the store
                self._store = np.roll(self._store, -1, axis=0)
                feats = self.features(u[None, :])
            y = feats[0] @ self.W_out + self.b_out
            u = u + y if delta else y
            out[t] = u
            feats = self.features(u[None, :])
        return out
