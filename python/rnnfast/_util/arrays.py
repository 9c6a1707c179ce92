"""NumPy or CuPy: the array module of an array, and host copies (CuPy is imported only when a CuPy array
is seen, so it stays an optional dependency)."""

import numpy as np


def array_module(a):
    """cupy if `a` is a CuPy array, else numpy (never imports cupy otherwise)."""
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy
        return cupy
    return np


def to_host(a):
    """a as a NumPy array: CuPy arrays are copied to the host, NumPy arrays returned as they are."""
    return a.get() if array_module(a) is not np else np.asarray(a)
