"""Variable-length batches in the recurrent layers: the `lengths` argument's check and the row order.

The engines run a row only for its own steps (rnnfast/recurrent.h, csrc/cpu/varlen.h) and skip a finished
row's work when the rows a thread owns are sorted by length, longest first: each thread's active rows
are then one run at every step. The layers put the batch in such an order once, before the first layer
(one gather of x and the initial states), and back after the last (y, the final states; in backward
dy in, dx out). With more than 32 rows the engine's time loop gives each of two threads half of the
rows: the sorted sequences are dealt to the two halves in turn (0, 1, 1, 0, ...), so that both
threads get about the same work and each half stays sorted.
"""

import numbers

import numpy as np

_ROWS_SCHEDULE = 32  # csrc/cpu/recurrent.cpp's rows_schedule: from this batch size on, threads own rows


def check_lengths(lengths, T, N, batched):
    """lengths -> int32 (N,) array in [1, T] (a copy), or None when every sequence has all T steps.

    Accepts a sequence or array of integers (NumPy, CuPy, torch: anything np.asarray or .get() reads);
    unbatched input takes one int. Errors name the argument.
    """
    if hasattr(lengths, "get") and hasattr(lengths, "__cuda_array_interface__"):  # a CuPy array: to the host
        lengths = lengths.get()
    if not batched and isinstance(lengths, numbers.Integral) and not isinstance(lengths, (bool, np.bool_)):
        lengths = [lengths]
    if isinstance(lengths, (bool, np.bool_, str, bytes)) or np.isscalar(lengths):
        raise TypeError(f"lengths must be a 1-D array of integers, got {type(lengths).__name__}")
    try:
        a = np.asarray(lengths)
    except Exception as e:  # noqa: BLE001 (anything numpy cannot read)
        raise TypeError(f"lengths must be a 1-D array of integers, got {type(lengths).__name__}") from e
    if a.dtype.kind not in "iu":
        raise TypeError(f"lengths must hold integers, got dtype {a.dtype.name}")
    if a.shape != (N,):
        raise ValueError(f"lengths must have shape ({N},) (one length per sequence), got {a.shape}")
    lo, hi = int(a.min()), int(a.max())
    if lo < 1 or hi > T:
        raise ValueError(f"lengths must lie in [1, {T}] (the number of time steps), got values in [{lo}, {hi}]")
    if lo == T:
        return None  # a full batch: the plain path, as fast as without lengths
    return a.astype(np.int32)


def row_order(lengths):
    """The rows' order for the engines (see the module's doc), or None when the given order already is it."""
    N = len(lengths)
    desc = np.argsort(-lengths, kind="stable")  # longest first
    if N >= _ROWS_SCHEDULE:
        turn = np.array([0, 1, 1, 0])[np.arange(N) % 4]
        desc = np.concatenate([desc[turn == 0], desc[turn == 1]])
    if np.array_equal(desc, np.arange(N)):
        return None
    return desc


def inverse(order):
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    return inv


def take(a, index, xp=np, axis=1):
    """a's entries `index` along `axis` (the batch axis by default), as a new C-contiguous array."""
    return xp.ascontiguousarray(xp.take(a, xp.asarray(index) if xp is not np else index, axis=axis))
