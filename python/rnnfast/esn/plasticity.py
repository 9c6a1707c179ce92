"""Intrinsic plasticity (Triesch 2005; Schrauwen, Wardermann, Verstraeten, Steil & Stroobandt 2008): each
reservoir unit adapts the gain a and bias b of its activation, x = f(a r + b), so that its outputs follow a
target distribution (Gaussian N(mu, sigma^2) for tanh, exponential of mean mu for the sigmoid); reservoirpy's
``IPReservoir``, the same equations and the same updates (see :mod:`rnnfast.reference.plasticity`):

    r_t = (1 - leak) r_{t-1} + leak (W x_{t-1} + W_in u_t + bias),   x_t = f(a * r_t + b)

    ip = rnnfast.esn.IPReservoir(1, 200, mu=0.0, sigma=0.5, learning_rate=5e-4, epochs=3, seed=0)
    ip.fit(u)                       # unsupervised: adapts a and b
    states = ip.run(u)              # (T, N)
    ip.fit_readout(u, y, ridge=1e-6); y_pred = ip.predict(u_test)

The learning is sequential with a per-unit state of its own (r besides x), so the loop is NumPy (with W
sparse), not the reservoir engine: a step is O(nnz(W) + N).
"""

import numpy as np

from .._util import checks as _checks
from .model import ESN
from .readout import RidgeAccumulator, _ridge_list

__all__ = ["IPReservoir"]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class IPReservoir:
    """A leaky reservoir with intrinsic plasticity.

    Reservoir parameters as rnnfast.ESN (spectral_radius, leak_rate, input_scaling, density, bias_scaling,
    seed, W, W_in, bias), and mu, sigma (> 0; tanh only), learning_rate (> 0), epochs (>= 1),
    activation ('tanh' or 'sigmoid'; the sigmoid needs mu > 0).
    """

    def __init__(self, input_size, reservoir_size, *, mu=0.0, sigma=1.0, learning_rate=5e-4, epochs=1,
                 activation="tanh", **reservoir):
        for bad in ("feedback", "ridge", "dtype", "device", "W_fb", "feedback_scaling"):
            if bad in reservoir:
                raise TypeError(f"IPReservoir does not take {bad!r}")
        if activation not in ("tanh", "sigmoid"):
            raise ValueError(f"activation must be 'tanh' or 'sigmoid', got {activation!r}")
        self.activation = activation
        self.mu = _checks.real(mu, "mu")
        self.sigma = _checks.real(sigma, "sigma")
        if self.sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if activation == "sigmoid" and self.mu <= 0:
            raise ValueError(f"mu must be > 0 with activation='sigmoid' (the exponential's mean), got {mu}")
        self.learning_rate = _checks.real(learning_rate, "learning_rate")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        self.epochs = _checks.positive_int(epochs, "epochs")
        self._esn = ESN(input_size, reservoir_size, 1, **reservoir)
        N = reservoir_size
        self.input_size, self.reservoir_size = input_size, N
        self.W = self._esn.W.astype(np.float64)
        self.W_in = self._esn.W_in.astype(np.float64)
        self.bias = self._esn.bias.astype(np.float64)
        self.leak = self._esn._leak_vector()
        self.a = np.ones(N)
        self.b = np.zeros(N)
        self.W_out = self.b_out = None
        self.reset()

    def reset(self):
        """Internal state r and output x to zeros (a and b are kept)."""
        self._r = np.zeros(self.reservoir_size)
        self._x = np.zeros(self.reservoir_size)

    @property
    def state(self):
        return self._x.copy()

    def _loop(self, u, train):
        f = np.tanh if self.activation == "tanh" else _sigmoid
        W, W_in, bias, leak, eta = self.W, self.W_in, self.bias, self.leak, self.learning_rate
        mu, s2 = self.mu, self.sigma ** 2
        r, x, a, b = self._r, self._x, self.a, self.b
        win_u = u @ W_in.T                                   # (T, N): the input term of every step at once
        out = np.empty((u.shape[0], self.reservoir_size))
        for t in range(u.shape[0]):
            r = (1 - leak) * r + leak * (W @ x + win_u[t] + bias)
            x = f(a * r + b)
            if train:
                if self.activation == "tanh":
                    db = -(-(mu / s2) + (x / s2) * (2 * s2 + 1 - x ** 2 + mu * x))
                else:
                    db = 1 - (2 + 1 / mu) * x + x ** 2 / mu
                a = a + eta * (1 / a + db * r)
                b = b + eta * db
            out[t] = x
        self._r, self._x, self.a, self.b = r, x, a, b
        return out

    def fit(self, u, washout=0):
        """Adapt a and b over u, ``epochs`` times (each continuing the state), skipping the first ``washout``
        steps of each pass (run without learning). Returns self."""
        u = self._esn._array(u, "u", self.input_size, ndim=2).astype(np.float64)
        washout = _checks.positive_int(washout, "washout", minimum=0)
        if washout >= u.shape[0]:
            raise ValueError(f"washout={washout} leaves no steps to learn from (u has {u.shape[0]})")
        for _ in range(self.epochs):
            self._loop(u[washout:], train=True)
        return self

    def run(self, u):
        """States x_t (T, N) for u (T, I), continuing from the current state, without learning."""
        u = self._esn._array(u, "u", self.input_size, ndim=2).astype(np.float64)
        return self._loop(u, train=False)

    def fit_readout(self, u, y, washout=0, ridge=1e-6):
        """A ridge read-out (intercept unpenalised) on the states of u. Returns self."""
        _ridge_list(ridge)
        washout = _checks.positive_int(washout, "washout", minimum=0)
        X = self.run(u)
        y = np.asarray(y)
        if y.dtype == np.bool_ or y.dtype.kind not in "fiu":
            raise TypeError(f"y must hold real numbers, got dtype {y.dtype}")
        if y.ndim != 2 or y.shape[0] != X.shape[0] or y.shape[1] < 1:
            raise ValueError(f"y must have shape (T, O) with T={X.shape[0]}, got {y.shape}")
        y = y.astype(np.float64)
        if washout >= X.shape[0]:
            raise ValueError(f"washout={washout} leaves no training steps (u has {X.shape[0]})")
        acc = RidgeAccumulator(self.reservoir_size, y.shape[1])
        acc.add(X[washout:], y[washout:])
        self.W_out, self.b_out = acc.solve(ridge)
        return self

    def predict(self, u):
        if self.W_out is None:
            raise RuntimeError("IPReservoir.predict needs a read-out: call fit_readout first")
        return self.run(u) @ self.W_out + self.b_out
