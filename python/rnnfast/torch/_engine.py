"""Everything rnnfast.torch takes from rnnfast besides its public names: kept in this one file.

The compiled module rnnfast._core (the CPU engine's entry points, csrc/bindings.cpp) is a stable name; the
CUDA engine (rnnfast._cuda: CuPy glue around csrc/cuda) is internal, so it is imported here and nowhere
else in rnnfast.torch, where one edit repoints it when rnnfast's Python package is reorganised.
"""

from rnnfast import _core

# cells by the ints of csrc/include/rnnfast/common.h
RNN_TANH, RNN_RELU, LSTM, GRU, GRU_CHO = 0, 1, 2, 3, 4
GATES = {RNN_TANH: 1, RNN_RELU: 1, LSTM: 4, GRU: 3, GRU_CHO: 3}

# What the engines can do today. Each option below is accepted by the modules' constructors and forward and
# refused with NotImplementedError until rnnfast's engine supports it (issue #17: variable lengths,
# proj_size and zoneout inside the time loop); the modules test these flags, nothing else.
SUPPORTS = {"packed_sequence": False, "proj_size": False, "zoneout": False}


def cuda_engine():
    """(cupy module, CUDA engine object with forward/backward as in rnnfast's engine interface)."""
    from rnnfast import _cuda
    return _cuda.cupy(), _cuda.ENGINE


__all__ = ["_core", "RNN_TANH", "RNN_RELU", "LSTM", "GRU", "GRU_CHO", "GATES", "SUPPORTS", "cuda_engine"]
