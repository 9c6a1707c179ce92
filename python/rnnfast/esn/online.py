"""Echo state networks with online read-outs: LMS and RLS (FORCE learning, Sussillo & Abbott 2009).

    esn = rnnfast.esn.OnlineESN(1, 500, 1, rule="rls", alpha=1e-6, feedback=True, seed=0)
    y_train_pred = esn.partial_fit(u, y)        # trained step by step in the engine, output fed back
    y_pred = esn.predict(u_test)                # then an ordinary ESN (its own output fed back)

The reservoir is :class:`rnnfast.ESN`'s (same parameters, same matrices for the same seed); the read-out is
trained one step at a time by the C++ loop ``rnnfast._core.online_readout`` (csrc/cpu/online_readout.cpp),
which is reservoirpy 0.4's ``LMS`` / ``RLS`` node in a Model with feedback (``reservoir >> readout``,
``reservoir << readout``, ``partial_fit``): given the same W, W_in (with W_fb as its last columns), bias and
inputs, it gives the same predictions and weights. The equations are in :mod:`rnnfast.reference.online`.

During training the fed-back value is the read-out's own output after its update (FORCE learning; as
reservoirpy), not the target.
"""

import numpy as np

from .. import _core
from .._util import checks as _checks
from .matrices import _matrix
from .model import ESN

__all__ = ["OnlineESN"]


