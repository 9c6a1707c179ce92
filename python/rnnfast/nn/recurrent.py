"""Recurrent layers with PyTorch's conventions: rnnfast.RNN, rnnfast.LSTM, rnnfast.GRU.

    rnn = rnnfast.LSTM(input_size=8, hidden_size=32, num_layers=2, bidirectional=True)
    y, (h_n, c_n) = rnn(x)                      # x: (T, N, C), or (N, T, C) with batch_first
    dx, (dh0, dc0) = rnn.backward(dy, (dh_n, dc_n))
    rnn.grads["weight_hh_l0"]                   # accumulated until rnn.zero_grad()

Parameters carry PyTorch's names and shapes, so `load_state_dict({k: v.numpy() for k, v in
torch_lstm.state_dict().items()})` gives the same outputs and gradients as torch.nn.LSTM.
Layers stack and run directions here, in Python; each (layer, direction) is one engine call.

Threads (see rnnfast.nn): a layer may be called from several threads at once, in both modes. Each call
takes its own set of caches and workspaces from the layer's BufferPool (one thread alone always gets the
same set back, as when the layer kept one); a training forward keeps its set, and private copies of x and
hx, until the same thread's backward, which adds into `grads` under the layer's lock.
"""

import numpy as np

from .._util import checks as _checks
from .._util.checks import check_index
from ..backends import ENGINE_NAMES, cuda, engine_for
from ..backends import cells as E
from ..backends import varlen as _varlen
from ..backends.buffers import BufferPool
from ..backends.cells import GATES
from ..backends.devices import check_device, cupy
from ..backends.projection import ProjectedEngine
from .base import _GRAD_MODE, Module
from .modules import one_hot

_WEIGHT_KEYS = (("weight_ih", "W_ih"), ("weight_hh", "W_hh"), ("bias_ih", "b_ih"), ("bias_hh", "b_hh"))


