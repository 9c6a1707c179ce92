"""The character-level language model behind `rnnfast char`: one-hot -> recurrent stack -> Linear -> softmax.

    model = CharModel(vocab_size=98, cell="lstm", hidden=256, layers=1, seed=0)
    logits, state = model.forward(x_idx, state)      # x_idx: (T, N) ints; logits: (T, N, V) float32
    loss, dlogits = softmax_cross_entropy(logits, y_idx)
    model.backward(dlogits)                          # truncated BPTT: no gradient into the carried state

On device="cuda" (or after .to("cuda")) the parameters, the state and the logits are CuPy arrays; index
arrays may come from the host (they are copied over), the loss comes back as a float.

Every call runs a whole (T, N) block: the recurrent layers run the sequence in one engine call per layer,
the output Linear and the loss run on the (T*N, .) matrix at once; there is no Python loop over time
steps except in sampling, which is sequential by nature.

Threads: evaluate() and sample() may run in several threads at once on one model (also while another
thread trains it: they keep nothing for backward and leave the training mode alone). Training steps
(loss_and_backward) keep per-thread caches and buffers and add their gradients under the modules' locks.
"""

import math
import threading

import numpy as np

from .. import _core, nn, optim
from .._util import checks as _checks
from .._util.arrays import to_host
from ..nn import losses
from ..nn.mrnn import MRNN
from ..nn.recurrent import GRU, LSTM, RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "mrnn": MRNN}
INITS = ("default", "min-char-rnn")


