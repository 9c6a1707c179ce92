"""A small forward + backward of every cell and dtype on the GPU, and a small reservoir population, checked
against the CPU engine.

Run under compute-sanitizer by benchmarks/gpu_check.sh (memcheck, racecheck): small sizes so the
sanitizers finish quickly, but sizes that cover partial blocks (H not a multiple of 32, N not a multiple
of the row block) and both directions, with the row kernel and the tiled one (its shared tiles are
racecheck's main subject). Exit status 1 when a result differs.
"""

import os
import sys

import cupy as cp
import numpy as np

import rnnfast

if os.environ.get("RNNFAST_NO_POOL"):
    # one exact cudaMalloc per array: an access past an array's end is then past its allocation, which
    # memcheck reports (inside CuPy's pool it would land in the pool's rounding slack, unseen)
    cp.cuda.set_allocator(None)

failures = 0
rng = np.random.default_rng(0)
tiling = rnnfast._core.cuda_tiling()
# (cell, its cases): rows 0 is the row kernel, 32 and 64 the tiled kernel for every batch size. The tiled
# kernel is one body for every cell (only the epilogue differs): it runs for two cells, to keep the
# sanitizers short.
ROW_CASES, TILED_CASES = [(0, 1), (0, 3), (0, 9)], [(32, 70), (64, 70)]
CELLS = [(lambda **k: rnnfast.RNN(nonlinearity="tanh", **k), ROW_CASES),
         (lambda **k: rnnfast.RNN(nonlinearity="relu", **k), ROW_CASES),
         (rnnfast.LSTM, ROW_CASES + TILED_CASES),
         (lambda **k: rnnfast.GRU(reset_after=True, **k), ROW_CASES + TILED_CASES),
         (lambda **k: rnnfast.GRU(reset_after=False, **k), ROW_CASES),
         (lambda **k: rnnfast.MRNN(factors=6, **k), ROW_CASES)]
for make, cases in CELLS:
    for dtype in ("float32", "float64"):
        for rows, N in cases:
            rnnfast._core.cuda_set_tiling(rows, 1)
            cpu = make(input_size=5, hidden_size=37, dtype=dtype, bidirectional=True, seed=N)
            gpu = make(input_size=5, hidden_size=37, dtype=dtype, bidirectional=True).to("cuda")
            gpu.load_state_dict(cpu.state_dict())
            x = rng.standard_normal((4, N, 5)).astype(dtype)
            dy = rng.standard_normal((4, N, 74)).astype(dtype)
            y_c, _ = cpu(x)
            dx_c, _ = cpu.backward(dy)
            y_g, _ = gpu(cp.asarray(x))
            dx_g, _ = gpu.backward(cp.asarray(dy))
            tol = 1e-4 if dtype == "float32" else 1e-10
            pairs = [("y", cp.asnumpy(y_g), y_c), ("dx", cp.asnumpy(dx_g), dx_c)]
            pairs += [(k, cp.asnumpy(g), cpu.grads[k]) for k, g in gpu.grads.items()]
            for name, a, b in pairs:
                if not np.isfinite(a).all() or not np.allclose(a, b, rtol=tol, atol=tol):
                    failures += 1
                    print(f"MISMATCH {type(cpu).__name__} {dtype} N={N} tiled rows {rows} {name}: max err "
                          f"{np.abs(a - b).max():.3e}")
rnnfast._core.cuda_set_tiling(*tiling)
# the reservoir kernel (CSR and dense W), a batch and a population
from rnnfast.esn import run_population  # noqa: E402

for density in (0.1, 1.0):
    for dtype in ("float32", "float64"):
        base = rnnfast.ESN(3, 45, 1, density=density, seed=1, dtype=dtype, leak_rate=0.4)
        mats = dict(W=base.W, W_in=base.W_in, bias=base.bias)
        cpu = rnnfast.ESN(3, 45, 1, dtype=dtype, leak_rate=0.4, **mats)
        gpu = rnnfast.ESN(3, 45, 1, dtype=dtype, leak_rate=0.4, device="cuda", **mats)
        u = rng.standard_normal((6, 3, 3)).astype(dtype)
        tol = 1e-4 if dtype == "float32" else 1e-10
        a = run_population(u, gpu, spectral_radii=[0.5, 1.0], input_scalings=[1.0, 0.3], leak_rates=[0.3, 1.0])
        b = run_population(u, cpu, spectral_radii=[0.5, 1.0], input_scalings=[1.0, 0.3], leak_rates=[0.3, 1.0])
        if not np.isfinite(a).all() or not np.allclose(a, b, rtol=tol, atol=tol):
            failures += 1
            print(f"MISMATCH ESN density={density} {dtype}: max err {np.abs(a - b).max():.3e}")

cp.cuda.Device().synchronize()
print("small case:", "FAIL" if failures else "ok", f"({failures} mismatches)")
sys.exit(1 if failures else 0)
