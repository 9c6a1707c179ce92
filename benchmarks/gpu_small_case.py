"""A small forward + backward of every cell and dtype on the GPU, in every step-kernel variant, the layers'
options (lengths, zoneout, dropout, proj_size), and a small reservoir population, checked against the CPU
engine.

    python benchmarks/gpu_small_case.py [--quick]

benchmarks/gpu_check.sh runs it plain first (about 10 s: does anything run at all?), then under
compute-sanitizer: memcheck on all of it, racecheck and initcheck on --quick (float32, three cells, one
batch size per kernel variant). Small sizes so that the sanitizers finish quickly, but sizes that cover
partial blocks (H not a multiple of 32, N not a multiple of the row block), both directions, k past one
staged chunk, the row kernel in its variants (narrower slices, several units per thread: their shuffles,
warp barriers and staged rows are racecheck's subject) and the tiled kernel (its shared tiles). Exit status
1 when a result differs. Without a GPU, tests/engines/cuda_emulation/emulate.py runs it on the CPU.
"""

import os
import sys
import time

import cupy as cp
import numpy as np

import rnnfast
from rnnfast.backends import cuda as _cuda

QUICK = "--quick" in sys.argv[1:]
if os.environ.get("RNNFAST_NO_POOL"):
    # one exact cudaMalloc per array: an access past an array's end is then past its allocation, which
    # memcheck reports (inside CuPy's pool it would land in the pool's rounding slack, unseen)
    cp.cuda.set_allocator(None)

core = _cuda._core  # the engine's switches (the emulated module's, when emulated)
t0 = time.perf_counter()  # the whole check's wall time (timings are bench_gpu.py's, with benchmarks/_harness.py)
failures = 0
rng = np.random.default_rng(0)
# kernel configurations: (tiled rows, width, units per thread) and their batch sizes. (0, 32, 1) is the
# default row kernel; the tiled kernel takes every batch size here (min_batch 1).
ROW = [((0, 32, 1), (1, 3, 9))]
VARIANTS = [((0, 16, 1), (1, 9)), ((0, 8, 1), (3,)), ((0, 32, 4), (9,)), ((0, 8, 2), (5,))]
TILED = [((32, 32, 1), (70,)), ((64, 32, 1), (70,))]
CELLS = {"rnn_tanh": (lambda **k: rnnfast.RNN(nonlinearity="tanh", **k), ROW + VARIANTS),
         "rnn_relu": (lambda **k: rnnfast.RNN(nonlinearity="relu", **k), ROW),
         "lstm": (rnnfast.LSTM, ROW + VARIANTS + TILED),
         "gru": (lambda **k: rnnfast.GRU(reset_after=True, **k), ROW + VARIANTS + TILED),
         "gru_cho": (lambda **k: rnnfast.GRU(reset_after=False, **k), ROW + VARIANTS[:1]),
         "mrnn": (lambda **k: rnnfast.MRNN(factors=6, **k), ROW + VARIANTS[2:3])}
if QUICK:  # one batch size per configuration, float32, the cells of one, three and four gates
    CELLS = {c: (make, [(conf, Ns[-1:]) for conf, Ns in cases]) for c, (make, cases) in CELLS.items()
             if c in ("rnn_tanh", "lstm", "gru")}
DTYPES = ("float32",) if QUICK else ("float32", "float64")
before = core.cuda_tiling(), core.cuda_row_kernel()
cases = 0
for cell, (make, configs) in CELLS.items():
    for dtype in DTYPES:
        for (rows, width, units), Ns in configs:
            core.cuda_set_tiling(rows, 1)
            core.cuda_set_row_kernel(width, units)
            for N in Ns:
                cases += 1
                H = 37 if units == 1 else 70  # k past one staged chunk in the gated cells' backward
                cpu = make(input_size=5, hidden_size=H, dtype=dtype, bidirectional=True, seed=N)
                gpu = make(input_size=5, hidden_size=H, dtype=dtype, bidirectional=True).to("cuda")
                gpu.load_state_dict(cpu.state_dict())
                x = rng.standard_normal((4, N, 5)).astype(dtype)
                dy = rng.standard_normal((4, N, 2 * H)).astype(dtype)
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
                        print(f"MISMATCH {cell} {dtype} N={N} tiled rows {rows}, width {width}, units {units}, "
                              f"{name}: max err {np.abs(a - b).max():.3e}", flush=True)
