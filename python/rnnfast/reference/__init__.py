"""NumPy reference implementations (forward + backprop through time) of the
single-layer, single-direction RNN / LSTM / GRU cells that rnnfast's fast
kernels implement, and forward-mode R-ops (:mod:`.rop`) for Gauss-Newton
products.  Pure NumPy; see :mod:`.cells` for the equations."""

from .cells import (
    rnn_forward,
    rnn_backward,
    lstm_forward,
    lstm_backward,
    gru_forward,
    gru_backward,
    sigmoid,
)
from .esn import reservoir_run, ridge_fit
from .esn import spectral_radius as reservoir_spectral_radius
from .min_char_rnn import MinCharRNN
from .rop import rnn_rop

__all__ = [
    "rnn_forward",
    "rnn_backward",
    "rnn_rop",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "sigmoid",
    "MinCharRNN",
    "reservoir_run",
    "ridge_fit",
    "reservoir_spectral_radius",
]
