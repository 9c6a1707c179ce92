"""Benchmark tasks for echo state networks, deterministic and dependency-free.

    u = mackey_glass(4000)                  # (4000, 1) chaotic series, tau=17
    u, y = narma(2000, order=10, seed=0)    # NARMA-10: input U(0, 0.5), target y
    u, y = sine_frequency(3000, seed=0)     # input: slowly changing frequency, target: sine of the phase
    nrmse(y_true, y_pred)                   # root mean squared error / std of y_true

Every function returns float64 arrays of shape (n_steps, 1) (time major, one feature), the layout
rnnfast.ESN takes.
"""

import numbers

import numpy as np

from ._util import checks as _checks

__all__ = ["mackey_glass", "narma", "sine_frequency", "nrmse"]


def _as_real_array(a, name):
    """y_true / y_pred -> float64 array; TypeError for non-numbers, ValueError for NaN/Inf."""
    if isinstance(a, (list, tuple)):
        if len(a) == 0:
            raise ValueError(f"{name} is an empty list")
        if all(isinstance(p, numbers.Real) and not isinstance(p, bool) for p in a):
            return _as_real_array(np.asarray(a), name)  # a plain list of numbers: one 1-D series
        parts = [_as_real_array(p if isinstance(p, np.ndarray) else np.asarray(p), f"{name}[{k}]")
                 for k, p in enumerate(a)]
        return np.concatenate([p.reshape(-1, p.shape[-1] if p.ndim else 1) for p in parts])
    if isinstance(a, (str, bytes)) or a is None or not (isinstance(a, (np.ndarray, numbers.Real))
                                                        or hasattr(a, "__array__")):
        raise TypeError(f"{name} must be a numpy array of real numbers, got {type(a).__name__}")
    arr = np.asarray(a)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def mackey_glass(n_steps, tau=17, a=0.2, b=0.1, n=10, x0=1.2, h=1.0, dt=0.1, seed=None, discard=0):
    """Mackey-Glass series: dx/dt = a x(t - tau) / (1 + x(t - tau)^n) - b x(t), sampled every h.

    Standard discretisation: 4th-order Runge-Kutta with step dt (h/dt substeps per sample; tau/dt must be
    a whole number of steps), the delayed term read from the computed fine grid (its midpoint values by
    linear interpolation). History x(t) = x0 for t in [-tau, 0], so the series is fully deterministic; with
    ``seed`` the history is instead x0 + 0.2 * (U(0, 1) - 0.5) (one value per fine step; reservoirpy's
    choice of random history). ``discard`` samples are computed and dropped first (initial transient).
    Returns (n_steps, 1) float64; with tau=17 the series is chaotic, in about [0.2, 1.4].
    """
    n_steps = _checks.positive_int(n_steps, "n_steps")
    tau, a, b, n, x0, h, dt = (_checks.real(v, k) for k, v in (("tau", tau), ("a", a), ("b", b), ("n", n), ("x0", x0),
                                                           ("h", h), ("dt", dt)))
    seed = _checks.seed(seed)
    discard = _checks.positive_int(discard, "discard", minimum=0)
    if tau <= 0 or h <= 0 or dt <= 0:
        raise ValueError("tau, h and dt must be > 0")
    sub = int(round(h / dt))
    D = int(round(tau / dt))
    if abs(sub * dt - h) > 1e-9 * h or abs(D * dt - tau) > 1e-9 * max(tau, 1):
        raise ValueError(f"h/dt and tau/dt must be whole numbers, got h={h}, tau={tau}, dt={dt}")
    # the fine grid is kept twice (array and list of floats, ~4x8 bytes per step)
    _checks.check_memory(4 * (D + (n_steps + discard) * sub + 1), 8,
                         f"mackey_glass(n_steps={n_steps}, discard={discard}, tau={tau}, h={h}, dt={dt})")
    total = (n_steps + int(discard)) * sub
    x = np.empty(D + total + 1)
    if seed is None:
        x[:D + 1] = x0
    else:
        rng = np.random.default_rng(seed)
        x[:D + 1] = x0 + 0.2 * (rng.random(D + 1) - 0.5)

    def f(xt, xd):
        return a * xd / (1.0 + xd ** n) - b * xt

    xs = x.tolist()      # Python floats: faster than NumPy scalars in this sequential loop
    for i in range(D, D + total):
        xt = xs[i]
        xd0, xd1 = xs[i - D], xs[i - D + 1]
        xdm = 0.5 * (xd0 + xd1)
        k1 = f(xt, xd0)
        k2 = f(xt + 0.5 * dt * k1, xdm)
        k3 = f(xt + 0.5 * dt * k2, xdm)
        k4 = f(xt + dt * k3, xd1)
        xs[i + 1] = xt + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    x = np.asarray(xs)
    series = x[D + sub::sub][:n_steps + int(discard)]      # samples at t = h, 2h, ...
    return series[int(discard):].reshape(-1, 1)


