"""Small modules around the recurrent layers: Linear, Embedding, one_hot, ModuleDict, Conditioned.

The module protocol shared by layers, these modules, optimizers and clipping:

    module.parameters() -> dict name -> array   the module's own (live) arrays; optimizers update them in place
    module.grads        -> dict, same keys, shapes and dtypes; backward() adds into them (+=)
    module.zero_grad()

Shapes: T = time steps, N = batch, C = input size, H = hidden size, V = conditioning size, K = classes.
Arrays may be NumPy or CuPy; array code goes through `xp = array_module(a)` (CuPy is imported only when
a CuPy array is seen). Inputs are never cast: a wrong dtype is a TypeError naming the argument.

Threads: a module may be called from several threads at once. What a forward keeps for backward is kept
per thread (a backward pairs with the last forward of its own thread), inputs are kept as private copies
(changing the caller's array in place before backward changes nothing), gradients are added into `grads`
under the module's lock, and `no_grad()` makes a thread's forwards keep nothing whatever the mode. What
stays the caller's to order: parameter updates (optimizer steps, load_state_dict, zero_grad, to()) against
calls running in other threads, as with PyTorch.
"""

import contextlib
import threading

import numpy as np

from . import _checks

__all__ = ["array_module", "to_host", "Module", "Linear", "Embedding", "one_hot", "ModuleDict", "Container",
           "ParameterDict", "Conditioned", "no_grad"]

class _GradMode(threading.local):
    disabled = False             # no_grad() is active in this thread


class _PerThread(threading.local):
    saved = None                 # what this thread's last forward kept for its backward


_GRAD_MODE = _GradMode()
_LAZY = threading.Lock()         # creates a module's per-thread record and lock, once


@contextlib.contextmanager
def no_grad():
    """In this thread, forwards keep nothing for backward (as in eval mode), whatever the modules' mode.

    torch.no_grad's rnnfast form: evaluate or sample a model that another thread is training, without
    switching it to eval mode under that thread's feet (CharModel.evaluate and sample use it). Unlike an
    eval-mode forward, a forward under no_grad leaves this thread's pending training forward in place: its
    backward still works afterwards.
    """
    before = _GRAD_MODE.disabled
    _GRAD_MODE.disabled = True
    try:
        yield
    finally:
        _GRAD_MODE.disabled = before


def grad_disabled():
    """Whether this thread is inside no_grad()."""
    return _GRAD_MODE.disabled


def keeps_for_backward(module):
    """Whether a forward of `module` in this thread keeps what backward needs: training mode, outside no_grad."""
    return bool(module.training) and not grad_disabled()


def array_module(a):
    """cupy if `a` is a CuPy array, else numpy (never imports cupy otherwise)."""
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy
        return cupy
    return np


def to_host(a):
    """a as a NumPy array: CuPy arrays are copied to the host, NumPy arrays returned as they are."""
    return a.get() if array_module(a) is not np else np.asarray(a)


def _mover(device):
    """The function that puts an array on `device` ('cpu' or 'cuda'), after the device check."""
    _checks.device(device)
    if device == "cuda":
        from . import _cuda
        return _cuda.cupy().asarray
    return to_host


def _rng(seed):
    return np.random.default_rng(_checks.seed(seed))


def _check_float(a, name, xp, dtype, shape):
    """An array of module xp with this dtype and shape (None matches any size); C-contiguous.

    NumPy arrays must also be finite. CuPy arrays are not scanned for NaN, as in the layers on CUDA: that
    would synchronise the host with the device at every call (the optimizers still refuse non-finite
    gradients before any update, with one synchronisation per step)."""
    if xp is np:
        return _checks.check_array(a, name, dtype, shape)
    if array_module(a) is not xp:
        raise TypeError(f"{name} must be a {xp.__name__} array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {a.dtype.name}")
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise ValueError(f"{name} must have shape {_checks.shape_str(shape)}, got {tuple(a.shape)}")
    return xp.ascontiguousarray(a)


