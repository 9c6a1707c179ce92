"""Plain NumPy reference of an echo state network: the leaky reservoir loop and the ridge readout.

This is the specification that the C++ reservoir engine (``rnnfast._core.reservoir_run``) and
:class:`rnnfast.ESN` are tested against. It favours clarity over speed.

Notation and shapes
-------------------
T steps, B sequences in the batch, I inputs, N reservoir units, P population members, O outputs.

u         (T, B, I)   input sequences (time major)
W         (N, N)      recurrent weights: a dense array or any scipy.sparse matrix
W_in      (N, I)      input weights
bias      (N,) | None reservoir bias
sr_scale  (P,)        per member: factor applied to W x   (spectral radius / base spectral radius)
in_scale  (P,)        per member: factor applied to W_in u (input scaling / base input scaling)
leak      (P, N)      per member and unit: leak rate
x0        (P, B, N) | None   initial states (None: zeros)

The update of member p, for every sequence b and step t, is

    pre_t = sr_scale[p] * (W x_{t-1}) + in_scale[p] * (W_in u_t) + bias
    x_t   = (1 - leak[p]) * x_{t-1} + leak[p] * tanh(pre_t)

which with P = 1, sr_scale = in_scale = 1 is reservoirpy's ``Reservoir`` (lr = leak):
x[t+1] = (1 - lr) x[t] + lr tanh(W x[t] + Win u[t+1] + bias).

The readout is ridge regression with an unregularised intercept, y = x @ W_out + b_out:

    x_mean, y_mean = mean of the rows of X and Y
    W_out = (Xc^T Xc + ridge I)^-1 Xc^T Yc      with Xc = X - x_mean, Yc = Y - y_mean
    b_out = y_mean - x_mean @ W_out

(reservoirpy's ``Ridge(fit_bias=True)`` computes the same thing).
"""

import numpy as np

__all__ = ["reservoir_run", "ridge_fit", "spectral_radius"]


def reservoir_run(u, W, W_in, bias, sr_scale, in_scale, leak, x0=None):
    """Run P leaky tanh reservoirs over B sequences; returns (states (T, P, B, N), x_last (P, B, N)).

    Arithmetic is done in u's dtype (float32 or float64); W may be dense or scipy.sparse.
    """
    u = np.asarray(u)
    dtype = u.dtype
    T, B, I = u.shape
    W_in = np.asarray(W_in, dtype=dtype)
    N = W_in.shape[0]
    sr_scale = np.asarray(sr_scale, dtype=dtype)
    in_scale = np.asarray(in_scale, dtype=dtype)
    leak = np.asarray(leak, dtype=dtype).reshape(len(sr_scale), N)
    P = len(sr_scale)
    if hasattr(W, "toarray"):   # scipy.sparse: keep it sparse, just in the right dtype
        W = W.astype(dtype)
    else:
        W = np.asarray(W, dtype=dtype)
    b = np.zeros(N, dtype) if bias is None else np.asarray(bias, dtype=dtype)

    states = np.empty((T, P, B, N), dtype)
    x_last = np.empty((P, B, N), dtype)
    for p in range(P):
        x = np.zeros((B, N), dtype) if x0 is None else np.array(x0[p], dtype=dtype)
        lr = leak[p]
        for t in range(T):
            rec = (W @ x.T).T                       # (B, N): W x_{t-1} for every sequence
            inp = u[t] @ W_in.T                     # (B, N): W_in u_t
            pre = sr_scale[p] * rec + in_scale[p] * inp + b
            x = (1 - lr) * x + lr * np.tanh(pre)
            states[t, p] = x
        x_last[p] = x
    return states, x_last


def ridge_fit(X, Y, ridge):
    """Ridge regression with an unregularised intercept; X (S, N), Y (S, O) -> (W_out (N, O), b_out (O,)).

    Done in float64 whatever the input dtype.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    x_mean = X.mean(axis=0)
    y_mean = Y.mean(axis=0)
    Xc = X - x_mean
    Yc = Y - y_mean
    A = Xc.T @ Xc + ridge * np.eye(X.shape[1])
    W_out = np.linalg.solve(A, Xc.T @ Yc)
    b_out = y_mean - x_mean @ W_out
    return W_out, b_out


def spectral_radius(W):
    """Largest modulus of the eigenvalues of W (dense eigenvalue solve; for small matrices)."""
    W = W.toarray() if hasattr(W, "toarray") else np.asarray(W)
    return float(np.max(np.abs(np.linalg.eigvals(W))))
