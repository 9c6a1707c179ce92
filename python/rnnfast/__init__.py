"""rnnfast: fast recurrent neural networks with a PyTorch-familiar API.

Layers (RNN, LSTM, GRU, MRNN) run on the C++ CPU engine or the CUDA engine (rnnfast.backends);
`rnnfast.reference` holds the NumPy reference implementations the engines are tested against.
The packages, lowest first (each imports only those before it): _util, backends, nn, optim, esn,
io, char (an application: `rnnfast char`); statespace (HMMs, linear dynamical systems) imports only
_util; reference and datasets stand alone.
"""

from . import _core, _moved, datasets, esn, nn, optim, reference, statespace
from .backends.devices import build_info
from .esn import ESN
from .nn import GRU, LSTM, MRNN, RNN, diagnostics, init, losses, no_grad

__version__ = _core.build_info()["version"]

_moved.install(__name__)  # rnnfast.hessian_free, rnnfast.layers, ...: the modules' paths before the packages


def __getattr__(name):
    """rnnfast.rop, rnnfast.hessian_free, ...: the moved modules as attributes too (imported on first use)."""
    if name in _moved.MOVED:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ESN", "GRU", "LSTM", "MRNN", "RNN", "build_info", "reference", "nn", "losses", "optim", "init", "diagnostics",
    "esn", "datasets", "statespace", "no_grad",
    "__version__",
]
