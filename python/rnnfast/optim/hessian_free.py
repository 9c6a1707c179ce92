"""Hessian-free optimization (Martens 2010; Martens & Sutskever 2011) for recurrent networks.

    model = SequenceModel(rnnfast.RNN(C, H, dtype="float64"), nn.Linear(H, K, dtype="float64"))
    opt = HessianFree(model, loss="mse", damping=1.0, structural_damping=0.3)
    stats = opt.step(x, y, mask=losses.target_mask(T, N, "last"), curvature_subset=0.25)

Each step is one truncated Newton step. With f the mean loss, g its gradient on the batch and
G = J^T H_L J the Gauss-Newton matrix (J: d outputs / d parameters; H_L: the Hessian of the loss with
respect to the outputs, positive semi-definite for the matching losses supported here, softmax
cross-entropy and MSE), preconditioned conjugate gradient minimises the damped quadratic model

    q(p) = g^T p + 1/2 p^T (G + lambda I + mu lambda J_h^T J_h / N) p

where the last term is structural damping: the change of the hidden states that p would cause
(J_h p, their R-op values) is penalised, with weight mu lambda per sequence, summed over time steps.
Every curvature product is one R-op pass (J v) and one backward pass (J^T (H_L J v + ...)); G is never
formed. The curvature is measured on a subset of the batch (curvature_subset); the gradient on all of it.

The step then takes, in order:
  * CG-backtracking: the loss is evaluated at CG iterates saved at iterations ceil(1.3^j) and the last;
    walking back from the last while the loss keeps falling picks the best one, p;
  * the reduction ratio rho = (f(theta + p) - f(theta)) / (g^T p + 1/2 p^T G p), with the undamped
    quadratic; lambda *= damping_boost (3/2) when rho < 1/4, lambda *= damping_drop (2/3) when rho > 3/4;
  * a backtracking line search: the largest a in 1, 0.8, 0.8^2, ... with f(theta + a p) <=
    f(theta) + 1e-2 a g^T p (Armijo); when none passes the step is rejected (theta unchanged) and lambda
    is raised;
  * the next CG run starts from cg_decay (0.95) times this run's last iterate (warm start).

Never NaN: the parameters only ever move to a point whose loss is finite. A trial point whose loss is NaN
or Inf counts as no improvement; if every trial point is non-finite the step is rejected and lambda raised.
A curvature product that is not finite (an overflow in the R-op or backward pass) stops CG: the iterates
found before it are used, and if there are none the step is rejected with stats["cg_stop"] =
"curvature_nonfinite" and lambda raised. A non-finite loss or gradient at the current parameters is a
ValueError before anything changes (as the first-order optimizers do).

The model protocol (implemented by SequenceModel; another recurrent cell plugs in by implementing it):

    model.parameters() -> dict name -> array   live arrays, stable order; HF writes them in place
    model.forward(x) -> (out, cache)          out: the network outputs the loss reads, (..., K)
    model.backward(cache, dout, dhidden=None) -> dict name -> gradient (new arrays): J^T dout + J_h^T dhidden
    model.rop(cache, v) -> (Rout, Rhidden)    J v for the outputs and the hidden states; v: name -> array
    model.batch_axis                          the axis of x, targets and masks that indexes sequences

Rhidden may have any shape (it is what structural damping penalises: its squares are summed over all
elements and divided by the number of sequences); backward's dhidden has the same shape. cache is only
valid at the parameters forward() saw; HF restores the parameters exactly before reusing it (so
SequenceModel.rop keeps the MRNN's f_x, f_h in it after the first call). SequenceModel's R-op runs on
the C++ engine (rnnfast.rop) by default, or on the NumPy reference with rop="reference".
"""

import math

import numpy as np

from .._util import checks
from .._util.blas import numpy_blas_single_threaded
from ..nn import losses
from ..nn.mrnn import MRNN
from ..reference.mrnn import mrnn_rop
from ..reference.rop import rnn_rop
from .rop import mrnn_rop_engine, rnn_rop_engine

__all__ = ["HessianFree", "SequenceModel", "conjugate_gradient"]


