"""Hidden Markov models: a one-of-K hidden state, a transition matrix, stochastic outputs.

    hmm = HMM(16, "categorical", n_symbols=98)
    hmm.fit(symbols, lengths, n_init=3, seed=0)        # Baum-Welch EM, the best of 3 random starts
    hmm.score(symbols_val)                             # log p(x) in nats (scaled forward pass)
    hmm.decode(symbols)                                # Viterbi: (log p(x, z*), z*)
    hmm.predict_proba(symbols)                         # p(z_t | x) (forward-backward)
    hmm.predict_next(symbols)                          # p(x_T+1 | x_1..T)

Emissions: "categorical" (symbols 0..M-1: `emissionprob` [K,M]) or "gaussian" (`means` [K,D] and `covars`:
[K,D] with covariance_type="diag", [K,D,D] with "full"). X is a concatenation of sequences, their lengths in
`lengths` (as hmmlearn): symbols as ints [R] or [R,1]; Gaussian observations [R,D] of the model's dtype.

The recursions (scaled forward-backward, Viterbi, the expected transition counts) run in the C++ engine
over all sequences at once (`rnnfast._core.hmm_forward_backward`, `hmm_viterbi`); the emission densities
and the M-step are vectorised NumPy. rnnfast.reference.hmm is the NumPy reference of the recursions.

"With N hidden states it can only remember log(N) bits": all the model knows about the past is p(z_t | x_1..t).
"""

import threading
from collections import namedtuple

import numpy as np
import scipy.linalg

from .. import _core
from .._util import checks as _checks
from . import _params

EMISSIONS = ("categorical", "gaussian")
COVARIANCE_TYPES = ("diag", "full")
PARAMS = "ste"  # what fit updates: s = startprob, t = transmat, e = emissions
LOG_2PI = float(np.log(2 * np.pi))

class _Theta:
    """The parameters of an HMM (arrays or None); a published one is never changed (see HMM._publish)."""
    __slots__ = ("startprob", "transmat", "emissionprob", "means", "covars")

    def __init__(self, startprob=None, transmat=None, emissionprob=None, means=None, covars=None):
        self.startprob, self.transmat, self.emissionprob = startprob, transmat, emissionprob
        self.means, self.covars = means, covars

    def copy(self):
        return _Theta(self.startprob, self.transmat, self.emissionprob, self.means, self.covars)


ForwardBackward = namedtuple("ForwardBackward", "loglik step_logprob filtered posterior xi_sum")
ForwardBackward.__doc__ = """The engine's forward-backward over a batch of sequences.

loglik [S] (float64): log p(x) per sequence; step_logprob [R] (float64): log p(x_t | x_1..t-1) (the
per-step code lengths, summing to loglik); filtered [R,K]: p(z_t | x_1..t); posterior [R,K]: p(z_t | x);
xi_sum [K,K]: expected transition counts summed over sequences and steps (None when not asked for)."""