class OnlineESN(ESN):
    """An ESN whose read-out is learned online by LMS or RLS, step by step, with optional output feedback.

    Parameters: those of :class:`rnnfast.ESN` (``ridge`` is unused), and
      rule: 'rls' (recursive least squares, FORCE) or 'lms' (least mean squares).
      alpha (> 0): RLS's P starts as I / alpha (reservoirpy's ``alpha``, default 1e-6).
      forgetting in (0, 1]: RLS's forgetting factor lambda.
      learning_rate (> 0): LMS's step size.
      fit_bias: learn the read-out's bias too.

    Attributes after training: ``W_out`` (N, O), ``b_out`` (O,), and for RLS ``P`` (N, N) and ``S`` (the
    forgetting-weighted sample count of the bias average). Set ``W_out``/``b_out`` (or ``P``) before the
    first ``partial_fit`` to start from other values; ``reset_readout()`` starts the learning again.
    """

    def __init__(self, input_size, reservoir_size, output_size, *, rule="rls", alpha=1e-6, forgetting=1.0,
                 learning_rate=1e-6, fit_bias=True, **kwargs):
        if "ridge" in kwargs:
            raise TypeError("OnlineESN has no ridge: its read-out is learned by LMS or RLS (use rnnfast.ESN)")
        super().__init__(input_size, reservoir_size, output_size, **kwargs)
        if rule not in ("rls", "lms"):
            raise ValueError(f"rule must be 'rls' or 'lms', got {rule!r}")
        self.rule = rule
        self.alpha = _checks.real(alpha, "alpha")
        if not (np.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.forgetting = _checks.real(forgetting, "forgetting")
        if not 0 < self.forgetting <= 1:
            raise ValueError(f"forgetting must lie in (0, 1], got {forgetting}")
        self.learning_rate = _checks.real(learning_rate, "learning_rate")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        self.fit_bias = _checks.boolean(fit_bias, "fit_bias")
        if rule == "rls":
            _checks.check_memory(reservoir_size * reservoir_size, self.dtype.itemsize,
                                 f"OnlineESN(reservoir_size={reservoir_size}, rule='rls'): P")
        self.reset_readout()

    def reset_readout(self):
        """Forget what was learned: W_out and b_out zeros, P = I / alpha, S = 0."""
        N, O, dt = self.reservoir_size, self.output_size, self.dtype
        self.W_out = np.zeros((N, O), dt)
        self.b_out = np.zeros(O, dt)
        self.P = None  # made on the first RLS step (N x N)
        self.S = 0.0

    def __repr__(self):
        return super().__repr__().replace("ESN(", f"OnlineESN(rule={self.rule!r}, ", 1)

    def _readout_arrays(self):
        N, O, dt = self.reservoir_size, self.output_size, self.dtype
        # copies: the engine updates them in place
        return _matrix(self.W_out, "W_out", (N, O), dt).copy(), _matrix(self.b_out, "b_out", (O,), dt).copy()

    def partial_fit(self, u, y):
        """Train the read-out online over one sequence, continuing from the current state and read-out.

        u: (T, I) (or None when input_size is 0), y: (T, O) targets. Returns the outputs (T, O): at each
        step the read-out's prediction after that step's update (what is fed back).
        """
        return self._online(u, y, train=True)

    def fit(self, u, y, washout=0):
        """Start the read-out afresh (``reset_readout``) and train it online on u, y from the current
        state: the first ``washout`` steps run the reservoir (and feed back the untrained output) without
        learning. Returns self."""
        washout = _checks.positive_int(washout, "washout", minimum=0)
        T = self._steps_of(u, y)
        if washout >= T:
            raise ValueError(f"washout={washout} leaves no training steps (the sequence has {T})")
        self.reset_readout()
        if washout:
            self._online(None if u is None else u[:washout], y[:washout], train=False)
        self._online(None if u is None else u[washout:], y[washout:], train=True)
        return self

    def _steps_of(self, u, y):
        if u is not None:
            return len(u)
        if y is None:
            raise ValueError("u and y are both None")
        return len(y)

    def _online(self, u, y, train):
        if self.device != "cpu":
            raise ValueError("OnlineESN trains on the CPU engine only (device='cpu')")
        N, O, I, dt = self.reservoir_size, self.output_size, self.input_size, self.dtype
        if u is None:
            if I != 0:
                raise ValueError(f"u is required (input_size={I})")
            if y is None:
                raise ValueError("y is required when u is None")
            ua = None
        else:
            ua = self._array(u, "u", I, ndim=2)
        ya = self._array(y, "y", O, ndim=2) if y is not None else None
        if ya is None and train:
            raise ValueError("y (the targets) is required to train")
        T = ya.shape[0] if ya is not None else ua.shape[0]
        if ua is not None and ya is not None and ua.shape[0] != ya.shape[0]:
            raise ValueError(f"u and y must have the same number of steps, got {ua.shape[0]} and {ya.shape[0]}")
        if ua is not None and I == 0:
            ua = None
        with self._using_state("partial_fit"):
            if self._state is not None and self._state.ndim != 1:
                raise ValueError("the ESN state holds a batch; call reset() first (online training runs one "
                                 "sequence)")
            x = np.zeros(N, dt) if self._state is None else np.array(self._state, dt)
            y_last = np.zeros(O, dt) if self._y_last is None else np.array(np.reshape(self._y_last, (O,)), dt)
            W_out, b_out = self._readout_arrays()
            rls = train and self.rule == "rls"
            if rls:
                P = np.eye(N, dtype=dt) / dt.type(self.alpha) if self.P is None else \
                    _matrix(self.P, "P", (N, N), dt).copy()
                S = np.array([float(self.S)])
            else:
                P = S = None
            outputs = np.empty((T, O), dt)
            w, ip, ix, vals = self._w_args()
            w_in = self._w_in_engine()
            _core.online_readout(ua, w, ip, ix, vals, w_in, np.ascontiguousarray(self.bias, dt),
                                 np.ascontiguousarray(self._leak_vector(), dt), ya, x, y_last, W_out, b_out, P, S,
                                 None, outputs, self.feedback, bool(train), self.rule, self.fit_bias,
                                 self.learning_rate, self.forgetting)
            with self._readout_lock:
                self.W_out, self.b_out = W_out, b_out
            if rls:
                self.P, self.S = P, float(S[0])
            self._state = x
            self._y_last = y_last if self.feedback else None
        return outputs