class CharModel(nn.ModuleDict):
    """A stack of rnnfast recurrent layers over one-hot characters, with a Linear read-out: a ModuleDict of
    `rnn` and `out` (parameters "rnn.weight_ih_l0", ..., "out.weight", "out.bias").

    init="default" keeps the layers' own (PyTorch) initialisation; init="min-char-rnn" is Karpathy's
    min-char-rnn: weights N(0, 0.01^2), biases zero, and the recurrent layer's second bias (bias_hh; the
    lecture's RNN has one hidden bias) frozen at zero, see `freeze_extra_bias`.
    cell="mrnn" is the multiplicative RNN with `factors` factors (default: hidden); `factors` is only for it.
    device="cuda" builds the model on the host (same seed, same weights) and moves it to the GPU.
    """

    def __init__(self, vocab_size, cell="lstm", hidden=256, layers=1, seed=0, init="default", dtype="float32",
                 factors=None, device="cpu"):
        _checks.one_of(cell, "cell", sorted(CELLS))
        if factors is not None and cell != "mrnn":
            raise ValueError(f"factors is for cell='mrnn', not {cell!r}")
        _checks.one_of(init, "init", INITS)
        vocab_size = _checks.positive_int(vocab_size, "vocab_size")
        hidden = _checks.positive_int(hidden, "hidden")
        layers = _checks.positive_int(layers, "layers")
        self.vocab_size, self.cell, self.hidden, self.layers, self.init = vocab_size, cell, hidden, layers, init
        self.dtype = _checks.as_dtype(dtype)
        # parameters, gradients and up to two optimizer buffers each, refused before allocating anything
        if cell == "mrnn":  # per layer: W_fx (F, C), W_fh (F, H), W_hf (H, F), W_hx (H, C), b (H)
            F = hidden if factors is None else _checks.positive_int(factors, "factors")
            n_params = F * (vocab_size + 2 * hidden) + hidden * (vocab_size + 1)
            n_params += (layers - 1) * (3 * F * hidden + hidden * (hidden + 1))
        else:
            G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
            n_params = G * hidden * (vocab_size + hidden + 2) + (layers - 1) * G * hidden * (2 * hidden + 2)
        n_params += vocab_size * (hidden + 1)
        _checks.check_memory(4 * n_params, 8,
                             f"a {cell} model with hidden={hidden}, layers={layers} and {vocab_size} characters")
        rng = np.random.default_rng(seed)
        self.factors = (hidden if factors is None else factors) if cell == "mrnn" else None
        extra = (self.factors,) if cell == "mrnn" else ()
        rnn = CELLS[cell](vocab_size, hidden, *extra, layers, dtype=dtype, seed=int(rng.integers(2**31)))
        out = nn.Linear(hidden, vocab_size, dtype=dtype, seed=int(rng.integers(2**31)))
        super().__init__(rnn=rnn, out=out)
        if init == "min-char-rnn":
            for module in (rnn, out):
                for name, p in module.parameters().items():
                    if name.startswith("weight"):
                        p[...] = rng.standard_normal(p.shape) * 0.01
                    else:
                        p[...] = 0
        self.to(device)

    # ---- device ------------------------------------------------------------------------------
    @property
    def xp(self):
        """The array module of the model's device (numpy or cupy)."""
        return self.rnn.array_api()[0]

    def to(self, device):
        """Move the model to 'cpu' or 'cuda' (build optimizers after moving: they bind the arrays)."""
        super().to(device)
        self._buffers = threading.local()  # the fused read-out's buffers, per thread
        return self

    def _on_device(self, a):
        """An index or float array from the host (or already on the device) on the model's device."""
        return a if self.device == "cpu" else self.xp.asarray(a)

    # ---- parameters --------------------------------------------------------------------------
    def modules(self):
        """name -> module (optimizers also take the model itself: the parameter names are the same)."""
        return dict(self._modules)

    def num_parameters(self):
        return sum(p.size for p in self.parameters().values())

    def state_dict(self):
        """Host (NumPy) copies of the parameters, by dotted name, whatever the device (for checkpoints)."""
        return {name: np.array(to_host(p)) for name, p in self.parameters().items()}

    def freeze_extra_bias(self):
        """Zero the gradients of bias_hh_l* (min-char-rnn has a single hidden bias, kept in bias_ih)."""
        for name, g in self.rnn.grads.items():
            if name.startswith("bias_hh"):
                g.fill(0)

    # ---- state -------------------------------------------------------------------------------
    def initial_state(self, batch):
        shape = (self.layers, batch, self.hidden)
        xp = self.xp
        if self.cell == "lstm":
            return (xp.zeros(shape, self.dtype), xp.zeros(shape, self.dtype))
        return xp.zeros(shape, self.dtype)

    def state_arrays(self, state):
        """The carried state as a list of host arrays (h, or h and c), for checkpoints."""
        return [to_host(a) for a in (state if isinstance(state, tuple) else [state])]

    def state_rows(self, state, rows):
        """A new state of `rows` streams, stream i starting where stream i % N of `state` (N streams) is.

        How evaluation and sampling start from the state training has carried: a tanh RNN can learn two
        mirror-image attractors (h and about -h) and a read-out for only the one its training stream sits
        in, so a zero state, burnt in on any amount of text, may settle in the other one and score worse than
        uniform guessing (issue 14); the carried state is the one the read-out was trained on.
        """
        arrays = state if isinstance(state, tuple) else (state,)
        idx = self._on_device(np.arange(rows) % arrays[0].shape[1])
        out = [self.xp.ascontiguousarray(a[:, idx], dtype=self.dtype) for a in arrays]
        return tuple(out) if self.cell == "lstm" else out[0]

    def burn_in(self, idx, state=None):
        """The state after reading the characters idx (1 stream) from `state` (default: zero)."""
        with nn.no_grad():
            _, state = self.forward(np.asarray(idx, dtype=np.int64)[:, None],
                                    self.initial_state(1) if state is None else self.state_rows(state, 1))
        return state

    def state_from_arrays(self, arrays, batch):
        want = 2 if self.cell == "lstm" else 1
        shape = (self.layers, batch, self.hidden)
        if len(arrays) != want or any(a.shape != shape for a in arrays):
            raise ValueError(f"the saved hidden state does not fit the model (want {want} arrays of shape {shape})")
        arrays = [self.xp.asarray(np.ascontiguousarray(a, dtype=self.dtype)) for a in arrays]
        return tuple(arrays) if self.cell == "lstm" else arrays[0]

    # ---- forward / backward ------------------------------------------------------------------
    def forward(self, x_idx, state):
        """x_idx (T, N) ints, state from initial_state(N) -> logits (T, N, V), the final state.

        The indices go to the recurrent layer as they are: it treats them as one-hot rows (on the CPU
        engine a gather of weight_ih_l0's columns, not a product with the one-hot matrix).
        """
        y, state = self.rnn.forward(self._on_device(x_idx), state)
        return self.out.forward(y), state

    def backward(self, dlogits):
        """Backpropagate the (T, N, V) gradient of the loss; parameter gradients are accumulated."""
        dy = self.out.backward(dlogits)
        self.rnn.backward(dy, None)

    def loss_and_backward(self, x_idx, y_idx, state, loss_scale=1.0, fused=True):
        """One training step's forward and backward: returns (mean cross-entropy in nats/char of predicting
        y_idx (T, N) from x_idx (T, N), the final state); the gradient of loss_scale x that mean is added
        to the parameters' grads.

        fused=True gives the recurrent stack the indices (a gather of weight_ih_l0's columns, a scatter-add
        for its gradient, no dx) and runs the read-out Linear, softmax cross-entropy and their backward in one
        engine call (`_core.readout_xent`: the GEMMs on the engine's threads, one pass over the logits).
        fused=False is the general path: the one-hot matrix through the layers, nn.Linear and
        losses.softmax_cross_entropy. The two are the same math, equal to float rounding. On CUDA the
        general path runs, with the indices given to the layers (the CUDA engine makes the one-hot rows).
        """
        if not fused or self.device != "cpu":
            x_idx, y_idx = self._on_device(x_idx), self._on_device(y_idx)
            x = x_idx if self.device != "cpu" else nn.one_hot(x_idx, self.vocab_size, dtype=self.dtype)
            y, state = self.rnn.forward(x, state)
            loss, dlogits = losses.softmax_cross_entropy(self.out.forward(y), y_idx)
            if loss_scale != 1.0:
                dlogits *= loss_scale
            self.backward(dlogits)
            return loss, state
        if not (hasattr(y_idx, "shape") and tuple(y_idx.shape) == tuple(np.shape(x_idx))):
            raise ValueError(f"y_idx must have the shape of x_idx {np.shape(x_idx)}, got "
                             f"{getattr(y_idx, 'shape', type(y_idx).__name__)}")
        y, state = self.rnn.forward(x_idx, state)
        T, N, H = y.shape
        R, _V = T * N, self.vocab_size
        buf = self._readout_buffers(R)
        targets = np.ascontiguousarray(y_idx, dtype=np.int32).reshape(R)
        W, g = self.out.parameters(), self.out.grads
        def readout(grads):  # the engine adds the read-out's gradients into `grads`
            return _core.readout_xent(y.reshape(R, H), W["weight"], W["bias"], targets, float(loss_scale) / R,
                                      buf["logits"], buf["nll"], grads["weight"], grads["bias"], buf["dy"])

        lock = self.out._grads_lock()
        if lock.acquire(blocking=False):  # as the layers' backward: the lone step adds into the grads itself
            try:
                total = readout(g)
            finally:
                lock.release()
        else:  # another thread is adding: this step's own zeroed gradients, added afterwards
            own = buf.setdefault("grads", {k: np.zeros_like(v) for k, v in g.items()})
            for v in own.values():
                v.fill(0)
            total = readout(own)
            with lock:
                for k, v in own.items():
                    g[k] += v
        self.rnn.backward(buf["dy"].reshape(T, N, H), None)
        return total / R, state

    def _readout_buffers(self, rows):
        """logits, per-row losses and dy of the fused read-out, reused across this thread's steps of one size."""
        local = self._buffers
        buf = getattr(local, "readout", None)
        if buf is None or buf["nll"].shape[0] != rows:
            buf = local.readout = dict(logits=np.empty((rows, self.vocab_size), self.dtype),
                                       nll=np.empty(rows, np.float64),
                                       dy=np.empty((rows, self.hidden), self.dtype))
        return buf

    def __getstate__(self):  # copy.deepcopy / pickle: per-thread buffers are not copied
        state = super().__getstate__()
        state.pop("_buffers", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._buffers = threading.local()

    # ---- evaluation and sampling -------------------------------------------------------------
    def evaluate(self, data, losses, max_chars=None, streams=16, chunk=128, state=None):
        """Mean cross-entropy (nats/char) of predicting data[i+1] from data[..i], state carried over chunks.

        The data is cut into `streams` equal segments run side by side (fewer for short data), each from
        `state` (a state of any number of streams, see state_rows: e.g. the training's carried state) or,
        with state=None, from a zero state; with max_chars, only the first max_chars/streams characters of
        each segment count, so the check samples the whole held-out text rather than its beginning.
        """
        n = len(data) - 1
        if n < 1:
            return float("nan")
        streams, seg, length = self.eval_layout(n, max_chars, streams)
        offsets = np.arange(streams) * seg
        state = self.initial_state(streams) if state is None else self.state_rows(state, streams)
        total = 0.0
        with nn.no_grad():  # keeps nothing for backward; the model's mode (and a training thread) untouched
            for start in range(0, length, chunk):
                t = np.arange(start, min(start + chunk, length))
                idx = offsets[None, :] + t[:, None]
                logits, state = self.forward(data[idx], state)
                loss, _ = losses.softmax_cross_entropy(logits, self._on_device(data[idx + 1]))
                total += float(loss) * idx.size
        return total / (length * streams)

    @staticmethod
    def eval_layout(n, max_chars=None, streams=16):
        """(streams, segment, characters scored per stream) of evaluate() on n + 1 characters (n predictions);
        streams * characters per stream are scored."""
        streams = max(1, min(streams, n // 16 or 1))
        seg = n // streams
        return streams, seg, seg if max_chars is None else max(1, min(seg, max_chars // streams))

    def sample(self, prime_idx, length, temperature=1.0, rng=None, state=None):
        """Burn prime_idx (non-empty) into the state, then draw `length` characters. Returns their indices.

        The state starts as `state` (stream 0 of it, e.g. the training's carried state) or, with None, zero.
        """
        if len(prime_idx) == 0:
            raise ValueError("the prime must hold at least one character")
        rng = np.random.default_rng() if rng is None else rng
        out = []
        with nn.no_grad():
            state = self.initial_state(1) if state is None else self.state_rows(state, 1)
            x = np.asarray(prime_idx, dtype=np.int64)[:, None]
            for _ in range(length):
                logits, state = self.forward(x, state)
                z = to_host(logits[-1, 0]).astype(np.float64)
                # shift before dividing: a tiny temperature then gives -inf, not inf - inf = NaN (greedy)
                p = np.exp((z - z.max()) / temperature)
                c = np.cumsum(p)
                i = min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), self.vocab_size - 1)
                out.append(i)
                x = np.array([[i]], dtype=np.int64)
        return out


def bits(nats):
    return nats / math.log(2)


# ---- min-char-rnn's training step fused in the engine ----------------------------------------------
_FUSED_NAMES = ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "out.weight", "out.bias")


class FusedMinCharRNN:
    """Training steps of a min-char-rnn-shaped CharModel in one engine call (`_core.char_rnn_train`).

    The same math as rnnfast.char.trainer.train_step on the general layers (one-hot -> tanh RNN -> Linear ->
    softmax cross-entropy, BPTT through the chunk, elementwise clip, Adagrad, min-char-rnn's data order) for
    batch 1, many steps per call: the step's Python and per-call NumPy overhead on small arrays, most of
    its time at this size, is paid once per call (RESULTS.md). The model's parameter arrays, the optimizer's
    Adagrad sums (Adagrad.sums()) and the hidden state are updated in place, so checkpoints, evaluation and
    sampling see the usual arrays.

        fused = FusedMinCharRNN.create(model, opt, train_data, seq_len, clip, loss_sum_over_time)  # or None
        losses, pos, restarts = fused.train(steps, state, pos)   # state: (1, 1, H), updated in place

    create() returns None unless the configuration is exactly this one: CPU, 1-layer unidirectional tanh
    RNN with biases and no learned initial state, one-hot input (CharModel), Adagrad without lr decay or
    weight decay, and the caller's batch 1 with elementwise clipping.
    """

    MAX_STEPS = 256  # per call: keeps progress, Ctrl-C and the stop flag responsive (~10 ms)

    @classmethod
    def create(cls, model, opt, train_data, seq_len, clip, loss_sum_over_time, freeze_extra_bias):
        rnn = model.rnn
        if not (hasattr(_core, "char_rnn_train") and model.cell == "rnn"
                and getattr(rnn, "nonlinearity", None) == "tanh"
                and rnn.num_layers == 1 and not rnn.bidirectional and rnn.bias and not rnn.learn_initial_state
                and rnn.engine == "cpu" and rnn.device == "cpu" and model.dtype in (np.float32, np.float64)
                and type(opt) is optim.Adagrad and opt.defaults["lr_decay"] == 0
                and opt.defaults["weight_decay"] == 0 and tuple(opt.param_names) == _FUSED_NAMES
                and len(train_data) >= seq_len + 1):
            return None
        return cls(model, opt, train_data, seq_len, clip, loss_sum_over_time, freeze_extra_bias)

    def __init__(self, model, opt, train_data, seq_len, clip, loss_sum_over_time, freeze_extra_bias):
        self._core = _core
        self.model, self.opt, self.seq_len = model, opt, int(seq_len)
        self.clip = float(clip or 0.0)
        # softmax_cross_entropy's gradient is the mean's (1/T); min-char-rnn sums over time (x T)
        self.loss_scale = 1.0 if loss_sum_over_time else 1.0 / self.seq_len
        self.freeze_extra_bias = bool(freeze_extra_bias)
        self.data = np.ascontiguousarray(train_data, dtype=np.int32)
        self.params = [p for _, p, _ in opt.named_parameters()]
        V, H = model.vocab_size, model.hidden
        self.work = np.empty(_core.char_rnn_workspace_size(V, H, self.seq_len, model.dtype), model.dtype)
        self.losses = np.empty(self.MAX_STEPS, np.float64)

    def train(self, steps, state, pos):
        """Run `steps` (<= MAX_STEPS) steps from data position pos; state (1, 1, H) is updated in place.
        Returns (per-step mean losses in nats/char as a list of floats, new pos, restarts)."""
        if not 0 <= steps <= self.MAX_STEPS:
            raise ValueError(f"steps must be in [0, {self.MAX_STEPS}], got {steps}")
        h = state.reshape(-1)
        if not np.shares_memory(h, state):
            raise ValueError("state must be contiguous: it is updated in place")
        hd = self.opt.defaults
        done, pos, restarts, status, detail = self._core.char_rnn_train(
            self.params, self.opt.sums(), h, self.data, self.seq_len, int(pos), int(steps), hd["lr"], hd["eps"],
            hd["eps_inside_sqrt"], self.clip, self.loss_scale, self.freeze_extra_bias, self.losses, self.work)
        self.opt.add_steps(done)
        if status == 1:
            name = self.opt.param_names[detail]
            raise ValueError(f"gradient of parameter {name!r} contains NaN or Inf (non-finite gradients: "
                             f"[{name!r}]); nothing was updated")
        if status == 2:
            raise ValueError(f"the training data holds {int(self.data[detail])} at position {detail}, outside the "
                             f"vocabulary [0, {self.model.vocab_size})")
        return self.losses[:done].tolist(), pos, restarts
