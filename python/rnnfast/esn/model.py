"""The echo state network (ESN) on the C++ reservoir engine; see rnnfast.esn for the model and conventions."""

import contextlib
import threading

import numpy as np

from .. import _core
from .._util import checks as _checks
from ..backends import cuda
from ..backends import varlen as _varlen
from ..backends.devices import check_device, cupy
from ..nn.init import spectral_radius as spectral_radius_of
from .matrices import _as_w, _matrix, input_scaling_of, leak_vector, random_reservoir
from .readout import RidgeAccumulator, _nrmse_parts, _ridge_list

__all__ = ["ESN"]

_CHUNK_BYTES = 32 << 20        # states held at once while fitting / predicting (per engine call)




def _chunk_len(rows_per_step, n, itemsize):
    return max(1, _CHUNK_BYTES // max(1, rows_per_step * n * itemsize))


# ---------------------------------------------------------------------------------------------
# the ESN
# ---------------------------------------------------------------------------------------------

class ESN:
    """Echo state network: a leaky tanh reservoir (rnnfast's C++ engine) and a ridge readout.

    Parameters (keyword-only after the sizes):
      input_size, reservoir_size, output_size: I, N, O (input_size may be 0 only with feedback=True).
      spectral_radius (> 0): target spectral radius of a generated W.
      leak_rate: scalar or (N,) array in [0, 1].
      input_scaling (> 0, scalar or (I,)), bias_scaling (>= 0), feedback_scaling (> 0): scales of the
        generated W_in, bias, W_fb.
      density in (0, 1]: fraction of nonzeros of a generated W (1: dense W).
      ridge (>= 0, or a list to choose from by validation in fit).
      feedback: feed the previous output back through W_fb.
      seed: int or None. dtype: 'float32' or 'float64' (states and engine arithmetic; the readout is
        always trained in float64). device: 'cpu', or 'cuda' (the reservoir loop runs on the GPU,
        csrc/cuda/reservoir.cu; inputs,
        states and the float64 readout stay NumPy on the host).
      W, W_in, bias, W_fb: supplied matrices, used as they are.

    State: like reservoirpy's nodes the ESN is stateful. ``run_reservoir``, ``predict``, ``fit`` and
    ``generate`` start from the current state and leave it at their last step; ``reset()`` sets it back
    to zeros. After a batch (T, B, I) the state holds B sequences and the next call must have the same B
    (or call ``reset()``); a single-sequence state is broadcast to every sequence of a batch or a list.
    ``run_reservoir`` and ``predict`` take reservoirpy's ``from_state`` (start there), ``reset=True``
    (start from zeros) and ``stateful=False`` (leave the carried state as it was).

    Threads: the carried state is one sequence, so calls that continue it are ordered by nature. A call
    that reads or changes the carried state (``fit``, ``generate``, ``reset``, setting ``state``, and
    ``run_reservoir``/``predict`` unless they start from ``from_state`` or ``reset=True`` with
    ``stateful=False``) while another such call runs in another thread raises RuntimeError instead of
    giving an answer that depends on which ran first. ``run_reservoir``/``predict`` with
    ``stateful=False`` and ``reset=True`` or ``from_state`` touch no state: they may run in any number of
    threads at once (also beside a ``fit``, whose new readout they see whole or not at all), with the
    results of the same calls made one after another.
    """

    def __init__(self, input_size, reservoir_size, output_size, *, spectral_radius=0.9, leak_rate=1.0,
                 input_scaling=1.0, bias_scaling=0.0, density=0.1, ridge=1e-6, feedback=False,
                 feedback_scaling=1.0, seed=None, dtype="float64", device="cpu", W=None, W_in=None,
                 bias=None, W_fb=None):
        self._make_locks()
        self.feedback = _checks.boolean(feedback, "feedback")
        self.input_size = _checks.positive_int(input_size, "input_size", minimum=0 if self.feedback else 1)
        self.reservoir_size = N = _checks.positive_int(reservoir_size, "reservoir_size")
        self.output_size = _checks.positive_int(output_size, "output_size")
        self.dtype = _checks.as_dtype(dtype)
        check_device(device)
        self.device = device
        sr = _checks.real(spectral_radius, "spectral_radius", low=0, low_open=True)
        dens = _checks.real(density, "density", low=0, low_open=True, high=1)
        # Refuse absurd sizes before allocating: a generated W (dense N*N, sparse ~12 bytes per nonzero),
        # W_in, W_fb and the readout (N*O), in float64 while they are built.
        I, O = self.input_size, self.output_size
        n_w = (N * N if dens >= 1 else 2 * round(dens * N * N)) if W is None else 0
        _checks.check_memory(n_w + N * (I + 2 * O + 2), 8,
                             f"ESN(input_size={I}, reservoir_size={N}, output_size={O}, density={dens})")
        in_sc = input_scaling_of(input_scaling, self.input_size)
        b_sc = _checks.real(bias_scaling, "bias_scaling", low=0)
        fb_sc = _checks.real(feedback_scaling, "feedback_scaling", low=0, low_open=True)
        _ridge_list(ridge)
        self.ridge = ridge
        self.seed = seed = _checks.seed(seed)
        self.density = dens
        self.input_scaling = in_sc
        self.bias_scaling = b_sc
        self.feedback_scaling = fb_sc
        self.leak_rate = leak_rate
        self._leak_vector()      # validates

        w_rng, in_rng, b_rng, fb_rng = np.random.default_rng(seed).spawn(4)
        dt = self.dtype
        # --- W
        if W is None:
            Wm, nilpotent = random_reservoir(N, dens, sr, w_rng)  # a nilpotent W is refused below, after
            self.spectral_radius = sr                            # the checks of the other arguments
            self._W_generated = True
        else:
            Wm = W
            nilpotent = False
            self.spectral_radius = None     # computed on demand (base_spectral_radius)
            self._W_generated = False
        self.W = _as_w(Wm, N, dt)
        # --- W_in
        if W_in is None:
            Win = in_rng.uniform(-1.0, 1.0, (N, self.input_size)) * (
                in_sc if np.isscalar(in_sc) else in_sc[None, :])
        else:
            Win = W_in
        self.W_in = _matrix(Win, "W_in", (N, self.input_size), dt)
        # --- bias
        if bias is None:
            b = b_rng.uniform(-1.0, 1.0, N) * b_sc
        elif np.isscalar(bias):
            b = np.full(N, _checks.real(bias, "bias"))
        else:
            b = bias
        self.bias = _matrix(b, "bias", (N,), dt)
        # --- W_fb
        if self.feedback:
            Wfb = fb_rng.uniform(-1.0, 1.0, (N, self.output_size)) * fb_sc if W_fb is None else W_fb
            self.W_fb = _matrix(Wfb, "W_fb", (N, self.output_size), dt)
        else:
            if W_fb is not None:
                raise ValueError("W_fb was given but feedback=False")
            self.W_fb = None
        if nilpotent:
            raise ValueError(f"the generated W (reservoir_size={N}, density={dens}: {Wm.nnz} nonzeros) has no "
                             f"cycle, so its spectral radius is 0 and cannot be scaled to spectral_radius={sr}; "
                             "raise density (or reservoir_size), or pass another seed")
        self._W_in_base_scale = (in_sc if (W_in is None and np.isscalar(in_sc)) else 1.0)
        self._rho_cache = None

        self.W_out = None
        self.b_out = None
        self.ridge_ = None
        self.validation_scores_ = None
        self.reset()

    # ------------------------------------------------------------------ state and threads
    def _make_locks(self):
        # _carried: held by the call that uses the carried state (reentrant: generate runs predict inside)
        # _readout_lock: W_out and b_out are replaced together (fit) and read together (predict)
        self._carried = threading.RLock()
        self._readout_lock = threading.Lock()

    def __getstate__(self):  # copy.deepcopy / pickle: the locks are made anew
        state = dict(self.__dict__)
        state.pop("_carried", None)
        state.pop("_readout_lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._make_locks()

    @contextlib.contextmanager
    def _using_state(self, what):
        """Held by a call that reads or changes the carried state: a second one in another thread is an error."""
        if not self._carried.acquire(blocking=False):
            raise RuntimeError(
                f"ESN.{what} uses the ESN's carried state while another thread runs a call that uses it: calls "
                "that continue one state must not overlap (the result would depend on which runs first). "
                "Order them (a lock), give each thread its own ESN (copy.deepcopy), or pass reset=True or "
                "from_state=... with stateful=False to run_reservoir/predict, which then touch no state and "
                "may run in several threads at once")
        try:
            yield
        finally:
            self._carried.release()

    def _start(self, from_state, reset):
        """The state a run_reservoir/predict starts from: None to continue the carried one, else a _Carried
        (from_state, or zeros with reset=True; the fed-back output starts at zeros)."""
        reset = _checks.boolean(reset, "reset")
        if from_state is None:
            return _Carried(None, None) if reset else None
        if reset:
            raise ValueError("from_state and reset=True both say where to start: pass one of them")
        return _Carried(self._checked_state(from_state, "from_state"), None)

    def reset(self):
        """Set the reservoir state (and the fed-back output) to zeros; returns the previous state."""
        with self._using_state("reset"):
            prev = getattr(self, "_state", None)
            self._state = None          # None: zeros, shape decided by the next input
            self._y_last = None
        return prev

    @property
    def state(self):
        """Current reservoir state: (N,) for one sequence, (B, N) after a batch (a copy)."""
        if self._state is None:
            return np.zeros(self.reservoir_size, self.dtype)
        return self._state.copy()

    @state.setter
    def state(self, value):
        value = self._checked_state(value, "state")
        with self._using_state("state"):
            self._state = value

    def _checked_state(self, value, name):
        value = _checks.real_array(value, name).astype(self.dtype)
        if value.ndim not in (1, 2) or value.shape[-1] != self.reservoir_size or value.shape[0] == 0:
            raise ValueError(f"{name} must have shape (N,) or (B, N) with N={self.reservoir_size}, "
                             f"got {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or Inf")
        return value

    @property
    def is_fitted(self):
        return self.W_out is not None

    @property
    def base_spectral_radius(self):
        """Spectral radius of W (the target for a generated W, else computed once from the supplied W)."""
        if self.spectral_radius is not None and self._W_generated:
            return self.spectral_radius
        if self._rho_cache is None:
            self._rho_cache = spectral_radius_of(self.W)
        return self._rho_cache

    def __repr__(self):
        kind = "dense" if isinstance(self.W, np.ndarray) else f"sparse nnz={self.W.nnz}"
        return (f"ESN(input_size={self.input_size}, reservoir_size={self.reservoir_size}, "
                f"output_size={self.output_size}, W={kind}, feedback={self.feedback}, "
                f"dtype={self.dtype.name}, fitted={self.is_fitted})")

    # ------------------------------------------------------------------ engine plumbing
    def _leak_vector(self):
        return leak_vector(self.leak_rate, self.reservoir_size)

    def _w_args(self):
        W = self.W
        if isinstance(W, np.ndarray):
            return (np.ascontiguousarray(W, dtype=self.dtype), None, None, None)
        return (None, np.ascontiguousarray(W.indptr, dtype=np.int32),
                np.ascontiguousarray(W.indices, dtype=np.int32),
                np.ascontiguousarray(W.data, dtype=self.dtype))

    def _w_in_engine(self):
        if self.feedback:
            return np.ascontiguousarray(np.concatenate([self.W_in, self.W_fb], axis=1), dtype=self.dtype)
        return np.ascontiguousarray(self.W_in, dtype=self.dtype)

    def _engine(self, u3, x0, sr_scale=None, in_scale=None, leak=None, w_in=None, w_args=None, out=None):
        """One engine call: u3 (T, B, I'), x0 (P, B, N) or None -> states (T, P, B, N), x_last (P, B, N).
        out: (states, x_last) C-contiguous arrays of this dtype to write into (states may have more steps: its
        first T are written); x_last must not be x0. Callers that run many chunks reuse them (see
        hypersearch._population_sse)."""
        dt = self.dtype
        T, B, _ = u3.shape
        N = self.reservoir_size
        if sr_scale is None:
            sr_scale = np.ones(1, dt)
            in_scale = np.ones(1, dt)
            leak = self._leak_vector()[None, :].astype(dt)
        P = len(sr_scale)
        if out is None:
            states = np.empty((T, P, B, N), dt)
            x_last = np.empty((P, B, N), dt)
        else:
            states, x_last = out[0][:T], out[1]
        w, ip, ix, vals = self._w_args() if w_args is None else w_args
        if self.device == "cuda":  # the reservoir loop on the GPU; states come back for the host readout
            states_d, _ = cuda.reservoir_run(
                np.ascontiguousarray(u3, dtype=dt), w, ip, ix, vals,
                self._w_in_engine() if w_in is None else w_in, np.ascontiguousarray(self.bias, dtype=dt),
                sr_scale, in_scale, leak, None if x0 is None else np.ascontiguousarray(x0, dtype=dt))
            states = cupy().asnumpy(states_d)  # one transfer; x_last is its last step
            return states, states[-1].copy()
        _core.reservoir_run(np.ascontiguousarray(u3, dtype=dt), w, ip, ix, vals,
                            self._w_in_engine() if w_in is None else w_in,
                            np.ascontiguousarray(self.bias, dtype=dt), sr_scale, in_scale, leak,
                            None if x0 is None else np.ascontiguousarray(x0, dtype=dt), states, x_last)
        return states, x_last

    def _x0(self, B, single, c, rows=None):
        """Initial state (B, N) of a run from c (a _Carried), or None (zeros); checks it fits the batch.
        rows: (indices, batch size) of a group of a padded batch (lengths=): its rows of the state."""
        s = c.x
        if s is None:
            return None
        if s.ndim == 1:
            return np.broadcast_to(s, (B, self.reservoir_size))
        if rows is not None and s.shape[0] == rows[1]:
            return s[rows[0]]
        if single or s.shape[0] != B:
            got = "one sequence" if single else f"a batch of {B}"
            raise ValueError(f"u is {got} but the ESN state holds a batch of {s.shape[0]} sequences; "
                             "call reset() first (or pass a batch of the same size)")
        return s

    def _y0(self, B, c, rows=None):
        O = self.output_size
        y = c.y
        if y is None:
            return np.zeros((B, O), self.dtype)
        if rows is not None and y.ndim == 2 and y.shape[0] == rows[1]:
            return y[rows[0]]
        return np.broadcast_to(y, (B, O)) if y.ndim == 1 else y

    # ------------------------------------------------------------------ input normalisation
    def _inputs(self, u, name, width, allow_none_width=False, lengths=None):
        """-> (kind, groups, lengths): kind 'single' | 'batch' | 'list' | 'padded' (a batch with lengths=);
        groups [(indices, array (T, B, width))]."""
        if lengths is not None:  # a padded batch: sequence b is u[:lengths[b], b]; grouped by length
            a = self._array(u, name, width, ndim=3)
            T, B = a.shape[:2]
            L = _varlen.check_lengths(lengths, T, B, True)
            L = np.full(B, T) if L is None else L
            by_len = {}
            for b, n in enumerate(L.tolist()):
                by_len.setdefault(n, []).append(b)
            groups = [(idx, np.ascontiguousarray(a[:n, idx])) for n, idx in by_len.items()]
            return "padded", groups, _Padded(L.tolist(), T)
        if isinstance(u, (list, tuple)):
            if len(u) == 0:
                raise ValueError(f"{name} must not be an empty list")
            seqs = [self._array(a, f"{name}[{k}]", width, ndim=2) for k, a in enumerate(u)]
            by_len = {}
            for k, a in enumerate(seqs):
                by_len.setdefault(a.shape[0], []).append(k)
            groups = [(idx, np.stack([seqs[k] for k in idx], axis=1)) for idx in by_len.values()]
            return "list", groups, [a.shape[0] for a in seqs]
        a = self._array(u, name, width, ndim=(2, 3))
        if a.ndim == 2:
            return "single", [([0], a[:, None, :])], [a.shape[0]]
        return "batch", [(list(range(a.shape[1])), a)], [a.shape[0]] * a.shape[1]

    def _array(self, a, name, width, ndim):
        if not isinstance(a, np.ndarray):
            if hasattr(a, "__array__") and not isinstance(a, (str, bytes)):
                a = np.asarray(a)
            else:
                raise TypeError(f"{name} must be a numpy.ndarray (or a list of them), got {type(a).__name__}")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) \
                or a.dtype == np.bool_:
            raise TypeError(f"{name} must hold real numbers (float or int), got dtype {a.dtype}")
        nd = (ndim,) if isinstance(ndim, int) else ndim
        if a.ndim not in nd:
            want = " or ".join({2: "(T, F)", 3: "(T, B, F)"}[d] for d in nd)
            raise ValueError(f"{name} must have shape {want} with F={width}, got shape {a.shape}")
        if a.shape[-1] != width:
            raise ValueError(f"{name} must have {width} features in its last axis, got shape {a.shape}")
        if a.shape[0] < 1:
            raise ValueError(f"{name} must have at least one time step, got shape {a.shape}")
        if a.ndim == 3 and a.shape[1] < 1:
            raise ValueError(f"{name} must have at least one sequence, got shape {a.shape}")
        a = a.astype(self.dtype, copy=False)
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or Inf")
        return a

    def _targets_like(self, kind, groups, lengths, y, name="y"):
        """y in the same layout as u -> groups of (T, B, O) aligned with u's groups."""
        if kind == "padded":  # y padded like u: (T, B, O), cut by u's lengths
            a = self._array(y, name, self.output_size, ndim=3)
            if a.shape[:2] != (lengths.T, len(lengths)):
                raise ValueError(f"{name} must have shape ({lengths.T}, {len(lengths)}, {self.output_size}) like u, "
                                 f"got {a.shape}")
            return [np.ascontiguousarray(a[:u3.shape[0], idx]) for idx, u3 in groups]
        k2, g2, l2 = self._inputs(y, name, self.output_size)
        if k2 != kind or l2 != lengths:
            raise ValueError(f"{name} must match u: same layout (one sequence / batch / list) and the same "
                             f"number and lengths of sequences; got lengths {l2[:5]} vs {lengths[:5]}")
        if kind == "list":
            # regroup y exactly like u
            seqs = [None] * len(lengths)
            for idx, arr in g2:
                for j, k in enumerate(idx):
                    seqs[k] = arr[:, j]
            return [np.stack([seqs[k] for k in idx], axis=1) for idx, _ in groups]
        return [arr for _, arr in g2]

    @staticmethod
    def _assemble(kind, groups, outs, lengths):
        """Per-group results (T, B, F) -> the caller's layout."""
        if kind == "single":
            return outs[0][:, 0]
        if kind == "batch":
            return outs[0]
        if kind == "padded":  # zeros past each sequence's end
            res = np.zeros((lengths.T, len(lengths)) + outs[0].shape[2:], outs[0].dtype)
            for (idx, _), o in zip(groups, outs):
                res[:o.shape[0], idx] = o
            return res
        res = [None] * len(lengths)
        for (idx, _), o in zip(groups, outs):
            for j, k in enumerate(idx):
                res[k] = o[:, j]
        return res

    # ------------------------------------------------------------------ running
    def run_reservoir(self, u, y=None, *, from_state=None, reset=False, stateful=True, lengths=None):
        """Reservoir states for u, continuing from the current state (which is updated).

        u: (T, I) -> (T, N); (T, B, I) -> (T, B, N); list of (T_k, I) -> list of (T_k, N).
        With feedback=True, y (same layout as u, O features) is fed back as y_{t-1} (teacher forcing);
        without y the ESN's own predictions are fed back (needs a fitted readout).
        from_state ((N,) or (B, N)): start there instead of the current state; reset=True: start from zeros
        (with feedback, the fed-back output starts at zeros in both cases). stateful=False: leave the
        carried state as it was. With stateful=False and from_state or reset=True the call touches no state
        and may run in several threads at once (see the class's Threads).
        lengths ((B,) integers in [1, T], with u (T, B, I)): a padded batch of variable-length sequences,
        sequence b being u[:lengths[b], b]; the states past each end are zero and the carried state is
        each sequence's state after its own last step (B, N). Also in predict and fit (y padded like u).
        """
        start = self._start(from_state, reset)
        stateful = _checks.boolean(stateful, "stateful")
        with self._state_for("run_reservoir", start, stateful) as c:
            if self.feedback and y is None:
                self._need_fit("run_reservoir without y (feedback=True)")
                return self._closed_loop(u, "states", c, self._readout_pair(), lengths)
            return self._run(u, y, c, lengths)

    def _run(self, u, y, c, lengths_=None):
        kind, groups, lengths = self._inputs(u, "u", self.input_size, lengths=lengths_)
        ys = self._targets_like(kind, groups, lengths, y) if (self.feedback and y is not None) else None
        if y is not None and not self.feedback:
            raise ValueError("y is only used with feedback=True")
        outs, finals, y_finals = [], [], []
        for gi, (idx, u3) in enumerate(groups):
            B = u3.shape[1]
            x0 = self._x0(B, kind == "single", c, _rows(kind, idx, lengths))
            if ys is not None:
                u3 = self._with_feedback(u3, ys[gi], self._y0(B, c, _rows(kind, idx, lengths)))
                y_finals.append(ys[gi][-1])
            states, x_last = self._engine(u3, None if x0 is None else x0[None])
            outs.append(states[:, 0])
            finals.append(x_last[0])
        self._set_state_after(kind, groups, finals, c, y_finals or None)
        return self._assemble(kind, groups, outs, lengths)

    @contextlib.contextmanager
    def _state_for(self, what, start, stateful):
        """The _Carried a call runs from (start, or the carried state), stored back when stateful; the
        carried state is held (_using_state) unless the call touches none."""
        if start is not None and not stateful:
            yield start
            return
        with self._using_state(what):
            c = _Carried(self._state, self._y_last) if start is None else start
            yield c
            if stateful:
                self._state, self._y_last = c.x, c.y

    def _set_state_after(self, kind, groups, finals, c, y_finals=None):
        """finals: per group, its final states (B, N) (y_finals: its last fed-back outputs (B, O)); sets
        c.x (and c.y).

        Like reservoirpy, after a list the state is that of the list's last sequence.
        """
        g = len(groups) - 1
        if kind == "padded":  # each sequence's state after its own last step
            c.x = np.zeros((sum(len(idx) for idx, _ in groups), self.reservoir_size), self.dtype)
            for (idx, _), f in zip(groups, finals):
                c.x[idx] = f
            if y_finals is not None:
                c.y = np.zeros((c.x.shape[0], self.output_size), self.dtype)
                for (idx, _), f in zip(groups, y_finals):
                    c.y[idx] = f
            return
        if kind == "list":
            last = max(k for idx, _ in groups for k in idx)
            g = next(i for i, (idx, _) in enumerate(groups) if idx[-1] == last)
        x_last = finals[g]
        y_last = None if y_finals is None else y_finals[g]
        if kind == "batch":
            c.x = np.array(x_last)
            if y_last is not None:
                c.y = np.array(y_last, dtype=self.dtype)
        else:
            c.x = np.array(x_last[-1])
            if y_last is not None:
                c.y = np.array(y_last[-1], dtype=self.dtype)

    def _with_feedback(self, u3, y3, y0, noise=0.0, rng=None):
        """[u_t, y_{t-1}] with y_{-1} = y0 (B, O)."""
        yprev = np.concatenate([np.asarray(y0, self.dtype)[None], y3[:-1]], axis=0)
        if noise:
            yprev = yprev + rng.normal(0.0, noise, yprev.shape).astype(self.dtype)
        return np.ascontiguousarray(np.concatenate([u3, yprev], axis=2))

    def _need_fit(self, what):
        if self.W_out is None:
            raise ValueError(f"{what} needs a trained readout: call fit() first")

    def _readout_pair(self):
        """(W_out, b_out) as one consistent pair (fit replaces both at once)."""
        with self._readout_lock:
            return self.W_out, self.b_out

    @staticmethod
    def _readout(states, readout):
        W_out, b_out = readout
        return states @ W_out + b_out

    def predict(self, u, *, from_state=None, reset=False, stateful=True, lengths=None):
        """Readout predictions for u, continuing from the current state (which is updated).

        u: (T, I) -> (T, O); (T, B, I) -> (T, B, O); list -> list. With feedback=True the predictions
        are fed back step by step (closed loop). from_state, reset, stateful: as in run_reservoir.
        """
        self._need_fit("predict")
        start = self._start(from_state, reset)
        stateful = _checks.boolean(stateful, "stateful")
        readout = self._readout_pair()
        with self._state_for("predict", start, stateful) as c:
            if self.feedback:
                return self._closed_loop(u, "outputs", c, readout, lengths)
            return self._predict(u, c, readout, lengths)

    def _predict(self, u, c, readout, lengths_=None):
        kind, groups, lengths = self._inputs(u, "u", self.input_size, lengths=lengths_)
        outs, finals = [], []
        for idx, u3 in groups:
            T, B, _ = u3.shape
            x0 = self._x0(B, kind == "single", c, _rows(kind, idx, lengths))
            x0 = None if x0 is None else x0[None]
            out = np.empty((T, B, self.output_size), self.dtype)
            step = _chunk_len(B, self.reservoir_size, self.dtype.itemsize)
            for t0 in range(0, T, step):
                states, x_last = self._engine(u3[t0:t0 + step], x0)
                out[t0:t0 + step] = self._readout(states[:, 0], readout)
                x0 = x_last
            outs.append(out)
            finals.append(x0[0])
        self._set_state_after(kind, groups, finals, c)
        return self._assemble(kind, groups, outs, lengths)

    def _closed_loop(self, u, want, c, readout, lengths_=None):
        """Feedback ESN driven by u with its own predictions fed back, one engine call per step."""
        kind, groups, lengths = self._inputs(u, "u", self.input_size, lengths=lengths_)
        outs, finals, y_finals = [], [], []
        w_args, w_in = self._w_args(), self._w_in_engine()
        for idx, u3 in groups:
            T, B, _ = u3.shape
            x = self._x0(B, kind == "single", c, _rows(kind, idx, lengths))
            x = np.zeros((B, self.reservoir_size), self.dtype) if x is None else np.array(x)
            y = np.array(self._y0(B, c, _rows(kind, idx, lengths)))
            F = self.reservoir_size if want == "states" else self.output_size
            out = np.empty((T, B, F), self.dtype)
            for t in range(T):
                inp = np.concatenate([u3[t], y], axis=1)[None]
                states, x_last = self._engine(inp, x[None], w_in=w_in, w_args=w_args)
                x = x_last[0]
                y = self._readout(x, readout).astype(self.dtype)
                out[t] = x if want == "states" else y
            outs.append(out)
            finals.append(x)
            y_finals.append(y)
        self._set_state_after(kind, groups, finals, c, y_finals)
        return self._assemble(kind, groups, outs, lengths)

    def generate(self, n_steps, warmup=None, inputs=None):
        """Closed-loop (generative) run of n_steps from the current state (after an optional warm-up).

        feedback=False (needs input_size == output_size): every prediction is the next input. The result
          is the next n_steps values of the series: out[0] is the readout of the current state (the
          prediction of what follows the last input consumed), out[k] the readout after feeding out[k-1].
          ``warmup``: an input array (same layout as predict) run first, e.g. the last steps of the data.
        feedback=True: ``inputs`` (n_steps, I) or (n_steps, B, I) (may be omitted when input_size is 0)
          drive the reservoir while the predictions are fed back through W_fb; out[t] is the prediction
          after step t. ``warmup``: (u_warm, y_warm) run teacher-forced, or u_warm run closed loop.
        Returns (n_steps, O), or (n_steps, B, O) when the state holds a batch.
        """
        n_steps = _checks.positive_int(n_steps, "n_steps")
        self._need_fit("generate")
        with self._using_state("generate"):
            return self._generate(n_steps, warmup, inputs, self._readout_pair())

    def _generate(self, n_steps, warmup, inputs, readout):
        if self.feedback:
            if warmup is not None:
                if isinstance(warmup, tuple) and len(warmup) == 2:
                    self.run_reservoir(warmup[0], warmup[1])
                else:
                    self.predict(warmup)
            if inputs is None:
                if self.input_size != 0:
                    raise ValueError(f"inputs (n_steps, {self.input_size}) are needed to generate with "
                                     "feedback=True")
                B = None if (self._state is None or self._state.ndim == 1) else self._state.shape[0]
                inputs = np.zeros((n_steps, 0) if B is None else (n_steps, B, 0), self.dtype)
            if not isinstance(inputs, np.ndarray):
                raise TypeError(f"inputs must be a numpy.ndarray (n_steps, {self.input_size}) or "
                                f"(n_steps, B, {self.input_size}), got {type(inputs).__name__}")
            if inputs.ndim not in (2, 3) or inputs.shape[0] != n_steps:
                raise ValueError(f"inputs must have n_steps={n_steps} steps, got shape {inputs.shape}")
            c = _Carried(self._state, self._y_last)
            out = self._closed_loop(inputs, "outputs", c, readout)
            self._state, self._y_last = c.x, c.y
            return out
        if inputs is not None:
            raise ValueError("inputs is only used with feedback=True (without feedback the predictions "
                             "are the inputs)")
        if self.input_size != self.output_size:
            raise ValueError(f"generate without feedback needs input_size == output_size, got "
                             f"{self.input_size} and {self.output_size}")
        if warmup is not None:
            self.run_reservoir(warmup)
        s = self._state
        batch = s is not None and s.ndim == 2
        B = s.shape[0] if batch else 1
        _checks.check_memory(n_steps * B * self.output_size, self.dtype.itemsize,
                             f"generate(n_steps={n_steps}) with output_size={self.output_size}")
        x = np.zeros((B, self.reservoir_size), self.dtype) if s is None else np.array(s).reshape(B, -1)
        w_args, w_in = self._w_args(), self._w_in_engine()
        out = np.empty((n_steps, B, self.output_size), self.dtype)
        y = self._readout(x, readout).astype(self.dtype)
        for t in range(n_steps):
            out[t] = y
            if t == n_steps - 1:
                break
            _, x_last = self._engine(np.ascontiguousarray(y[None]), x[None], w_in=w_in, w_args=w_args)
            x = x_last[0]
            y = self._readout(x, readout).astype(self.dtype)
        self._state = x.copy() if batch else x[0].copy()
        return out if batch else out[:, 0]

    # ------------------------------------------------------------------ training
    def fit(self, u, y, washout=0, *, ridge=None, validation=None, feedback_noise=0.0, seed=None, lengths=None):
        """Train the ridge readout on (u, y), continuing from the current state (reservoirpy's Model.fit).

        u, y: the same layout ((T, I)/(T, O), (T, B, I)/(T, B, O), or lists of sequences of equal lengths
          pairwise). washout: steps dropped at the start of every sequence (reservoirpy's ``warmup``).
        ridge: None (the ESN's ``ridge``), a float, or a list: one accumulation, one solution per value;
          with several values ``validation=(u_val, y_val)`` is required and the value with the lowest
          validation NRMSE (rnnfast.datasets.nrmse) is kept.
        validation=(u_val, y_val): run from the state reached after training (as predict would; with
          feedback=True teacher-forced by y_val, i.e. one-step scores), every step scored. Scores of all
          values are stored in ``validation_scores_`` ({ridge: nrmse}); the state afterwards is the one
          reached after training, as without validation.
        feedback_noise: std of Gaussian noise added to the fed-back teacher (feedback=True only), seeded
          by ``seed``; it makes closed-loop generation more stable.
        lengths: a padded batch u (T, B, I), y (T, B, O) of variable-length sequences (see run_reservoir):
          only the steps t < lengths[b] of sequence b are used (washout counts from each start).
        Sets W_out (N, O), b_out (O,), ridge_ and returns self.
        """
        washout = _checks.positive_int(washout, "washout", minimum=0)
        ridges, was_list = _ridge_list(self.ridge if ridge is None else ridge)
        if len(ridges) > 1 and validation is None:
            raise ValueError("ridge has several values: pass validation=(u_val, y_val) to choose one")
        noise = _checks.real(feedback_noise, "feedback_noise", low=0)
        if noise and not self.feedback:
            raise ValueError("feedback_noise is only used with feedback=True")
        kind, groups, lengths = self._inputs(u, "u", self.input_size, lengths=lengths)
        ys = self._targets_like(kind, groups, lengths, y)
        if validation is not None:
            if not (isinstance(validation, tuple) and len(validation) == 2):
                raise TypeError("validation must be a tuple (u_val, y_val)")
            vk, vg, vl = self._inputs(validation[0], "validation[0] (u_val)", self.input_size)
            vys = self._targets_like(vk, vg, vl, validation[1], name="validation[1] (y_val)")
        rng = np.random.default_rng(_checks.seed(seed))
        with self._using_state("fit"):
            c = _Carried(self._state, self._y_last)
            W_out, b_out, best, scores, n = self._fit(kind, groups, lengths, ys, washout, noise, rng, ridges,
                                                      None if validation is None else (vk, vg, vl, vys), c)
            self._state, self._y_last = c.x, c.y
            with self._readout_lock:  # predictions in other threads see the old readout or the new one, whole
                self.W_out, self.b_out = W_out, b_out
            self.ridge_ = ridges[best]
            self.n_samples_ = n
            self.validation_scores_ = None if scores is None else dict(zip(ridges, scores))
        return self

    def _fit(self, kind, groups, lengths, ys, washout, noise, rng, ridges, validation, c):
        """-> (W_out, b_out, index of the chosen ridge, validation scores or None, samples); sets c to the
        state after training."""
        N, O, dt = self.reservoir_size, self.output_size, self.dtype
        acc = RidgeAccumulator(N, O)
        finals, y_finals = [], []
        for (idx, u3), y3 in zip(groups, ys):
            T, B, _ = u3.shape
            x0 = self._x0(B, kind == "single", c, _rows(kind, idx, lengths))
            x0 = None if x0 is None else x0[None]
            if self.feedback:
                u3 = self._with_feedback(u3, y3.astype(dt), self._y0(B, c, _rows(kind, idx, lengths)), noise, rng)
            step = _chunk_len(B, N, dt.itemsize)
            for t0 in range(0, T, step):
                states, x_last = self._engine(u3[t0:t0 + step], x0)
                x0 = x_last
                lo = max(washout - t0, 0)
                if lo < states.shape[0]:
                    acc.add(states[lo:, 0].reshape(-1, N), y3[t0 + lo:t0 + step].reshape(-1, O))
            finals.append(x0[0])
            y_finals.append(y3[-1])
        if acc.n == 0:
            raise ValueError(f"washout={washout} leaves no training steps (shortest sequence: "
                             f"{min(lengths)} steps)")
        self._set_state_after(kind, groups, finals, c, y_finals if self.feedback else None)

        sols = [acc.solve(r) for r in ridges]
        if validation is None:
            best, scores = 0, None
        else:  # from the state reached after training; c keeps it
            scores = self._validation_scores(*validation, sols, _Carried(c.x, c.y))
            best = int(np.argmin(scores))
        W_out, b_out = sols[best]
        return W_out.astype(dt), b_out.astype(dt), best, scores, acc.n

    def _validation_scores(self, kind, groups, lengths, ys, sols, c):
        N, O, dt = self.reservoir_size, self.output_size, self.dtype
        sse = np.zeros((len(sols), O))
        y_all = np.concatenate([y3.reshape(-1, O) for y3 in ys]).astype(np.float64)
        y_std = y_all.std(axis=0)
        n = y_all.shape[0]
        for (idx, u3), y3 in zip(groups, ys):
            T, B, _ = u3.shape
            x0 = self._x0(B, kind == "single", c, _rows(kind, idx, lengths))
            x0 = None if x0 is None else x0[None]
            if self.feedback:
                u3 = self._with_feedback(u3, y3, self._y0(B, c, _rows(kind, idx, lengths)))
            step = _chunk_len(B, N, dt.itemsize)
            for t0 in range(0, T, step):
                states, x_last = self._engine(u3[t0:t0 + step], x0)
                x0 = x_last
                X = states[:, 0].reshape(-1, N).astype(np.float64)
                Y = y3[t0:t0 + step].reshape(-1, O).astype(np.float64)
                for k, (W_out, b_out) in enumerate(sols):
                    sse[k] += ((X @ W_out + b_out - Y) ** 2).sum(axis=0)
        return [_nrmse_parts(sse[k], n, y_std) for k in range(len(sols))]


class _Padded(list):
    """The sequence lengths of a padded batch (lengths=), with the batch's number of steps T."""

    def __init__(self, lengths, T):
        super().__init__(lengths)
        self.T = T


def _rows(kind, idx, lengths):
    """A padded batch's group: (its rows, the batch size), for _x0/_y0; None otherwise."""
    return (idx, len(lengths)) if kind == "padded" else None


class _Carried:
    """A run's reservoir state x ((N,), (B, N) or None: zeros) and fed-back output y (or None: zeros)."""

    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y