class _RecurrentLayer(Module):
    _is_lstm = False
    _model = "recurrent"          # what rnnfast.backends.engine_for runs it with
    _weight_keys = _WEIGHT_KEYS   # (parameter name prefix, engine's weight name)
    _cpu_takes_indices = True     # the "cpu" engine runs integer (one-hot index) input itself
    _takes_lengths = True         # forward(..., lengths=) (variable-length batches; see rnnfast.backends.varlen)

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 bidirectional=False, dtype="float32", *, dropout=0.0, proj_size=0, zoneout=0.0,
                 learn_initial_state=False, engine="cpu", device="cpu", seed=None):
        self.input_size = _checks.positive_int(input_size, "input_size")
        self.hidden_size = _checks.positive_int(hidden_size, "hidden_size")
        self.num_layers = _checks.positive_int(num_layers, "num_layers")
        self.bias = _checks.boolean(bias, "bias")
        self.batch_first = _checks.boolean(batch_first, "batch_first")
        self.bidirectional = _checks.boolean(bidirectional, "bidirectional")
        self.learn_initial_state = _checks.boolean(learn_initial_state, "learn_initial_state")
        self.dropout = _checks.real(dropout, "dropout")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        self.proj_size = _checks.positive_int(proj_size, "proj_size", minimum=0)
        if self.proj_size and not self._is_lstm:
            raise ValueError(f"proj_size is for LSTM only, got proj_size={self.proj_size} for {type(self).__name__}")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size must be 0 (none) or in [1, hidden_size={self.hidden_size}), "
                             f"got {self.proj_size}")
        self.zoneout = _checks.real(zoneout, "zoneout")
        if not 0.0 <= self.zoneout < 1.0:
            raise ValueError(f"zoneout must be in [0, 1), got {self.zoneout}")
        if self.zoneout and cell not in (E.LSTM, E.GRU, E.GRU_CHO):
            raise ValueError(f"zoneout is for LSTM and GRU, got zoneout={self.zoneout} for {type(self).__name__}")
        if self.zoneout and self.proj_size:
            raise ValueError("zoneout with proj_size is not supported")
        self.dtype = _checks.as_dtype(dtype)
        self.engine = _checks.one_of(engine, "engine", ENGINE_NAMES)
        check_device(device)  # the layer is built on the host, then moved (see the end of __init__)
        self.device = "cpu"
        self._cell = cell
        self.training = True
        self._init_threads()

        H, D = self.hidden_size, self.num_directions
        Ho = self._out_size
        seed = _checks.seed(seed)
        rng = np.random.default_rng(seed)
        # dropout's and zoneout's masks (training mode): seeded by `seed` (a stream apart from the
        # initialisation's); replace layer.generator with any numpy Generator to reseed
        self.generator = np.random.default_rng(None if seed is None else [seed, 0xD60])
        # absurd sizes are refused before anything is allocated (closed form: no loop over the layers)
        def count(in_size):
            return sum(int(np.prod([int(s) for s in shape], dtype=object)) for shape, _ in
                       self._param_specs(in_size).values())
        n_params = D * (count(self.input_size) + (self.num_layers - 1) * count(D * Ho))
        _checks.check_memory(2 * n_params, self.dtype.itemsize,
                             f"{type(self).__name__}(input_size={self.input_size}, hidden_size={H}, "
                             f"num_layers={self.num_layers}) (its parameters and gradients)")
        self._params = {}
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else D * Ho
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                for base, (shape, k) in self._param_specs(in_size).items():
                    self._params[base + sfx] = rng.uniform(-k, k, shape).astype(self.dtype)
        if self.learn_initial_state:
            self._params["h0"] = np.zeros((self.num_layers * D, Ho), self.dtype)
            if self._is_lstm:
                self._params["c0"] = np.zeros((self.num_layers * D, H), self.dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self._params.items()}
        if device == "cuda":
            self.to("cuda")

    # ---- parameters ---------------------------------------------------------------------------
    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def _out_size(self):
        """Width of h and of each direction's output: proj_size (LSTM with projections) or hidden_size."""
        return getattr(self, "proj_size", 0) or self.hidden_size

    # parameters(), state_dict(), load_state_dict(), zero_grad(), train(), eval() and __call__ come from
    # nn.Module: parameters by PyTorch name (live arrays), state dicts checked for names, shapes and
    # finiteness (e.g. a torch state dict converted with .numpy()), eval() saving nothing for backward.

    def _param_specs(self, in_size):
        """name prefix -> (shape, k) of one layer and direction, initialised uniform in (-k, k).

        PyTorch's initialisation: every parameter with k = 1/sqrt(H).
        """
        GH, H = GATES[self._cell] * self.hidden_size, self.hidden_size
        specs = {"weight_ih": (GH, in_size), "weight_hh": (GH, self._out_size)}
        if self.bias:
            specs.update(bias_ih=(GH,), bias_hh=(GH,))
        if getattr(self, "proj_size", 0):
            specs["weight_hr"] = (self.proj_size, H)
        return {base: (shape, 1.0 / np.sqrt(H)) for base, shape in specs.items()}

    def _weights(self, layer, d, store):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        w = {short: store.get(base + sfx) for base, short in self._weight_keys}
        if getattr(self, "proj_size", 0):
            w["W_hr"] = store.get("weight_hr" + sfx)
        return w

    # ---- forward ------------------------------------------------------------------------------
    def forward(self, x, hx=None, lengths=None):
        """x: (T, N, input_size) float (batch_first: (N, T, ...); unbatched: (T, input_size)), or integer
        indices (T, N) / (N, T) / (T,) in [0, input_size) standing for one-hot rows (a character model's
        input): the CPU engine then gathers columns of weight_ih_l0 instead of multiplying by the one-hot
        matrix, and backward returns None for dx (an index has no gradient).

        lengths: None, or (N,) integers in [1, T] (unbatched: one int): sequence n runs its steps
        t < lengths[n] only, as torch's pack_padded_sequence(x, lengths, enforce_sorted=False) gives: its
        outputs past its end are zero, its final state is the state after its own last step (a reverse
        direction starts at that step), and backward gives zero gradient past its end."""
        L, D, dt = self.num_layers, self.num_directions, self.dtype
        H = self._out_size  # the width of h and y (of each direction)
        local = self._per_thread
        no_grad = _GRAD_MODE.disabled  # (nn.grad_disabled(), inlined: this is the hot path)
        if not no_grad:  # (under no_grad this thread's pending training forward stays for its backward)
            pending = local.saved
            if pending is not None:  # a forward that fails must not leave an earlier one to backpropagate
                local.saved = None
                self._buffer_pool.give(pending[0], pending[1])
        keep = self.training and not no_grad
        xp = self.array_api()[0]
        x, own, batched, index_input = self._time_major_input(x)
        T, N = x.shape[:2]
        if T == 0 or N == 0:
            raise ValueError(f"x must have at least one time step and one sequence, got shape {x.shape}")
        h0, c0 = self._initial_state(hx, N, batched)
        order, own_state = None, False
        if lengths is not None:
            if not self._takes_lengths:
                raise NotImplementedError(f"{type(self).__name__} does not take lengths yet")
            lengths = _varlen.check_lengths(lengths, T, N, batched)
        if lengths is not None:  # the rows in the engines' order (rnnfast.backends.varlen), once for all layers
            order = _varlen.row_order(lengths)
            if order is not None:
                lengths = lengths[order]
                x, own = _varlen.take(x, order, xp), True
                h0 = _varlen.take(h0, order, xp)
                c0 = None if c0 is None else _varlen.take(c0, order, xp)
                own_state = True  # h0 (c0) is now the layer's own array: no private copy below
        dropout = self.dropout if self.training and L > 1 else 0.0
        masks = []

        h_n = xp.empty((L * D, N, H), dt)
        c_n = xp.empty((L * D, N, self.hidden_size), dt) if self._is_lstm else None
        engine = self._engine()
        key = None if self.device == "cpu" else self._stream_key()
        pool = self._buffer_pool
        scratch = pool.take(key)  # this call's caches and workspaces, one dict per (layer, direction)
        try:
            if keep:  # backward reads the layer's own x and hx: copies of the caller's (kept in the scratch dict)
                if not own:
                    x = _private(x, scratch, "x", xp)
                if hx is not None and not own_state:
                    h0 = _private(h0, scratch, "h0", xp)
                    c0 = None if c0 is None else _private(c0, scratch, "c0", xp)
            caches = []
            inp = x
            for layer in range(L):
                y = xp.empty((T, N, D * H), dt)
                layer_caches = []
                for d in range(D):
                    i = layer * D + d
                    out = {"y": y[:, :, d * H:(d + 1) * H], "h_n": h_n[i]}
                    if self._is_lstm:
                        out["c_n"] = c_n[i]
                    args = (self._cell, inp, h0[i], None if c0 is None else c0[i],
                            self._weights(layer, d, self._params), out, bool(d), keep, scratch.setdefault(i, {}))
                    opts = {} if lengths is None else {"lengths": lengths}
                    if self.zoneout:  # training: a mask of keep-new weights (1 - p kept new); eval: p
                        opts["zoneout"] = (self._dropout_mask((T, N, H), xp, self.zoneout, scale=False)
                                           if self.training else self.zoneout)
                    cache = engine.forward(*args, **opts)
                    layer_caches.append(cache)
                caches.append(layer_caches)
                if dropout and layer < L - 1:  # PyTorch's dropout on each layer's output but the last
                    mask = self._dropout_mask((T, N, D * H), xp)
                    y *= mask
                    masks.append(mask)
                inp = y
        except BaseException:
            pool.give(scratch, key)
            raise
        if keep:
            # what backward needs (a tuple, not a dict: this is the hot path of the smallest calls)
            local.saved = (scratch, key, caches, T, N, batched, index_input, self.learn_initial_state and hx is None,
                           order, masks)
        else:
            pool.give(scratch, key)

        y = inp
        if order is not None:  # back to the caller's order
            inv = _varlen.inverse(order)
            y = _varlen.take(y.transpose(1, 0, 2), inv, xp, 0) if self.batch_first else _varlen.take(y, inv, xp)
            h_n = _varlen.take(h_n, inv, xp)
            c_n = None if c_n is None else _varlen.take(c_n, inv, xp)
        elif self.batch_first and batched:
            y = xp.ascontiguousarray(y.transpose(1, 0, 2))
        if not batched:
            y, h_n = y[:, 0, :], h_n[:, 0, :]
            c_n = None if c_n is None else c_n[:, 0, :]
        return y, ((h_n, c_n) if self._is_lstm else h_n)

    def _dropout_mask(self, shape, xp, p=None, scale=True):
        """1 with probability 1 - p, else 0; scaled by 1/(1 - p) (inverted dropout, as PyTorch) or not
        (zoneout's keep-new mask). p: the layer's dropout by default."""
        p = self.dropout if p is None else p
        keep = self.generator.random(shape, dtype=np.float32) >= np.float32(p)
        mask = keep.astype(self.dtype)
        if scale:
            mask *= self.dtype.type(1.0 / (1.0 - p))
        return mask if xp is np else xp.asarray(mask)

    def _time_major_input(self, x):
        """x checked and made time-major (T, N, C), or int32 indices (T, N) for an engine that gathers them
        (else their one-hot matrix). Returns (x, own, batched, index_input); own: x is the layer's own array
        (a copy), not the caller's or a view of it: backward must not read the caller's x, which may change
        in place before then."""
        dt = self.dtype
        xp, check = self.array_api()
        if self.device == "cuda":
            x = cuda.as_cupy(x, "x")
        elif not isinstance(x, np.ndarray):
            _checks.check_array(x, "x", dt, (None, None, None))
        index_input = x.dtype.kind in "iu"
        if index_input:
            if x.ndim not in (1, 2):  # a (T, N, C) array of the wrong dtype, most likely
                raise TypeError(f"x must have dtype {dt.name}, got {x.dtype.name} (integer x stands for one-hot "
                                f"indices, 2-D ({'N, T' if self.batch_first else 'T, N'}) or 1-D (T,); got shape "
                                f"{x.shape})")
            check_index(x, "x", xp, self.input_size, "input_size")  # x's device was checked above
            batched = x.ndim == 2
            v = x if batched else x[:, None]
            if batched and self.batch_first:
                v = v.T
            if self._gathers_indices():  # the engine gathers: int32 (T, N)
                x = np.ascontiguousarray(v, dtype=np.int32)
                own = x is not v
            else:  # other engines get the one-hot matrix itself
                x, own = xp.ascontiguousarray(one_hot(v, self.input_size, dtype=dt)), True
        else:
            if x.ndim not in (2, 3):
                raise ValueError(f"x must be 3-D ({'N, T' if self.batch_first else 'T, N'}, input_size) or 2-D "
                                 f"(T, input_size), got shape {x.shape}")
            batched = x.ndim == 3
            c = check(x, "x", dt, (None,) * (x.ndim - 1) + (self.input_size,))
            own = c is not x
            if not batched:
                x = c[:, None, :]
            elif self.batch_first:
                t = c.transpose(1, 0, 2)
                x = xp.ascontiguousarray(t)
                own = own or x is not t
            else:
                x = c
        return x, own, batched, index_input

    def _initial_state(self, hx, N, batched):
        """(h0, c0) as (L*D, N, H) arrays (h0: proj_size wide with projections); from hx, the learned
        initial state, or zeros."""
        LD, dt = self.num_layers * self.num_directions, self.dtype
        xp, check = self.array_api()
        names = ("h0", "c0") if self._is_lstm else ("h0",)
        widths = (self._out_size, self.hidden_size)
        if hx is None:
            if self.learn_initial_state:
                states = [xp.ascontiguousarray(xp.broadcast_to(self._params[n][:, None, :], (LD, N, H)))
                          for n, H in zip(names, widths)]
            else:
                states = [xp.zeros((LD, N, H), dt) for _, H in zip(names, widths)]
        else:
            if self._is_lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError("hx for LSTM must be a tuple (h0, c0)")
                given = list(hx)
            else:
                given = [hx]
            states = []
            for n, s, H in zip(names, given, widths):
                s = check(s, n, dt, (LD, N, H) if batched else (LD, H))
                states.append(s if batched else s[:, None, :])
        return states[0], (states[1] if self._is_lstm else None)

    # ---- backward -----------------------------------------------------------------------------
    def backward(self, dy=None, dhx=None):
        """Backpropagate through time from this thread's last forward (in training mode).

        dy: gradient on y (same shape as y) or None; dhx: gradient on h_n (LSTM: a tuple (dh_n, dc_n),
        either may be None). Returns dx and dh0 (LSTM: (dh0, dc0)) shaped like x and h0 (dx is None after
        an integer x); parameter gradients are added to self.grads (and to grads['h0'/'c0'] with
        learn_initial_state). Backwards running in several threads add their gradients one after another.
        """
        cache = self._per_thread.saved
        if cache is None:
            raise RuntimeError("backward() needs a forward() in training mode first (each forward can be "
                               "backpropagated once)")
        L, D, dt = self.num_layers, self.num_directions, self.dtype
        H = self._out_size  # the width of h and y (of each direction)
        xp = self.array_api()[0]
        scratch, key, caches, T, N, batched, index_input, learned_state, order, masks = cache
        dy, dh_n, dc_n = self._output_grads(dy, dhx, T, N, batched, order)

        engine = self._engine()
        self._per_thread.saved = None  # each forward is backpropagated once
        dh0 = xp.empty((L * D, N, H), dt)
        dc0 = xp.empty((L * D, N, self.hidden_size), dt) if self._is_lstm else None

        # the lone backward (always, in one thread) adds into self.grads itself; one that finds another thread's
        # backward adding runs into its own zeroed arrays and adds those afterwards, so backwards run side by side
        lock = self._grads_mutex
        direct = lock.acquire(blocking=False)
        try:
            try:
                if direct:
                    grads = self.grads
                    if self.device != "cpu":
                        self._order_grads()
                else:
                    grads = _zeroed_like(self.grads, scratch, xp)
                d_out = dy
                for layer in reversed(range(L)):
                    in_size = self.input_size if layer == 0 else D * H
                    # integer input on the CPU engine: no dx at all (the engine skips it); elsewhere discarded
                    no_dx = layer == 0 and index_input and self._gathers_indices()
                    d_in = None if no_dx else xp.empty((T, N, in_size), dt)
                    for d in range(D):
                        i = layer * D + d
                        engine.backward(caches[layer][d], None if d_out is None else d_out[:, :, d * H:(d + 1) * H],
                                        None if dh_n is None else dh_n[i], None if dc_n is None else dc_n[i],
                                        d_in, d > 0, dh0[i], None if dc0 is None else dc0[i],
                                        self._weights(layer, d, grads), scratch[i])
                    if layer > 0 and masks:  # through the dropout on the layer below's output
                        d_in *= masks[layer - 1]
                    d_out = d_in
                if learned_state:  # the learned h0 (c0) was broadcast over the batch: sum its gradient
                    grads["h0"] += dh0.sum(axis=1)
                    if self._is_lstm:
                        grads["c0"] += dc0.sum(axis=1)
            finally:
                if direct:
                    lock.release()
            if not direct:
                with lock:
                    if self.device != "cpu":
                        self._order_grads()
                    for name, g in grads.items():
                        self.grads[name] += g
        finally:
            self._buffer_pool.give(scratch, key)

        dx = None if index_input else d_out  # integer input: no gradient
        if order is not None:  # back to the caller's order
            inv = _varlen.inverse(order)
            dx = None if dx is None else _varlen.take(dx, inv, xp)
            dh0 = _varlen.take(dh0, inv, xp)
            dc0 = None if dc0 is None else _varlen.take(dc0, inv, xp)
        if not batched:
            dx = None if dx is None else dx[:, 0, :]
            dh0 = dh0[:, 0, :]
            dc0 = None if dc0 is None else dc0[:, 0, :]
        elif self.batch_first and dx is not None:
            dx = xp.ascontiguousarray(dx.transpose(1, 0, 2))
        return dx, ((dh0, dc0) if self._is_lstm else dh0)

    def _output_grads(self, dy, dhx, T, N, batched, order=None):
        """dy and dhx checked and made time-major: (dy (T, N, D*H) or None, dh_n, dc_n) (None: zero); rows
        in the engines' order when `order` (variable lengths) is given."""
        L, D, dt = self.num_layers, self.num_directions, self.dtype
        H = self._out_size  # the width of h and y (of each direction)
        xp, check = self.array_api()
        seq_shape = ((N, T) if self.batch_first else (T, N)) if batched else (T,)
        st_shape = (L * D, N, H) if batched else (L * D, H)
        if dy is not None:
            dy = check(dy, "dy", dt, seq_shape + (D * H,))
            dy = dy[:, None, :] if not batched else (
                xp.ascontiguousarray(dy.transpose(1, 0, 2)) if self.batch_first else dy)
            if order is not None:
                dy = _varlen.take(dy, order, xp)
        if self._is_lstm:
            if dhx is None:
                dhx = (None, None)
            if not isinstance(dhx, (tuple, list)) or len(dhx) != 2:
                raise TypeError("dhx for LSTM must be a tuple (dh_n, dc_n) or None")
            names, given = ("dh_n", "dc_n"), list(dhx)
        else:
            names, given = ("dh_n",), [dhx]
        finals = []
        for name, g, w in zip(names, given, (H, self.hidden_size)):
            if g is not None:
                g = check(g, name, dt, st_shape[:-1] + (w,))
                g = g if batched else g[:, None, :]
                if order is not None:
                    g = _varlen.take(g, order, xp)
            finals.append(g)
        dh_n = finals[0]
        dc_n = finals[1] if self._is_lstm else None
        return dy, dh_n, dc_n

    # ---- devices ------------------------------------------------------------------------------
    def to(self, device):
        """Move parameters and gradients to 'cpu' (NumPy) or 'cuda' (CuPy, the current device); returns self.

        On 'cuda' the layer takes and returns CuPy arrays (objects with __cuda_array_interface__ or a CUDA
        __dlpack__, e.g. torch CUDA tensors, are accepted as inputs) and runs the CUDA engine.
        """
        check_device(device)
        return super().to(device)

    # ---- threads and buffers ------------------------------------------------------------------
    def _init_threads(self):
        super()._init_threads()
        self._buffer_pool = BufferPool()

    def _pool(self):
        return self._buffer_pool

    _UNCOPIED = Module._UNCOPIED + ("_buffer_pool", "_cuda_grads_order")
    _EAGER_THREADS = True

    def _order_grads(self):
        """On the GPU, under the grads lock, before adding into grads: order the additions made from several
        streams (rnnfast.backends.cuda.GradsOrder; nothing while one stream is used)."""
        self._lazy("_cuda_grads_order", _cuda_grads_order)()

    def _stream_key(self):
        """Where a call's buffer use is ordered: None on the CPU, the current CUDA stream on the GPU."""
        if self.device == "cuda":
            return cuda.stream_key()
        return None

    def _forget(self):
        self._init_threads()
        self.__dict__.pop("_cuda_grads_order", None)

    def array_api(self):
        """(array module, argument check) of the layer's device: (numpy, rnnfast._util.checks.check_array) on
        the CPU, (cupy, rnnfast.backends.cuda.check_array) on the GPU; modules that wrap a layer
        (nn.Conditioned, CharModel) take their arrays through it."""
        if self.device == "cuda":
            return cupy(), cuda.check_array
        return np, _checks.check_array

    def _gathers_indices(self):
        return self._cpu_takes_indices and self.device == "cpu" and self.engine == "cpu"

    def _engine(self):
        engine = engine_for(self._model, self.device, self.engine)
        if getattr(self, "proj_size", 0) and engine.name != "reference":  # LSTMP around the LSTM (projection.py)
            engine = ProjectedEngine(engine, self.array_api()[0])
        return engine

    def __repr__(self):
        opts = [f"{self.input_size}", f"{self.hidden_size}"]
        if self.num_layers != 1:
            opts.append(f"num_layers={self.num_layers}")
        for name in ("batch_first", "bidirectional", "learn_initial_state"):
            if getattr(self, name):
                opts.append(f"{name}=True")
        if self.dropout:
            opts.append(f"dropout={self.dropout}")
        if getattr(self, "proj_size", 0):
            opts.append(f"proj_size={self.proj_size}")
        if getattr(self, "zoneout", 0):
            opts.append(f"zoneout={self.zoneout}")
        if not self.bias:
            opts.append("bias=False")
        opts.append(f"dtype={self.dtype.name}")
        return f"{type(self).__name__}({', '.join(opts)})"



