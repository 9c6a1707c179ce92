#!/usr/bin/env python
"""One Hessian-free curvature product with the engine R-op against the NumPy reference R-op (issue #7).

For a SequenceModel (one-layer RNN tanh or MRNN + linear readout on every step) at T=100, N=100, H=128
(C=32, K=10, MRNN F=128), times, median of --repeats after a warm-up, the two variants interleaved:

  rop   model.rop(cache, v): the R-op (J v for the outputs and the hidden states) alone;
  gv    HessianFree's damped curvature product (G + lambda I + structural damping) v: the R-op, the
        loss's Hessian, and a backward pass through the C++ engine (the same in both variants). The
        layer's backward consumes its forward cache, so SequenceModel.backward re-runs the forward in
        every product after the first: gv = R-op + forward + backward + NumPy readout work.

Writes benchmarks/results/bench_hf_rop.json and prints a table with the engine / reference ratio.

    PYTHONPATH=python python benchmarks/bench_hf_rop.py [--repeats 15] [--dtype float32 float64]
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=python python benchmarks/bench_hf_rop.py \
        --out benchmarks/results/bench_hf_rop_numpy1.json

NumPy's own OpenBLAS threads (the readout's and the loss's matmuls in gv) keep spinning after their
calls and take the cores from the engine's threads in the next engine call; with OPENBLAS_NUM_THREADS=1
(NumPy single-threaded; the engine keeps its own two threads) every gv is faster and the engine R-op's
gain shows in it (see RESULTS.md).
"""

import argparse
import os

import numpy as np

import rnnfast
from rnnfast import nn, optim
from rnnfast.hessian_free import SequenceModel

from _harness import cpu_snapshot, host_facts, median_time, other_load, wait_idle, write_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(kind, rop, dtype, T, N, C, H, F, K):
    if kind == "mrnn":
        rnn = rnnfast.MRNN(C, H, F, dtype=dtype, seed=1)
    else:
        rnn = rnnfast.RNN(C, H, nonlinearity=kind, dtype=dtype, seed=1)
    model = SequenceModel(rnn, nn.Linear(H, K, dtype=dtype, seed=2), rop=rop)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, C)).astype(dtype)
    y = rng.standard_normal((T, N, K)).astype(dtype)
    opt = optim.HessianFree(model, loss="mse", damping=1.0, structural_damping=0.3)
    vec = np.random.default_rng(3).standard_normal(opt._flat.size)
    gv = opt._curvature(x, y, None, opt.damping)                 # one forward; then one product per call
    _, cache = model.forward(x)
    v = opt._flat.split(vec)
    return dict(rop=lambda: model.rop(cache, v), gv=lambda: gv(vec))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    ap.add_argument("--cells", nargs="+", default=["tanh", "mrnn"])
    ap.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "bench_hf_rop.json"))
    args = ap.parse_args()
    T, N, C, H, F, K = 100, 100, 32, 128, 128, 10
    rows = []
    wait_idle(60, print)
    snap0 = cpu_snapshot()
    for dtype in args.dtype:
        for kind in args.cells:
            variants = {rop: build(kind, rop, dtype, T, N, C, H, F, K) for rop in ("engine", "reference")}
            for what in ("rop", "gv"):
                times = {rop: [] for rop in variants}
                for _ in range(3):                             # interleaved rounds: both see the same load
                    for rop, fns in variants.items():
                        times[rop].append(median_time(fns[what], max(1, args.repeats // 3)))
                t_eng, t_ref = min(times["engine"]), min(times["reference"])
                rows.append(dict(cell=kind, dtype=dtype, what=what, engine_ms=1e3 * t_eng, reference_ms=1e3 * t_ref,
                                 speedup=t_ref / t_eng))
                print(f"{kind:5s} {dtype:8s} {what:4s}  engine {1e3 * t_eng:8.2f} ms   reference "
                      f"{1e3 * t_ref:8.2f} ms   reference/engine {t_ref / t_eng:5.2f}x", flush=True)
    load, steal = other_load(snap0, cpu_snapshot())
    out = dict(shape=dict(T=T, N=N, C=C, H=H, F=F, K=K), repeats=args.repeats, rows=rows,
               other_processes_cores=load, steal_cores=steal, threads=os.environ.get("RNNFAST_NUM_THREADS"),
               openblas_num_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
               **host_facts(np))
    write_json(args.out, out)
    print(f"other processes used {load if load is None else round(load, 2)} cores on average; wrote {args.out}")


if __name__ == "__main__":
    main()
