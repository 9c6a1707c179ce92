"""The first-order optimizers (SGD, RMSprop, Adagrad, Adam) and their base class; see rnnfast.optim."""

import math

import numpy as np

from .. import _core  # the compiled kernels for NumPy arrays (Adam's update, clipping's sum of squares)
from .._util import checks
from .._util.arrays import array_module

__all__ = ["Optimizer", "SGD", "RMSprop", "Adagrad", "Adam"]


def _modules(params):
    """params -> list of (name prefix, module)."""
    if isinstance(params, Optimizer):
        return list(params._modules)
    if hasattr(params, "parameters") and hasattr(params, "grads"):
        return [("", params)]
    if isinstance(params, dict):
        items = [(f"{k}.", m) for k, m in params.items()]
    elif isinstance(params, (list, tuple)):
        items = [(f"{i}.", m) for i, m in enumerate(params)]
    else:
        raise TypeError(f"params must be a module (parameters() and grads), a list/tuple or dict of modules, "
                        f"got {type(params).__name__}")
    for prefix, m in items:
        if not (hasattr(m, "parameters") and hasattr(m, "grads")):
            raise TypeError(f"params[{prefix[:-1]!r}] must be a module with parameters() and grads, got "
                            f"{type(m).__name__}")
    return items


def _named(modules):
    """[(name, param, grad)] in a stable order, checked: unique names, grads shaped like params."""
    out, seen, arrays = [], set(), {}
    for prefix, m in modules:
        grads = m.grads
        for k, p in m.parameters().items():
            name = prefix + k
            if name in seen:
                raise ValueError(f"params has the parameter name {name!r} twice")
            if id(p) in arrays:  # it would be updated twice per step
                raise ValueError(f"params holds the same array twice, as {arrays[id(p)]!r} and {name!r}")
            seen.add(name)
            arrays[id(p)] = name
            g = grads.get(k)
            if g is None or g.shape != p.shape or g.dtype != p.dtype:
                raise ValueError(f"grads[{name!r}] must exist with the shape and dtype of the parameter "
                                 f"{p.shape} {p.dtype}")
            out.append((name, p, g))
    return out


def _check_writeable(a, what):
    if not getattr(getattr(a, "flags", None), "writeable", True):  # CuPy arrays have no such flag
        raise ValueError(f"{what} is read-only (flags.writeable is False): it is updated in place")


def _triples(params):
    """(name, param, grad) triples of params; an Optimizer's bound list when given one."""
    return params.named_parameters() if isinstance(params, Optimizer) else _named(_modules(params))


def _all_finite(g):
    if isinstance(g, np.ndarray) and g.flags.c_contiguous and g.dtype in (np.float32, np.float64):
        return _core.all_finite(g)  # one pass, no temporary
    return array_module(g).isfinite(g).all()


def _check_finite(triples):
    flags = [_all_finite(g) for _, _, g in triples]
    if not flags:
        return
    xp = array_module(triples[0][2])
    ok = np.asarray(flags if xp is np else xp.stack(flags).get())  # one host sync on GPU
    if not ok.all():
        bad = [name for (name, _, _), f in zip(triples, ok) if not f]
        raise ValueError(f"gradient of parameter {bad[0]!r} contains NaN or Inf (non-finite gradients: "
                         f"{bad}); nothing was updated")


