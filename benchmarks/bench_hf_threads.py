"""Hessian-free steps with NumPy's BLAS on one thread inside the step (as HessianFree.step does) against
NumPy's default threads: two HF steps of the addition problem (examples/hf_long_range.py: T = 100, batch
500, curvature on 100 sequences, 30 CG iterations, H = 100, float64), alternating, medians.

    PYTHONPATH=python python benchmarks/bench_hf_threads.py
"""

import contextlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import hf_long_range as ex  # noqa: E402

from rnnfast import losses, optim  # noqa: E402
from rnnfast.optim import hessian_free  # noqa: E402  (its step enters numpy_blas_single_threaded)

from _harness import interleaved  # noqa: E402  benchmarks/_harness.py (on sys.path as a script)


def main(reps=4):
    T, N = 100, 500
    x, y = ex.make_batch(np.random.default_rng(0), T, N)
    mask = losses.target_mask(T, N, "last")
    real = hessian_free.numpy_blas_single_threaded

    def two_steps(blas_context):
        hessian_free.numpy_blas_single_threaded = blas_context
        opt = optim.HessianFree(ex.build_model(0, 100), loss="mse", damping=1.0, structural_damping=0.3,
                                cg_max_iters=30, curvature_subset=100)
        for _ in range(2):
            opt.step(x, y, mask)

    try:
        times = interleaved({"one thread": lambda: two_steps(real),
                             "default threads": lambda: two_steps(contextlib.nullcontext)}, reps, warmup=0)
    finally:
        hessian_free.numpy_blas_single_threaded = real
    for mode, v in times.items():
        print(f"{mode:>16}: {', '.join(f'{a:.2f}' for a in v)} s; median {np.median(v):.2f} s")
    print(f"load average {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()
