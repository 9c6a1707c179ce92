"""Type stubs of the compiled module rnnfast._core (csrc/bindings.cpp). Arrays are numpy.ndarray, all
float32 or all float64 (the dtype of the first sequence argument), C-contiguous unless noted."""

from typing import Any, Optional

import numpy as np

Array = np.ndarray

def build_info() -> dict[str, Any]: ...
def cuda_device_count() -> int: ...
def recurrent_workspace_size(cell: int, steps: int, batch: int, hidden: int, backward: bool) -> int: ...
def recurrent_forward(
    cell: int, x: Array, h0: Optional[Array], c0: Optional[Array], w_ih: Array, w_hh: Array,
    b_ih: Optional[Array], b_hh: Optional[Array], y: Array, h_n: Array, c_n: Optional[Array],
    h_prev: Optional[Array], c_prev: Optional[Array], gates: Optional[Array], extra: Optional[Array],
    work: Array, reverse: bool, training: bool,
) -> None: ...
def recurrent_backward(
    cell: int, x: Array, w_ih: Array, w_hh: Array, h_prev: Array, c_prev: Optional[Array], gates: Array,
    extra: Optional[Array], dy: Optional[Array], dh_n: Optional[Array], dc_n: Optional[Array], dx: Array,
    accumulate_dx: bool, dh0: Array, dc0: Optional[Array], dw_ih: Array, dw_hh: Array,
    db_ih: Optional[Array], db_hh: Optional[Array], work: Array, reverse: bool,
) -> None: ...
def reservoir_run(
    u: Array, w: Optional[Array], indptr: Optional[Array], indices: Optional[Array], values: Optional[Array],
    w_in: Array, bias: Optional[Array], sr_scale: Array, in_scale: Array, leak: Array, x0: Optional[Array],
    states: Array, x_last: Array,
) -> None: ...
def mrnn_workspace_size(steps: int, batch: int, hidden: int, factors: int, training: bool, backward: bool) -> int: ...
def mrnn_forward(
    x: Array, h0: Optional[Array], w_fx: Array, w_fh: Array, w_hf: Array, w_hx: Array, b: Optional[Array],
    y: Array, h_n: Array, h_prev: Optional[Array], h: Optional[Array], fx: Optional[Array], fh: Optional[Array],
    work: Array, reverse: bool, training: bool,
) -> None: ...
def mrnn_backward(
    x: Array, w_fx: Array, w_fh: Array, w_hf: Array, w_hx: Array, h_prev: Array, h: Array, fx: Array, fh: Array,
    dy: Optional[Array], dh_n: Optional[Array], dx: Array, accumulate_dx: bool, dh0: Array, dw_fx: Array,
    dw_fh: Array, dw_hf: Array, dw_hx: Array, db: Optional[Array], work: Array, reverse: bool,
) -> None: ...
def rnn_rop(
    x: Array, h0: Optional[Array], y: Array, w_ih: Array, w_hh: Array, v_ih: Optional[Array],
    v_hh: Optional[Array], v_b_ih: Optional[Array], v_b_hh: Optional[Array], rx: Optional[Array],
    rh0: Optional[Array], ry: Array, nonlinearity: str, reverse: bool,
) -> None: ...
def mrnn_rop_workspace_size(steps: int, batch: int, factors: int, have_factors: bool) -> int: ...
def mrnn_rop(
    x: Array, h0: Optional[Array], y: Array, fx: Optional[Array], fh: Optional[Array], w_fx: Array, w_fh: Array,
    w_hf: Array, w_hx: Array, v_fx: Optional[Array], v_fh: Optional[Array], v_hf: Optional[Array],
    v_hx: Optional[Array], v_b: Optional[Array], rx: Optional[Array], rh0: Optional[Array], ry: Array, work: Array,
    reverse: bool,
) -> None: ...
def char_rnn_workspace_size(vocab: int, hidden: int, seq_len: int, dtype: Any) -> int: ...
def char_rnn_train(
    params: list[Array], sums: list[Array], h: Array, data: Array, seq_len: int, pos: int, steps: int,
    lr: float, eps: float, eps_inside_sqrt: bool, clip: float, loss_scale: float, freeze_b_hh: bool,
    losses: Array, work: Array,
) -> tuple[int, int, int, int, int]: ...

