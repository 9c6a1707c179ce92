"""Gradient clipping over the module protocol (torch.nn.utils's clip_grad_norm_ and clip_grad_value_)."""

import math

import numpy as np

from .. import _core
from .._util import checks
from .._util.arrays import array_module
from .optimizers import _check_finite, _check_writeable, _triples

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def clip_grad_norm_(params, max_norm, norm_type=2.0, error_if_nonfinite=True):
    """Scale all gradients by max_norm / (total + 1e-6) when that is < 1 (torch.nn.utils.clip_grad_norm_).

    total is the global norm over every gradient (norm_type 2 or inf), returned as a float (before
    clipping). A non-finite total raises ValueError naming the parameter; with error_if_nonfinite=False
    it is returned and the gradients are left unchanged (so the caller can skip the step).
    params: a module, a list/tuple or dict of modules, or an Optimizer.
    """
    max_norm = checks.real(max_norm, "max_norm", low=0)
    if isinstance(norm_type, (bool, np.bool_)) or norm_type not in (2, math.inf):
        raise ValueError(f"norm_type must be 2 or inf, got {norm_type!r}")
    norm_type = float(norm_type)
    error_if_nonfinite = checks.boolean(error_if_nonfinite, "error_if_nonfinite")
    triples = _triples(params)
    if not triples:
        return 0.0
    for name, _, g in triples:
        _check_writeable(g, f"grads[{name!r}]")
    xp = array_module(triples[0][2])
    if xp is not np:  # on the GPU: every part on the device, one transfer (one host sync)
        parts = [(g.astype(xp.float64) ** 2).sum() if norm_type == 2.0 else
                 (xp.abs(g).max().astype(xp.float64) if g.size else xp.zeros((), xp.float64))
                 for _, _, g in triples]
        parts = [float(x) for x in xp.stack(parts).get()]
    elif norm_type == 2.0:
        parts = [float(_core.sum_squares(g)) if g.flags.c_contiguous else float((g.astype(np.float64) ** 2).sum())
                 for _, _, g in triples]
    else:
        parts = [float(np.abs(g).max()) if g.size else 0.0 for _, _, g in triples]
    total = math.sqrt(sum(parts)) if norm_type == 2.0 else max(parts)
    if not math.isfinite(total):
        if error_if_nonfinite:
            _check_finite(triples)
            raise ValueError(f"the total gradient norm is {total} (overflow)")
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for _, _, g in triples:
            g *= coef
    return total


def clip_grad_value_(params, clip_value):
    """Clip every gradient element to [-clip_value, clip_value] in place (torch.nn.utils.clip_grad_value_)."""
    clip_value = checks.real(clip_value, "clip_value", low=0, low_open=True)
    triples = _triples(params)
    for name, _, g in triples:
        _check_writeable(g, f"grads[{name!r}]")
    for _, _, g in triples:
        array_module(g).clip(g, -clip_value, clip_value, out=g)
