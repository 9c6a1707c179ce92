"""Linear dynamical systems: a continuous hidden state with linear-Gaussian dynamics and observations,
and driving inputs (the lecture's "engineers love them").

    x_0 ~ N(initial_state_mean, initial_state_covariance)
    x_t = A x_t-1 + B u_t + b + w_t,   w_t ~ N(0, Q)        (t >= 1)
    y_t = C x_t + D u_t + d + v_t,     v_t ~ N(0, R)

    A transition_matrix [X,X]     B control_matrix [X,U]      b transition_offset [X]    Q transition_covariance
    C observation_matrix [Y,X]    D feedthrough_matrix [Y,U]  d observation_offset [Y]   R observation_covariance

    lds = LinearGaussian(4, 2, 1, transition_matrix=A, ...)   # unset parameters default as in pykalman
    lds.filter(y, u)        # p(x_t | y_0..t): Kalman filter (Joseph-form update)
    lds.smooth(y, u)        # p(x_t | y_0..T-1): Rauch-Tung-Striebel smoother
    lds.fit(y, u)           # EM of all the matrices, the offsets and the initial state
    lds.forecast(y, u, 5)   # E[y_t+5 | y_0..t] for every t
    lds.predict(y, 10, u, u_future)  # the 10 outputs after the end of y

y is one sequence [T,Y] or a batch [T,N,Y] (time-major, as rnnfast's layers); u then [T,U] or [T,N,U]. A row
of y with a NaN (or a masked entry, for a numpy masked array) is a missing observation: the filter skips
its update and EM leaves it out, as pykalman does with masked rows. The sequences of a batch share the
model; their covariances depend only on which steps are observed, so the engine computes them once per
group of sequences with the same missing rows (`rnnfast._core.kalman`, csrc/cpu/kalman.cpp).
rnnfast.reference.lgssm is the NumPy reference.
"""

import threading
from collections import namedtuple

import numpy as np

from .. import _core
from .._util import checks as _checks
from . import _params

# name: (shape from the sizes (X, Y, U), kind)
_PARAMETERS = {
    "transition_matrix": (lambda X, Y, U: (X, X), "matrix"),
    "control_matrix": (lambda X, Y, U: (X, U), "matrix"),
    "transition_offset": (lambda X, Y, U: (X,), "matrix"),
    "transition_covariance": (lambda X, Y, U: (X, X), "psd"),
    "observation_matrix": (lambda X, Y, U: (Y, X), "matrix"),
    "feedthrough_matrix": (lambda X, Y, U: (Y, U), "matrix"),
    "observation_offset": (lambda X, Y, U: (Y,), "matrix"),
    "observation_covariance": (lambda X, Y, U: (Y, Y), "pd"),
    "initial_state_mean": (lambda X, Y, U: (X,), "matrix"),
    "initial_state_covariance": (lambda X, Y, U: (X, X), "psd"),
}
EM_VARS = tuple(_PARAMETERS)

Filtered = namedtuple("Filtered", "state_means state_covariances predicted_state_means "
                                  "predicted_state_covariances loglikelihood")
Filtered.__doc__ = """Kalman filter: m_t|t, P_t|t, m_t|t-1, P_t|t-1 ([T,X], [T,X,X] for one sequence; [T,N,X],
[T,N,X,X] for a batch) and log p(y) (a float, or [N] for a batch)."""
Smoothed = namedtuple("Smoothed", "state_means state_covariances pair_covariances")
Smoothed.__doc__ = """RTS smoother: m_t|T, P_t|T and Cov(x_t, x_t-1 | all) (zero at t = 0; None unless asked for),
shaped as Filtered's."""


class _Run:
    """One engine pass in the engine's layout: means [T,N,.], covariances [T,G,.,.] per covariance group."""

    def __init__(self, single, observed, group, counts, y3, u3, out):
        self.single, self.observed, self.group, self.counts, self.y3, self.u3 = single, observed, group, counts, y3, u3
        self.__dict__.update(out)

    def means(self, a):
        return a[:, 0] if self.single else a

    def covs(self, a):
        return a[:, 0] if self.single else a[:, self.group]


