"""RNN, LSTM, GRU as torch.nn.Modules: torch.nn's constructor, parameters, inputs and outputs; rnnfast's engines.

The parameters are registered in torch's order under torch's names (weight_ih_l0, weight_hh_l0, bias_ih_l0,
bias_hh_l0, ..._reverse) and initialised as torch does (uniform in +-1/sqrt(hidden_size), in that order), so
under the same seed a module starts with the same weights as torch.nn's, and state dicts load both ways.

These classes derive from torch.nn.Module, not from torch.nn.RNNBase: torch.compile refuses RNNBase
subclasses (a graph break unless torch._dynamo.config.allow_rnn), while these trace through rnnfast's
custom operators (rnnfast/torch/_ops.py).
"""

import math
import numbers
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import _engine as E
from . import _ops  # noqa: F401  (registers torch.ops.rnnfast.*)

_ISSUE = "issue #17 (variable lengths, proj_size and zoneout in rnnfast's engine)"


def _not_yet(cls, what):
    return NotImplementedError(f"{cls}: {what} is not supported yet: it needs {_ISSUE}")


class RNNBase(nn.Module):
    """The common part of RNN, LSTM and GRU (torch.nn.RNNBase's attributes and checks)."""

    _mode = None

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, *, zoneout=0.0,
                 learn_initial_state=False, _cell=None):
        super().__init__()
        name = type(self).__name__
        # the checks and messages of torch.nn.RNNBase, in its order
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", stacklevel=3)
        for arg, val in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional),
                         ("learn_initial_state", learn_initial_state)):
            if not isinstance(val, bool):
                raise TypeError(f"{arg} should be of type bool, got: {type(val).__name__}")
        for arg, val in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers),
                         ("proj_size", proj_size)):
            if not isinstance(val, int) or isinstance(val, bool):
                raise TypeError(f"{arg} should be of type int, got: {type(val).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if (not isinstance(zoneout, numbers.Number) or isinstance(zoneout, bool) or not 0 <= zoneout < 1):
            raise ValueError(f"zoneout should be a number in range [0, 1), got {zoneout!r}")
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name}: dtype should be torch.float32 or torch.float64 (rnnfast's engines), got {dtype}")
        if proj_size > 0 and not E.SUPPORTS["proj_size"]:
            raise _not_yet(name, f"proj_size={proj_size}")
        if zoneout > 0 and not E.SUPPORTS["zoneout"]:
            raise _not_yet(name, f"zoneout={zoneout}")
        if zoneout > 0 and mode not in ("LSTM", "GRU"):
            raise ValueError(f"{name}: zoneout is only supported for LSTM and GRU, got zoneout={zoneout}")
        if zoneout > 0 and proj_size > 0:
            raise ValueError(f"{name}: zoneout with proj_size is not supported")

        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.zoneout = float(zoneout)
        self.learn_initial_state = learn_initial_state
        self._cell = _cell

        factory = {"device": device, "dtype": dtype}
        D = 2 if bidirectional else 1
        gate_size = E.GATES[_cell] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size  # the width of h (torch's real_hidden_size)
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for direction in range(D):
                layer_input_size = input_size if layer == 0 else real_hidden * D
                sfx = "_reverse" if direction == 1 else ""
                names = [f"weight_ih_l{layer}{sfx}", f"weight_hh_l{layer}{sfx}"]
                shapes = [(gate_size, layer_input_size), (gate_size, real_hidden)]
                if bias:
                    names += [f"bias_ih_l{layer}{sfx}", f"bias_hh_l{layer}{sfx}"]
                    shapes += [(gate_size,), (gate_size,)]
                if proj_size > 0:  # torch's order: after the biases
                    names += [f"weight_hr_l{layer}{sfx}"]
                    shapes += [(proj_size, hidden_size)]
                for n, s in zip(names, shapes):
                    setattr(self, n, nn.Parameter(torch.empty(s, **factory)))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        if learn_initial_state:
            self.h0 = nn.Parameter(torch.zeros(num_layers * D, real_hidden, **factory))
            if mode == "LSTM":
                self.c0 = nn.Parameter(torch.zeros(num_layers * D, hidden_size, **factory))
        self.reset_parameters()

    # ---- torch.nn.RNNBase's interface ---------------------------------------------------------------
    def reset_parameters(self):
        """torch's initialisation: every weight and bias uniform in (-1/sqrt(H), 1/sqrt(H)), in torch's
        order; a learned initial state starts at zero."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for w in self._flat_weights:
                w.uniform_(-stdv, stdv)
            for n in ("h0", "c0"):
                if n in self._parameters:
                    self._parameters[n].zero_()

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self):
        """Nothing to do (torch's cuDNN weight packing); here for scripts that call it."""

    def extra_repr(self):
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        if getattr(self, "reset_after", True) is not True:
            s += ", reset_after=False"
        if self.zoneout != 0:
            s += ", zoneout={zoneout}"
        if self.learn_initial_state:
            s += ", learn_initial_state=True"
        return s.format(**self.__dict__)

    # ---- forward ------------------------------------------------------------------------------------
    def _states(self, hx, batched, N, x):
        """hx checked like torch's, as (h0, c0) of shape (L*D, N, H) (c0 None but for LSTM; both None: zeros)."""
        name = type(self).__name__
        LD = self.num_layers * (2 if self.bidirectional else 1)
        expected = (LD, N, self.proj_size or self.hidden_size)
        expected_c = (LD, N, self.hidden_size)
        lstm = self.mode == "LSTM"
        if hx is None:
            if not self.learn_initial_state:
                return None, None
            states = [self.h0] + ([self.c0] if lstm else [])
            states = [s.unsqueeze(1).expand((LD, N, s.shape[-1])).contiguous() for s in states]
            return states[0], (states[1] if lstm else None)
        if lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: hx should be a tuple (h_0, c_0) of tensors, got {type(hx).__name__}")
            h, c = hx
            if not isinstance(h, torch.Tensor) or not isinstance(c, torch.Tensor):
                raise TypeError(f"{name}: hx should be a tuple (h_0, c_0) of tensors")
            want = 3 if batched else 2
            if h.dim() != want or c.dim() != want:
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise RuntimeError(f"For {kind} input, hx and cx should also be {want}-D but got "
                                   f"({h.dim()}-D, {c.dim()}-D) tensors")
            given = [("hidden[0]", h), ("hidden[1]", c)]
        else:
            if not isinstance(hx, torch.Tensor):
                raise TypeError(f"{name}: hx should be a tensor, got {type(hx).__name__}")
            if batched and hx.dim() != 3:
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
            if not batched and hx.dim() != 2:
                raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
            given = [("hidden", hx)]
        out = []
        for label, s in given:
            if not batched:
                s = s.unsqueeze(1)
            want = expected_c if label == "hidden[1]" else expected
            if s.shape != want:
                raise RuntimeError(f"Expected {label} size {want}, got {list(s.shape)}")
            if s.dtype != x.dtype:
                raise ValueError(f"{name}: {label} dtype ({s.dtype}) does not match input dtype ({x.dtype})")
            if s.device != x.device:
                raise RuntimeError(f"{name}: {label} is on {s.device} but input is on {x.device}")
            out.append(s.contiguous())
        return out[0], (out[1] if lstm else None)

    def forward(self, input, hx=None):
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            if not E.SUPPORTS["packed_sequence"]:
                raise _not_yet(name, "PackedSequence input")
            return self._forward_packed(input, hx)
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"{name}: input should be a Tensor or PackedSequence, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
        self._check_input(input, name)
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        T, N = x.shape[0], x.shape[1]
        if T == 0 or N == 0:
            raise RuntimeError(f"{name}: input must have at least one time step and one sequence, got shape "
                               f"{tuple(input.shape)}")
        h0, c0 = self._states(hx, batched, N, x)
        y, h_n, c_n = self._run(x.contiguous(), h0, c0)
        if not batched:
            y, h_n = y.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif self.batch_first:
            y = y.transpose(0, 1)
        return y, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def _check_input(self, input, name):
        """input's (a tensor's or a PackedSequence's data) dtype, feature size and device against the
        parameters', with torch's messages."""
        w0 = self._flat_weights[0]
        if input.dtype != w0.dtype:
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype ({w0.dtype}). "
                             f"Convert input: input.to({w0.dtype}), or convert model: model.to({input.dtype})")
        if input.size(-1) != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.size(-1)}")
        if input.device != w0.device:
            raise RuntimeError(f"{name}: input is on {input.device} but the parameters are on {w0.device}")

    def _forward_packed(self, input, hx):
        """PackedSequence input, as torch: hx and h_n in the batch's given order, the sequences run sorted
        by length (sorted_indices), the output packed like the input (the same batch_sizes and indices)."""
        name = type(self).__name__
        data, batch_sizes, sorted_indices, unsorted_indices = input
        if data.dim() != 2:
            raise ValueError(f"{name}: a PackedSequence's data should be 2-D, got {data.dim()}-D")
        self._check_input(data, name)
        # the padded batch in the sorted order (longest first), and each sequence's length
        x, lengths = pad_packed_sequence(PackedSequence(data, batch_sizes), batch_first=False)
        N = x.shape[1]
        h0, c0 = self._states(hx, True, N, x)
        if sorted_indices is not None:  # hx is given in the batch's order: into the sorted order
            h0 = None if h0 is None else h0.index_select(1, sorted_indices)
            c0 = None if c0 is None else c0.index_select(1, sorted_indices)
        y, h_n, c_n = self._run(x.contiguous(), h0, c0, lengths.to(torch.int32))
        out = pack_padded_sequence(y, lengths, enforce_sorted=True)
        out = PackedSequence(out.data, batch_sizes, sorted_indices, unsorted_indices)
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
            c_n = None if c_n is None else c_n.index_select(1, unsorted_indices)
        return out, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def _run(self, x, h0, c0, lengths=None):
        """The stack of layers on x [T,N,C] (contiguous): y [T,N,D*P], h_n [L*D,N,P] and c_n [L*D,N,H] (c_n None
        but for LSTM; P = proj_size or H). One custom-op call per layer; dropout between layers as torch
        applies it (after every layer but the last, in training mode, torch's generator); zoneout's masks from
        torch's generator too. lengths: None or int32 (N,) on the CPU (a variable-length batch)."""
        D = 2 if self.bidirectional else 1
        L = self.num_layers
        flat = self._flat_weights
        per = len(flat) // (L * D)
        H = self.hidden_size
        T, N = x.shape[0], x.shape[1]
        if lengths is not None and x.device.type != "cpu":
            lengths = lengths.cpu()
        if lengths is not None and bool((lengths == T).all()):
            lengths = None  # every sequence has all T steps: the plain path
        # save for backward only when a gradient can be asked for
        training = torch.is_grad_enabled() and (
            x.requires_grad or any(w.requires_grad for w in flat)
            or (h0 is not None and h0.requires_grad) or (c0 is not None and c0.requires_grad))
        hs, cs = [], []
        inp = x
        for layer in range(L):
            sl = slice(layer * D, (layer + 1) * D)
            ws = flat[layer * D * per:(layer + 1) * D * per]
            h0l, c0l = None if h0 is None else h0[sl], None if c0 is None else c0[sl]
            if self.proj_size:
                y, h_n, c_n = self._projected_layer(inp, h0l, c0l, ws, per, training, lengths)
            else:
                zoneout, zoneout_p = None, 0.0
                if self.zoneout and self.training:  # 1: the unit takes its new value (probability 1 - p)
                    keep = torch.full((D, T, N, H), 1 - self.zoneout, dtype=x.dtype, device=x.device)
                    zoneout = torch.bernoulli(keep)
                elif self.zoneout:
                    zoneout_p = self.zoneout
                y, h_n, c_n, *_ = torch.ops.rnnfast.recurrent_layer(
                    inp, h0l, c0l, ws, self._cell, self.bidirectional, training, lengths, zoneout, zoneout_p)
            hs.append(h_n)
            cs.append(c_n)
            if self.dropout and self.training and layer < L - 1:
                y = F.dropout(y, self.dropout, True)
            inp = y
        h_n = hs[0] if L == 1 else torch.cat(hs)
        c_n = None
        if self.mode == "LSTM":
            c_n = cs[0] if L == 1 else torch.cat(cs)
        return inp, h_n, c_n

    def _projected_layer(self, x, h0, c0, ws, per, training, lengths):
        """One LSTM layer with projections (proj_size; rnnfast/backends/projection.py's construction), in torch
        ops around the plain-LSTM operator, so autograd and torch.compile see through it.

        With m_t = o * tanh(c_t) and h_t = W_hr m_t, W_hh h_{t-1} = (W_hh W_hr) m_{t-1}: a plain LSTM over m with
        the recurrent weight W_hh W_hr, projected afterwards; its first step's term W_hh h0 enters as extra input
        columns (h0 of direction d at that direction's first step of each row, zero elsewhere) with W_hh as
        their input weight, the inner LSTM starting from m = 0."""
        D = 2 if self.bidirectional else 1
        T, N, C = x.shape
        inner, W_hrs, extra = [], [], []
        t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
        for d in range(D):
            w = ws[d * per:(d + 1) * per]
            W_ih, W_hh, W_hr = w[0], w[1], w[-1]
            blocks = [W_ih]
            if h0 is not None:
                blocks += [W_hh if k == d else W_hh.new_zeros(W_hh.shape) for k in range(D)]
            inner += [torch.cat(blocks, 1), W_hh @ W_hr] + list(w[2:per - 1])
            W_hrs.append(W_hr)
            if h0 is None:
                continue
            if d == 0:
                first = (t == 0).expand(T, N)
            else:  # the reverse direction starts at each row's last step
                last = (T - 1) if lengths is None else (lengths.to(x.device, torch.int64) - 1).unsqueeze(0)
                first = (t == last).expand(T, N)
            extra.append(first.unsqueeze(2).to(x.dtype) * h0[d].unsqueeze(0))
        x_aug = torch.cat([x] + extra, 2) if extra else x
        m, m_n, c_n, *_ = torch.ops.rnnfast.recurrent_layer(
            x_aug.contiguous(), None, c0, inner, self._cell, self.bidirectional, training, lengths, None, 0.0)
        H = self.hidden_size
        y = torch.cat([m[:, :, d * H:(d + 1) * H] @ W_hrs[d].T for d in range(D)], 2)
        h_n = torch.stack([m_n[d] @ W_hrs[d].T for d in range(D)])
        return y, h_n, c_n


