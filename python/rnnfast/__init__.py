"""rnnfast: fast recurrent neural networks with a PyTorch-familiar API.

Layers (RNN, LSTM, GRU) run on the C++ CPU engine; `rnnfast.reference` holds the NumPy reference
implementations the engines are tested against.
"""

import os as _os


def _load_core():
    """Import the compiled module with OpenMP's passive wait policy unless the user chose one.

    Spinning OpenMP threads (libgomp's default) are fast on an idle machine but collapse when the cores
    are shared: with NumPy's BLAS threads or another process busy, a barrier can wait for a descheduled
    spinning thread for a whole time slice; measured 10-25x slower on 2 cores. libgomp reads the policy
    once, when it loads with _core; the variable is removed again afterwards so that libraries loaded later
    (torch's own OpenMP runtime, child processes) do not inherit it.
    """
    key = "OMP_WAIT_POLICY"
    set_here = key not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ
    if set_here:
        _os.environ[key] = "PASSIVE"
    try:
        from . import _core as core
    finally:
        if set_here:
            del _os.environ[key]
    return core


_core = _load_core()
from . import reference  # noqa: E402
from . import datasets, diagnostics, esn, init, losses, nn, optim  # noqa: E402
from .esn import ESN  # noqa: E402
from .layers import GRU, LSTM, RNN  # noqa: E402

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
    "ESN", "GRU", "LSTM", "RNN", "build_info", "reference", "nn", "losses", "optim", "init", "diagnostics",
    "esn", "datasets",
    "__version__",
]