core.cuda_set_tiling(*before[0])
core.cuda_set_row_kernel(*before[1])

# issue 17's options in the step kernels' epilogues: variable lengths (rows past their end), zoneout (its
# mask in training, the expectation in eval), dropout between two layers, proj_size; the row kernel (N = 5)
# and the tiled one (N = 70); the same masks on both sides (equally seeded layers)
OPTIONS = [("lstm", dict(zoneout=0.3, dropout=0.3, num_layers=2)), ("gru", dict(zoneout=0.3)),
           ("gru_cho", dict(zoneout=0.2)), ("rnn_tanh", dict(num_layers=2, dropout=0.5)),
           ("lstm", dict(proj_size=7))]
if QUICK:
    OPTIONS = OPTIONS[:2]
for cell, kw in OPTIONS:
    make = CELLS[cell][0] if cell in CELLS else {"gru_cho": lambda **k: rnnfast.GRU(reset_after=False, **k),
                                                 "rnn_tanh": lambda **k: rnnfast.RNN(**k)}[cell]
    for dtype in DTYPES:
        for N in (5, 70):
            cases += 1
            core.cuda_set_tiling(32 if N == 70 else 0, 1)
            H, T = 37, 6
            cpu = make(input_size=5, hidden_size=H, dtype=dtype, bidirectional=True, seed=N, **kw)
            gpu = make(input_size=5, hidden_size=H, dtype=dtype, bidirectional=True, seed=N, **kw).to("cuda")
            gpu.load_state_dict(cpu.state_dict())
            P = kw.get("proj_size") or H
            lengths = rng.integers(1, T + 1, N)
            x = rng.standard_normal((T, N, 5)).astype(dtype)
            dy = rng.standard_normal((T, N, 2 * P)).astype(dtype)
            y_c, _ = cpu(x, lengths=lengths)
            dx_c, _ = cpu.backward(dy)
            y_g, _ = gpu(cp.asarray(x), lengths=lengths)
            dx_g, _ = gpu.backward(cp.asarray(dy))
            cpu.eval()
            gpu.eval()
            ye_c, _ = cpu(x, lengths=lengths)
            ye_g, _ = gpu(cp.asarray(x), lengths=lengths)
            tol = 1e-4 if dtype == "float32" else 1e-10
            pairs = [("y", cp.asnumpy(y_g), y_c), ("dx", cp.asnumpy(dx_g), dx_c), ("y eval", cp.asnumpy(ye_g), ye_c)]
            pairs += [(k, cp.asnumpy(g), cpu.grads[k]) for k, g in gpu.grads.items()]
            for name, a, b in pairs:
                if not np.isfinite(a).all() or not np.allclose(a, b, rtol=tol, atol=tol):
                    failures += 1
                    print(f"MISMATCH {cell} {kw} {dtype} N={N} with lengths, {name}: max err {np.abs(a - b).max():.3e}",
                          flush=True)
core.cuda_set_tiling(*before[0])

# the reservoir kernel (CSR and dense W), a batch and a population
from rnnfast.esn import run_population  # noqa: E402

for density in (0.1, 1.0):
    for dtype in DTYPES:
        cases += 1
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
            print(f"MISMATCH ESN density={density} {dtype}: max err {np.abs(a - b).max():.3e}", flush=True)

cp.cuda.Device().synchronize()
print(f"small case{' (quick)' if QUICK else ''}: {'FAIL' if failures else 'ok'} ({failures} mismatches in {cases} "
      f"cases, {time.perf_counter() - t0:.1f} s)", flush=True)
sys.exit(1 if failures else 0)