class RNN(RNNBase):
    """Elman RNN, as torch.nn.RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu.

    RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
        dropout=0.0, bidirectional=False, device=None, dtype=None, *, learn_initial_state=False)
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode, cell = "RNN_TANH", E.RNN_TANH
        elif self.nonlinearity == "relu":
            mode, cell = "RNN_RELU", E.RNN_RELU
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, _cell=cell, **kwargs)

    def extra_repr(self):
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity != "tanh" else "")


class LSTM(RNNBase):
    """LSTM, as torch.nn.LSTM (gates i, f, g, o): c_t = f c_{t-1} + i g, h_t = o tanh(c_t).

    LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
         bidirectional=False, proj_size=0, device=None, dtype=None, *, zoneout=0.0, learn_initial_state=False)
    forward(input, (h_0, c_0)=None) -> output, (h_n, c_n)
    """

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, _cell=E.LSTM, **kwargs)


class GRU(RNNBase):
    """GRU, as torch.nn.GRU (gates r, z, n). reset_after=True (the default) is torch's and cuDNN's form,
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); reset_after=False is Cho et al. 2014's,
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn) (same parameters; not a torch module, so no `revert`).

    GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, device=None, dtype=None, *, reset_after=True, zoneout=0.0,
        learn_initial_state=False)
    """

    def __init__(self, *args, reset_after=True, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if not isinstance(reset_after, bool):
            raise TypeError(f"reset_after should be of type bool, got: {type(reset_after).__name__}")
        self.reset_after = reset_after
        super().__init__("GRU", *args, _cell=E.GRU if reset_after else E.GRU_CHO, **kwargs)
