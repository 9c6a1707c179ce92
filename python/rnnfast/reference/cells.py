"""Plain NumPy reference implementations of single-layer RNN / LSTM / GRU.

These functions are the *specification* that the fast C++/CUDA kernels of
rnnfast are tested against.  They favour clarity over speed, but follow the
same overall structure as fast implementations (haste, cuDNN):

* forward:  the input projection ``x_t @ W_ih^T + b_ih`` of all time steps is
  one big matmul done before the time loop; only the recurrent matmul
  ``h_{t-1} @ W_hh^T`` runs inside the loop.
* backward (backprop through time): the loop walks backwards in time and
  stores the gradient w.r.t. the gate pre-activations of every step.  The
  parameter gradients and ``dx`` are then a few big matmuls after the loop,
  e.g. ``dW_ih = sum_t dG_t^T x_t = dG^T x`` with the time and batch axes
  flattened together.

Notation and shapes
-------------------
T  time steps, N batch size, C input size, H hidden size,
G  number of gate blocks: 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n).

x        (T, N, C)      input sequence (time major)
h0, c0   (N, H)         initial hidden / cell state
W_ih     (G*H, C)       input-to-hidden weights, PyTorch layout: the gate
                        blocks are stacked along the first axis in the order
                        given above, i.e. W_ih[k*H:(k+1)*H] belongs to gate k
W_hh     (G*H, H)       hidden-to-hidden weights, same stacking
b_ih     (G*H,) | None  input bias       (None: layer has no bias)
b_hh     (G*H,) | None  recurrent bias   (None: layer has no bias)
y        (T, N, H)      hidden state of every step, y[t] = h_t (so y[-1] = h_n)

All arithmetic is done in the floating dtype of the inputs (float32 or
float64); all arrays must share that dtype, nothing is upcast.

The math is exactly that of ``torch.nn.RNN``, ``torch.nn.LSTM`` and
``torch.nn.GRU`` (one layer, one direction), plus the original GRU variant of
Cho et al. (2014) that applies the reset gate *before* the recurrent matmul.
"""

import numpy as np

__all__ = [
    "rnn_forward",
    "rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "sigmoid",
]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def sigmoid(a):
    """Logistic function 1 / (1 + exp(-a)), evaluated without overflow.

    For a >= 0 use 1 / (1 + e^-a); for a < 0 use e^a / (1 + e^a).  Both
    branches only ever exponentiate -|a| <= 0.  Keeps the dtype of ``a``.
    """
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _check_inputs(name, G, x, states, W_ih, W_hh, b_ih, b_hh):
    """Validate shapes / dtypes; return (T, N, C, H, dtype) and the states.

    ``states`` is a list of initial states (h0 or h0, c0); a ``None`` entry is
    replaced by zeros of shape (N, H).
    """
    x = np.asarray(x)
    W_ih = np.asarray(W_ih)
    W_hh = np.asarray(W_hh)
    if x.ndim != 3:
        raise ValueError(f"{name}: x must have shape (T, N, C), got {x.shape}")
    T, N, C = x.shape
    if W_hh.ndim != 2 or W_hh.shape[0] != G * W_hh.shape[1]:
        raise ValueError(f"{name}: W_hh must have shape ({G}*H, H), got {W_hh.shape}")
    H = W_hh.shape[1]
    if W_ih.shape != (G * H, C):
        raise ValueError(f"{name}: W_ih must have shape {(G * H, C)}, got {W_ih.shape}")
    if (b_ih is None) != (b_hh is None):
        raise ValueError(f"{name}: b_ih and b_hh must both be arrays or both be None")

    dtype = x.dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: x must be float32 or float64, got {dtype}")

    def check(arr, label, shape):
        arr = np.asarray(arr)
        if arr.shape != shape:
            raise ValueError(f"{name}: {label} must have shape {shape}, got {arr.shape}")
        if arr.dtype != dtype:
            raise TypeError(f"{name}: {label} has dtype {arr.dtype} but x has {dtype}; "
                            "all inputs must share one dtype")
        return arr

    W_ih = check(W_ih, "W_ih", (G * H, C))
    W_hh = check(W_hh, "W_hh", (G * H, H))
    if b_ih is not None:
        b_ih = check(b_ih, "b_ih", (G * H,))
        b_hh = check(b_hh, "b_hh", (G * H,))
    states = [np.zeros((N, H), dtype) if s is None else check(s, lbl, (N, H))
              for s, lbl in states]
    return (T, N, C, H, dtype), x, states, W_ih, W_hh, b_ih, b_hh


