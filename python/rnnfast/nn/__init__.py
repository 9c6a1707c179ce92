"""Modules with PyTorch's conventions: the module protocol and containers (base), Linear, Embedding,
one_hot and Conditioned (modules), the recurrent layers RNN, LSTM, GRU (recurrent) and MRNN (mrnn),
initialisations (init), losses (losses) and gradient diagnostics (diagnostics)."""

from .._util.arrays import array_module, to_host
from .base import Container, Module, ModuleDict, ParameterDict, grad_disabled, keeps_for_backward, load_arrays, no_grad
from .modules import Conditioned, Embedding, Linear, one_hot
from .mrnn import MRNN
from .recurrent import GRU, LSTM, RNN

__all__ = ["array_module", "to_host", "Module", "Linear", "Embedding", "one_hot", "ModuleDict", "Container",
           "ParameterDict", "Conditioned", "no_grad", "grad_disabled", "keeps_for_backward", "load_arrays",
           "RNN", "LSTM", "GRU", "MRNN"]
