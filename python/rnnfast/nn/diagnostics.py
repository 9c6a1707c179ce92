"""Seeing vanishing and exploding gradients (the lecture; Pascanu et al. 2013).

The backward pass of an RNN is linear: the error signal at step t is the last step's signal multiplied
by one Jacobian per step, roughly W_hh^T diag(act'). If the largest |eigenvalue| of W_hh is < 1 the
signal shrinks exponentially going back in time; if it is > 1 (and the units are not saturated) it grows.

    norms = gradient_norms_per_step(rnn, x)      # (T,): ||dL/dx_t|| for a loss on the last output only
    recurrent_spectral_radius(rnn)                # {"weight_hh_l0": 1.1, ...} (per gate block for LSTM/GRU)
"""

import numpy as np

from .._util import checks as _checks
from .._util.arrays import array_module, to_host
from .init import recurrent_blocks, spectral_radius

__all__ = ["gradient_norms_per_step", "recurrent_spectral_radius"]


def gradient_norms_per_step(layer, x, hx=None, direction=None):
    """Per-time-step L2 norm of dL/dx_t (over batch and features) for L = <direction, y_T>.

    layer: an rnnfast RNN/LSTM/GRU; x as for layer.forward (batch_first respected). direction is the
    gradient put on the last step's output y_T (shape of y[-1], i.e. (N, D*H), or (D*H,) for unbatched x),
    default all ones; every other step's output gets zero gradient and the final state gets none.
    Returns a float64 NumPy array (T,), for a layer on the CPU or on CUDA (then x and direction are CuPy
    arrays). Runs one forward and backward in training mode, then restores layer.grads and the train/eval
    mode exactly (a pending forward of the caller's is lost).
    """
    if not all(hasattr(layer, a) for a in ("forward", "backward", "grads", "train")):
        raise TypeError(f"layer must be an rnnfast recurrent layer, got {type(layer).__name__}")
    saved = {name: g.copy() for name, g in layer.grads.items()}
    was_training = layer.training
    try:
        layer.train(True)
        y, _ = layer.forward(x, hx)
        batched = y.ndim == 3
        t_axis = 1 if (batched and getattr(layer, "batch_first", False)) else 0
        xp = array_module(y)
        dy = xp.zeros_like(y)
        last = xp.moveaxis(dy, t_axis, 0)[-1]                      # view of dy at the last step
        if direction is None:
            last[...] = 1
        else:
            check = layer.array_api()[1] if hasattr(layer, "array_api") else _checks.check_array
            last[...] = check(direction, "direction", y.dtype, last.shape)
        dx, _ = layer.backward(dy)
        dx = xp.moveaxis(dx, t_axis, 0).astype(np.float64)       # (T, ...)
        return to_host(xp.sqrt((dx.reshape(dx.shape[0], -1) ** 2).sum(axis=1)))
    finally:
        for name, g in layer.grads.items():
            g[...] = saved[name]
        layer.train(was_training)


def recurrent_spectral_radius(layer):
    """{key: spectral radius} of every hidden->hidden block; keys as init.recurrent_blocks
    ("weight_hh_l0", or "weight_hh_l0[f]" per gate for LSTM/GRU)."""
    blocks = recurrent_blocks(layer)  # checks layer first
    params = layer.parameters()
    return {key: spectral_radius(params[name][rows]) for key, name, rows in blocks}