# ---- base ----------------------------------------------------------------------------------------
class Optimizer:
    """Base: collects (name, param, grad) from modules; subclasses define _validate and _update.

    `defaults` holds the hyperparameters (validated); `lr` is a settable attribute (for schedules);
    `state[name]` holds "step" (int) and the subclass's buffers (arrays like the parameter).
    """

    _buffers = ()

    def __init__(self, params, **defaults):
        self._modules = _modules(params)
        triples = _named(self._modules)
        # The parameter and gradient arrays are bound here, as torch.optim binds its tensors: modules
        # update both in place (optimizers, load_state_dict, zero_grad), so the list stays valid and a
        # step does not re-walk and re-check the modules (a cost that shows at small models' sizes).
        self._triples = triples
        if not triples:
            raise ValueError("params has no parameters to optimize")
        for name, p, _ in triples:
            if p.dtype not in (np.float32, np.float64):  # float16 state underflows (Adam's eps is 0 there)
                raise TypeError(f"parameter {name!r} must be float32 or float64, got {p.dtype}")
            _check_writeable(p, f"parameter {name!r}")
        self.param_names = [name for name, _, _ in triples]
        self.defaults = self._validate(defaults)
        self.state = {name: {"step": 0} for name in self.param_names}

    def _validate(self, hp):
        return dict(hp)

    @property
    def lr(self):
        return self.defaults["lr"]

    @lr.setter
    def lr(self, value):
        self.defaults["lr"] = checks.real(value, "lr", low=0)

    def named_parameters(self):
        """[(name, param, grad)], the arrays bound at construction."""
        return list(self._triples)

    def zero_grad(self):
        for _, _, g in self.named_parameters():
            g.fill(0)

    def add_steps(self, n):
        """Count n steps taken outside step(), by a loop that applies this optimizer's update itself (the fused
        min-char-rnn loop, rnnfast.char.model.FusedMinCharRNN), so that the step counts stay right."""
        n = checks.positive_int(n, "n", minimum=0)
        for st in self.state.values():
            st["step"] += n

    def step(self):
        triples = self.named_parameters()
        _check_finite(triples)
        for name, p, _ in triples:  # made read-only after construction: refuse before changing anything
            _check_writeable(p, f"parameter {name!r}")
        for name, p, g in triples:
            st = self.state[name]
            st["step"] += 1
            self._update(p, g, st, array_module(p))

    def _decayed(self, p, g):
        wd = self.defaults.get("weight_decay", 0.0)
        return g + wd * p if wd else g  # L2 penalty added to the gradient, as torch (grad itself untouched)

    # ---- state ----------------------------------------------------------------------------------
    def state_dict(self):
        d = {"optimizer": type(self).__name__}
        d.update(self.defaults)
        for name, st in self.state.items():
            for key, v in st.items():
                d[f"state.{name}.{key}"] = int(v) if key == "step" else (
                    v.get() if array_module(v) is not np else v.copy())
        return d

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and buffers; names, buffer kinds and shapes are checked first."""
        if not hasattr(state_dict, "items"):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        d = dict(state_dict)
        kind = d.pop("optimizer", None)
        if kind is not None and str(kind) != type(self).__name__:
            raise ValueError(f"state_dict is for optimizer {str(kind)!r}, not {type(self).__name__!r}")
        hp = dict(self.defaults)
        for key in list(d):
            if key in hp:
                hp[key] = d.pop(key)
        hp = self._validate(hp)
        params = {name: p for name, p, _ in self.named_parameters()}
        new_state = {name: {"step": 0} for name in self.param_names}
        for key, value in d.items():
            if not isinstance(key, str) or not key.startswith("state.") or key.count(".") < 2:
                raise ValueError(f"state_dict has an unknown entry {key!r}")
            name, buf = key[len("state."):].rsplit(".", 1)
            if name not in params:
                raise ValueError(f"state_dict entry {key!r} names an unknown parameter {name!r}; "
                                 f"parameters are {self.param_names}")
            if buf == "step":
                step = np.asarray(value)
                if step.ndim != 0 or step.dtype.kind not in "iu" or int(step) < 0:
                    raise ValueError(f"state_dict[{key!r}] must be a non-negative int, got {value!r}")
                new_state[name]["step"] = int(step)
                continue
            if buf not in self._buffers:
                raise ValueError(f"state_dict entry {key!r}: {type(self).__name__} has no buffer {buf!r} "
                                 f"(buffers: {list(self._buffers)})")
            p = params[name]
            xp = array_module(p)
            arr = xp.asarray(value)
            if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
                raise TypeError(f"state_dict[{key!r}] must be a floating-point array, got {arr.dtype}")
            if arr.shape != p.shape:
                raise ValueError(f"state_dict[{key!r}] must have shape {p.shape}, got {arr.shape}")
            if arr.dtype.kind != "f" or not bool(xp.isfinite(arr).all()):
                raise ValueError(f"state_dict[{key!r}] must be finite floating point")
            new_state[name][buf] = arr.astype(p.dtype, copy=True)
        self.defaults, self.state = hp, new_state
        return self

    def __repr__(self):
        hp = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({len(self.param_names)} parameters, {hp})"


# ---- optimizers ----------------------------------------------------------------------------------
class SGD(Optimizer):
    """torch.optim.SGD: g = grad + wd p; b = g (first step), else b = m b + (1 - dampening) g;
    g = g + m b (nesterov) or b; p -= lr g."""

    _buffers = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay)

    def _validate(self, hp):
        out = dict(lr=checks.real(hp["lr"], "lr", low=0), momentum=checks.real(hp["momentum"], "momentum", low=0),
                   dampening=checks.real(hp["dampening"], "dampening", low=0, high=1),
                   nesterov=checks.boolean(hp["nesterov"], "nesterov"),
                   weight_decay=checks.real(hp["weight_decay"], "weight_decay", low=0))
        if out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0")
        return out

    def _update(self, p, g, st, xp):
        hp = self.defaults
        g = self._decayed(p, g)
        m = hp["momentum"]
        if m:
            if "momentum_buffer" not in st:
                st["momentum_buffer"] = g.copy()
            else:
                b = st["momentum_buffer"]
                b *= m
                b += (1 - hp["dampening"]) * g
            b = st["momentum_buffer"]
            g = g + m * b if hp["nesterov"] else b
        p -= hp["lr"] * g


class RMSprop(Optimizer):
    """torch.optim.RMSprop, the lecture's "rmsprop with momentum" (Hinton; Sutskever 2012):

        s = alpha s + (1 - alpha) g^2                         square_avg
        a = alpha a + (1 - alpha) g;  d = sqrt(s - a^2) + eps  centered (grad_avg), else d = sqrt(s) + eps
        b = momentum b + g / d;  p -= lr b                    with momentum, else p -= lr g / d
    """

    _buffers = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, centered=False,
                 weight_decay=0.0):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered,
                         weight_decay=weight_decay)

    def _validate(self, hp):
        return dict(lr=checks.real(hp["lr"], "lr", low=0), alpha=checks.real(hp["alpha"], "alpha", low=0, high=1),
                    eps=checks.real(hp["eps"], "eps", low=0, low_open=True),
                    momentum=checks.real(hp["momentum"], "momentum", low=0),
                    centered=checks.boolean(hp["centered"], "centered"),
                    weight_decay=checks.real(hp["weight_decay"], "weight_decay", low=0))

    def _update(self, p, g, st, xp):
        hp = self.defaults
        g = self._decayed(p, g)
        alpha = hp["alpha"]
        s = st.setdefault("square_avg", xp.zeros_like(p))
        s *= alpha
        s += (1 - alpha) * g * g
        if hp["centered"]:
            a = st.setdefault("grad_avg", xp.zeros_like(p))
            a *= alpha
            a += (1 - alpha) * g
            d = xp.sqrt(s - a * a) + hp["eps"]
        else:
            d = xp.sqrt(s) + hp["eps"]
        if hp["momentum"] > 0:
            b = st.setdefault("momentum_buffer", xp.zeros_like(p))
            b *= hp["momentum"]
            b += g / d
            p -= hp["lr"] * b
        else:
            p -= hp["lr"] * (g / d)


class Adagrad(Optimizer):
    """torch.optim.Adagrad: S += g^2; p -= lr_t g / (sqrt(S) + eps), lr_t = lr / (1 + (t - 1) lr_decay).

    eps_inside_sqrt=True gives min-char-rnn's form p -= lr g / sqrt(S + eps) (Karpathy uses lr=0.1,
    eps=1e-8); torch's form (the default) adds eps outside the square root.
    """

    _buffers = ("sum",)

    def __init__(self, params, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, eps_inside_sqrt=False):
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps,
                         eps_inside_sqrt=eps_inside_sqrt)

    def _validate(self, hp):
        return dict(lr=checks.real(hp["lr"], "lr", low=0), lr_decay=checks.real(hp["lr_decay"], "lr_decay", low=0),
                    weight_decay=checks.real(hp["weight_decay"], "weight_decay", low=0),
                    initial_accumulator_value=checks.real(hp["initial_accumulator_value"],
                                                    "initial_accumulator_value", low=0),
                    eps=checks.real(hp["eps"], "eps", low=0, low_open=True),
                    eps_inside_sqrt=checks.boolean(hp["eps_inside_sqrt"], "eps_inside_sqrt"))

    def _sum(self, st, p):
        """The parameter's accumulator S, created (initial_accumulator_value) on first use."""
        S = st.get("sum")
        if S is None:
            S = st["sum"] = array_module(p).full_like(p, self.defaults["initial_accumulator_value"])
        return S

    def sums(self):
        """The accumulators S of every parameter, in named_parameters() order, created as the first step()
        creates them: the live arrays, for a loop that applies Adagrad's update itself and then reports its
        steps with add_steps() (rnnfast.char.model.FusedMinCharRNN)."""
        return [self._sum(self.state[name], p) for name, p, _ in self.named_parameters()]

    def _update(self, p, g, st, xp):
        hp = self.defaults
        g = self._decayed(p, g)
        S = self._sum(st, p)
        S += g * g
        clr = hp["lr"] / (1 + (st["step"] - 1) * hp["lr_decay"])
        d = xp.sqrt(S + hp["eps"]) if hp["eps_inside_sqrt"] else xp.sqrt(S) + hp["eps"]
        p -= clr * (g / d)


