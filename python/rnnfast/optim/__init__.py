"""Optimizers and gradient clipping over the module protocol, with torch.optim's update rules and defaults;
Hessian-free optimization (hessian_free) with the R-ops it runs on the engine (rop).

    opt = RMSprop(model, lr=1e-3, momentum=0.9)     # model: a module, a list/tuple of modules, or a dict
    model.zero_grad(); ...backward...
    clip_grad_norm_(model, 5.0)                     # the lecture's remedy for exploding gradients
    opt.step()

Parameters get stable names: a module's own names ("weight_hh_l0"); for a list, "0.weight_hh_l0", ...;
for a dict {"rnn": layer}, "rnn.weight_hh_l0". Optimizers update the live arrays in place and never write
NaN: a non-finite gradient makes step() raise ValueError naming the parameter, before anything changes.
state_dict() is flat (hyperparameters, then "state.<param name>.<buffer>" -> int step or NumPy array), so
`np.savez(f, **opt.state_dict())` and `opt.load_state_dict(dict(np.load(f)))` round-trip.
"""

from .clip import clip_grad_norm_, clip_grad_value_
from .hessian_free import HessianFree
from .optimizers import SGD, Adagrad, Adam, Optimizer, RMSprop

__all__ = ["Optimizer", "SGD", "RMSprop", "Adagrad", "Adam", "HessianFree", "clip_grad_norm_", "clip_grad_value_"]