def _check_index(idx, name, xp, num, what):
    """An integer array of module xp with every entry in [0, num)."""
    if array_module(idx) is not xp or not hasattr(idx, "dtype"):
        raise TypeError(f"{name} must be a {xp.__name__} integer array, got {type(idx).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {idx.dtype.name}")
    if idx.size and bool(((idx < 0) | (idx >= num)).any()):  # one test: one host sync on the GPU
        raise ValueError(f"{name} must be in [0, {what}={num}), got values in "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    return idx


def load_arrays(params, state_dict, strict=True):
    """Copy `state_dict` into the live arrays `params` (name -> array), checking names, shapes, finiteness.

    Nothing is written unless every entry passes. strict=False allows missing names (unknown names are
    always an error).
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"state_dict must be a dict of arrays, got {type(state_dict).__name__}")
    strict = _checks.boolean(strict, "strict")
    unknown = sorted(set(state_dict) - set(params))
    missing = sorted(set(params) - set(state_dict))
    if unknown:
        raise ValueError(f"state_dict has unknown entries {unknown}; expected names {list(params)}")
    if missing and strict:
        raise ValueError(f"state_dict is missing entries {missing}")
    converted = {}
    for name, value in state_dict.items():
        dst = params[name]
        xp = array_module(dst)
        try:
            arr = xp.asarray(value)
        except (TypeError, ValueError):  # e.g. a ragged nested list
            raise TypeError(f"state_dict[{name!r}] must be a floating-point array, got "
                            f"{type(value).__name__}") from None
        if arr.dtype.kind != "f":  # before the shape: None or a str is a wrong type, not a wrong shape
            raise TypeError(f"state_dict[{name!r}] must be floating point, got {arr.dtype}")
        if arr.shape != dst.shape:
            raise ValueError(f"state_dict[{name!r}] must have shape {dst.shape}, got {arr.shape}")
        if not bool(xp.isfinite(arr).all()):
            raise ValueError(f"state_dict[{name!r}] contains NaN or Inf")
        if not getattr(getattr(dst, "flags", None), "writeable", True):
            raise ValueError(f"parameter {name!r} is read-only (flags.writeable is False): load_state_dict "
                             "writes the parameters in place")
        converted[name] = arr
    for name, arr in converted.items():
        params[name][...] = arr
    return params


class Module:
    """Base of the modules here: own parameters in self._params, gradients in self.grads."""

    training = True
    device = "cpu"

    # ---- threads ------------------------------------------------------------------------------
    def _lazy(self, name, make):
        """self.<name>, made by make() on first use (modules built without Module.__init__ get it too)."""
        value = self.__dict__.get(name)
        if value is None:
            with _LAZY:
                value = self.__dict__.get(name)
                if value is None:
                    value = make()
                    setattr(self, name, value)
        return value

    def _thread(self):
        """This module's per-thread record (a threading.local): .saved is what this thread's last forward
        kept for its backward."""
        return self._lazy("_per_thread", _PerThread)

    def _saved(self):
        return self._thread().saved

    def _save(self, value):
        self._thread().saved = value

    def _grads_lock(self):
        """Held while a backward adds into self.grads: concurrent backwards add one after the other."""
        return self._lazy("_grads_mutex", threading.Lock)

    def _init_threads(self):
        """Make the per-thread record and the gradients' lock now (the layers do, for their hot path; other
        modules make them on first use)."""
        self._per_thread = _PerThread()
        self._grads_mutex = threading.Lock()

    def __getstate__(self):  # copy.deepcopy / pickle: locks and per-thread records are not copied
        state = dict(self.__dict__)
        for name in self._UNCOPIED:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self._EAGER_THREADS:
            self._init_threads()

    _UNCOPIED = ("_per_thread", "_grads_mutex")
    _EAGER_THREADS = False  # whether _init_threads runs at construction (and so for a copy too)

    def parameters(self):
        """The parameters by name (the module's own arrays: updating them in place updates it)."""
        return dict(self._params)

    def zero_grad(self):
        for name, g in self.grads.items():
            try:
                g.fill(0)
            except ValueError:  # NumPy: "assignment destination is read-only"
                raise ValueError(f"grads[{name!r}] is read-only (flags.writeable is False): zero_grad() "
                                 "clears the gradients in place") from None

    def train(self, mode=True):
        """Training mode (default) keeps what backward needs; eval mode keeps nothing."""
        self.training = _checks.boolean(mode, "mode")
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        """A copy of the parameters, by name."""
        return {name: p.copy() for name, p in self.parameters().items()}

    def load_state_dict(self, state_dict, strict=True):
        load_arrays(self.parameters(), state_dict, strict)
        return self

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- devices ------------------------------------------------------------------------------
    def to(self, device):
        """Move parameters and gradients to 'cpu' (NumPy) or 'cuda' (CuPy, the current device); returns self.

        What a forward kept for backward is dropped (backward then needs a new forward). As torch's
        Module.to, the parameter arrays are replaced: an optimizer built before the move still holds the
        old ones, so move first, then build the optimizer.
        """
        move = _mover(device)
        if device != self.device:
            self._params = {k: move(v) for k, v in self._params.items()}
            self.grads = {k: move(v) for k, v in self.grads.items()}
            self._forget()
            self.device = device
        return self

    def cuda(self):
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    def _forget(self):
        """Drop what forwards kept for backward, in every thread (after a move)."""
        self.__dict__.pop("_per_thread", None)

    def _init_grads(self):
        self.grads = {name: array_module(p).zeros_like(p) for name, p in self._params.items()}


class ParameterDict(Module):
    """A module over given arrays (kept, not copied): e.g. a learned vector, or a test's parameters."""

    def __init__(self, arrays=None, **kwargs):
        if arrays is not None and not hasattr(arrays, "items"):
            raise TypeError(f"arrays must be a dict of name -> array, got {type(arrays).__name__}")
        arrays = dict(arrays or {}, **kwargs)
        for name, a in arrays.items():
            if not hasattr(a, "dtype") or a.dtype.kind != "f":
                raise TypeError(f"parameter {name!r} must be a floating-point array, got "
                                f"{getattr(a, 'dtype', type(a).__name__)}")
        devices = {"cpu" if array_module(a) is np else "cuda" for a in arrays.values()}
        if len(devices) > 1:
            raise TypeError("arrays must all be NumPy arrays or all CuPy arrays, got both")
        self.device = devices.pop() if devices else "cpu"  # where the given arrays live
        self._params = arrays
        self._init_grads()


class Linear(Module):
    """y = x W^T + b on (..., in_features) -> (..., out_features); PyTorch's names, shapes and init."""

    def __init__(self, in_features, out_features, bias=True, dtype="float32", seed=None):
        self.in_features = _checks.positive_int(in_features, "in_features")
        self.out_features = _checks.positive_int(out_features, "out_features")
        self.bias = _checks.boolean(bias, "bias")
        self.dtype = _checks.as_dtype(dtype)
        _checks.check_memory(2 * (self.out_features * (self.in_features + 1)), 8,
                             f"Linear(in_features={self.in_features}, out_features={self.out_features})")
        rng = _rng(seed)
        k = 1.0 / np.sqrt(self.in_features)  # PyTorch: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
        self._params = {"weight": rng.uniform(-k, k, (self.out_features, self.in_features)).astype(self.dtype)}
        if self.bias:
            self._params["bias"] = rng.uniform(-k, k, (self.out_features,)).astype(self.dtype)
        self._init_grads()

    def forward(self, x):
        W = self._params["weight"]
        xp = array_module(W)
        if not hasattr(x, "ndim") or x.ndim < 1:
            _check_float(x, "x", xp, self.dtype, (self.in_features,))  # raises the right error
        x = _check_float(x, "x", xp, self.dtype, (None,) * (x.ndim - 1) + (self.in_features,))
        y = x @ W.T
        if self.bias:
            y += self._params["bias"]
        # backward's x: a private copy, so that changing the caller's x in place before backward changes
        # nothing (measured: ~1% of a training forward + backward at the char model's sizes, RESULTS.md)
        if keeps_for_backward(self):
            self._save(x.copy())
        elif not grad_disabled():
            self._save(None)  # an eval-mode forward: the last training forward can no longer be backpropagated
        return y

    def backward(self, dy):
        """dy: (..., out_features) like this thread's last forward's output. Returns dx; adds dW, db to grads."""
        x = self._saved()
        if x is None:
            raise RuntimeError("backward() needs a forward() in training mode first (each forward can be "
                               "backpropagated once)")
        W = self._params["weight"]
        dy = _check_float(dy, "dy", array_module(W), self.dtype, x.shape[:-1] + (self.out_features,))
        self._save(None)
        dy2 = dy.reshape(-1, self.out_features)
        dw = dy2.T @ x.reshape(-1, self.in_features)
        db = dy2.sum(axis=0) if self.bias else None
        with self._grads_lock():
            self.grads["weight"] += dw
            if self.bias:
                self.grads["bias"] += db
        return dy @ W

    def __repr__(self):
        return (f"Linear({self.in_features}, {self.out_features}"
                f"{'' if self.bias else ', bias=False'}, dtype={self.dtype.name})")


class Embedding(Module):
    """A lookup table: weight (num_embeddings, embedding_dim), init N(0, 1) as PyTorch's."""

    def __init__(self, num_embeddings, embedding_dim, dtype="float32", seed=None):
        self.num_embeddings = _checks.positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = _checks.positive_int(embedding_dim, "embedding_dim")
        self.dtype = _checks.as_dtype(dtype)
        _checks.check_memory(2 * self.num_embeddings * self.embedding_dim, 8,
                             f"Embedding(num_embeddings={self.num_embeddings}, "
                             f"embedding_dim={self.embedding_dim})")
        rng = _rng(seed)
        self._params = {"weight": rng.standard_normal((self.num_embeddings, self.embedding_dim))
                        .astype(self.dtype)}
        self._init_grads()

    def forward(self, idx):
        """idx: integer array (...) with entries in [0, num_embeddings) -> (..., embedding_dim)."""
        W = self._params["weight"]
        idx = _check_index(idx, "idx", array_module(W), self.num_embeddings, "num_embeddings")
        if keeps_for_backward(self):
            self._save(idx.copy())  # private: see Linear.forward
        elif not grad_disabled():
            self._save(None)
        return W[idx]

    def backward(self, dy):
        """dy: (..., embedding_dim); adds into grads['weight'] (repeated indices add up). Returns None."""
        idx = self._saved()
        if idx is None:
            raise RuntimeError("backward() needs a forward() in training mode first (each forward can be "
                               "backpropagated once)")
        W = self._params["weight"]
        xp = array_module(W)
        dy = _check_float(dy, "dy", xp, self.dtype, idx.shape + (self.embedding_dim,))
        self._save(None)
        with self._grads_lock():
            if xp is np:
                np.add.at(self.grads["weight"], idx, dy)
            else:  # cupyx.scatter_add is CuPy's np.add.at
                import cupyx
                cupyx.scatter_add(self.grads["weight"], idx, dy)
        return None

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype.name})"


