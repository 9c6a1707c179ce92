"""Chaotic systems and oscillators for reservoir computing benchmarks, generated in code (re-exported by
:mod:`rnnfast.datasets`). Each takes the parameters of ``reservoirpy.datasets``' function of the same name,
with the same defaults, and returns the same series (the ODEs are integrated by the same
``scipy.integrate.solve_ivp`` call, the maps iterated the same way), as float64 arrays (n_steps, features).

    lorenz(n_steps)            (n, 3)  sigma=10, rho=28, beta=8/3, sampled every h=0.03
    rossler(n_steps)           (n, 3)  a=0.2, b=0.2, c=5.7, h=0.1
    henon_map(n_steps)         (n, 2)  a=1.4, b=0.3
    logistic_map(n_steps)      (n, 1)  r=3.9
    mso(n_steps, freqs)        (n, 1)  sum_i sin(f_i t), scaled to [-1, 1]; mso2, mso8: the usual sets

Like reservoirpy, the ODE solutions are evaluated at ``numpy.linspace(0, n_steps * h, n_steps)`` (so
consecutive samples are n h / (n - 1) apart); extra keyword arguments go to ``solve_ivp`` (method, rtol...).
"""

import numpy as np

from ._util import checks as _checks

__all__ = ["lorenz", "rossler", "henon_map", "logistic_map", "mso", "mso2", "mso8"]

_real = _checks.real


def _steps(n_steps):
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)):
        raise TypeError(f"n_steps must be an int, got {type(n_steps).__name__}")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    return int(n_steps)


def _x0(x0, size, name="x0"):
    try:
        a = np.asarray(x0, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {size} real numbers, got {x0!r}") from None
    if a.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return a


def _ode(f, n_steps, x0, h, kwargs):
    from scipy.integrate import solve_ivp
    h = _real(h, "h")
    if h <= 0:
        raise ValueError(f"h must be > 0, got {h}")
    _checks.check_memory(8 * n_steps * len(x0), 8, f"n_steps={n_steps}")
    t_max = n_steps * h
    sol = solve_ivp(f, y0=x0, t_span=(0.0, t_max), t_eval=np.linspace(0.0, t_max, n_steps), **kwargs)
    if not sol.success:
        raise RuntimeError(f"the ODE solver failed: {sol.message}")
    return np.ascontiguousarray(sol.y.T)


def lorenz(n_steps, rho=28.0, sigma=10.0, beta=8.0 / 3.0, x0=(1.0, 1.0, 1.0), h=0.03, **kwargs):
    """Lorenz (1963) system: dx = sigma (y - x), dy = x (rho - z) - y, dz = x y - beta z. (n, 3)."""
    n_steps = _steps(n_steps)
    rho, sigma, beta = _real(rho, "rho"), _real(sigma, "sigma"), _real(beta, "beta")

    def f(t, s):
        x, y, z = s
        return sigma * (y - x), x * (rho - z) - y, x * y - beta * z

    return _ode(f, n_steps, _x0(x0, 3), h, kwargs)


def rossler(n_steps, a=0.2, b=0.2, c=5.7, x0=(-0.1, 0.0, 0.02), h=0.1, **kwargs):
    """Rössler (1976) system: dx = -y - z, dy = x + a y, dz = b + z (x - c). (n, 3)."""
    n_steps = _steps(n_steps)
    a, b, c = _real(a, "a"), _real(b, "b"), _real(c, "c")

    def f(t, s):
        x, y, z = s
        return -y - z, x + a * y, b + z * (x - c)

    return _ode(f, n_steps, _x0(x0, 3), h, kwargs)


def henon_map(n_steps, a=1.4, b=0.3, x0=(0.0, 0.0)):
    """Hénon map: x_{t+1} = 1 - a x_t^2 + y_t, y_{t+1} = b x_t, from x0. (n, 2)."""
    n_steps = _steps(n_steps)
    a, b = _real(a, "a"), _real(b, "b")
    s = np.zeros((n_steps, 2))
    s[0] = _x0(x0, 2)
    x, y = float(s[0, 0]), float(s[0, 1])
    for i in range(1, n_steps):      # a * x**2 (not a * x * x): the chaotic map keeps every rounding
        x, y = 1 - a * x ** 2 + y, b * x
        s[i] = x, y
    return s


def logistic_map(n_steps, r=3.9, x0=0.5):
    """Logistic map: x_{t+1} = r x_t (1 - x_t), from x0 in (0, 1); chaotic for r near 3.9. (n, 1)."""
    n_steps = _steps(n_steps)
    r, x0 = _real(r, "r"), _real(x0, "x0")
    if r <= 0:
        raise ValueError(f"r must be > 0, got {r}")
    if not 0 < x0 < 1:
        raise ValueError(f"x0 must lie in (0, 1), got {x0}")
    X = np.zeros(n_steps)
    X[0] = x = x0
    for i in range(1, n_steps):
        X[i] = x = r * x * (1 - x)
    return X.reshape(-1, 1)


def mso(n_steps, freqs, normalize=True):
    """Multiple superimposed oscillators: sum_i sin(f_i t) for t = 0, 1, ...; with normalize, scaled to
    [-1, 1]. (n, 1)."""
    n_steps = _steps(n_steps)
    if isinstance(freqs, (str, bytes)) or not hasattr(freqs, "__len__") or len(freqs) == 0:
        raise TypeError(f"freqs must be a non-empty sequence of frequencies, got {freqs!r}")
    freqs = [_real(f, "freqs") for f in freqs]
    normalize = _checks.boolean(normalize, "normalize")
    t = np.arange(n_steps).reshape(n_steps, 1)
    y = np.zeros((n_steps, 1))
    for f in freqs:
        y += np.sin(f * t)
    if normalize:
        span = y.max() - y.min()
        if span == 0:
            raise ValueError("the series is constant (n_steps=1 or all freqs 0): it cannot be normalised")
        return (2 * y - y.min() - y.max()) / span
    return y


def mso2(n_steps, normalize=True):
    """MSO with the frequencies 0.2 and 0.311."""
    return mso(n_steps, [0.2, 0.311], normalize)


def mso8(n_steps, normalize=True):
    """MSO with the 8 frequencies 0.2, 0.311, 0.42, 0.51, 0.63, 0.74, 0.85, 0.97."""
    return mso(n_steps, [0.2, 0.311, 0.42, 0.51, 0.63, 0.74, 0.85, 0.97], normalize)
