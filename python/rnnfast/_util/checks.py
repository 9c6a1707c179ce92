"""Argument checks shared by the public API: every failure names the argument and what was expected."""

import os

import numbers

import numpy as np

from .arrays import array_module

DTYPES = {"float32": np.float32, "float64": np.float64}


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


def positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def seed(value, name="seed"):
    """None or an int >= 0 (what numpy.random.default_rng takes as a plain seed)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= 0 or None, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0 or None, got {value}")
    return int(value)


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


def boolean(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def shape_str(shape):
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def check_array(a, name, dtype, shape, finite=True):
    """A numpy array of exactly this dtype and shape (None in shape matches any size).

    Returns it C-contiguous (a copy only when it was not). Never casts: a wrong dtype is a TypeError.
    """
    if not isinstance(a, np.ndarray):
        hint = ""
        if hasattr(a, "__cuda_array_interface__") or hasattr(a, "__dlpack__") and not hasattr(a, "__array__"):
            hint = " (GPU arrays need a layer on device='cuda')"
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}{hint}")
    if a.dtype != dtype:
        got = a.dtype.name
        if a.dtype.newbyteorder("=") == np.dtype(dtype):  # same name, other byte order: say so
            got += f" in non-native byte order ({a.dtype.str!r}; use a.astype({np.dtype(dtype).name!r}))"
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {got}")
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise ValueError(f"{name} must have shape {shape_str(shape)}, got {tuple(a.shape)}")
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return np.ascontiguousarray(a)


def real(value, name):
    """A finite real Python/NumPy number (not bool) -> float; TypeError/ValueError naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_float(a, name, xp, dtype, shape):
    """An array of module xp with this dtype and shape (None matches any size); C-contiguous.

    NumPy arrays must also be finite. CuPy arrays are not scanned for NaN, as in the layers on CUDA: that
    would synchronise the host with the device at every call (the optimizers still refuse non-finite
    gradients before any update, with one synchronisation per step)."""
    if xp is np:
        return check_array(a, name, dtype, shape)
    if array_module(a) is not xp:
        raise TypeError(f"{name} must be a {xp.__name__} array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {a.dtype.name}")
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise ValueError(f"{name} must have shape {shape_str(shape)}, got {tuple(a.shape)}")
    return xp.ascontiguousarray(a)


def check_index(idx, name, xp, num, what):
    """An integer array of module xp with every entry in [0, num)."""
    if array_module(idx) is not xp or not hasattr(idx, "dtype"):
        raise TypeError(f"{name} must be a {xp.__name__} integer array, got {type(idx).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {idx.dtype.name}")
    if idx.size and bool(((idx < 0) | (idx >= num)).any()):  # one test: one host sync on the GPU
        raise ValueError(f"{name} must be in [0, {what}={num}), got values in "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    return idx
