"""rnnfast.MRNN: the factored multiplicative RNN of Sutskever, Martens & Hinton (2011).

    rnn = rnnfast.MRNN(input_size=86, hidden_size=512, factors=512)
    y, h_n = rnn(x)                                  # x: (T, N, C), or (N, T, C) with batch_first
    dx, dh0 = rnn.backward(dy, dh_n)
    rnn.grads["weight_fh_l0"]                        # accumulated until rnn.zero_grad()

Each input character gets its own transition matrix W_hf diag(W_fx x_t) W_fh, shared through F factors:

    f_x = W_fx x_t,  f_h = W_fh h_{t-1}              (F,)
    h_t = tanh(W_hf (f_x * f_h) + W_hx x_t + b)      (H,)

Parameters per layer l (and direction, suffix _reverse): weight_fx_l{l} (F, C_l), weight_fh_l{l} (F, H),
weight_hf_l{l} (H, F), weight_hx_l{l} (H, C_l), bias_l{l} (H,); C_l = input_size, or D*H above layer 0.
The layer machinery (stacking, directions, batch_first, unbatched input, learned initial state, checks)
is that of rnnfast.RNN (nn.recurrent._RecurrentLayer); only the parameters and the engines differ.
"""

import numpy as np

from .._util import checks as _checks
from .recurrent import _RecurrentLayer

__all__ = ["MRNN"]


class MRNN(_RecurrentLayer):
    """Factored multiplicative RNN layer(s), the conventions of rnnfast.RNN plus `factors` (F >= 1).

    Initialisation: each matrix uniform in +-1/sqrt(fan-in) (W_fx, W_hx: C; W_fh: H; W_hf: F), the bias
    in +-1/sqrt(H) as the other layers.
    """

    _model = "mrnn"
    _cpu_takes_indices = False    # integer input becomes the one-hot matrix
    _weight_keys = (("weight_fx", "W_fx"), ("weight_fh", "W_fh"), ("weight_hf", "W_hf"), ("weight_hx", "W_hx"),
                    ("bias", "b"))

    def __init__(self, input_size, hidden_size, factors, num_layers=1, bias=True, batch_first=False,
                 bidirectional=False, dtype="float32", **kwargs):
        self.factors = _checks.positive_int(factors, "factors")
        super().__init__("mrnn", input_size, hidden_size, num_layers, bias, batch_first, bidirectional, dtype,
                         **kwargs)

    def _param_specs(self, in_size):
        F, H = self.factors, self.hidden_size
        specs = {"weight_fx": ((F, in_size), in_size), "weight_fh": ((F, H), H), "weight_hf": ((H, F), F),
                 "weight_hx": ((H, in_size), in_size)}
        if self.bias:
            specs["bias"] = ((H,), H)
        return {base: (shape, 1.0 / np.sqrt(fan_in)) for base, (shape, fan_in) in specs.items()}

    def __repr__(self):
        r = super().__repr__()
        head = f"{type(self).__name__}({self.input_size}, {self.hidden_size}"
        return f"{head}, factors={self.factors}" + r[len(head):]
