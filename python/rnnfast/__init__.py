"""rnnfast: fast recurrent neural networks with a PyTorch-familiar API.

Layers (RNN, LSTM, GRU, MRNN) run on the C++ CPU engine; `rnnfast.reference` holds the NumPy reference
implementations the engines are tested against.
"""

from . import _core
from . import reference
from . import datasets, diagnostics, esn, init, losses, nn, optim, statespace
from .esn import ESN
from .layers import GRU, LSTM, RNN
from .mrnn import MRNN
from .nn import no_grad

__version__ = _core.build_info()["version"]


def build_info():
    """What this build of rnnfast contains and can use now.

    Keys: version, blas (what the CPU engine links), cuda_compiled (the CUDA sources were compiled in),
    cuda_available (a usable GPU right now), cuda_device_count, compiler.
    """
    info = dict(_core.build_info())
    count = _core.cuda_device_count()
    info["cuda_device_count"] = count
    info["cuda_available"] = bool(info["cuda_compiled"] and count > 0)
    return info


__all__ = [
    "ESN", "GRU", "LSTM", "MRNN", "RNN", "build_info", "reference", "nn", "losses", "optim", "init", "diagnostics",
    "esn", "datasets", "statespace", "no_grad",
    "__version__",
]
