"""Everything rnnfast.torch takes from rnnfast besides its public names: kept in this one file.

The compiled module rnnfast._core (the CPU engine's entry points, csrc/bindings.cpp) is a stable name; the
CUDA engine (rnnfast.backends: CuPy glue around csrc/cuda) is internal, so it is imported here and nowhere
else in rnnfast.torch.
"""

from rnnfast import _core
from rnnfast.backends.cells import GATES, GRU, GRU_CHO, LSTM, RNN_RELU, RNN_TANH  # the engines' cell ints

# What the engines can do. An option set to False here is accepted by the modules' constructors and forward
# and refused with NotImplementedError; all three came with issue #17 (variable lengths, zoneout in the time
# loop; proj_size built on the LSTM, rnnfast/torch/_modules.py's _projected_layer).
SUPPORTS = {"packed_sequence": True, "proj_size": True, "zoneout": True}


def cuda_engine():
    """(cupy module, CUDA engine object with forward/backward as in rnnfast's engine interface)."""
    from rnnfast.backends import engine_for
    from rnnfast.backends.devices import cupy

    return cupy(), engine_for("recurrent", "cuda")


__all__ = ["_core", "RNN_TANH", "RNN_RELU", "LSTM", "GRU", "GRU_CHO", "GATES", "SUPPORTS", "cuda_engine"]
