"""Plain NumPy reference of online read-outs: LMS and RLS (FORCE learning), trained step by step together
with a leaky reservoir, the read-out's output fed back.

This is the specification of the C++ loop ``rnnfast._core.online_readout`` (csrc/cpu/online_readout.cpp)
and follows reservoirpy 0.4's ``LMS`` / ``RLS`` nodes in a ``Model`` with feedback
(``reservoir >> readout``, ``reservoir << readout``, ``Model.partial_fit``) line by line.

Shapes: T steps, I inputs, N units, O outputs; one sequence.

    u (T, I) or None, W (N, N) dense or scipy.sparse, W_in (N, I + O) with feedback else (N, I),
    bias (N,) or None, leak scalar or (N,), targets (T, O), W_out (N, O), b_out (O,), P (N, N).

Each step t (y_{-1} = y0, zeros by default; x_{-1} = x0):

    v_t = [u_t, y_{t-1}] (feedback) or u_t
    x_t = (1 - leak) x_{t-1} + leak tanh(W x_{t-1} + W_in v_t + bias)
    LMS:  e = x_t W_out + b - target_t;  W_out <- W_out - lr outer(x_t, e);  b' = b - lr e
    RLS:  Px = P x_t;  P <- (P - outer(Px, Px) / (lambda + x_t . Px)) / lambda;  S <- lambda S + 1
          e = x_t W_out + b - target_t;  W_out <- W_out - outer(P x_t, e);  b' = (S b - e) / S
    y_t = x_t W_out + b        (with the updated W_out and the bias before its update), then b <- b'
"""

import numpy as np

__all__ = ["online_run"]


def online_run(u, W, W_in, bias, leak, targets, W_out, b_out, *, rule="rls", feedback=True, train=True,
               learning_rate=1e-6, forgetting=1.0, fit_bias=True, P=None, S=0.0, alpha=1e-6, x0=None, y0=None):
    """Runs T steps; returns a dict: outputs (T, O), states (T, N), W_out, b_out, P, S, x (last), y (last).

    ``P`` defaults to I / alpha (reservoirpy's RLS initialisation). Arithmetic in float64.
    """
    W_in = np.asarray(W_in, np.float64)
    N = W_in.shape[0]
    W_out = np.array(W_out, np.float64)
    b = np.array(b_out, np.float64)
    O = W_out.shape[1]
    W = W.astype(np.float64) if hasattr(W, "toarray") else np.asarray(W, np.float64)
    bias = np.zeros(N) if bias is None else np.asarray(bias, np.float64)
    leak = np.broadcast_to(np.asarray(leak, np.float64), (N,))
    T = len(targets) if targets is not None else len(u)
    u = np.zeros((T, 0)) if u is None else np.asarray(u, np.float64)
    x = np.zeros(N) if x0 is None else np.array(x0, np.float64)
    y = np.zeros(O) if y0 is None else np.array(y0, np.float64)
    if rule == "rls" and train:
        P = np.eye(N) / alpha if P is None else np.array(P, np.float64)
    outputs, states = np.empty((T, O)), np.empty((T, N))
    for t in range(T):
        v = np.concatenate([u[t], y]) if feedback else u[t]
        x = (1 - leak) * x + leak * np.tanh(W @ x + W_in @ v + bias)
        if not train:
            y = x @ W_out + b
        elif rule == "lms":
            e = x @ W_out + b - targets[t]
            W_out = W_out - learning_rate * np.outer(x, e)
            y = x @ W_out + b
            if fit_bias:
                b = b - learning_rate * e
        elif rule == "rls":
            Px = P @ x
            P = (P - np.outer(Px, Px) / (forgetting + x @ Px)) / forgetting
            S = forgetting * S + 1
            e = x @ W_out + b - targets[t]
            W_out = W_out - np.outer(P @ x, e)
            y = x @ W_out + b
            if fit_bias:
                b = (S * b - e) / S
        else:
            raise ValueError(f"rule must be 'lms' or 'rls', got {rule!r}")
        outputs[t], states[t] = y, x
    return {"outputs": outputs, "states": states, "W_out": W_out, "b_out": b, "P": P, "S": S, "x": x, "y": y}