# training-step kernels (csrc/bindings_train.cpp); x_index, targets: int32
def recurrent_forward_onehot(
    cell: int, x_index: Array, h0: Array | None, c0: Array | None, w_ih: Array, w_hh: Array, b_ih: Array | None,
    b_hh: Array | None, y: Array, h_n: Array, c_n: Array | None, h_prev: Array | None, c_prev: Array | None,
    gates: Array | None, extra: Array | None, work: Array, reverse: bool, training: bool,
) -> None: ...
def recurrent_backward_onehot(
    cell: int, x_index: Array, w_ih: Array, w_hh: Array, h_prev: Array, c_prev: Array | None, gates: Array,
    extra: Array | None, dy: Array | None, dh_n: Array | None, dc_n: Array | None, dh0: Array, dc0: Array | None,
    dw_ih: Array, dw_hh: Array, db_ih: Array | None, db_hh: Array | None, work: Array, reverse: bool,
) -> None: ...
def readout_xent(
    x: Array, w: Array, b: Array | None, targets: Array, scale: float, logits: Array, nll: Array,
    dw: Array | None, db: Array | None, dx: Array | None,
) -> float: ...
def adam_update(p: Array, g: Array, m: Array, v: Array, b1: float, omb1: float, b2: float, omb2: float, eps: float,
                wd: float, step_size: float, bias2_sqrt: float) -> None: ...
def sum_squares(g: Array) -> float: ...
def all_finite(g: Array) -> bool: ...

# ---- CUDA builds only (csrc/bindings_cuda.cpp): device pointers as ints (0 = none), the caller's stream
def cuda_workspace_size(cell: int, batch: int, hidden: int, backward: bool) -> int: ...
def cuda_recurrent_forward(dtype: str, cell: int, steps: int, batch: int, hidden: int, reverse: bool,
                           training: bool, xp: int, w_hh_t: int, b_hh: int, h0: int, c0: int, y: int, ldy: int,
                           h_n: int, c_n: int, h_prev: int, c_prev: int, gates: int, extra: int, work: int,
                           stream: int) -> None: ...
def cuda_recurrent_backward(dtype: str, cell: int, steps: int, batch: int, hidden: int, reverse: bool, w_hh: int,
                            h_prev: int, c_prev: int, gates: int, extra: int, dy: int, lddy: int, dh_n: int,
                            dc_n: int, dG: int, dGh: int, dh0: int, dc0: int, work: int, stream: int) -> None: ...
def cuda_reservoir_run(dtype: str, steps: int, batch: int, units: int, population: int, w_dense: int,
                       indptr: int, indices: int, values: int, uproj: int, bias: int, sr_scale: int,
                       in_scale: int, leak: int, x0: int, states: int, stream: int) -> None: ...
def cuda_mrnn_workspace_size(batch: int, hidden: int, factors: int, backward: bool) -> int: ...
def cuda_mrnn_forward(dtype: str, steps: int, batch: int, hidden: int, factors: int, reverse: bool, training: bool,
                      fx: int, xh: int, w_fh_t: int, w_hf_t: int, h0: int, y: int, ldy: int, h_n: int,
                      h_prev: int, h: int, fh: int, work: int, stream: int) -> None: ...
def cuda_mrnn_backward(dtype: str, steps: int, batch: int, hidden: int, factors: int, reverse: bool, w_fh: int,
                       w_hf: int, h: int, fx: int, fh: int, dy: int, lddy: int, dh_n: int, dA: int, dFX: int,
                       dFH: int, dh0: int, work: int, stream: int) -> None: ...
