"""NumPy's BLAS threads beside the engine's (through threadpoolctl).

The engine runs its loops on its own two-or-more threads. NumPy's OpenBLAS keeps a pool of threads that
spin for a while after each call; NumPy matmuls interleaved with engine calls (a read-out Linear, a loss, a
Hessian-free step's vectors) then make the two pools fight over the cores, several times slower on a few
cores (RESULTS.md). One thread for NumPy's BLAS avoids it.
"""

from threadpoolctl import ThreadpoolController, threadpool_limits


def limit_numpy_blas_threads(n=1):
    """Set every loaded BLAS library (NumPy's and SciPy's OpenBLAS, the engine's) to n threads for the rest
    of the process; returns how many libraries were set."""
    blas = ThreadpoolController().select(user_api="blas")
    blas.limit(limits=n)
    return len(blas.lib_controllers)


def numpy_blas_single_threaded():
    """A context manager: every loaded BLAS library on one thread inside, the previous counts restored
    after (for code that interleaves NumPy matmuls with engine calls)."""
    return threadpool_limits(limits=1, user_api="blas")
