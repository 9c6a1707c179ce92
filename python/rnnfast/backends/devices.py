"""Which devices this build and machine can use: build_info(), the device check, CuPy on demand."""

from .. import _core
from .._util.arrays import to_host


def build_info():
    """What this build of rnnfast contains and can use now.

    Keys: version, blas (what the CPU engine links), cuda_compiled (the CUDA sources were compiled in),
    cuda_available (a usable GPU right now), cuda_device_count, compiler.
    """
    info = dict(_core.build_info())
    count = _core.cuda_device_count()
    info["cuda_device_count"] = count
    info["cuda_available"] = bool(info["cuda_compiled"] and count > 0)
    return info


_CUPY = None


def cupy():
    """The cupy module, or a clear error when it is missing or rnnfast has no usable GPU."""
    global _CUPY
    if _CUPY is not None:
        return _CUPY
    info = build_info()
    if not info["cuda_available"]:
        why = "no usable GPU was found" if info["cuda_compiled"] else "this build has no CUDA support"
        raise RuntimeError(f"device='cuda' requested but {why} (rnnfast.build_info()['cuda_available'] is False)")
    try:
        import cupy as cp
    except ImportError:
        raise RuntimeError("device='cuda' needs CuPy: pip install 'rnnfast[cuda]' (or cupy-cuda13x)") from None
    _CUPY = cp
    return cp


def check_device(value, name="device"):
    """'cpu', or 'cuda' when it can be used (else a clear RuntimeError: no GPU, no CUDA build or no CuPy)."""
    if value == "cpu":
        return
    if value == "cuda":
        cupy()
        return
    raise ValueError(f"{name} must be 'cpu' or 'cuda', got {value!r}")


def mover(device):
    """The function that puts an array on `device` ('cpu' or 'cuda'), after the device check."""
    check_device(device)
    if device == "cuda":
        return cupy().asarray
    return to_host
