"""Plain NumPy reference of intrinsic plasticity (Schrauwen et al. 2008; Triesch 2005), step by step as
reservoirpy 0.4's ``IPReservoir``: the specification :class:`rnnfast.esn.IPReservoir` is tested against.

Each unit has a gain a and a bias b on its activation; with r the internal (pre-activation) state and x
the output:

    r_t = (1 - leak) r_{t-1} + leak (W x_{t-1} + W_in u_t + bias)
    x_t = f(a * r_t + b)

and, while learning, after each step (gradient steps on the KL divergence between the distribution of x
and a target: a Gaussian N(mu, sigma^2) for f = tanh, an exponential of mean mu for f = sigmoid):

    tanh:     db = -(-mu / sigma^2 + x / sigma^2 (2 sigma^2 + 1 - x^2 + mu x))
    sigmoid:  db = 1 - (2 + 1/mu) x + x^2 / mu
    da = 1 / a + db * r
    a += eta da,   b += eta db
"""

import numpy as np

__all__ = ["ip_run"]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def ip_run(u, W, W_in, bias, leak, a, b, *, mu=0.0, sigma=1.0, learning_rate=5e-4, activation="tanh",
           train=True, r0=None, x0=None):
    """u (T, I) -> dict: states (T, N) (the outputs x_t), r, x (last), a, b (learned)."""
    u = np.asarray(u, np.float64)
    W = W.astype(np.float64) if hasattr(W, "toarray") else np.asarray(W, np.float64)
    W_in = np.asarray(W_in, np.float64)
    N = W_in.shape[0]
    bias = np.zeros(N) if bias is None else np.asarray(bias, np.float64)
    a, b = np.array(a, np.float64), np.array(b, np.float64)
    r = np.zeros(N) if r0 is None else np.array(r0, np.float64)
    x = np.zeros(N) if x0 is None else np.array(x0, np.float64)
    f = np.tanh if activation == "tanh" else _sigmoid
    states = np.empty((len(u), N))
    for t in range(len(u)):
        r = (1 - leak) * r + leak * (W @ x + W_in @ u[t] + bias)
        x = f(a * r + b)
        if train:
            if activation == "tanh":
                s2 = sigma ** 2
                db = -(-(mu / s2) + (x / s2) * (2 * s2 + 1 - x ** 2 + mu * x))
            else:
                db = 1 - (2 + 1 / mu) * x + x ** 2 / mu
            da = 1 / a + db * r
            a = a + learning_rate * da
            b = b + learning_rate * db
        states[t] = x
    return {"states": states, "r": r, "x": x, "a": a, "b": b}
