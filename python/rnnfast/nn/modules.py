"""Small modules around the recurrent layers: Linear, Embedding, one_hot, Conditioned (the module protocol
is rnnfast.nn.base's)."""

import numpy as np

from .._util import checks as _checks
from .._util.arrays import array_module
from .._util.checks import check_array, check_index
from .base import Module, grad_disabled, keeps_for_backward

__all__ = ["Linear", "Embedding", "one_hot", "Conditioned"]


def _rng(seed):
    return np.random.default_rng(_checks.seed(seed))


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
            check_array(x, "x", self.dtype, (self.in_features,), xp)  # raises the right error
        x = check_array(x, "x", self.dtype, (None,) * (x.ndim - 1) + (self.in_features,), xp)
        y = x @ W.T
        if self.bias:
            y += self._params["bias"]
        # backward's x: a private copy, so that changing the caller's x in place before backward changes
        # nothing (a small share of a training forward + backward: RESULTS.md)
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
        dy = check_array(dy, "dy", self.dtype, x.shape[:-1] + (self.out_features,), array_module(W))
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
        idx = check_index(idx, "idx", array_module(W), self.num_embeddings, "num_embeddings")
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
        dy = check_array(dy, "dy", self.dtype, idx.shape + (self.embedding_dim,), xp)
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
    idx = check_index(idx, "idx", xp, num_classes, "num_classes")
    _checks.check_memory(idx.size * num_classes, 8, f"one_hot with num_classes={num_classes} and "
                         f"{idx.size} indices")
    return (idx[..., None] == xp.arange(num_classes)).astype(dtype)


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
        xp, check = self.layer.array_api()  # the layer's device: its array module and argument check
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
        dx = self.layer.array_api()[0].ascontiguousarray(dxv[..., :self.input_size])
        dv = dxv[..., self.input_size:].sum(axis=t_axis)
        return (dx, dv, dh0) if return_dh0 else (dx, dv)

    def state_dict(self):
        return self.layer.state_dict()

    def load_state_dict(self, state_dict, strict=True):
        self.layer.load_state_dict(state_dict, strict)
        return self

    def __repr__(self):
        return f"Conditioned({self.layer!r}, cond_size={self.cond_size})"