def one_hot(idx, num_classes, dtype="float32"):
    """idx: integer array (...) in [0, num_classes) -> (..., num_classes) with a 1 at each index."""
    num_classes = _checks.positive_int(num_classes, "num_classes")
    dtype = _checks.as_dtype(dtype)
    xp = array_module(idx)
    idx = _check_index(idx, "idx", xp, num_classes, "num_classes")
    _checks.check_memory(idx.size * num_classes, 8, f"one_hot with num_classes={num_classes} and "
                         f"{idx.size} indices")
    return (idx[..., None] == xp.arange(num_classes)).astype(dtype)


class ModuleDict(Module):
    """Named child modules whose parameters/grads merge under dotted names ("rnn.weight_ih_l0", "out.bias").

        model = ModuleDict(rnn=rnnfast.RNN(K, H), out=Linear(H, K))
        model.rnn(x); model["out"]; model.parameters(); model.zero_grad(); model.state_dict()

    A child is anything with parameters() and grads (layers, these modules, other ModuleDicts).
    """

    def __init__(self, modules=None, /, **kwargs):
        if modules is not None and not hasattr(modules, "items"):
            raise TypeError(f"modules must be a dict of name -> module, got {type(modules).__name__}")
        mods = dict(modules or {}, **kwargs)
        if not mods:
            raise ValueError("modules must name at least one module")
        for name, m in mods.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"module names must be identifiers without dots, got {name!r}")
            if not (hasattr(m, "parameters") and hasattr(m, "grads")):
                raise TypeError(f"module {name!r} must have parameters() and grads, got {type(m).__name__}")
        self._modules = mods

    def __getattr__(self, name):
        mods = self.__dict__.get("_modules", {})
        if name in mods:
            return mods[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or module {name!r}")

    def __getitem__(self, name):
        return self._modules[name]

    def __iter__(self):
        return iter(self._modules)

    def __len__(self):
        return len(self._modules)

    def items(self):
        return self._modules.items()

    def parameters(self):
        return {f"{m}.{k}": p for m, mod in self._modules.items() for k, p in mod.parameters().items()}

    @property
    def grads(self):
        return {f"{m}.{k}": g for m, mod in self._modules.items() for k, g in mod.grads.items()}

    def zero_grad(self):
        for mod in self._modules.values():
            mod.zero_grad()

    def train(self, mode=True):
        self.training = _checks.boolean(mode, "mode")
        for mod in self._modules.values():
            if hasattr(mod, "train"):
                mod.train(mode)
        return self

    @property
    def device(self):
        """The children's device ('cpu' or 'cuda'), or 'mixed' when they differ."""
        devices = {getattr(m, "device", "cpu") for m in self._modules.values()}
        return devices.pop() if len(devices) == 1 else "mixed"

    def to(self, device):
        """Move every child module (see Module.to); returns self."""
        _mover(device)  # the device check, before any child moves
        fixed = [name for name, m in self._modules.items() if not hasattr(m, "to")]
        if fixed:  # refused before any child moves: a dict half on each device helps nobody
            raise TypeError(f"module(s) {fixed} have no to(): the ModuleDict cannot move")
        for mod in self._modules.values():
            mod.to(device)
        return self

    def forward(self, *args, **kwargs):
        raise TypeError("ModuleDict has no forward(); call its modules")

    def __repr__(self):
        inner = ",\n".join(f"  {k}={m!r}" for k, m in self._modules.items())
        return f"ModuleDict(\n{inner}\n)"


Container = ModuleDict


class Conditioned(Module):
    """A recurrent layer fed [x_t, v] at every step: the captioning RNN h = tanh(W_xh x + W_hh h + W_ih v).

    Build the layer with input_size = C + V; its weight_ih_l0[:, :C] is W_xh and weight_ih_l0[:, C:] is the
    lecture's W_ih (v enters the first layer only). Parameters and grads are the layer's, same names.

        cap = Conditioned(rnnfast.RNN(C + V, H), cond_size=V)
        y, h_n = cap(x, v)               # x: (T, N, C) (or batch_first (N, T, C), or (T, C)); v: (N, V) / (V,)
        dx, dv = cap.backward(dy)        # dv = sum over t of dL/d(v at step t)
    """

    def __init__(self, layer, cond_size):
        if not (hasattr(layer, "input_size") and hasattr(layer, "backward")):
            raise TypeError(f"layer must be an rnnfast recurrent layer, got {type(layer).__name__}")
        self.layer = layer
        self.cond_size = _checks.positive_int(cond_size, "cond_size")
        if layer.input_size <= self.cond_size:
            raise ValueError(f"cond_size must be < layer.input_size={layer.input_size} (input_size = C + V), "
                             f"got {cond_size}")
        self.input_size = layer.input_size - self.cond_size

    def parameters(self):
        return self.layer.parameters()

    @property
    def grads(self):
        return self.layer.grads

    def zero_grad(self):
        self.layer.zero_grad()

    def train(self, mode=True):
        self.layer.train(mode)
        self.training = self.layer.training
        return self

    @property
    def device(self):
        return self.layer.device

    def to(self, device):
        self.layer.to(device)
        self._forget()
        return self

    def forward(self, x, v, hx=None):
        C, V, dt = self.input_size, self.cond_size, self.layer.dtype
        xp, check = self.layer._array_api()  # the layer's device: its array module and argument check
        if not hasattr(x, "ndim") or x.ndim not in (2, 3):
            raise ValueError(f"x must be 3-D (T, N, C) / (N, T, C) or 2-D (T, C), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        x = check(x, "x", dt, (None,) * (x.ndim - 1) + (C,))
        if x.ndim == 3:
            t_axis = 1 if self.layer.batch_first else 0
            v = check(v, "v", dt, (x.shape[1 - t_axis], V))
            vt = xp.expand_dims(v, t_axis)
        else:
            t_axis = 0
            v = check(v, "v", dt, (V,))
            vt = v[None, :]
        xv = xp.concatenate([x, xp.broadcast_to(vt, x.shape[:-1] + (V,))], axis=-1)
        if not grad_disabled():
            self._save(None)
        out = self.layer.forward(xv, hx)  # xv is new: the layer keeps it without a copy
        if keeps_for_backward(self.layer):
            self._save(t_axis)
        return out

    def backward(self, dy=None, dhx=None, return_dh0=False):
        """Returns (dx, dv), or (dx, dv, dh0) with return_dh0=True; parameter grads go to the layer."""
        t_axis = self._saved()
        if t_axis is None:
            raise RuntimeError("backward() needs a forward() in training mode first")
        dxv, dh0 = self.layer.backward(dy, dhx)
        self._save(None)
        dx = self.layer._array_api()[0].ascontiguousarray(dxv[..., :self.input_size])
        dv = dxv[..., self.input_size:].sum(axis=t_axis)
        return (dx, dv, dh0) if return_dh0 else (dx, dv)

    def state_dict(self):
        return self.layer.state_dict()

    def load_state_dict(self, state_dict, strict=True):
        self.layer.load_state_dict(state_dict, strict)
        return self

    def __repr__(self):
        return f"Conditioned({self.layer!r}, cond_size={self.cond_size})"
