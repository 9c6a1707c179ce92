"""convert(model) and revert(model): swap torch.nn's RNN/LSTM/GRU for rnnfast.torch's and back, in place.

The new module takes over the old one's Parameter objects themselves (same names, shapes, device, dtype and
requires_grad), so nothing is copied and an optimizer built before the swap keeps working on them.
"""

from torch import nn

from ._modules import GRU, LSTM, RNN, RNNBase

_TO_RNNFAST = {nn.RNN: RNN, nn.LSTM: LSTM, nn.GRU: GRU}
_TO_TORCH = {RNN: nn.RNN, LSTM: nn.LSTM, GRU: nn.GRU}


def _config(m):
    cfg = dict(input_size=m.input_size, hidden_size=m.hidden_size, num_layers=m.num_layers, bias=m.bias,
               batch_first=m.batch_first, dropout=m.dropout, bidirectional=m.bidirectional)
    if m.mode in ("RNN_TANH", "RNN_RELU"):
        cfg["nonlinearity"] = "relu" if m.mode == "RNN_RELU" else "tanh"
    if m.mode == "LSTM" and m.proj_size:
        cfg["proj_size"] = m.proj_size
    w = getattr(m, m._flat_weights_names[0])
    cfg.update(device=w.device, dtype=w.dtype)
    return cfg


def _swap(old, cls, where):
    import warnings
    with warnings.catch_warnings():  # the dropout-with-one-layer warning was given when `old` was built
        warnings.simplefilter("ignore", UserWarning)
        try:
            new = cls(**_config(old))
        except NotImplementedError as e:
            raise NotImplementedError(f"{where or 'model'}: {e}") from None
    for name in old._flat_weights_names:
        setattr(new, name, getattr(old, name))  # the same Parameter objects: no copy
    new.train(old.training)
    return new


def _replace(model, table, check):
    if type(model) in table:
        check(model, "")
        return _swap(model, table[type(model)], "")
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if type(child) in table:
                where = f"{parent_name}.{name}" if parent_name else name
                check(child, where)
                setattr(parent, name, _swap(child, table[type(child)], where))
    return model


def convert(model):
    """Replace every torch.nn.RNN, LSTM and GRU inside `model` (exactly those classes, not subclasses) by
    rnnfast.torch's module with the same configuration and the same Parameter objects; returns the model
    (a new module when `model` itself is one of them), proj_size included (weight_hr_l{k} shared too)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert: model should be a torch.nn.Module, got {type(model).__name__}")
    return _replace(model, _TO_RNNFAST, lambda m, where: None)


def revert(model):
    """The inverse of convert: rnnfast.torch's RNN/LSTM/GRU inside `model` become torch.nn's, sharing the
    Parameter objects. Modules with options torch.nn lacks (GRU reset_after=False, learn_initial_state,
    zoneout) raise ValueError naming the submodule, before anything is replaced."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"revert: model should be a torch.nn.Module, got {type(model).__name__}")

    def check(m, where):
        extra = []
        if not getattr(m, "reset_after", True):
            extra.append("reset_after=False")
        if m.learn_initial_state:
            extra.append("learn_initial_state=True")
        if m.zoneout:
            extra.append(f"zoneout={m.zoneout}")
        if extra:
            raise ValueError(f"revert: {where or 'model'} uses {', '.join(extra)}, which torch.nn's "
                             f"{type(m).__name__} does not have")

    for where, m in model.named_modules():
        if isinstance(m, RNNBase):
            check(m, where)
    return _replace(model, _TO_TORCH, check)
