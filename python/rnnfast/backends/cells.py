"""The recurrent cells, by the codes the engines know them by (defined once, in csrc/include/rnnfast/common.h,
and exported by the compiled module as _core.CELL_CODES and _core.CELL_GATES).

RNN_TANH, RNN_RELU: h = act(W_ih x + b_ih + W_hh h + b_hh); LSTM: gates (i, f, g, o); GRU: gates (r, z, n),
reset applied after the recurrent product (PyTorch's and cuDNN's form); GRU_CHO: reset before it (Cho et
al. 2014). GATES: the gate blocks G of each cell (its W_ih is (G*H, C)).
"""

from .. import _core

RNN_TANH, RNN_RELU, LSTM, GRU, GRU_CHO = (
    _core.CELL_CODES[c] for c in ("rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho")
)
GATES = dict(_core.CELL_GATES)
