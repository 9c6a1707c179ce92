"""NumPy reference implementations (forward + backprop through time) of the
single-layer, single-direction RNN / LSTM / GRU / MRNN cells that rnnfast's fast
kernels implement.  Pure NumPy; see :mod:`.cells` and :mod:`.mrnn` for the equations;
:mod:`.rop` and :func:`mrnn_rop` give forward-mode R-ops (Jacobian-vector products); :mod:`.hmm` and
:mod:`.lgssm` are the recursions of the hidden Markov model and the linear dynamical system."""

from . import hmm, lgssm
from .cells import (
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    rnn_backward,
    rnn_forward,
    sigmoid,
)
from .esn import reservoir_run, ridge_fit
from .esn import spectral_radius as reservoir_spectral_radius
from .min_char_rnn import MinCharRNN
from .mrnn import mrnn_backward, mrnn_forward, mrnn_rop
from .rop import rnn_rop

__all__ = [
    "rnn_forward",
    "rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "sigmoid",
    "MinCharRNN",
    "reservoir_run",
    "ridge_fit",
    "reservoir_spectral_radius",
    "mrnn_forward",
    "mrnn_backward",
    "mrnn_rop",
    "rnn_rop",
    "hmm",
    "lgssm",
]