class HMM(_params.WriterLock):
    """A hidden Markov model with K states and categorical or Gaussian emissions (float64 by default)."""

    def __init__(self, n_states, emission="categorical", *, n_symbols=None, n_features=None, covariance_type="diag",
                 startprob=None, transmat=None, emissionprob=None, means=None, covars=None, reg_covar=1e-6,
                 dtype="float64"):
        self.n_states = _checks.positive_int(n_states, "n_states")
        if emission not in EMISSIONS:
            raise ValueError(f"emission must be one of {EMISSIONS}, got {emission!r}")
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}")
        self.emission, self.covariance_type = emission, covariance_type
        self.dtype = _checks.as_dtype(dtype)
        self.reg_covar = _checks.real(reg_covar, "reg_covar")
        if self.reg_covar < 0:
            raise ValueError(f"reg_covar must be >= 0, got {self.reg_covar}")
        if emission == "categorical":
            if n_features is not None or means is not None or covars is not None:
                raise ValueError("n_features, means and covars are for emission='gaussian'")
            self.n_symbols = None if n_symbols is None else _checks.positive_int(n_symbols, "n_symbols")
        else:
            if n_symbols is not None or emissionprob is not None:
                raise ValueError("n_symbols and emissionprob are for emission='categorical'")
            self.n_features = None if n_features is None else _checks.positive_int(n_features, "n_features")
        self._theta = _Theta()
        self._writing = threading.RLock()
        self.history, self.converged = [], False
        for name, value in (("startprob", startprob), ("transmat", transmat), ("emissionprob", emissionprob),
                            ("means", means), ("covars", covars)):
            if value is not None:
                setattr(self, name, value)

    # ---- sharing between threads ----------------------------------------------------------------------
    # The parameters live in one _Theta that is replaced whole, never changed in place: every call reads it
    # once (a snapshot), so calls in other threads see the parameters before or after a setter, em_step or fit,
    # never a mix, and fit publishes only its final parameters. Writers (setters, em_step, fit) hold _writing,
    # so two fits of one model in two threads run one after the other.
    def _publish(self, name, value):
        with self._writing:
            th = self._theta.copy()
            setattr(th, name, self._validated(name, value, th))
            self._theta = th

    def _validated(self, name, value, th):
        """value checked as the parameter `name` of a model whose other parameters are th's -> an array."""
        K = self.n_states
        if name == "startprob":
            return _params.stochastic(value, "startprob", self.dtype, (K,))
        if name == "transmat":
            return _params.stochastic(value, "transmat", self.dtype, (K, K))
        if name == "emissionprob":
            self._need("categorical", "emissionprob")
            a = _params.stochastic(value, "emissionprob", self.dtype, (K, self.n_symbols))
            self.n_symbols = a.shape[1]
            return a
        self._need("gaussian", name)
        if name == "means":
            a = _params.param(value, "means", self.dtype, (K, self.n_features))
            if th.covars is not None and th.covars.shape[1] != a.shape[1]:
                raise ValueError(f"means must have {th.covars.shape[1]} features (as covars), got {a.shape[1]}")
        else:
            if self.covariance_type == "diag":
                a = _params.param(value, "covars", self.dtype, (K, self.n_features))
                if (a <= 0).any():
                    raise ValueError("covars must be positive (variances of covariance_type='diag')")
            else:
                a = _params.param(value, "covars", self.dtype, (K, self.n_features, None))
                if a.shape[2] != a.shape[1]:
                    raise ValueError(f"covars must have shape (K, D, D), got {a.shape}")
                for k in range(K):
                    _params.covariance(a[k], f"covars[{k}]", self.dtype, a.shape[1], definite=True)
            if th.means is not None and a.shape[1] != th.means.shape[1]:
                raise ValueError(f"covars must have {th.means.shape[1]} features (as means), got {a.shape[1]}")
        self.n_features = a.shape[1]
        return a

    # ---- parameters (validated when set) ------------------------------------------------------------
    startprob = property(lambda self: self._theta.startprob, lambda self, v: self._publish("startprob", v),
                         doc="p(z_1 = k) [K].")
    transmat = property(lambda self: self._theta.transmat, lambda self, v: self._publish("transmat", v),
                        doc="transmat[i, j] = p(z_t = j | z_t-1 = i) [K,K], rows summing to 1.")
    emissionprob = property(lambda self: self._theta.emissionprob, lambda self, v: self._publish("emissionprob", v),
                            doc="Categorical emissions: emissionprob[k, m] = p(x_t = m | z_t = k) [K,M].")
    means = property(lambda self: self._theta.means, lambda self, v: self._publish("means", v),
                     doc="Gaussian emissions: the state means [K,D].")
    covars = property(lambda self: self._theta.covars, lambda self, v: self._publish("covars", v),
                      doc='Gaussian emissions: variances [K,D] (covariance_type="diag") or covariances [K,D,D] '
                          '("full").')

    def _need(self, emission, name):
        if self.emission != emission:
            raise ValueError(f"{name} is for emission={emission!r}, this model has emission={self.emission!r}")

    def _ready(self):
        """The parameters (one snapshot), all of them set."""
        th = self._theta
        names = ["startprob", "transmat"] + (["emissionprob"] if self.emission == "categorical"
                                               else ["means", "covars"])
        missing = [n for n in names if getattr(th, n) is None]
        if missing:
            raise ValueError(f"the model's {', '.join(missing)} are not set (set them, or fit the model)")
        return th

    def n_parameters(self):
        """The number of free parameters (probabilities count one less than their entries)."""
        K = self.n_states
        n = (K - 1) + K * (K - 1)
        if self.emission == "categorical":
            return n + K * (self.n_symbols - 1)
        D = self.n_features
        return n + K * D + (K * D if self.covariance_type == "diag" else K * D * (D + 1) // 2)

    # ---- data -----------------------------------------------------------------------------------------
    def _data(self, X, lengths, for_fit=False):
        """(X checked: int64 symbols [R] or observations [R,D]; offsets [S+1])."""
        if self.emission == "categorical":
            X = np.asarray(X)
            if X.dtype.kind not in "iu":
                raise TypeError(f"X must hold integer symbols for emission='categorical', got dtype {X.dtype.name}")
            if X.ndim == 2 and X.shape[1] == 1:
                X = X[:, 0]
            if X.ndim != 1:
                raise ValueError(f"X must have shape (R,) or (R, 1) for emission='categorical', got {X.shape}")
            if X.size and X.min() < 0:
                raise ValueError(f"X must hold symbols >= 0, got {int(X.min())}")
            if not for_fit or self.n_symbols is not None:
                M = self.n_symbols
                if M is not None and X.size and X.max() >= M:
                    raise ValueError(f"X holds symbol {int(X.max())}, the model has n_symbols={M}")
            X = X.astype(np.int64, copy=False)
        else:
            X = _checks.check_array(X, "X", self.dtype, (None, None))
            if self.n_features is not None and X.shape[1] != self.n_features:
                raise ValueError(f"X must have {self.n_features} features (columns), got {X.shape[1]}")
        return X, _params.offsets_of(lengths, X.shape[0])

    def _framelogprob(self, X, th=None):
        """log p(x_t | z_t = k) [R,K] in the model's dtype (th: the parameters, default the model's)."""
        th = self._theta if th is None else th
        K = self.n_states
        if self.emission == "categorical":
            with np.errstate(divide="ignore"):
                logB = np.log(th.emissionprob)
            return np.ascontiguousarray(logB.T[X])
        R, D = X.shape
        out = np.empty((R, K), self.dtype)
        if self.covariance_type == "diag":
            var = th.covars
            const = -0.5 * (D * LOG_2PI + np.log(var).sum(axis=1))
            inv = 1.0 / var
            step = max(1, (1 << 20) // max(1, K * D))  # rows per chunk of the [rows, K, D] differences
            for r0 in range(0, R, step):
                diff = X[r0:r0 + step, None, :] - th.means[None]
                out[r0:r0 + step] = const - 0.5 * np.einsum("rkd,kd->rk", diff * diff, inv)
            return out
        for k in range(K):
            L = np.linalg.cholesky(th.covars[k])
            z = scipy.linalg.solve_triangular(L, (X - th.means[k]).T, lower=True, check_finite=False)
            out[:, k] = -0.5 * (D * LOG_2PI + 2 * np.log(np.diag(L)).sum() + (z * z).sum(axis=0))
        return out

    # ---- inference --------------------------------------------------------------------------------------
    def _engine(self, th, flp, offsets, backward=True, filtered=True):
        """The engine's pass over framelogprob `flp` [R,K], which it overwrites (its emission workspace)."""
        R, K = flp.shape
        dt = self.dtype
        res = dict(filtered=np.empty((R, K), dt) if backward or filtered else None, emission=flp,
                   scale=np.empty(R, dt), step_logprob=np.empty(R), loglik=np.empty(len(offsets) - 1),
                   posterior=np.empty((R, K), dt) if backward else None,
                   xi_sum=np.empty((K, K), dt) if backward else None)
        _core.hmm_forward_backward(th.startprob, th.transmat, flp, offsets, **res)
        return ForwardBackward(res["loglik"], res["step_logprob"], res["filtered"], res["posterior"], res["xi_sum"])

    def forward_backward(self, X, lengths=None):
        """The scaled forward-backward pass over all sequences: a ForwardBackward (see its doc)."""
        th = self._ready()
        X, offsets = self._data(X, lengths)
        return self._engine(th, self._framelogprob(X, th), offsets)

    def score(self, X, lengths=None):
        """log p(X) in nats, summed over the sequences (the forward pass only)."""
        th = self._ready()
        X, offsets = self._data(X, lengths)
        return self._score(th, X, offsets)

    def _score(self, th, X, offsets):
        return float(sum(self._engine(th, self._framelogprob(X[offsets[s0]:offsets[s1]], th),
                                      offsets[s0:s1 + 1] - offsets[s0], backward=False, filtered=False).loglik.sum()
                         for s0, s1 in self._chunks(offsets)))

    def filter(self, X, lengths=None):
        """(p(z_t | x_1..t) [R,K], log p(x_t | x_1..t-1) [R]): the forward pass, step by step."""
        th = self._ready()
        X, offsets = self._data(X, lengths)
        fb = self._engine(th, self._framelogprob(X, th), offsets, backward=False)
        return fb.filtered, fb.step_logprob

    def score_samples(self, X, lengths=None):
        """(log p(X), posteriors p(z_t | x) [R,K]), as hmmlearn's score_samples."""
        fb = self.forward_backward(X, lengths)
        return float(fb.loglik.sum()), fb.posterior

    def predict_proba(self, X, lengths=None):
        """The posteriors p(z_t | x) [R,K]."""
        return self.forward_backward(X, lengths).posterior

    def decode(self, X, lengths=None):
        """Viterbi: (log p(X, Z*) summed over the sequences, Z* [R] the most likely state sequences)."""
        th = self._ready()
        X, offsets = self._data(X, lengths)
        with np.errstate(divide="ignore"):
            log_start, log_trans = np.log(th.startprob), np.log(th.transmat)
        paths, total = [], 0.0
        for s0, s1 in self._chunks(offsets):
            flp = self._framelogprob(X[offsets[s0]:offsets[s1]], th)
            R, K = flp.shape
            path, logprob = np.empty(R, np.int32), np.empty(s1 - s0)
            _core.hmm_viterbi(log_start, log_trans, flp, offsets[s0:s1 + 1] - offsets[s0],
                              np.empty((R, K), np.int32), path, logprob)
            paths.append(path)
            total += float(logprob.sum())
        return total, np.concatenate(paths).astype(np.int64)

    def predict(self, X, lengths=None):
        """The Viterbi state sequence [R]."""
        return self.decode(X, lengths)[1]

    def next_state_proba(self, X, lengths=None):
        """p(z_T+1 | x_1..T) [S,K] for each sequence: its last filtered distribution times transmat."""
        th = self._ready()
        return self._next_state_proba(th, X, lengths)

    def _next_state_proba(self, th, X, lengths):
        X, offsets = self._data(X, lengths)
        fb = self._engine(th, self._framelogprob(X, th), offsets, backward=False)
        return fb.filtered[offsets[1:] - 1] @ th.transmat

    def predict_next(self, X, lengths=None):
        """The next observation of each sequence: p(x_T+1 = m | x_1..T) [S,M] (categorical), or its
        predictive mean [S,D] (Gaussian)."""
        th = self._ready()
        nxt = self._next_state_proba(th, X, lengths)
        return nxt @ (th.emissionprob if self.emission == "categorical" else th.means)

    # ---- sampling -----------------------------------------------------------------------------------------
    def sample(self, n_samples, seed=None):
        """(X, states): one sequence of n_samples observations drawn from the model."""
        th = self._ready()
        n = _checks.positive_int(n_samples, "n_samples")
        rng = _params.rng_of(seed)
        K = self.n_states
        states = np.empty(n, np.int64)
        cum_T = np.cumsum(th.transmat.astype(np.float64), axis=1)
        u = rng.random(n)
        states[0] = min(int(np.searchsorted(np.cumsum(th.startprob), u[0], side="right")), K - 1)
        for t in range(1, n):
            states[t] = min(int(np.searchsorted(cum_T[states[t - 1]], u[t], side="right")), K - 1)
        if self.emission == "categorical":
            cum_B = np.cumsum(th.emissionprob.astype(np.float64), axis=1)
            v = rng.random(n)
            X = np.minimum((cum_B[states] < v[:, None]).sum(axis=1), self.n_symbols - 1)
            return X.astype(np.int64), states
        D = self.n_features
        z = rng.standard_normal((n, D))
        if self.covariance_type == "diag":
            X = th.means[states] + z * np.sqrt(th.covars[states])
        else:
            L = np.linalg.cholesky(th.covars)
            X = th.means[states] + np.einsum("nij,nj->ni", L[states], z)
        return X.astype(self.dtype), states

    # ---- learning (Baum-Welch EM) -----------------------------------------------------------------------
    def _random_init(self, X, rng):
        """Random starting parameters for EM (a new _Theta, not published)."""
        K = self.n_states
        th = _Theta()
        for name, value in (("startprob", rng.dirichlet(np.ones(K))), ("transmat", rng.dirichlet(np.ones(K), size=K))):
            setattr(th, name, self._validated(name, value.astype(self.dtype), th))
        if self.emission == "categorical":
            # the data's symbol frequencies, each state's a random perturbation of them (breaks the symmetry)
            freq = np.bincount(X, minlength=self.n_symbols).astype(np.float64) + 1.0
            B = freq[None, :] * rng.uniform(0.5, 1.5, (K, self.n_symbols))
            th.emissionprob = self._validated("emissionprob", (B / B.sum(axis=1, keepdims=True)).astype(self.dtype), th)
            return th
        R, D = X.shape
        pick = rng.choice(R, size=K, replace=R < K)
        Xd = X.astype(np.float64)
        spread = Xd.std(axis=0) + 1e-12
        th.means = self._validated("means", (Xd[pick] + 1e-3 * spread * rng.standard_normal((K, D))).astype(self.dtype),
                                   th)
        cov = np.atleast_2d(np.cov(Xd.T)) + max(self.reg_covar, 1e-12) * np.eye(D)
        tiled = np.tile(np.diag(cov), (K, 1)) if self.covariance_type == "diag" else np.tile(cov, (K, 1, 1))
        th.covars = self._validated("covars", tiled.astype(self.dtype), th)
        return th

    def _chunks(self, offsets):
        """(s0, s1): runs of whole sequences of at most ~2^23 rows x states each (one sequence may be
        longer), so that a pass over a long batch needs bounded memory."""
        limit = max(1, (1 << 23) // self.n_states)
        S, s0 = len(offsets) - 1, 0
        while s0 < S:
            s1 = int(np.searchsorted(offsets, offsets[s0] + limit, side="right")) - 1
            s1 = min(S, max(s1, s0 + 1))
            yield s0, s1
            s0 = s1

    def _estep(self, X, offsets, th=None):
        """(log p(X), the expected sufficient statistics of the M-step, float64), over chunks of sequences;
        th: the parameters (default the model's)."""
        th = self._theta if th is None else th
        K = self.n_states
        st = {"start": np.zeros(K), "trans": np.zeros((K, K)), "post": np.zeros(K)}
        if self.emission == "categorical":
            st["obs"] = np.zeros((K, self.n_symbols))
        else:
            D = self.n_features
            st["obs"] = np.zeros((K, D))
            st["obs2"] = np.zeros((K, D) if self.covariance_type == "diag" else (K, D, D))
        ll = 0.0
        for s0, s1 in self._chunks(offsets):
            off = offsets[s0:s1 + 1] - offsets[s0]
            Xc = X[offsets[s0]:offsets[s1]]
            fb = self._engine(th, self._framelogprob(Xc, th), off)
            lls = fb.loglik
            if not np.isfinite(lls).all():
                bad = s0 + int(np.argmin(lls))
                raise ValueError(f"sequence {bad} has probability zero under the model (a symbol or transition "
                                 f"it cannot produce); EM cannot continue from these parameters")
            ll += float(lls.sum())
            post = fb.posterior
            st["start"] += post[off[:-1]].sum(axis=0, dtype=np.float64)
            st["trans"] += fb.xi_sum
            st["post"] += post.sum(axis=0, dtype=np.float64)
            if self.emission == "categorical":
                M = self.n_symbols
                st["obs"] += np.bincount((Xc[:, None] * K + np.arange(K)).ravel(), weights=post.ravel(),
                                         minlength=M * K).reshape(M, K).T
            else:
                Xd, P = Xc.astype(np.float64), post.astype(np.float64)
                st["obs"] += P.T @ Xd
                if self.covariance_type == "diag":
                    st["obs2"] += P.T @ (Xd * Xd)
                else:
                    st["obs2"] += np.einsum("rk,ri,rj->kij", P, Xd, Xd, optimize=True)
        return ll, st

    def _mstep(self, st, params, th):
        """The parameters after the M-step from th with the statistics st: a new _Theta."""
        th = th.copy()
        K = self.n_states
        if "s" in params:
            th.startprob = (st["start"] / st["start"].sum()).astype(self.dtype)
        if "t" in params:
            rows = st["trans"].sum(axis=1)
            keep = rows <= 0  # a state never left: its row stays
            A = st["trans"] / np.where(keep, 1.0, rows)[:, None]
            A[keep] = th.transmat[keep]
            th.transmat = A.astype(self.dtype)
        if "e" not in params:
            return th
        occupancy = st["post"]
        empty = occupancy <= 0  # a state never visited keeps its emissions
        nk = np.where(empty, 1.0, occupancy)[:, None]
        if self.emission == "categorical":
            B = st["obs"] / nk
            B[empty] = th.emissionprob[empty]
            th.emissionprob = B.astype(self.dtype)
            return th
        means = st["obs"] / nk
        means[empty] = th.means[empty]
        if self.covariance_type == "diag":
            covars = st["obs2"] / nk - means * means + self.reg_covar
            covars[empty] = th.covars[empty]
            if (covars <= 0).any():
                raise FloatingPointError("a state's variance collapsed to zero in EM; fit with reg_covar > 0")
        else:
            D = self.n_features
            covars = st["obs2"] / nk[:, :, None] - np.einsum("ki,kj->kij", means, means)
            covars = (covars + np.swapaxes(covars, 1, 2)) / 2 + self.reg_covar * np.eye(D)
            covars[empty] = th.covars[empty]
            for k in range(K):
                try:
                    np.linalg.cholesky(covars[k])
                except np.linalg.LinAlgError:
                    raise FloatingPointError(f"state {k}'s covariance became singular in EM; fit with "
                                             f"reg_covar > 0") from None
        th.means, th.covars = means.astype(self.dtype), covars.astype(self.dtype)
        return th

    def em_step(self, X, lengths=None, params=PARAMS):
        """One Baum-Welch iteration from the current parameters; returns log p(X) under them (before the
        update). params: which parameters to update (s: startprob, t: transmat, e: emissions)."""
        with self._writing:
            th = self._ready()
            X, offsets = self._data(X, lengths)
            ll, self._theta = self._em_step(th, X, offsets, params)
        return ll

    def _em_step(self, th, X, offsets, params):
        """(log p(X) under th, the parameters after one EM iteration from th)."""
        ll, st = self._estep(X, offsets, th)
        return ll, self._mstep(st, params, th)

    def fit(self, X, lengths=None, n_iter=100, tol=1e-5, n_init=1, init="auto", params=PARAMS, seed=None,
            verbose=False):
        """Baum-Welch EM. Returns self; `history` holds the log-likelihood before each update of the run kept.

        Stops after n_iter iterations or when the log-likelihood per observation gains less than tol (nats;
        None: never).
        init: "random" (random starts), "keep" (start from the current parameters) or "auto" (keep when they
        are all set, else random). n_init > 1 runs that many random starts and keeps the one with the best
        final log-likelihood. params: the parameters to learn (s: startprob, t: transmat, e: emissions).
        Calls in other threads meanwhile see the parameters from before the fit; a second fit waits.
        """
        n_iter = _checks.positive_int(n_iter, "n_iter")
        n_init = _checks.positive_int(n_init, "n_init")
        tol = None if tol is None else _checks.real(tol, "tol")
        if init not in ("auto", "random", "keep"):
            raise ValueError(f"init must be 'auto', 'random' or 'keep', got {init!r}")
        if not isinstance(params, str) or not params or set(params) - set(PARAMS):
            raise ValueError(f"params must be a non-empty string of the letters {PARAMS!r}, got {params!r}")
        with self._writing:
            return self._fit(X, lengths, n_iter, tol, n_init, init, params, seed, verbose)

    def _fit(self, X, lengths, n_iter, tol, n_init, init, params, seed, verbose):
        X, offsets = self._data(X, lengths, for_fit=True)
        if self.emission == "categorical" and self.n_symbols is None:
            self.n_symbols = int(X.max()) + 1
        if self.emission == "gaussian" and self.n_features is None:
            self.n_features = X.shape[1]
        start = self._theta
        ready = all(getattr(start, n) is not None for n in
                    ("startprob", "transmat") + (("emissionprob",) if self.emission == "categorical"
                                                 else ("means", "covars")))
        if init == "keep" and not ready:
            self._ready()
        random = init == "random" or (init == "auto" and not ready) or n_init > 1
        rng = _params.rng_of(seed)
        best = None
        R = X.shape[0]
        for attempt in range(n_init):
            th = self._random_init(X, rng) if random else start
            history, converged = [], False
            for it in range(n_iter):
                ll, th = self._em_step(th, X, offsets, params)
                history.append(ll)
                if verbose:
                    print(f"  restart {attempt} iteration {it}: log-likelihood {history[-1]:.6f}")
                if tol is not None and len(history) > 1 and (history[-1] - history[-2]) / R < tol:
                    converged = True
                    break
            final = self._score(th, X, offsets)
            if best is None or final > best[0]:
                best = (final, th, history, converged)
        _, self._theta, self.history, self.converged = best
        return self
