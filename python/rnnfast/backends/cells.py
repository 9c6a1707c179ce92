"""The recurrent cells, by the ints the engines know them by (csrc/include/rnnfast/common.h).

RNN_TANH, RNN_RELU: h = act(W_ih x + b_ih + W_hh h + b_hh); LSTM: gates (i, f, g, o); GRU: gates (r, z, n),
reset applied after the recurrent product (PyTorch's and cuDNN's form); GRU_CHO: reset before it (Cho et
al. 2014). GATES: the gate blocks G of each cell (its W_ih is (G*H, C)).
"""

RNN_TANH, RNN_RELU, LSTM, GRU, GRU_CHO = 0, 1, 2, 3, 4
GATES = {RNN_TANH: 1, RNN_RELU: 1, LSTM: 4, GRU: 3, GRU_CHO: 3}
