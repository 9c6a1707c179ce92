"""rnnfast for PyTorch users: RNN, LSTM and GRU as torch.nn.Modules running rnnfast's engines.

    import rnnfast.torch
    lstm = rnnfast.torch.LSTM(64, 256, num_layers=2, batch_first=True)   # torch.nn.LSTM's constructor
    y, (h_n, c_n) = lstm(x)                                             # and outputs
    model = rnnfast.torch.convert(model)     # every nn.RNN/LSTM/GRU inside `model` swapped, weights kept

Autograd runs through custom operators (torch.ops.rnnfast.recurrent_layer and its backward) with fake
implementations, so torch.compile(model, fullgraph=True) compiles models that contain these modules.
Needs torch (`pip install 'rnnfast[torch]'`).

Threads: rnnfast's engine runs the recurrent layers on its own pool (RNNFAST_NUM_THREADS); torch's OpenMP
threads spin on the same cores after each torch operation (libgomp's default), which slowed a converted
model's training step up to 1.6x on 2 cores (benchmarks/RESULTS.md). When the recurrent layers dominate, use
torch.set_num_threads(1) or start the process with OMP_WAIT_POLICY=PASSIVE.
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("rnnfast.torch needs PyTorch: pip install 'rnnfast[torch]' (or torch)") from e

from ._convert import convert, revert
from ._modules import GRU, LSTM, RNN, RNNBase

__all__ = ["RNN", "LSTM", "GRU", "RNNBase", "convert", "revert"]
