"""Variable-length batches in the reference: the specification, one sequence at a time.

A batch x (T, N, C) with lengths (N,) in [1, T]: sequence n is x[:lengths[n], n] alone. It runs its own
steps only (a reverse direction starts at its own last step, as torch.nn.utils.rnn.pack_padded_sequence
gives), its outputs past its end are zero, its final state is the state after its own last step, and
backward gives zero gradient past its end. Here each sequence is simply run by itself through a
one-sequence forward/backward (the engines instead skip finished rows inside one batched loop), so this
is readable and slow, and independent of the engines' masking.

    forward(xs, states[, extra]) -> (y, finals, cache)   xs (L, 1, C), states: list of (1, H) arrays
    backward(dy, dfinals, cache) -> (dx, dstates, grads)
"""

import numpy as np

__all__ = ["varlen_forward", "varlen_backward"]


def varlen_forward(forward, x, states, lengths, reverse=False, extra=None):
    """Returns (y (T, N, H), finals: list of (N, H), caches): zero y past each sequence's end.

    extra: None, or a (T, N, ...) array cut like x and passed on as forward's third argument (a zoneout
    mask)."""
    T, N = x.shape[:2]
    ys, finals, caches = None, None, []
    for n in range(N):
        L = int(lengths[n])
        xs = x[:L, n:n + 1]
        if reverse:
            xs = xs[::-1]
        more = ()
        if extra is not None:
            e = extra[:L, n:n + 1]
            more = (np.ascontiguousarray(e[::-1] if reverse else e),)
        y, f, cache = forward(np.ascontiguousarray(xs), [None if s is None else s[n:n + 1] for s in states], *more)
        if reverse:
            y = y[::-1]
        if ys is None:
            ys = np.zeros((T, N) + y.shape[2:], y.dtype)
            finals = [np.empty((N,) + a.shape[1:], a.dtype) for a in f]
        ys[:L, n] = y[:, 0]
        for a, b in zip(finals, f):
            a[n] = b[0]
        caches.append((L, cache))
    return ys, finals, caches


def varlen_backward(backward, dy, dfinals, caches, T, reverse=False):
    """Returns (dx (T, N, C), dstates: list of (N, H), grads summed over the sequences); dx is zero past
    each sequence's end. dy (T, N, H) or None; dfinals: list of (N, H) arrays or None."""
    N = len(caches)
    dx = dstates = grads = None
    for n, (L, cache) in enumerate(caches):
        d = None if dy is None else dy[:L, n:n + 1]
        if d is not None and reverse:
            d = d[::-1]
        dxs, ds, g = backward(None if d is None else np.ascontiguousarray(d),
                              [None if f is None else f[n:n + 1] for f in dfinals], cache)
        if reverse:
            dxs = dxs[::-1]
        if dx is None:
            dx = np.zeros((T, N) + dxs.shape[2:], dxs.dtype)
            dstates = [np.empty((N,) + a.shape[1:], a.dtype) for a in ds]
            grads = {k: None if v is None else v.copy() for k, v in g.items()}
        else:
            for k, v in g.items():
                if v is not None:
                    grads[k] += v
        dx[:L, n] = dxs[:, 0]
        for a, b in zip(dstates, ds):
            a[n] = b[0]
    return dx, dstates, grads