class Adam(Optimizer):
    """torch.optim.Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    _buffers = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _validate(self, hp):
        betas = hp["betas"]
        if isinstance(betas, np.ndarray):
            betas = betas.tolist()
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        betas = tuple(checks.real(b, f"betas[{i}]", low=0, high=1, high_open=True) for i, b in enumerate(betas))
        return dict(lr=checks.real(hp["lr"], "lr", low=0), betas=betas,
                    eps=checks.real(hp["eps"], "eps", low=0, low_open=True),
                    weight_decay=checks.real(hp["weight_decay"], "weight_decay", low=0))

    def _update(self, p, g, st, xp):
        hp = self.defaults
        b1, b2 = hp["betas"]
        # (not st.setdefault(..., zeros_like(p)): that allocates the zeros at every step)
        m, v = st.get("exp_avg"), st.get("exp_avg_sq")
        if m is None:
            m = st["exp_avg"] = xp.zeros_like(p)
        if v is None:
            v = st["exp_avg_sq"] = xp.zeros_like(p)
        t = st["step"]
        if xp is np and p.flags.c_contiguous and g.flags.c_contiguous:
            # one pass in C++ with the same operations and roundings as the NumPy code below
            # (csrc/cpu/adam.cpp); NumPy makes ~10 passes with temporaries
            _core.adam_update(p, g, m, v, b1, 1 - b1, b2, 1 - b2, hp["eps"], hp["weight_decay"],
                              hp["lr"] / (1 - b1 ** t), math.sqrt(1 - b2 ** t))
            return
        g = self._decayed(p, g)
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        denom = xp.sqrt(v) / math.sqrt(1 - b2 ** t) + hp["eps"]
        p -= (hp["lr"] / (1 - b1 ** t)) * (m / denom)