def _cuda_grads_order():
    return cuda.GradsOrder()


def _zeroed_like(grads, scratch, xp):
    """Zeroed arrays like `grads`, kept in the scratch dict for the next call that needs them."""
    own = scratch.get("grads")
    if own is None or own.keys() != grads.keys() or any(own[k].shape != g.shape for k, g in grads.items()):
        own = scratch["grads"] = {k: xp.zeros_like(g) for k, g in grads.items()}
    else:
        for g in own.values():
            g.fill(0)
    return own


def _private(a, saved, name, xp):
    """A copy of the caller's `a` in the buffer saved[name] (a call's scratch dict: reused by later calls).

    Backward reads the inputs a training forward saw: the copy keeps a later in-place change of the
    caller's array from changing the gradients (PyTorch refuses such a change with an error; here it is
    harmless, and costs one copy of x: measured in RESULTS.md).
    """
    own = saved.get(name)
    if own is None or own.shape != a.shape or own.dtype != a.dtype:
        own = saved[name] = xp.empty(a.shape, a.dtype)
    own[...] = a
    return own


class RNN(_RecurrentLayer):
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, bidirectional=False, dtype="float32", **kwargs):
        self.nonlinearity = _checks.one_of(nonlinearity, "nonlinearity", ("tanh", "relu"))
        super().__init__(E.RNN_RELU if nonlinearity == "relu" else E.RNN_TANH, input_size, hidden_size,
                         num_layers, bias, batch_first, bidirectional, dtype, **kwargs)


class LSTM(_RecurrentLayer):
    """LSTM with forget gate, PyTorch gate order (i, f, g, o): c = f c + i g, h = o tanh(c)."""

    _is_lstm = True

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 bidirectional=False, dtype="float32", **kwargs):
        super().__init__(E.LSTM, input_size, hidden_size, num_layers, bias, batch_first, bidirectional,
                         dtype, **kwargs)


class GRU(_RecurrentLayer):
    """GRU, gates (r, z, n). reset_after=True is PyTorch's/cuDNN's form, False is Cho et al. 2014's."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 bidirectional=False, dtype="float32", reset_after=True, **kwargs):
        self.reset_after = _checks.boolean(reset_after, "reset_after")
        super().__init__(E.GRU if self.reset_after else E.GRU_CHO, input_size, hidden_size, num_layers, bias,
                         batch_first, bidirectional, dtype, **kwargs)