# ---- the model -----------------------------------------------------------------------------------
class SequenceModel:
    """A one-layer, one-direction rnnfast.RNN (tanh or relu) or rnnfast.MRNN and an nn.Linear readout on
    every step.

    out_t = readout(h_t): (T, N, C) -> (T, N, K), or (N, T, C) -> (N, T, K) with batch_first. Forward and
    backward passes run on the layer's engine (the C++ engine by default); the R-op on the C++ engine
    (rop="engine": rnnfast.rop.rnn_rop_engine / mrnn_rop_engine) or on the NumPy reference
    (rop="reference": rnnfast.reference.rnn_rop / mrnn_rop). Parameter names: "rnn.<layer name>",
    "readout.weight", "readout.bias". The layer's and the readout's grads dicts are used as scratch (HF
    keeps its gradients itself).
    """

    _ROPS = {"engine": (rnn_rop_engine, mrnn_rop_engine), "reference": (rnn_rop, mrnn_rop)}

    def __init__(self, rnn, readout, rop="engine"):
        self.rop_impl = checks.one_of(rop, "rop", sorted(self._ROPS))

        self._mrnn = isinstance(rnn, MRNN)
        if not (self._mrnn or (hasattr(rnn, "nonlinearity") and hasattr(rnn, "num_layers")
                               and hasattr(rnn, "backward"))):
            raise TypeError(f"rnn must be an rnnfast.RNN (tanh or relu) or rnnfast.MRNN layer: the R-ops exist "
                            f"for them only, got {type(rnn).__name__}")
        if rnn.num_layers != 1 or rnn.bidirectional:
            raise ValueError("rnn must have num_layers=1 and bidirectional=False (the R-op covers one layer, "
                             "one direction)")
        if not (hasattr(readout, "in_features") and hasattr(readout, "out_features")):
            raise TypeError(f"readout must be an nn.Linear, got {type(readout).__name__}")
        if readout.in_features != rnn.hidden_size:
            raise ValueError(f"readout.in_features must equal rnn.hidden_size={rnn.hidden_size}, got "
                             f"{readout.in_features}")
        if readout.dtype != rnn.dtype:
            raise TypeError(f"readout dtype {readout.dtype.name} differs from rnn dtype {rnn.dtype.name}")
        self.rnn, self.readout = rnn, readout
        self.dtype = rnn.dtype
        self.batch_axis = 0 if rnn.batch_first else 1
        self._live = None  # the cache whose engine state the layer holds (backward needs it)

    def parameters(self):
        out = {f"rnn.{k}": p for k, p in self.rnn.parameters().items()}
        out.update({f"readout.{k}": p for k, p in self.readout.parameters().items()})
        return out

    def _time_major(self, a):
        return np.ascontiguousarray(a.transpose(1, 0, 2)) if self.rnn.batch_first else a

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise ValueError(f"x must be a 3-D array ({'N, T' if self.rnn.batch_first else 'T, N'}, C), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        self.rnn.train()
        y, _ = self.rnn.forward(x)                           # (T, N, H) (batch_first: (N, T, H))
        p = self.readout.parameters()
        out = y @ p["weight"].T
        if "bias" in p:
            out += p["bias"]
        cache = {"x": x, "y": y}
        self._live = cache
        return out, cache

    def backward(self, cache, dout, dhidden=None):
        p = self.readout.parameters()
        W, y = p["weight"], cache["y"]
        K, H = W.shape
        d2 = dout.reshape(-1, K)
        grads = {"readout.weight": d2.T @ y.reshape(-1, H)}
        if "bias" in p:
            grads["readout.bias"] = d2.sum(axis=0)
        dy = dout @ W
        if dhidden is not None:
            dy += dhidden
        if self._live is not cache:  # the layer holds another forward's engine cache: redo this one
            self.rnn.train()
            self.rnn.forward(cache["x"])
        self._live = None                                    # backward consumes the layer's cache
        self.rnn.zero_grad()
        self.rnn.backward(np.ascontiguousarray(dy, dtype=self.dtype))
        grads.update({f"rnn.{k}": g.copy() for k, g in self.rnn.grads.items()})
        return grads

    def rop(self, cache, v):
        rp, p = self.rnn.parameters(), self.readout.parameters()
        x, y = self._time_major(cache["x"]), self._time_major(cache["y"])
        T, N, H = y.shape
        learned = "h0" in rp
        h0 = np.broadcast_to(rp["h0"][0], (N, H)) if learned else np.zeros((N, H), self.dtype)
        dh0 = None
        if learned and v.get("rnn.h0") is not None:
            dh0 = np.broadcast_to(v["rnn.h0"][0], (N, H))
        rnn_rop_fn, mrnn_rop_fn = self._ROPS[self.rop_impl]
        if self._mrnn:  # the R-op cache from the engine's states: f_x, f_h are two GEMMs, once per forward
            W = {k: rp[f"weight_{k[2:]}_l0"] for k in ("W_fx", "W_fh", "W_hf", "W_hx")}
            if "rop_factors" not in cache:  # valid while the parameters are the forward's (see the protocol)
                C, F = x.shape[2], W["W_fh"].shape[0]
                h_prev = np.concatenate([h0[None], y[:-1]], axis=0)
                cache["rop_factors"] = ((x.reshape(T * N, C) @ W["W_fx"].T).reshape(T, N, F),
                                        (h_prev.reshape(T * N, H) @ W["W_fh"].T).reshape(T, N, F))
            FX, FH = cache["rop_factors"]
            ref = dict(x=x, h0=h0, y=y, FX=FX, FH=FH, has_bias="bias_l0" in rp, **W)
            direction = {k: v.get(f"rnn.weight_{k[2:]}_l0") for k in W}
            direction["b"] = v.get("rnn.bias_l0")
            Ry = mrnn_rop_fn(ref, direction, dh0=dh0)
        else:
            ref = dict(x=x, h0=h0, y=y, W_ih=rp["weight_ih_l0"], W_hh=rp["weight_hh_l0"],
                       nonlinearity=self.rnn.nonlinearity, has_bias="bias_ih_l0" in rp)
            direction = {"W_ih": v.get("rnn.weight_ih_l0"), "W_hh": v.get("rnn.weight_hh_l0"),
                         "b_ih": v.get("rnn.bias_ih_l0"), "b_hh": v.get("rnn.bias_hh_l0")}
            Ry = rnn_rop_fn(ref, direction, dh0=dh0)
        if self.rnn.batch_first:
            Ry, y = Ry.transpose(1, 0, 2), cache["y"]
        else:
            y = cache["y"]
        Rout = Ry @ p["weight"].T + y @ v["readout.weight"].T
        if "bias" in p:
            Rout += v["readout.bias"]
        return Rout, Ry


# ---- losses and their Hessians with respect to the outputs ----------------------------------------
class _MSE:
    name = "mse"

    def check(self, out, target, mask):
        if not isinstance(target, np.ndarray) or target.shape != out.shape:
            raise ValueError(f"batch_y must have the model outputs' shape {out.shape} for loss='mse', got "
                             f"{getattr(target, 'shape', type(target).__name__)}")
        if target.dtype != out.dtype:
            raise TypeError(f"batch_y must have dtype {out.dtype.name}, got {target.dtype.name}")
        if mask is not None and getattr(mask, "shape", None) not in (out.shape, out.shape[:-1]):
            raise ValueError(f"mask must have shape {out.shape[:-1]} or {out.shape}, got "
                             f"{getattr(mask, 'shape', type(mask).__name__)}")

    def __call__(self, out, target, mask):
        return losses.mse(out, target, mask)

    def curvature(self, out, target, mask):
        """H_L u = s * u, s = w / sum(w) per element (the gradient of the loss is s * residual)."""
        s = losses.mse(np.ones_like(out), np.zeros_like(out), mask)[1]
        return lambda u: s * u


class _CrossEntropy:
    name = "cross_entropy"

    def check(self, out, target, mask):
        if not isinstance(target, np.ndarray) or target.shape != out.shape[:-1]:
            raise ValueError(f"batch_y must be class indices of shape {out.shape[:-1]} for "
                             f"loss='cross_entropy', got {getattr(target, 'shape', type(target).__name__)}")
        if target.dtype.kind not in "iu":
            raise TypeError(f"batch_y must have an integer dtype for loss='cross_entropy', got "
                            f"{target.dtype.name}")
        if mask is not None and getattr(mask, "shape", None) != out.shape[:-1]:
            raise ValueError(f"mask must have shape {out.shape[:-1]}, got "
                             f"{getattr(mask, 'shape', type(mask).__name__)}")

    def __call__(self, out, target, mask):
        return losses.softmax_cross_entropy(out, target, mask)

    def curvature(self, out, target, mask):
        """H_L u = s * (p * u - p (p . u)) per position: the softmax Jacobian, s = w / sum(w)."""
        z = out - out.max(axis=-1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=-1, keepdims=True)
        w = np.ones(out.shape[:-1], out.dtype) if mask is None else mask.astype(out.dtype)
        s = (w / w.sum(dtype=np.float64)).astype(out.dtype)[..., None]
        return lambda u: s * prob * (u - (prob * u).sum(axis=-1, keepdims=True))


_LOSSES = {"mse": _MSE, "cross_entropy": _CrossEntropy}


# ---- conjugate gradient --------------------------------------------------------------------------
def _save_points(n, spacing=1.3):
    """Iterations ceil(spacing^j) <= n, where CG-backtracking keeps the iterate (Martens 2010)."""
    pts, j = set(), 0
    while True:
        i = math.ceil(spacing ** j)
        if i > n:
            return pts
        pts.add(i)
        j += 1


def conjugate_gradient(matvec, g, x0=None, precond=None, max_iters=250, tol=5e-4, min_iters=1):
    """Martens' preconditioned CG: minimise phi(x) = 1/2 x^T A x + g^T x, i.e. solve A x = -g.

    matvec(v) -> A v (A symmetric positive definite); precond: the diagonal M (A is preconditioned by
    M^-1), or None. Stops at max_iters, or by Martens' relative-progress rule: at iteration i with
    k = max(10, 0.1 i), once phi_i < 0 and (phi_i - phi_{i-k}) / phi_i < k tol; or when A v is not finite
    ("curvature_nonfinite") or v^T A v <= 0 ("nonpositive_curvature").

    Returns (x, saved, info): x the last iterate, saved [(i, x_i)] at iterations ceil(1.3^j) and the last,
    info {iterations, stop, phi}. x0 is a starting point (a warm start); it is dropped for 0 when
    phi(x0) >= 0, as it is then no better than the origin.
    """
    g = np.asarray(g, np.float64)
    x = np.zeros_like(g)
    r = g.copy()                                               # r = A x + g, the gradient of phi
    stop = "max_iters"
    if x0 is not None and np.any(x0):
        Ax0 = matvec(x0)
        if np.all(np.isfinite(Ax0)) and 0.5 * x0 @ Ax0 + g @ x0 < 0:
            x, r = np.array(x0, np.float64), Ax0 + g
    ypre = r / precond if precond is not None else r
    d = -ypre
    ry = r @ ypre
    phis = [0.5 * x @ (r + g)]                                 # phi(x) = 1/2 x^T (A x + g) + 1/2 g^T x
    keep = _save_points(max_iters)
    saved = []
    i = 0
    tiny = 1e-12 * np.linalg.norm(g)
    while i < max_iters:
        if ry == 0 or np.linalg.norm(r) <= tiny:
            stop = "converged"
            break
        Ad = matvec(d)
        if not np.all(np.isfinite(Ad)):
            stop = "curvature_nonfinite"
            break
        dAd = d @ Ad
        if not dAd > 0:
            stop = "nonpositive_curvature"
            break
        alpha = ry / dAd
        x = x + alpha * d
        r = r + alpha * Ad
        i += 1
        ypre = r / precond if precond is not None else r
        ry_new = r @ ypre
        d = -ypre + (ry_new / ry) * d
        ry = ry_new
        phis.append(0.5 * x @ (r + g))
        if i in keep:
            saved.append((i, x))
        k = max(10, int(0.1 * i))
        if i > k and i >= min_iters and phis[i] < 0 and (phis[i] - phis[i - k]) / phis[i] < k * tol:
            stop = "progress"
            break
    if i > 0 and (not saved or saved[-1][0] != i):
        saved.append((i, x))
    return x, saved, {"iterations": i, "stop": stop, "phi": phis[-1]}


# ---- the optimizer -------------------------------------------------------------------------------
class _Flat:
    """The model's parameters as one float64 vector (CG works in float64 whatever the model's dtype)."""

    def __init__(self, params):
        self.params = params
        self.names = list(params)
        self.slices, n = {}, 0
        for name, p in params.items():
            self.slices[name] = slice(n, n + p.size)
            n += p.size
        self.size = n

    def get(self):
        return np.concatenate([p.ravel().astype(np.float64) for p in self.params.values()])

    def set(self, vec):
        for name, p in self.params.items():
            p[...] = vec[self.slices[name]].reshape(p.shape)

    def split(self, vec):
        return {name: vec[self.slices[name]].reshape(p.shape).astype(p.dtype)
                for name, p in self.params.items()}

    def join(self, d):
        return np.concatenate([np.asarray(d[name], np.float64).ravel() for name in self.names])


class HessianFree:
    """Truncated-Newton (Hessian-free) optimizer with the Gauss-Newton matrix; see the module docstring.

    model: an object of the model protocol (e.g. SequenceModel), or a pair (rnn, readout) to wrap.
    loss: "mse" (losses.mse, 0.5 mean squared error) or "cross_entropy" (losses.softmax_cross_entropy).
    damping: the initial Tikhonov damping lambda > 0, adapted each step by rho (bounded to
        [min_damping, max_damping]). structural_damping: mu >= 0 (Martens & Sutskever use 1/30 to 1).
        Use it for RNNs: on the addition problem at T=30 (examples/hf_long_range.py, 4 seeds) mu=0 never
        got below predicting the mean, while mu=1/30, 0.3 and 1 solved it in most runs.
    cg_max_iters, cg_tol: Martens' CG stopping rule (max iterations, relative progress 5e-4).
    cg_decay: warm start from cg_decay times the last solution (0 disables warm starts).
    preconditioner: Martens' diagonal (diag(empirical Fisher) + lambda)^precond_power, from squared
        per-sequence gradients on the curvature subset (one forward/backward per sequence).
    curvature_subset: default for step(): None (the whole batch), a fraction in (0, 1], or a count.
    line_search: the Armijo backtracking on the step size after CG-backtracking.
    seed: for drawing curvature subsets.
    """

    def __init__(self, model, loss="mse", damping=1.0, structural_damping=0.0, cg_max_iters=250, cg_tol=5e-4,
                 cg_decay=0.95, preconditioner=True, precond_power=0.75, curvature_subset=None,
                 line_search=True, damping_boost=1.5, damping_drop=2 / 3, min_damping=1e-8,
                 max_damping=1e8, seed=None):
        if isinstance(model, (tuple, list)) and len(model) == 2:
            model = SequenceModel(*model)
        for attr in ("parameters", "forward", "backward", "rop", "batch_axis"):
            if not hasattr(model, attr):
                raise TypeError(f"model must follow the HF model protocol (parameters, forward, backward, rop, "
                                f"batch_axis), e.g. SequenceModel(rnn, readout); {type(model).__name__} has no "
                                f"{attr!r}")
        checks.one_of(loss, "loss", sorted(_LOSSES))
        self.model = model
        self.loss_name = loss
        self._loss = _LOSSES[loss]()
        self._flat = _Flat(model.parameters())
        if self._flat.size == 0:
            raise ValueError("model has no parameters to optimize")
        self.damping = checks.real(damping, "damping", low=0, low_open=True)
        self.structural_damping = checks.real(structural_damping, "structural_damping", low=0)
        self.cg_max_iters = checks.positive_int(cg_max_iters, "cg_max_iters")
        self.cg_tol = checks.real(cg_tol, "cg_tol", low=0)
        self.cg_decay = checks.real(cg_decay, "cg_decay", low=0, high=1)
        self.preconditioner = checks.boolean(preconditioner, "preconditioner")
        self.precond_power = checks.real(precond_power, "precond_power", low=0, high=1)
        self.line_search = checks.boolean(line_search, "line_search")
        self.damping_boost = checks.real(damping_boost, "damping_boost", low=1, low_open=True)
        self.damping_drop = checks.real(damping_drop, "damping_drop", low=0, low_open=True, high=1, high_open=True)
        self.min_damping = checks.real(min_damping, "min_damping", low=0, low_open=True)
        self.max_damping = checks.real(max_damping, "max_damping", low=self.min_damping)
        if not self.min_damping <= self.damping <= self.max_damping:
            raise ValueError(f"damping must be in [min_damping, max_damping] = [{self.min_damping}, "
                             f"{self.max_damping}], got {self.damping}")
        self._check_subset(curvature_subset, None)
        self.curvature_subset = curvature_subset
        self._rng = np.random.default_rng(checks.seed(seed))
        self._warm = None                                      # the last CG solution (float64)
        self._counts = {"curvature_products": 0, "loss_evaluations": 0}
        self.steps = 0

    # ---- arguments ------------------------------------------------------------------------------
    @staticmethod
    def _check_subset(subset, N):
        """Validate None | fraction in (0, 1] | count | index array (against the batch size N when known)."""
        if subset is None:
            return
        if isinstance(subset, (bool, np.bool_)):
            raise TypeError("curvature_subset must be None, a fraction, a count or an index array, got a bool")
        if isinstance(subset, (float, np.floating)):
            if not 0 < subset <= 1:
                raise ValueError(f"curvature_subset as a fraction must be in (0, 1], got {subset}")
            return
        if isinstance(subset, (int, np.integer)):
            if subset < 1 or (N is not None and subset > N):
                raise ValueError(f"curvature_subset as a count must be in [1, batch size"
                                 f"{'' if N is None else '=' + str(N)}], got {subset}")
            return
        idx = np.asarray(subset)
        if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
            raise ValueError(f"curvature_subset as indices must be a non-empty 1-D integer array, got {subset!r}")
        if N is not None and (idx.min() < 0 or idx.max() >= N):
            raise ValueError(f"curvature_subset indices must be in [0, {N}), got [{idx.min()}, {idx.max()}]")

    def _subset(self, subset, N):
        """The indices of the curvature sequences; fractions and counts draw a fresh random subset."""
        self._check_subset(subset, N)
        if subset is None:
            return np.arange(N)
        if isinstance(subset, (float, np.floating, int, np.integer)):
            k = max(1, int(round(subset * N))) if isinstance(subset, (float, np.floating)) else int(subset)
            return np.sort(self._rng.permutation(N)[:k])
        return np.asarray(subset)

    def _check_batch(self, x, y, mask):
        dt = next(iter(self._flat.params.values())).dtype
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise ValueError(f"batch_x must be a 3-D array (time, batch, features in the model's layout), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        if x.dtype != dt:
            raise TypeError(f"batch_x must have the model's dtype {dt.name}, got {x.dtype.name}")
        if not np.isfinite(x).all():
            raise ValueError("batch_x contains NaN or Inf")
        if not isinstance(y, np.ndarray):
            raise TypeError(f"batch_y must be a numpy array, got {type(y).__name__}")
        if mask is not None and not isinstance(mask, np.ndarray):
            raise TypeError(f"mask must be a numpy array or None, got {type(mask).__name__}")
        ax = self.model.batch_axis
        for name, a in (("batch_y", y), ("mask", mask)):
            if a is not None and (a.ndim <= ax or a.shape[ax] != x.shape[ax]):
                raise ValueError(f"{name} must have the batch size {x.shape[ax]} of batch_x on axis {ax}, got "
                                 f"shape {a.shape}")

    # ---- passes -------------------------------------------------------------------------------------
    def _take(self, a, idx):
        return None if a is None else np.take(a, idx, axis=self.model.batch_axis)

    def loss(self, x, y, mask=None):
        """The loss at the current parameters (a float; inf when it is not finite)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            out, _ = self.model.forward(x)
            if not np.isfinite(out).all():
                return math.inf
            value = self._loss(out, y, mask)[0]
        return value if math.isfinite(value) else math.inf

    def _loss_at(self, theta, x, y, mask):
        self._counts["loss_evaluations"] += 1
        self._flat.set(theta)
        if not all(np.isfinite(p).all() for p in self._flat.params.values()):  # overflow in the cast
            return math.inf
        return self.loss(x, y, mask)

    def _preconditioner(self, x, y, mask, lam):
        """(mean over sequences of squared per-sequence gradients + lambda)^power (Martens 2010, sec. 4.7)."""
        ax, n = self.model.batch_axis, x.shape[self.model.batch_axis]
        out, _ = self.model.forward(x)
        _, dout = self._loss(out, y, mask)                      # contributions to the subset's mean loss
        sq = np.zeros(self._flat.size)
        for i in range(n):
            out_i, cache_i = self.model.forward(np.take(x, [i], axis=ax))
            c = self._flat.join(self.model.backward(cache_i, np.take(dout, [i], axis=ax)))
            sq += c * c
        fisher = n * sq                                         # (1/n) sum_i (n c_i)^2: per-case gradients
        return (fisher + lam) ** self.precond_power

    def _curvature(self, x, y, mask, lam):
        """gv(vec, damped=True): (G + lambda I + mu lambda J_h^T J_h / n) vec on this batch, or G vec."""
        model, flat, mu = self.model, self._flat, self.structural_damping
        out, cache = model.forward(x)
        self._loss.check(out, y, mask)
        hess_out = self._loss.curvature(out, y, mask)
        n = x.shape[model.batch_axis]

        def gv(vec, damped=True):
            self._counts["curvature_products"] += 1
            v = flat.split(vec)
            Rout, Rh = model.rop(cache, v)
            dout = hess_out(Rout)
            dh = (mu * lam / n) * Rh if damped and mu > 0 else None
            if not (np.isfinite(dout).all() and (dh is None or np.isfinite(dh).all())):
                return np.full_like(vec, np.nan)               # overflow in J v: CG stops on it
            out_v = flat.join(model.backward(cache, dout, dh))
            return out_v + lam * vec if damped else out_v
        return gv

    def curvature_product(self, batch_x, batch_y, v, mask=None, damped=False):
        """G v on this batch at the current parameters (damped=True: the matrix CG solves with, including
        lambda v and structural damping). v: dict parameter name -> array; returns such a dict (float64)."""
        self._check_batch(batch_x, batch_y, mask)
        if not hasattr(v, "items") or set(v) != set(self._flat.names):
            raise ValueError(f"v must be a dict with the parameter names {self._flat.names}")
        vec = self._flat.join(v)
        res = self._curvature(batch_x, batch_y, mask, self.damping)(vec, damped)
        return {name: res[self._flat.slices[name]].reshape(p.shape) for name, p in self._flat.params.items()}

    def gradient(self, batch_x, batch_y, mask=None):
        """(loss, dict name -> gradient) at the current parameters."""
        self._check_batch(batch_x, batch_y, mask)
        out, cache = self.model.forward(batch_x)
        self._loss.check(out, batch_y, mask)
        f, dout = self._loss(out, batch_y, mask)
        return f, {k: np.asarray(g, np.float64) for k, g in self.model.backward(cache, dout).items()}

    # ---- the step -----------------------------------------------------------------------------------
    def step(self, batch_x, batch_y, mask=None, curvature_subset="default"):
        """One HF step on this batch; returns a dict of statistics.

        batch_x: the model's input (e.g. (T, N, C)); batch_y: targets like the outputs (mse) or class
        indices without the class axis (cross_entropy); mask: as the loss takes it (e.g.
        losses.target_mask(T, N, "last")). curvature_subset: the sequences the curvature is measured on
        (None: all; a fraction; a count; an index array); by default the constructor's.

        Stats: loss_before, loss_after (the batch's mean loss), rho, damping_used (this step's lambda),
        damping (the next one), cg_iterations, cg_stop (max_iters | progress | converged |
        curvature_nonfinite | nonpositive_curvature), cg_backtrack (the CG iteration taken), step_size
        (0 when rejected), accepted, grad_norm, curvature_sequences, curvature_products (G v products on
        the curvature subset, CG's and rho's) and loss_evaluations (forward passes on the batch at trial
        points: CG-backtracking and line search).
        """
        # Overflow in a trial point or a curvature product is expected and handled (the point is
        # rejected), so NumPy's floating-point warnings are silenced inside the step. NumPy's BLAS runs on
        # one thread inside it: its spinning threads would take the cores from the engine calls that the
        # step interleaves with its NumPy work (see rnnfast._util.blas).
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"), \
                numpy_blas_single_threaded():
            return self._step(batch_x, batch_y, mask, curvature_subset)

    def _step(self, batch_x, batch_y, mask, curvature_subset):
        self._check_batch(batch_x, batch_y, mask)
        if isinstance(curvature_subset, str) and curvature_subset == "default":
            curvature_subset = self.curvature_subset
        N = batch_x.shape[self.model.batch_axis]
        idx = self._subset(curvature_subset, N)
        self._counts = {"curvature_products": 0, "loss_evaluations": 0}
        model, flat, lam = self.model, self._flat, self.damping

        theta = flat.get()
        out, cache = model.forward(batch_x)
        self._loss.check(out, batch_y, mask)
        f0, dout = self._loss(out, batch_y, mask)
        if not math.isfinite(f0):
            raise ValueError(f"the loss at the current parameters is {f0}; nothing was updated")
        g = flat.join(model.backward(cache, dout))
        if not np.isfinite(g).all():
            bad = [n for n in flat.names if not np.isfinite(g[flat.slices[n]]).all()]
            raise ValueError(f"gradient of parameter {bad[0]!r} contains NaN or Inf; nothing was updated")

        # Curvature on the subset: one forward, then an R-op and a backward pass per product.
        xc, yc, mc = self._take(batch_x, idx), self._take(batch_y, idx), self._take(mask, idx)
        gv = self._curvature(xc, yc, mc, lam)
        n_c = len(idx)

        precond = self._preconditioner(xc, yc, mc, lam) if self.preconditioner else None
        x0 = None if self._warm is None else self.cg_decay * self._warm
        p_last, saved, info = conjugate_gradient(gv, g, x0, precond, self.cg_max_iters, self.cg_tol)

        stats = dict(loss_before=f0, loss_after=f0, rho=-math.inf, damping_used=lam,
                     cg_iterations=info["iterations"], cg_stop=info["stop"], cg_backtrack=0, step_size=0.0,
                     accepted=False,
                     grad_norm=float(np.linalg.norm(g)), curvature_sequences=n_c)
        try:
            best_f, best_p, best_i = self._backtrack(saved, theta, batch_x, batch_y, mask)
            flat.set(theta)
            step_size = 0.0
            if best_p is not None:
                stats["cg_backtrack"] = best_i
                q = g @ best_p + 0.5 * best_p @ gv(best_p, damped=False)   # undamped model of the change
                rho = (best_f - f0) / q if q < 0 and math.isfinite(best_f) else -math.inf
                stats["rho"] = float(rho)
                gp = g @ best_p
                a, f = 1.0, best_f
                tries = 20 if self.line_search else 1                # a >= 0.8^19 = 0.014
                for t in range(tries):
                    if math.isfinite(f) and f <= f0 + 1e-2 * a * gp:   # Armijo
                        step_size = a
                        break
                    if t + 1 < tries:
                        a *= 0.8
                        f = self._loss_at(theta + a * best_p, batch_x, batch_y, mask)
                if step_size > 0:
                    new = theta + step_size * best_p
                    flat.set(new)
                    if all(np.isfinite(p).all() for p in flat.params.values()):
                        stats.update(loss_after=float(f), step_size=step_size, accepted=True)
                    else:
                        step_size = 0.0
                if rho < 0.25 or step_size == 0:
                    lam *= self.damping_boost
                elif rho > 0.75:
                    lam *= self.damping_drop
            else:
                lam *= self.damping_boost
            if step_size == 0:
                flat.set(theta)
                self._warm = None        # a rejected solution is a poor start for the next solve
            else:
                self._warm = p_last
        except BaseException:
            flat.set(theta)              # never leave a trial point behind
            raise
        self.damping = min(max(lam, self.min_damping), self.max_damping)
        stats["damping"] = self.damping
        stats.update(self._counts)
        self.steps += 1
        return stats

    def _backtrack(self, saved, theta, x, y, mask):
        """CG-backtracking: walk back from the last saved iterate while the loss keeps falling (past iterates
        whose loss is not finite: an earlier, shorter one may still be good). Returns (f, p, iteration) of
        the best, p None when no iterate has a finite loss."""
        best_f, best_p, best_i = math.inf, None, 0
        for i, p in reversed(saved):
            f = self._loss_at(theta + p, x, y, mask)
            if best_p is not None and f >= best_f:
                break
            if f < best_f:
                best_f, best_p, best_i = f, p, i
        return best_f, best_p, best_i

    def __repr__(self):
        return (f"HessianFree({self.loss_name}, damping={self.damping:g}, structural_damping="
                f"{self.structural_damping:g}, cg_max_iters={self.cg_max_iters}, preconditioner="
                f"{self.preconditioner})")
