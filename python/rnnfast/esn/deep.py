"""Deep echo state networks (Gallicchio, Micheli & Pedrelli 2017): reservoirs stacked, each fed by the states
of the one below, the read-out trained on all their states side by side.

    deep = rnnfast.esn.DeepESN(1, [200, 200, 200], 1, spectral_radius=[0.9, 0.9, 0.8], leak_rate=0.3, seed=0)
    deep.fit(u_train, y_train, washout=100)
    y_pred = deep.predict(u_test)

Layer l is an :class:`rnnfast.ESN` reservoir with input size I (l = 0) or N_{l-1} (l > 0), run by the engine
over the whole sequence in one call; the read-out sees ``[x^0_t, ..., x^{L-1}_t]`` (and ``u_t`` with
``input_to_readout=True``): reservoirpy's ``res1 >> res2 >> res3`` with ``[res1, res2, res3] >> readout``.
Per-layer parameters (spectral_radius, leak_rate, input_scaling, density, bias_scaling) are a value for
every layer or a list with one per layer; layer l's seed is derived from ``seed`` (None: random).
"""

import numpy as np

from .._util import checks as _checks
from .model import ESN
from .readout import RidgeAccumulator, _ridge_list

__all__ = ["DeepESN"]

_PER_LAYER = ("spectral_radius", "leak_rate", "input_scaling", "density", "bias_scaling")


class DeepESN:
    """Stacked reservoirs with one ridge read-out on their concatenated states.

    input_size (I), reservoir_sizes (a list of N_l, one per layer), output_size (O); per-layer parameters
    (see the module doc); ridge (>= 0); input_to_readout: the read-out also sees u_t; seed; dtype.
    Stateful like rnnfast.ESN (``reset()`` zeroes every layer).
    """

    def __init__(self, input_size, reservoir_sizes, output_size, *, spectral_radius=0.9, leak_rate=1.0,
                 input_scaling=1.0, density=0.1, bias_scaling=0.0, ridge=1e-6, input_to_readout=False,
                 seed=None, dtype="float64"):
        if isinstance(reservoir_sizes, (int, np.integer)) or not hasattr(reservoir_sizes, "__len__"):
            raise TypeError("reservoir_sizes must be a list of ints, one per layer")
        if len(reservoir_sizes) == 0:
            raise ValueError("reservoir_sizes must not be empty")
        sizes = [_checks.positive_int(n, f"reservoir_sizes[{k}]") for k, n in enumerate(reservoir_sizes)]
        self.input_size = _checks.positive_int(input_size, "input_size")
        self.output_size = _checks.positive_int(output_size, "output_size")
        _ridge_list(ridge)
        self.ridge = _checks.real(ridge, "ridge")
        self.input_to_readout = _checks.boolean(input_to_readout, "input_to_readout")
        self.seed = _checks.seed(seed)
        L = len(sizes)
        per = {}
        for name, v in (("spectral_radius", spectral_radius), ("leak_rate", leak_rate),
                        ("input_scaling", input_scaling), ("density", density), ("bias_scaling", bias_scaling)):
            if isinstance(v, (list, tuple, np.ndarray)):
                if len(v) != L:
                    raise ValueError(f"{name} must be one value or a list of {L} (one per layer), got {len(v)}")
                per[name] = list(v)
            else:
                per[name] = [v] * L
        seeds = np.random.SeedSequence(self.seed).spawn(L) if self.seed is not None else [None] * L
        self.layers = []
        for k in range(L):
            s = None if seeds[k] is None else int(seeds[k].generate_state(1)[0])
            self.layers.append(ESN(self.input_size if k == 0 else sizes[k - 1], sizes[k], self.output_size,
                                   seed=s, dtype=dtype, **{n: per[n][k] for n in _PER_LAYER}))
        self.reservoir_sizes = sizes
        self.dtype = self.layers[0].dtype
        self.W_out = self.b_out = None

    @property
    def feature_size(self):
        return sum(self.reservoir_sizes) + (self.input_size if self.input_to_readout else 0)

    def __repr__(self):
        return (f"DeepESN(input_size={self.input_size}, reservoir_sizes={self.reservoir_sizes}, "
                f"output_size={self.output_size}, fitted={self.W_out is not None})")

    def reset(self):
        for layer in self.layers:
            layer.reset()

    def run_reservoir(self, u):
        """u (T, I) or (T, B, I) -> every layer's states side by side, (T[, B], feature_size), continuing
        from each layer's state."""
        x = u
        parts = [np.asarray(u, self.dtype)] if self.input_to_readout else []
        for layer in self.layers:
            x = layer.run_reservoir(x)
            parts.append(x)
        return np.concatenate(parts, axis=-1)

    def fit(self, u, y, washout=0):
        """States of u through the stack, then the ridge read-out on the steps after ``washout``."""
        washout = _checks.positive_int(washout, "washout", minimum=0)
        X = self.run_reservoir(u)
        y = self.layers[0]._array(y, "y", self.output_size, ndim=(2, 3))
        if y.shape[:-1] != X.shape[:-1]:
            raise ValueError(f"y must have the steps (and sequences) of u: {X.shape[:-1]}, got {y.shape[:-1]}")
        if washout >= X.shape[0]:
            raise ValueError(f"washout={washout} leaves no training steps (u has {X.shape[0]})")
        acc = RidgeAccumulator(self.feature_size, self.output_size)
        acc.add(X[washout:].reshape(-1, self.feature_size), y[washout:].reshape(-1, self.output_size))
        W_out, b_out = acc.solve(self.ridge)
        self.W_out, self.b_out = W_out.astype(self.dtype), b_out.astype(self.dtype)
        return self

    def predict(self, u):
        if self.W_out is None:
            raise RuntimeError("DeepESN.predict needs a fitted read-out: call fit first")
        return self.run_reservoir(u) @ self.W_out + self.b_out