class LinearGaussian(_params.WriterLock):
    """A linear-Gaussian state-space model (linear dynamical system) with X states, Y outputs, U inputs."""

    def __init__(self, state_size, obs_size, input_size=0, *, dtype="float64", **parameters):
        self.state_size = _checks.positive_int(state_size, "state_size")
        self.obs_size = _checks.positive_int(obs_size, "obs_size")
        self.input_size = _checks.positive_int(input_size, "input_size", minimum=0)
        self.dtype = _checks.as_dtype(dtype)
        unknown = sorted(set(parameters) - set(_PARAMETERS))
        if unknown:
            raise TypeError(f"unknown parameter {unknown[0]!r} (the parameters: {', '.join(_PARAMETERS)})")
        X, Y, U = self.state_size, self.obs_size, self.input_size
        defaults = {"transition_matrix": np.eye(X), "control_matrix": np.zeros((X, U)),
                    "transition_offset": np.zeros(X), "transition_covariance": np.eye(X),
                    "observation_matrix": np.eye(Y, X), "feedthrough_matrix": np.zeros((Y, U)),
                    "observation_offset": np.zeros(Y), "observation_covariance": np.eye(Y),
                    "initial_state_mean": np.zeros(X), "initial_state_covariance": np.eye(X)}
        # The parameters: one dict replaced whole, never changed in place once published. Every call reads it
        # once (a snapshot), so calls in other threads see the parameters before or after a set_parameters,
        # em_step or fit, never a mix (fit publishes only its final parameters). Writers hold _writing, so two
        # fits of one model in two threads run one after the other.
        object.__setattr__(self, "_writing", threading.RLock())
        p = {}
        for name in _PARAMETERS:
            value = parameters.get(name)
            p[name] = self._checked(name, defaults[name].astype(self.dtype) if value is None else value)
        self._p = p
        self.history = []

    # ---- parameters -------------------------------------------------------------------------------
    def _checked(self, name, value):
        shape_of, kind = _PARAMETERS[name]
        shape = shape_of(self.state_size, self.obs_size, self.input_size)
        if kind == "matrix":
            return _params.param(value, name, self.dtype, shape)
        return _params.covariance(value, name, self.dtype, shape[0], definite=kind == "pd")

    def _set(self, name, value):
        self.set_parameters(**{name: value})

    def parameters(self):
        """name -> array, every parameter (copies)."""
        return {k: v.copy() for k, v in self._p.items()}

    def set_parameters(self, **parameters):
        """Set some parameters by name (each checked; all of them or none are set)."""
        checked = {}
        for name, value in parameters.items():
            if name not in _PARAMETERS:
                raise TypeError(f"unknown parameter {name!r} (the parameters: {', '.join(_PARAMETERS)})")
            checked[name] = self._checked(name, value)
        with self._writing:
            self._p = {**self._p, **checked}
        return self

    def __getattr__(self, name):
        p = self.__dict__.get("_p")
        if p is not None and name in p:
            return p[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in _PARAMETERS:
            self._set(name, value)
        else:
            object.__setattr__(self, name, value)

    def n_parameters(self):
        """Free parameters: the matrices, the offsets, the initial mean and the covariances' triangles."""
        X, Y, U = self.state_size, self.obs_size, self.input_size
        return X * (X + U + 1) + Y * (X + U + 1) + X + (X * (X + 1) + Y * (Y + 1) + X * (X + 1)) // 2

    # ---- data ----------------------------------------------------------------------------------------
    def _data(self, y, u, name="y"):
        """(single, y3 [T,N,Y] with missing rows, observed [T,N] bool, u3 [T,N,U] or None)."""
        mask = None
        if isinstance(y, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(y)
            y = np.ma.getdata(y)
        if not isinstance(y, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(y).__name__}")
        if y.dtype != self.dtype:
            raise TypeError(f"{name} must have dtype {self.dtype.name}, got {y.dtype.name}")
        if y.ndim not in (2, 3) or y.shape[-1] != self.obs_size or y.shape[0] < 1 or (y.ndim == 3 and y.shape[1] < 1):
            raise ValueError(f"{name} must have shape (T, {self.obs_size}) or (T, N, {self.obs_size}) with T, N >= 1, "
                             f"got {y.shape}")
        if np.isinf(y).any():
            raise ValueError(f"{name} contains Inf (a missing observation is a row with NaN)")
        single = y.ndim == 2
        y3 = np.ascontiguousarray(y[:, None] if single else y)
        observed = ~np.isnan(y3).any(axis=2)
        if mask is not None:
            observed &= ~(mask[:, None] if single else mask).any(axis=2)
        U = self.input_size
        if U == 0:
            if u is not None:
                raise ValueError("u is given but the model has input_size=0")
            return single, y3, observed, None
        if u is None:
            raise ValueError(f"u (the driving inputs, shape (T, {U}) or (T, N, {U})) is required: input_size={U}")
        T, N = y3.shape[:2]
        want = (T, U) if single else (T, N, U)
        u = _checks.check_array(u, "u", self.dtype, want)
        return single, y3, observed, np.ascontiguousarray(u[:, None] if single else u)

    def _offsets(self, p, u3):
        """(state offsets, observation offsets): B u_t + b and D u_t + d [T,N,.], or b and d without inputs
        (p: the parameters)."""
        if u3 is None:
            return p["transition_offset"], p["observation_offset"]
        T, N, U = u3.shape
        flat = u3.reshape(T * N, U)
        o = (flat @ p["control_matrix"].T + p["transition_offset"]).reshape(T, N, self.state_size)
        d = (flat @ p["feedthrough_matrix"].T + p["observation_offset"]).reshape(T, N, self.obs_size)
        return np.ascontiguousarray(o, self.dtype), np.ascontiguousarray(d, self.dtype)

    # ---- the engine ---------------------------------------------------------------------------------
    def _run(self, p, y, u, smooth, pair=False):
        """One engine pass with the parameters p; with smooth, the smoother's covariances overwrite the filter's."""
        single, y3, observed, u3 = self._data(y, u)
        T, N = observed.shape
        X, Y, dt = self.state_size, self.obs_size, self.dtype
        patterns, group = _covariance_groups(observed)
        G = patterns.shape[0]
        _checks.check_memory(T * G * (5 * X * X + X * Y + Y * Y) + 4 * T * N * X, dt.itemsize,
                             f"T={T} steps of {G} covariance group(s) with state size {X}")
        counts = np.bincount(group, minlength=G)
        obs_g = np.ascontiguousarray(patterns.T, dtype=np.uint8)
        state_offset, obs_offset = self._offsets(p, u3)
        out = dict(pred_mean=np.empty((T, N, X), dt), pred_cov=np.empty((T, G, X, X), dt),
                   filt_mean=np.empty((T, N, X), dt), filt_cov=np.empty((T, G, X, X), dt),
                   gain=np.empty((T, G, Y, X), dt), innov_chol=np.empty((T, G, Y, Y), dt),
                   innov_logdet=np.empty((T, G)), loglik=np.empty(N), status=np.zeros(G, np.int32))
        if smooth:
            out.update(smooth_mean=np.empty((T, N, X), dt), smooth_cov=out["filt_cov"],
                       pair_cov=np.empty((T, G, X, X), dt) if pair else None,
                       smoother_gain=np.empty((T, G, X, X), dt))
        _core.kalman(transition_matrix=p["transition_matrix"], transition_covariance=p["transition_covariance"],
                     observation_matrix=p["observation_matrix"], observation_covariance=p["observation_covariance"],
                     initial_mean=p["initial_state_mean"], initial_covariance=p["initial_state_covariance"],
                     state_offset=state_offset, obs_offset=obs_offset, y=y3, group=group, observed=obs_g, **out)
        failed = np.nonzero(out["status"])[0]
        if failed.size:
            step = int(out["status"][failed[0]]) - 1
            raise FloatingPointError(
                f"the Kalman recursion failed at step {step}: a covariance it factors (C P C^T + R in the filter, "
                f"the predicted state covariance in the smoother) is not positive definite; check "
                f"transition_covariance, observation_covariance and initial_state_covariance")
        out["observed_groups"] = obs_g
        return _Run(single, observed, group, counts, y3, u3, out)

    # ---- inference ------------------------------------------------------------------------------------
    def filter(self, y, u=None):
        """The Kalman filter: a Filtered (means, covariances, predictions and log-likelihood)."""
        r = self._run(self._p, y, u, smooth=False)
        ll = float(r.loglik[0]) if r.single else r.loglik
        return Filtered(r.means(r.filt_mean), r.covs(r.filt_cov), r.means(r.pred_mean), r.covs(r.pred_cov), ll)

    def smooth(self, y, u=None, pair_covariances=False):
        """The RTS smoother: a Smoothed (means, covariances, and with pair_covariances=True the lag-one
        cross-covariances Cov(x_t, x_t-1 | y); else that field is None)."""
        r = self._run(self._p, y, u, smooth=True, pair=pair_covariances)
        return Smoothed(r.means(r.smooth_mean), r.covs(r.smooth_cov),
                        r.covs(r.pair_cov) if pair_covariances else None)

    def loglikelihood(self, y, u=None):
        """log p(y) summed over the sequences (missing rows count zero, as pykalman)."""
        return float(self._run(self._p, y, u, smooth=False).loglik.sum())

    def forecast(self, y, u=None, horizon=1):
        """E[y_t+h | y_0..t] for t = 0..T-h-1 ([T-h, Y] or [T-h, N, Y]): row t predicts y[t + h] from the
        observations up to t (and the inputs up to t + h)."""
        h = _checks.positive_int(horizon, "horizon")
        p = self._p
        r = self._run(p, y, u, smooth=False)
        T = r.y3.shape[0]
        if T <= h:
            raise ValueError(f"y must be longer than horizon={h} steps, it has {T}")
        so, oo = self._offsets(p, r.u3)
        x = r.pred_mean[1:T - h + 1]  # x_t+1|t for t = 0..T-h-1
        for j in range(2, h + 1):
            x = x @ p["transition_matrix"].T + (so[j:T - h + j] if so.ndim == 3 else so)
        out = x @ p["observation_matrix"].T + (oo[h:] if oo.ndim == 3 else oo)
        return r.means(out.astype(self.dtype, copy=False))

    def predict(self, y, steps=1, u=None, u_future=None):
        """The `steps` outputs after the end of y: (means [steps, (N,) Y], covariances [steps, (N,) Y, Y]).
        u_future [steps, (N,) U]: the inputs of those steps (required when the model has inputs)."""
        steps = _checks.positive_int(steps, "steps")
        p = self._p
        r = self._run(p, y, u, smooth=False)
        N = r.y3.shape[1]
        _X, Y, U = self.state_size, self.obs_size, self.input_size
        if U:
            if u_future is None:
                raise ValueError(f"u_future (the inputs of the predicted steps) is required: input_size={U}")
            uf = _checks.check_array(u_future, "u_future", self.dtype, (steps, U) if r.single else (steps, N, U))
            uf = uf[:, None] if r.single else uf
        elif u_future is not None:
            raise ValueError("u_future is given but the model has input_size=0")
        A, C, Q, R = (p[k] for k in ("transition_matrix", "observation_matrix", "transition_covariance",
                                     "observation_covariance"))
        x = r.filt_mean[-1]                      # [N,X]
        P = r.filt_cov[-1][r.group]              # [N,X,X]
        means = np.empty((steps, N, Y), self.dtype)
        covs = np.empty((steps, N, Y, Y), self.dtype)
        for j in range(steps):
            x = x @ A.T + p["transition_offset"]
            if U:
                x = x + uf[j] @ p["control_matrix"].T
            P = A @ P @ A.T + Q
            P = (P + np.swapaxes(P, 1, 2)) / 2
            means[j] = x @ C.T + p["observation_offset"] + (uf[j] @ p["feedthrough_matrix"].T if U else 0)
            covs[j] = C @ P @ C.T + R
        return (means[:, 0], covs[:, 0]) if r.single else (means, covs)

    # ---- sampling ---------------------------------------------------------------------------------------
    def sample(self, n_steps, u=None, n_sequences=None, seed=None):
        """(states, observations) drawn from the model: [T,X], [T,Y], or [T,N,X], [T,N,Y] with n_sequences."""
        T = _checks.positive_int(n_steps, "n_steps")
        N = 1 if n_sequences is None else _checks.positive_int(n_sequences, "n_sequences")
        rng = _params.rng_of(seed)
        X, Y, U = self.state_size, self.obs_size, self.input_size
        p = {k: v.astype(np.float64) for k, v in self._p.items()}
        if U:
            if u is None:
                raise ValueError(f"u (the driving inputs) is required: input_size={U}")
            u = _checks.check_array(u, "u", self.dtype, (T, U) if n_sequences is None else (T, N, U))
            u3 = (u[:, None] if n_sequences is None else u).astype(np.float64)
        elif u is not None:
            raise ValueError("u is given but the model has input_size=0")

        def factor(cov):  # a square root of a PSD covariance (eigenvalues clipped at 0)
            w, V = np.linalg.eigh(cov)
            return V * np.sqrt(np.clip(w, 0, None))

        FQ, FR, F0 = factor(p["transition_covariance"]), factor(p["observation_covariance"]), \
            factor(p["initial_state_covariance"])
        x = np.empty((T, N, X))
        x[0] = p["initial_state_mean"] + rng.standard_normal((N, X)) @ F0.T
        for t in range(1, T):
            x[t] = x[t - 1] @ p["transition_matrix"].T + p["transition_offset"] + rng.standard_normal((N, X)) @ FQ.T
            if U:
                x[t] += u3[t] @ p["control_matrix"].T
        obs = x @ p["observation_matrix"].T + p["observation_offset"] + rng.standard_normal((T, N, Y)) @ FR.T
        if U:
            obs += u3 @ p["feedthrough_matrix"].T
        x, obs = x.astype(self.dtype), obs.astype(self.dtype)
        return (x[:, 0], obs[:, 0]) if n_sequences is None else (x, obs)

    # ---- learning (EM) -------------------------------------------------------------------------------------
    def fit(self, y, u=None, n_iter=10, em_vars="all", tol=None, verbose=False):
        """EM (Shumway & Stoffer; Ghahramani & Hinton): n_iter iterations, or fewer when tol (nats per observed
        row) is given and the log-likelihood gains less. `history` holds the log-likelihood before each update.
        Calls in other threads meanwhile see the parameters from before the fit; a second fit waits.

        em_vars: "all" or the names of the parameters to learn (the others stay fixed; see EM_VARS). The
        regression parameters of each equation, [A B b] and [C D d], are solved jointly for the learned ones
        given the fixed ones; then the noise covariances, then the initial state. pykalman updates the offsets
        one at a time after the matrices; with the offsets fixed the two give the same updates.
        """
        n_iter = _checks.positive_int(n_iter, "n_iter")
        if tol is not None:
            tol = _checks.real(tol, "tol")
        learn = self._em_vars(em_vars)
        with self._writing:
            history, p = [], self._p
            for it in range(n_iter):
                ll, n_rows, p = self._em_step(p, y, u, learn)
                history.append(ll)
                if verbose:
                    print(f"  EM iteration {it}: log-likelihood {ll:.6f}")
                if tol is not None and len(history) > 1 and (history[-1] - history[-2]) / n_rows < tol:
                    break
            self._p, self.history = p, history
        return self

    def em_step(self, y, u=None, em_vars="all"):
        """One EM iteration from the current parameters; returns log p(y) under them (before the update)."""
        learn = self._em_vars(em_vars)
        with self._writing:
            ll, _, self._p = self._em_step(self._p, y, u, learn)
        return ll

    def _em_vars(self, em_vars):
        if isinstance(em_vars, str):
            if em_vars != "all":
                raise ValueError(f"em_vars must be 'all' or a collection of parameter names, got {em_vars!r}")
            names = set(EM_VARS)
        else:
            try:
                names = set(em_vars)
            except TypeError:
                raise TypeError(f"em_vars must be 'all' or a collection of parameter names, got "
                                f"{type(em_vars).__name__}") from None
            unknown = sorted(names - set(EM_VARS))
            if unknown:
                raise ValueError(f"em_vars: unknown parameter {unknown[0]!r} (the parameters: {', '.join(EM_VARS)})")
        if self.input_size == 0:
            names -= {"control_matrix", "feedthrough_matrix"}
        return names

    def _em_step(self, p, y, u, learn):
        """One EM iteration from the parameters p: (log p(y) under p, observed rows, the new parameters)."""
        r = self._run(p, y, u, smooth=True, pair=True)
        ll = float(r.loglik.sum())
        new = _mstep(self, p, r, learn)
        for name, value in new.items():
            try:
                new[name] = self._checked(name, value)
            except ValueError as e:
                raise FloatingPointError(f"EM produced an invalid {name} ({e}); fix it (leave it out of em_vars) "
                                         f"or give more data") from None
        return ll, max(1, int(r.observed.sum())), {**p, **new}


def _covariance_groups(observed):
    """(patterns [G,T] bool, group [N] int32): the distinct columns of observed [T,N] (which steps each
    sequence observes) in order of first appearance, and each sequence's."""
    T, N = observed.shape
    if observed.all():
        return np.ones((1, T), bool), np.zeros(N, np.int32)
    packed = np.packbits(observed.T, axis=1)  # a row of bytes per sequence
    index, first, group = {}, [], np.empty(N, np.int32)
    for n in range(N):
        g = index.setdefault(packed[n].tobytes(), len(index))
        if g == len(first):
            first.append(n)
        group[n] = g
    return np.ascontiguousarray(observed[:, first].T), group


def _weighted(cov, counts, steps):
    """sum over the steps `steps` and the groups of counts[g] * cov[t, g] (cov [T,G,X,X])."""
    return np.einsum("tgij,g->ij", cov[steps].astype(np.float64), counts.astype(np.float64))


def _regression(E_tz, E_zz, W, learn_cols):
    """The learned columns of W in target ~ W z: (E[target z_L^T] - W_F E[z_F z_L^T]) E[z_L z_L^T]^-1."""
    W = W.copy()
    L = np.asarray(learn_cols, dtype=bool)
    if not L.any():
        return W
    F = ~L
    rhs = E_tz[:, L] - W[:, F] @ E_zz[np.ix_(F, L)]
    W[:, L] = np.linalg.solve(E_zz[np.ix_(L, L)], rhs.T).T  # E_zz is symmetric
    return W


def _mstep(model, p, r, learn):
    """The M-step (float64) from one smoother pass `r` with the parameters p: name -> new value for the names in
    `learn`."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    X, _Y, U = model.state_size, model.obs_size, model.input_size
    T, N = r.observed.shape
    ms = r.smooth_mean.astype(np.float64)
    counts = r.counts
    u3 = None if r.u3 is None else r.u3.astype(np.float64)
    new = {}
    # ---- transition: x_t ~ [A B b] [x_t-1; u_t; 1] for t = 1..T-1, all sequences
    if T > 1:
        prev, nxt = ms[:-1].reshape(-1, X), ms[1:].reshape(-1, X)
        Z = np.concatenate([prev] + ([u3[1:].reshape(-1, U)] if U else []) + [np.ones((len(prev), 1))], axis=1)
        S_prev = _weighted(r.smooth_cov, counts, slice(0, T - 1))
        S_next = _weighted(r.smooth_cov, counts, slice(1, T))
        S_pair = _weighted(r.pair_cov, counts, slice(1, T))   # sum Cov(x_t, x_t-1)
        E_zz = Z.T @ Z
        E_zz[:X, :X] += S_prev
        E_xz = nxt.T @ Z
        E_xz[:, :X] += S_pair
        W = np.concatenate([p["transition_matrix"]] + ([p["control_matrix"]] if U else [])
                           + [p["transition_offset"][:, None]], axis=1)
        cols = ([ "transition_matrix" in learn] * X + ["control_matrix" in learn] * U
                + ["transition_offset" in learn])
        W = _regression(E_xz, E_zz, W, cols)
        A = W[:, :X]
        if "transition_matrix" in learn:
            new["transition_matrix"] = A
        if U and "control_matrix" in learn:
            new["control_matrix"] = W[:, X:X + U]
        if "transition_offset" in learn:
            new["transition_offset"] = W[:, -1]
        if "transition_covariance" in learn:
            e = nxt - Z @ W.T
            APA = A @ S_prev @ A.T
            PA = S_pair @ A.T
            Q = (e.T @ e + APA + S_next - PA - PA.T) / len(prev)
            new["transition_covariance"] = (Q + Q.T) / 2
    # ---- observation: y_t ~ [C D d] [x_t; u_t; 1] over the observed rows
    obs = r.observed
    n_obs = int(obs.sum())
    if n_obs:
        mo = ms[obs]
        Z = np.concatenate([mo] + ([u3[obs]] if U else []) + [np.ones((n_obs, 1))], axis=1)
        yo = r.y3[obs].astype(np.float64)
        obs_g = r.observed_groups.astype(np.float64)  # [T,G]: a group's rows are observed or not together
        S_obs = np.einsum("tgij,tg->ij", r.smooth_cov.astype(np.float64), obs_g * counts[None, :])
        E_zz = Z.T @ Z
        E_zz[:X, :X] += S_obs
        E_yz = yo.T @ Z
        W = np.concatenate([p["observation_matrix"]] + ([p["feedthrough_matrix"]] if U else [])
                           + [p["observation_offset"][:, None]], axis=1)
        cols = (["observation_matrix" in learn] * X + ["feedthrough_matrix" in learn] * U
                + ["observation_offset" in learn])
        W = _regression(E_yz, E_zz, W, cols)
        C = W[:, :X]
        if "observation_matrix" in learn:
            new["observation_matrix"] = C
        if U and "feedthrough_matrix" in learn:
            new["feedthrough_matrix"] = W[:, X:X + U]
        if "observation_offset" in learn:
            new["observation_offset"] = W[:, -1]
        if "observation_covariance" in learn:
            e = yo - Z @ W.T
            R = (e.T @ e + C @ S_obs @ C.T) / n_obs
            new["observation_covariance"] = (R + R.T) / 2
    # ---- initial state
    m0 = ms[0]
    mu0 = m0.mean(axis=0) if "initial_state_mean" in learn else p["initial_state_mean"]
    if "initial_state_mean" in learn:
        new["initial_state_mean"] = mu0
    if "initial_state_covariance" in learn:
        dev = m0 - mu0
        P0 = (np.einsum("gij,g->ij", r.smooth_cov[0].astype(np.float64), counts.astype(np.float64)) + dev.T @ dev) / N
        new["initial_state_covariance"] = (P0 + P0.T) / 2
    return {k: v.astype(model.dtype) for k, v in new.items()}