def narma(n_steps, order=10, seed=None):
    """NARMA task (Atiya & Parlos 2000): inputs u_t ~ U(0, 0.5) and

        y_{t+1} = 0.3 y_t + 0.05 y_t sum_{i=0}^{order-1} y_{t-i} + 1.5 u_{t-order+1} u_t + 0.1

    with zero initial history. Returns (u, y), each (n_steps, 1), aligned so that y[t] (= y_{t+1}) is the
    target for input u[t] (it depends on u[t] and earlier inputs only). order=10 is NARMA-10 (bounded);
    larger orders can diverge, which raises RuntimeError.
    """
    n_steps = _checks.positive_int(n_steps, "n_steps")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an int >= 1, got {order!r}")
    _checks.check_memory(3 * n_steps, 8, f"narma(n_steps={n_steps})")
    rng = np.random.default_rng(_checks.seed(seed))
    u = rng.uniform(0.0, 0.5, n_steps)
    y = np.zeros(n_steps + 1)
    for t in range(n_steps):
        lo = max(0, t - order + 1)
        y[t + 1] = (0.3 * y[t] + 0.05 * y[t] * y[lo:t + 1].sum()
                    + 1.5 * (u[t - order + 1] if t - order + 1 >= 0 else 0.0) * u[t] + 0.1)
    if not np.isfinite(y).all() or np.abs(y).max() > 1e6:
        raise RuntimeError(f"NARMA-{order} diverged with this seed; use another seed or order=10")
    return u.reshape(-1, 1), y[1:].reshape(-1, 1)


def sine_frequency(n_steps, seed=None, f_min=1 / 40, f_max=1 / 10, hold=(100, 300)):
    """The sine-frequency generator task: input a slowly changing frequency, target the sine of its phase.

    The frequency f_t (cycles per step) holds a random level in [f_min, f_max] for a random number of
    steps in [hold[0], hold[1]) and then moves smoothly (a half-cosine over 40 steps) to the next level.
    The phase integrates it: phi_t = 2 pi sum_{s<=t} f_s, and the target is y_t = sin(phi_t).
    Returns (u, y), each (n_steps, 1): u[t] = f_t, y[t] = sin(phi_t). An ESN with output feedback
    learns it and then generates the sine in closed loop for any given frequency input.
    """
    n_steps = _checks.positive_int(n_steps, "n_steps")
    f_min, f_max = _checks.real(f_min, "f_min"), _checks.real(f_max, "f_max")
    if not 0 < f_min < f_max < 0.5:
        raise ValueError(f"need 0 < f_min < f_max < 0.5, got {f_min}, {f_max}")
    if not (isinstance(hold, (tuple, list)) and len(hold) == 2):
        raise TypeError(f"hold must be a pair (min_steps, max_steps), got {hold!r}")
    lo = _checks.positive_int(hold[0], "hold[0]")
    hi = _checks.positive_int(hold[1], "hold[1]")
    if hi <= lo:
        raise ValueError(f"hold must have hold[0] < hold[1], got {tuple(hold)}")
    _checks.check_memory(4 * n_steps, 8, f"sine_frequency(n_steps={n_steps})")
    rng = np.random.default_rng(_checks.seed(seed))
    f = np.empty(n_steps)
    ramp = 40
    t = 0
    level = rng.uniform(f_min, f_max)
    while t < n_steps:
        n_hold = int(rng.integers(lo, hi))
        f[t:t + n_hold] = level
        t += n_hold
        nxt = rng.uniform(f_min, f_max)
        w = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, ramp + 1) / ramp)
        f[t:t + ramp] = (level + (nxt - level) * w)[:max(0, min(ramp, n_steps - t))]
        t += ramp
        level = nxt
    phase = 2 * np.pi * np.cumsum(f)
    return f.reshape(-1, 1), np.sin(phase).reshape(-1, 1)


def nrmse(y_true, y_pred, norm="std"):
    """Normalised root mean squared error: sqrt(mean((y_pred - y_true)^2)) / scale(y_true).

    Computed per output feature (the last axis; every other axis pooled) and averaged over features.
    norm: 'std' (standard deviation of y_true, the usual choice for Mackey-Glass / NARMA) or 'minmax'
    (max - min of y_true, reservoirpy's default). Lists of sequences are concatenated.
    """
    yt = _as_real_array(y_true, "y_true")
    yp = _as_real_array(y_pred, "y_pred")
    if yt.ndim == 0:
        raise ValueError("y_true must have at least one dimension, got a scalar")
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {yt.shape} and {yp.shape}")
    if yt.size == 0:
        raise ValueError("y_true is empty")
    yt = yt.reshape(-1, yt.shape[-1] if yt.ndim > 1 else 1)
    yp = yp.reshape(yt.shape)
    rmse = np.sqrt(np.mean((yp - yt) ** 2, axis=0))
    _checks.one_of(norm, "norm", ("std", "minmax"))
    scale = yt.std(axis=0) if norm == "std" else yt.max(axis=0) - yt.min(axis=0)
    return float(np.mean(rmse / np.maximum(scale, 1e-300)))


# chaotic systems and oscillators, as reservoirpy.datasets' (rnnfast/_chaos.py)
from ._chaos import henon_map, logistic_map, lorenz, mso, mso2, mso8, rossler  # noqa: E402

__all__ += ["lorenz", "rossler", "henon_map", "logistic_map", "mso", "mso2", "mso8"]
