"""The engines that run the recurrent loops, and the one registry that picks them.

A layer asks `engine_for(model, device, engine)`: model 'recurrent' (RNN, LSTM, GRU) or 'mrnn'; device
'cpu' or 'cuda'; engine, on the CPU, 'cpu' (the C++ engine, csrc/cpu) or 'reference' (the NumPy
reference, rnnfast.reference); on 'cuda' the CUDA engine (csrc/cuda) runs whatever the layer's engine.
Every engine has the interface described in rnnfast.backends.cpu. Cells are named by the ints of
rnnfast.backends.cells.
"""

from .cpu import CpuEngine, MrnnCpuEngine
from .cuda import CudaEngine, MrnnCudaEngine
from .reference import MrnnReferenceEngine, ReferenceEngine

ENGINE_NAMES = ("cpu", "reference")  # what a layer's engine= takes

_ENGINES = {
    ("recurrent", "cpu", "cpu"): CpuEngine(),
    ("recurrent", "cpu", "reference"): ReferenceEngine(),
    ("recurrent", "cuda", None): CudaEngine(),
    ("mrnn", "cpu", "cpu"): MrnnCpuEngine(),
    ("mrnn", "cpu", "reference"): MrnnReferenceEngine(),
    ("mrnn", "cuda", None): MrnnCudaEngine(),
}


def engine_for(model, device, engine="cpu"):
    """The engine object that runs `model` on `device` (see the module docstring)."""
    key = (model, device, None if device == "cuda" else engine)
    try:
        return _ENGINES[key]
    except KeyError:
        raise ValueError(f"no engine runs model {model!r} on device {device!r} with engine {engine!r}") from None
