"""The module protocol and the containers (ModuleDict, ParameterDict), no_grad, state-dict loading.

The module protocol shared by layers, modules, optimizers and clipping:

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

from .._util import checks as _checks
from .._util.arrays import array_module
from ..backends.devices import mover

__all__ = ["Module", "ModuleDict", "Container", "ParameterDict", "no_grad", "grad_disabled", "keeps_for_backward",
           "load_arrays"]

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
        move = mover(device)
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
        mover(device)  # the device check, before any child moves
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
