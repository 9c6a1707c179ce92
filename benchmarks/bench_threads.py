#!/usr/bin/env python
"""One module shared by 4 threads against the same calls made one after another (issue 15).

For each cell (float32, one layer, one direction) and (T, N, C, H), and both modes (fwd: eval() forward,
the serving case; fwdbwd: forward in training mode + backward), it times 4*M calls:
  serial   one thread, one module, the 4*M calls one after another
  shared   4 threads started together, one module shared by all, M calls each
  copies   4 threads, each with its own copy of the module (copy.deepcopy), M calls each
and checks that the shared calls returned, bit for bit, what the serial calls returned. Each figure is the
median of --reps repetitions (the three run in rotated order). speedup = serial / shared (>= 1: sharing a
module from 4 threads is at least as fast as the same calls one after another).

Concurrent engine calls each run on their own thread inside the engine, while a lone call may use the
engine's pool (RNNFAST_NUM_THREADS, default: the CPUs this process may use), so on a machine with few cores
the threads mostly take turns; the Python parts of the calls overlap with other threads' engine calls.

    python benchmarks/bench_threads.py                        # writes benchmarks/results/bench_threads.json
    python benchmarks/bench_threads.py --cells lstm --configs 100x8x128x128 --reps 3
"""

import argparse
import copy
import os
import sys
import threading
import time

import numpy as np

import rnnfast

from _harness import machine_info, write_json  # benchmarks/_harness.py (on sys.path as a script)

CELLS = {"rnn": rnnfast.RNN, "lstm": rnnfast.LSTM, "gru": rnnfast.GRU}
CONFIGS = [(25, 1, 65, 100), (100, 8, 128, 128), (50, 32, 256, 256)]
THREADS = 4
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", default=",".join(CELLS))
    p.add_argument("--configs", default=",".join("x".join(map(str, c)) for c in CONFIGS), help="TxNxCxH,...")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seconds", type=float, default=0.4, help="serial time one repetition aims at (sets M)")
    p.add_argument("--json", default=os.path.join(REPO, "benchmarks", "results", "bench_threads.json"))
    a = p.parse_args(argv)
    a.cells = [c for c in a.cells.split(",") if c]
    a.configs = [tuple(int(v) for v in c.split("x")) for c in a.configs.split(",") if c]
    return a


def run_threads(fns):
    barrier = threading.Barrier(len(fns))
    out = [None] * len(fns)

    def target(i):
        barrier.wait()
        out[i] = fns[i]()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(fns))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, out


def bench(cell, cfg, mode, reps, seconds):
    T, N, C, H = cfg
    rng = np.random.default_rng(0)
    layer = CELLS[cell](C, H, seed=0)
    if mode == "fwd":
        layer.eval()
    xs = [rng.standard_normal((T, N, C)).astype(np.float32) for _ in range(THREADS)]
    dy = rng.standard_normal((T, N, H)).astype(np.float32)

    def call(module, x):
        y, _ = module(x)
        if mode == "fwdbwd":
            return y, module.backward(dy)[0]
        return (y,)

    def calls(module, x, m):
        return lambda: [call(module, x) for _ in range(m)]

    t0 = time.perf_counter()
    call(layer, xs[0])
    one = time.perf_counter() - t0
    m = max(2, int(seconds / THREADS / max(one, 1e-6)))
    copies = [copy.deepcopy(layer) for _ in range(THREADS)]
    times = {"serial": [], "shared": [], "copies": []}
    for rep in range(reps):
        order = ["serial", "shared", "copies"]
        order = order[rep % 3:] + order[:rep % 3]
        for kind in order:
            if kind == "serial":
                t0 = time.perf_counter()
                serial = [calls(layer, x, m)() for x in xs]
                times[kind].append(time.perf_counter() - t0)
            elif kind == "shared":
                dt, shared = run_threads([calls(layer, x, m) for x in xs])
                times[kind].append(dt)
            else:
                dt, _ = run_threads([calls(c, x, m) for c, x in zip(copies, xs)])
                times[kind].append(dt)
    exact = all(np.array_equal(a, b) for s, t in zip(serial, shared) for r1, r2 in zip(s, t) for a, b in zip(r1, r2))
    med = {k: float(np.median(v)) for k, v in times.items()}
    return dict(cell=cell, T=T, N=N, C=C, H=H, mode=mode, calls=THREADS * m, exact=exact,
                seconds={k: v for k, v in times.items()}, median_s=med,
                per_call_us={k: v / (THREADS * m) * 1e6 for k, v in med.items()},
                speedup_shared=med["serial"] / med["shared"], speedup_copies=med["serial"] / med["copies"])


def main(argv=None):
    args = parse_args(argv)
    info = rnnfast.build_info()
    print(f"rnnfast {info['version']}  engine threads {info['threads']}  cpus {os.cpu_count()}  "
          f"{THREADS} Python threads")
    print(f"{'cell':5} {'config':16} {'mode':7} {'calls':>6} {'serial us':>10} {'shared us':>10} {'copies us':>10} "
          f"{'serial/shared':>13} exact")
    results = []
    for cell in args.cells:
        for cfg in args.configs:
            for mode in ("fwd", "fwdbwd"):
                r = bench(cell, cfg, mode, args.reps, args.seconds)
                results.append(r)
                u = r["per_call_us"]
                print(f"{cell:5} {'x'.join(map(str, cfg)):16} {mode:7} {r['calls']:6d} {u['serial']:10.1f} "
                      f"{u['shared']:10.1f} {u['copies']:10.1f} {r['speedup_shared']:13.2f} {r['exact']}", flush=True)
    worst = min(r["speedup_shared"] for r in results)
    print(f"worst serial/shared: {worst:.2f}; load average {open('/proc/loadavg').read().split()[0]}")
    write_json(args.json, dict(build=info, machine=machine_info(np), threads=THREADS, cpus=os.cpu_count(),
                               reps=args.reps, results=results))
    print(f"wrote {args.json}")
    return 0 if all(r["exact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