def _zeros_if_none(arr, shape, dtype):
    """Upstream gradients may be None, meaning zero."""
    if arr is None:
        return np.zeros(shape, dtype)
    arr = np.asarray(arr)
    if arr.shape != shape:
        raise ValueError(f"gradient must have shape {shape}, got {arr.shape}")
    return arr.astype(dtype, copy=False)


def _input_projection(x, W_ih, b_ih):
    """All-time-steps input projection: (T, N, C) -> (T, N, G*H).

        Xp[t] = x[t] @ W_ih^T + b_ih
    """
    T, N, C = x.shape
    Xp = (x.reshape(T * N, C) @ W_ih.T).reshape(T, N, -1)
    if b_ih is not None:
        Xp = Xp + b_ih
    return Xp


def _param_grads(dG_x, x, dG_h, h_prev, has_bias):
    """Parameter gradients from the stored per-step pre-activation gradients.

    dG_x   (T, N, G*H)  dL/d(x_t W_ih^T + b_ih)   for every step
    x      (T, N, C)
    dG_h   (T, N, G*H)  dL/d(h_{t-1} W_hh^T + b_hh)
    h_prev (T, N, H)    h_{t-1} for every step (h_prev[0] = h0)

        dW_ih = sum_t dG_x[t]^T x[t]       = dG_x^T x        (time*batch flattened)
        dW_hh = sum_t dG_h[t]^T h_prev[t]  = dG_h^T h_prev
        db_ih = sum over t, n of dG_x
        db_hh = sum over t, n of dG_h
    """
    T, N, GH = dG_x.shape
    dGx2 = dG_x.reshape(T * N, GH)
    dGh2 = dG_h.reshape(T * N, GH)
    grads = {
        "W_ih": dGx2.T @ x.reshape(T * N, -1),
        "W_hh": dGh2.T @ h_prev.reshape(T * N, -1),
        "b_ih": dGx2.sum(axis=0) if has_bias else None,
        "b_hh": dGh2.sum(axis=0) if has_bias else None,
    }
    return grads


def _dx(dG_x, W_ih):
    """dx[t] = dG_x[t] @ W_ih : (T, N, G*H) @ (G*H, C) -> (T, N, C)."""
    T, N, GH = dG_x.shape
    return (dG_x.reshape(T * N, GH) @ W_ih).reshape(T, N, -1)


# ---------------------------------------------------------------------------
# Elman RNN
# ---------------------------------------------------------------------------

