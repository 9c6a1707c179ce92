"""The argument checks of the public API, with one behaviour everywhere.

A value of the wrong kind is a TypeError and a value of the right kind out of range a ValueError; every
message names the argument and says what was expected. Nothing is cast silently: a float is not an int,
a bool is neither, an array of the wrong dtype is refused. A 0-d NumPy array counts as its scalar (what
np.load gives back for a saved int, float or bool). Arrays are NumPy or CuPy (xp): NumPy arrays are also
checked for NaN and Inf, CuPy arrays are not scanned (that would synchronise the host with the device on
every call; NaN in gives NaN out on the GPU).
"""

import numbers
import os

import numpy as np

from .arrays import array_module

DTYPES = {"float32": np.float32, "float64": np.float64}


# ---- scalars --------------------------------------------------------------------------------------
def _scalar(value):
    """A 0-d NumPy array as its Python scalar; anything else as it is."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def positive_int(value, name, minimum=1):
    """An int (Python or NumPy, not bool) >= minimum -> int."""
    value = _scalar(value)
    if _is_bool(value) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def real(value, name, low=None, low_open=False, high=None, high_open=False):
    """A finite real number (not bool) in the range, if one is given -> float.

    low/high: bounds, included unless low_open/high_open.
    """
    value = _scalar(value)
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def boolean(value, name):
    value = _scalar(value)
    if not _is_bool(value):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def one_of(value, name, choices):
    """One of the (string) choices; ValueError listing them otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def seed(value, name="seed"):
    """None or an int >= 0 (what numpy.random.default_rng takes as a plain seed)."""
    if value is None:
        return None
    value = _scalar(value)
    if _is_bool(value) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= 0 or None, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0 or None, got {value}")
    return int(value)


def rng(value, name="rng"):
    """A numpy Generator as it is, or one made from an int seed or None."""
    if isinstance(value, np.random.Generator):
        return value
    if value is None or (isinstance(value, (int, np.integer)) and not _is_bool(value)):
        return np.random.default_rng(seed(value, name))
    raise TypeError(f"{name} must be a numpy Generator, an int seed or None, got {type(value).__name__}")


def as_dtype(dtype, name="dtype"):
    """'float32' | 'float64' | np.float32 | np.float64 -> np.dtype; anything else is an error."""
    if dtype is None:
        raise TypeError(f"{name} must be 'float32' or 'float64', got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be 'float32' or 'float64', got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name} must be 'float32' or 'float64', got {dtype!r}")
    return dt


# ---- memory ---------------------------------------------------------------------------------------
def _memory_bytes():
    """This machine's physical memory in bytes (2**48 where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 1 << 48


def _human(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} EiB"


def check_memory(n_elements, itemsize, what):
    """Refuse, before allocating, arrays that could never fit: more bytes than the machine's memory.

    n_elements may be a huge Python int (sizes multiplied together); `what` names the arguments that
    decide it, e.g. "hidden_size=10**12 (the weights)". Raises ValueError; returns n_elements * itemsize.
    """
    nbytes = int(n_elements) * int(itemsize)
    limit = _memory_bytes()
    if nbytes > limit:
        raise ValueError(f"{what} would need {_human(nbytes)}, more than this machine's memory "
                         f"({_human(limit)})")
    return nbytes


# ---- arrays ---------------------------------------------------------------------------------------
def shape_str(shape):
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def check_array(a, name, dtype, shape, xp=np, finite=True):
    """An array of module xp (numpy or cupy) of exactly this dtype and shape (None in shape matches any
    size), returned C-contiguous (a copy only when it was not). Never casts: a wrong dtype is a TypeError.

    NumPy arrays are also refused with NaN or Inf (finite=True); CuPy arrays are not scanned.
    """
    if xp is np:
        if not isinstance(a, np.ndarray):
            hint = ""
            if hasattr(a, "__cuda_array_interface__") or hasattr(a, "__dlpack__") and not hasattr(a, "__array__"):
                hint = " (GPU arrays need a layer on device='cuda')"
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}{hint}")
    elif array_module(a) is not xp:
        raise TypeError(f"{name} must be a {xp.__name__} array, got {type(a).__name__}")
    check_dtype_shape(a, name, dtype, shape)
    if finite and xp is np and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return xp.ascontiguousarray(a)


def check_dtype_shape(a, name, dtype, shape):
    """a (an array of any module) has exactly this dtype and shape (None matches any size)."""
    if a.dtype != dtype:
        got = a.dtype.name
        if a.dtype.newbyteorder("=") == np.dtype(dtype):  # same name, other byte order: say so
            got += f" in non-native byte order ({a.dtype.str!r}; use a.astype({np.dtype(dtype).name!r}))"
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {got}")
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise ValueError(f"{name} must have shape {shape_str(shape)}, got {tuple(a.shape)}")


def check_index(idx, name, xp, num, what):
    """An integer array of module xp with every entry in [0, num) (`what` names num)."""
    if array_module(idx) is not xp or not hasattr(idx, "dtype"):
        raise TypeError(f"{name} must be a {xp.__name__} integer array, got {type(idx).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {idx.dtype.name}")
    if idx.size and bool(((idx < 0) | (idx >= num)).any()):  # one test: one host sync on the GPU
        raise ValueError(f"{name} must be in [0, {what}={num}), got values in "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    return idx


def real_array(value, name):
    """A list/tuple/array of real numbers -> float64 ndarray; TypeError naming `name` for anything else
    (strings, None, complex, bool, objects), never a silent cast."""
    try:
        a = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold real numbers, got {type(value).__name__}") from None
    if a.dtype == np.bool_ or a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a.astype(np.float64)