def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh"):
    """Elman RNN, as torch.nn.RNN:

        a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh      (N, H)
        h_t = act(a_t),  act = tanh or relu

    Returns (y, h_n, cache): y (T, N, H) all hidden states, h_n = y[-1].
    ``h0`` may be None (zeros).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    (T, N, C, H, dtype), x, (h0,), W_ih, W_hh, b_ih, b_hh = _check_inputs(
        "rnn_forward", 1, x, [(h0, "h0")], W_ih, W_hh, b_ih, b_hh)

    Xp = _input_projection(x, W_ih, b_ih)            # (T, N, H)
    y = np.empty((T, N, H), dtype)
    h = h0
    for t in range(T):
        a = Xp[t] + h @ W_hh.T                       # (N, H)
        if b_hh is not None:
            a = a + b_hh
        h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
        y[t] = h

    cache = dict(cell="rnn", nonlinearity=nonlinearity, x=x, h0=h0, y=y,
                 W_ih=W_ih, W_hh=W_hh, has_bias=b_ih is not None)
    return y, y[-1].copy(), cache


def rnn_backward(dy, dh_n, cache):
    """Backprop through time for :func:`rnn_forward`.

    dy (T, N, H) = dL/dy (None: zero), dh_n (N, H) = dL/dh_n (None: zero).
    h_n is y[-1], so its total gradient is dy[-1] + dh_n.

    Going backwards, with dh = dL/dh_t coming from the future (step t+1)
    plus the direct output gradient dy[t]:

        da_t      = dh * act'(a_t)     tanh: 1 - h_t^2;  relu: [h_t > 0]
        dh_{t-1}  = da_t @ W_hh        (N, H) @ (H, H)

    Returns (dx, dh0, grads) with grads = {W_ih, W_hh, b_ih, b_hh}.
    """
    x, y, h0, W_ih, W_hh = cache["x"], cache["y"], cache["h0"], cache["W_ih"], cache["W_hh"]
    T, N, H = y.shape
    dtype = y.dtype
    dy = _zeros_if_none(dy, (T, N, H), dtype)
    dh = _zeros_if_none(dh_n, (N, H), dtype)

    dA = np.empty((T, N, H), dtype)                  # dL/da_t for every t
    for t in reversed(range(T)):
        dh = dh + dy[t]                              # total dL/dh_t
        h = y[t]
        if cache["nonlinearity"] == "tanh":
            da = dh * (1 - h * h)
        else:
            da = dh * (h > 0)
        dA[t] = da
        dh = da @ W_hh                               # dL/dh_{t-1}

    # h_{t-1} for every step: [h0, h_0, ..., h_{T-2}]
    h_prev = np.concatenate([h0[None], y[:-1]], axis=0)
    # a_t depends identically on the input and recurrent projections,
    # so both see the same pre-activation gradient dA.
    grads = _param_grads(dA, x, dA, h_prev, cache["has_bias"])
    return _dx(dA, W_ih), dh, grads


# ---------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------

def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, zoneout=None):
    """LSTM, as torch.nn.LSTM (gate order i, f, g, o):

        [a_i a_f a_g a_o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh   (N, 4H)
        i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    Returns (y, h_n, c_n, cache).  ``h0`` / ``c0`` may be None (zeros).

    zoneout (T, N, H) or None: zoneout on h (Krueger et al. 2016, as haste): each unit takes the new
    value with weight zoneout[t] and keeps its previous one with 1 - zoneout[t],
    h_t = h_{t-1} + zoneout[t] * (o * tanh(c_t) - h_{t-1}); in training a 0/1 mask (keep probability
    p: P(0) = p), in eval the expectation 1 - p. c is not zoned out.
    """
    (T, N, C, H, dtype), x, (h0, c0), W_ih, W_hh, b_ih, b_hh = _check_inputs(
        "lstm_forward", 4, x, [(h0, "h0"), (c0, "c0")], W_ih, W_hh, b_ih, b_hh)

    Xp = _input_projection(x, W_ih, b_ih)            # (T, N, 4H)
    y = np.empty((T, N, H), dtype)
    cs = np.empty((T, N, H), dtype)                  # c_t for every step
    gates = np.empty((T, N, 4 * H), dtype)           # activated [i f g o]
    h, c = h0, c0
    for t in range(T):
        a = Xp[t] + h @ W_hh.T                       # (N, 4H)
        if b_hh is not None:
            a = a + b_hh
        i = sigmoid(a[:, 0 * H:1 * H])
        f = sigmoid(a[:, 1 * H:2 * H])
        g = np.tanh(a[:, 2 * H:3 * H])
        o = sigmoid(a[:, 3 * H:4 * H])
        c = f * c + i * g
        h_new = o * np.tanh(c)
        h = h_new if zoneout is None else h + zoneout[t] * (h_new - h)
        gates[t] = np.concatenate([i, f, g, o], axis=1)
        cs[t] = c
        y[t] = h

    cache = dict(cell="lstm", x=x, h0=h0, c0=c0, y=y, c=cs, gates=gates,
                 W_ih=W_ih, W_hh=W_hh, has_bias=b_ih is not None, zoneout=zoneout)
    return y, y[-1].copy(), cs[-1].copy(), cache


def lstm_backward(dy, dh_n, dc_n, cache):
    """Backprop through time for :func:`lstm_forward`.

    With dh = dL/dh_t (future + dy[t]) and dc = dL/dc_t (from the future):

        tc    = tanh(c_t)
        do    = dh * tc
        dc   += dh * o * (1 - tc^2)            (h_t = o * tanh(c_t))
        di    = dc * g,   dg = dc * i,   df = dc * c_{t-1}
        dc_{t-1} = dc * f
        pre-activation gradients (sigmoid' = s(1-s), tanh' = 1 - g^2):
        dA_t  = [di*i*(1-i), df*f*(1-f), dg*(1-g^2), do*o*(1-o)]    (N, 4H)
        dh_{t-1} = dA_t @ W_hh                                      (N, H)

    Returns (dx, dh0, dc0, grads).
    """
    x, y, cs, gates = cache["x"], cache["y"], cache["c"], cache["gates"]
    h0, c0, W_ih, W_hh = cache["h0"], cache["c0"], cache["W_ih"], cache["W_hh"]
    T, N, H = y.shape
    dtype = y.dtype
    dy = _zeros_if_none(dy, (T, N, H), dtype)
    dh = _zeros_if_none(dh_n, (N, H), dtype)
    dc = _zeros_if_none(dc_n, (N, H), dtype)

    dA = np.empty((T, N, 4 * H), dtype)
    zm = cache.get("zoneout")
    for t in reversed(range(T)):
        dh = dh + dy[t]                              # total dL/dh_t
        if zm is not None:                           # h_t = h_{t-1} + m (h_new - h_{t-1})
            carry, dh = (1 - zm[t]) * dh, zm[t] * dh
        i, f, g, o = (gates[t][:, k * H:(k + 1) * H] for k in range(4))
        c_prev = cs[t - 1] if t > 0 else c0
        tc = np.tanh(cs[t])
        do = dh * tc
        dc = dc + dh * o * (1 - tc * tc)             # total dL/dc_t
        di = dc * g
        df = dc * c_prev
        dg = dc * i
        dA[t] = np.concatenate([di * i * (1 - i),
                                df * f * (1 - f),
                                dg * (1 - g * g),
                                do * o * (1 - o)], axis=1)
        dc = dc * f                                  # dL/dc_{t-1}
        dh = dA[t] @ W_hh                            # dL/dh_{t-1}
        if zm is not None:
            dh = dh + carry

    h_prev = np.concatenate([h0[None], y[:-1]], axis=0)
    grads = _param_grads(dA, x, dA, h_prev, cache["has_bias"])
    return _dx(dA, W_ih), dh, dc, grads


# ---------------------------------------------------------------------------
# GRU
# ---------------------------------------------------------------------------

def gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh, reset_after=True, zoneout=None):
    """GRU (gate order r, z, n).

    Input projection  [x_r x_z x_n] = x_t W_ih^T + b_ih      (N, 3H)
    W_hh = [W_hr; W_hz; W_hn], b_hh = [b_hr; b_hz; b_hn].

        r = sigmoid(x_r + h_{t-1} W_hr^T + b_hr)
        z = sigmoid(x_z + h_{t-1} W_hz^T + b_hz)

    reset_after=True  (torch.nn.GRU / cuDNN form):
        n = tanh(x_n + r * (h_{t-1} W_hn^T + b_hn))
    reset_after=False (original form of Cho et al. 2014):
        n = tanh(x_n + (r * h_{t-1}) W_hn^T + b_hn)

        h_t = (1 - z) * n + z * h_{t-1}

    Returns (y, h_n, cache).  ``h0`` may be None (zeros).
    zoneout (T, N, H) or None: h_t = h_{t-1} + zoneout[t] * (h_new - h_{t-1}), as for the LSTM.
    """
    (T, N, C, H, dtype), x, (h0,), W_ih, W_hh, b_ih, b_hh = _check_inputs(
        "gru_forward", 3, x, [(h0, "h0")], W_ih, W_hh, b_ih, b_hh)
    reset_after = bool(reset_after)
    W_hrz, W_hn = W_hh[:2 * H], W_hh[2 * H:]         # (2H, H), (H, H)
    if b_hh is not None:
        b_hrz, b_hn = b_hh[:2 * H], b_hh[2 * H:]

    Xp = _input_projection(x, W_ih, b_ih)            # (T, N, 3H)
    y = np.empty((T, N, H), dtype)
    gates = np.empty((T, N, 3 * H), dtype)           # activated [r z n]
    # reset_after: hn[t] = h_{t-1} W_hn^T + b_hn  (needed for dr)
    # otherwise:   hn[t] = r * h_{t-1}            (needed for dW_hn and dr)
    hn_store = np.empty((T, N, H), dtype)
    h = h0
    for t in range(T):
        xr, xz, xn = Xp[t][:, :H], Xp[t][:, H:2 * H], Xp[t][:, 2 * H:]
        a_rz = h @ W_hrz.T                           # (N, 2H)
        if b_hh is not None:
            a_rz = a_rz + b_hrz
        r = sigmoid(xr + a_rz[:, :H])
        z = sigmoid(xz + a_rz[:, H:])
        if reset_after:
            hn = h @ W_hn.T                          # (N, H)
            if b_hh is not None:
                hn = hn + b_hn
            n = np.tanh(xn + r * hn)
            hn_store[t] = hn
        else:
            rh = r * h                               # (N, H)
            hn = rh @ W_hn.T
            if b_hh is not None:
                hn = hn + b_hn
            n = np.tanh(xn + hn)
            hn_store[t] = rh
        h_new = (1 - z) * n + z * h
        h = h_new if zoneout is None else h + zoneout[t] * (h_new - h)
        gates[t] = np.concatenate([r, z, n], axis=1)
        y[t] = h

    cache = dict(cell="gru", reset_after=reset_after, x=x, h0=h0, y=y,
                 gates=gates, hn=hn_store, W_ih=W_ih, W_hh=W_hh,
                 has_bias=b_ih is not None, zoneout=zoneout)
    return y, y[-1].copy(), cache


def gru_backward(dy, dh_n, cache):
    """Backprop through time for :func:`gru_forward`.

    With dh = dL/dh_t (future + dy[t]), h = h_{t-1}:

        dn = dh * (1 - z)         dz = dh * (h - n)         dh_{t-1} = dh * z + ...
        da_n = dn * (1 - n^2)                       (grad of n's pre-activation)
        da_z = dz * z * (1 - z)

    reset_after=True, with hn = h W_hn^T + b_hn:
        dr   = da_n * hn,     da_r = dr * r * (1 - r)
        grad of input projection      dGx = [da_r, da_z, da_n]
        grad of recurrent projection  dGh = [da_r, da_z, da_n * r]
        dh_{t-1} += dGh @ W_hh

    reset_after=False, with rh = r * h:
        d(rh) = da_n @ W_hn,  dr = d(rh) * h,  da_r = dr * r * (1 - r)
        dGx = dGh = [da_r, da_z, da_n]
        dh_{t-1} += [da_r, da_z] @ [W_hr; W_hz] + d(rh) * r
        and W_hn multiplies rh (not h):  dW_hn = sum_t da_n^T rh

    Returns (dx, dh0, grads).
    """
    x, y, gates, hn_store = cache["x"], cache["y"], cache["gates"], cache["hn"]
    h0, W_ih, W_hh = cache["h0"], cache["W_ih"], cache["W_hh"]
    reset_after = cache["reset_after"]
    T, N, H = y.shape
    dtype = y.dtype
    dy = _zeros_if_none(dy, (T, N, H), dtype)
    dh = _zeros_if_none(dh_n, (N, H), dtype)
    W_hrz, W_hn = W_hh[:2 * H], W_hh[2 * H:]

    dGx = np.empty((T, N, 3 * H), dtype)             # dL/d(input projection)
    dGh = np.empty((T, N, 3 * H), dtype)             # dL/d(recurrent projection)
    zm = cache.get("zoneout")
    for t in reversed(range(T)):
        dh = dh + dy[t]                              # total dL/dh_t
        if zm is not None:                           # h_t = h_{t-1} + m (h_new - h_{t-1})
            carry, dh = (1 - zm[t]) * dh, zm[t] * dh
        r, z, n = gates[t][:, :H], gates[t][:, H:2 * H], gates[t][:, 2 * H:]
        h = y[t - 1] if t > 0 else h0                # h_{t-1}
        dn = dh * (1 - z)
        dz = dh * (h - n)
        dh_prev = dh * z
        da_n = dn * (1 - n * n)
        da_z = dz * z * (1 - z)
        if reset_after:
            hn = hn_store[t]
            da_r = da_n * hn * r * (1 - r)
            dGx[t] = np.concatenate([da_r, da_z, da_n], axis=1)
            dGh[t] = np.concatenate([da_r, da_z, da_n * r], axis=1)
            dh_prev = dh_prev + dGh[t] @ W_hh
        else:
            d_rh = da_n @ W_hn                       # (N, H)
            da_r = d_rh * h * r * (1 - r)
            dGx[t] = np.concatenate([da_r, da_z, da_n], axis=1)
            dGh[t] = dGx[t]
            dh_prev = dh_prev + dGh[t][:, :2 * H] @ W_hrz + d_rh * r
        dh = dh_prev if zm is None else dh_prev + carry  # dL/dh_{t-1}

    h_prev = np.concatenate([h0[None], y[:-1]], axis=0)
    grads = _param_grads(dGx, x, dGh, h_prev, cache["has_bias"])
    if not reset_after:
        # the n block of W_hh multiplies r * h_{t-1}, not h_{t-1}
        da_n = dGh[:, :, 2 * H:].reshape(T * N, H)
        grads["W_hh"][2 * H:] = da_n.T @ hn_store.reshape(T * N, H)
    return _dx(dGx, W_ih), dh, grads
