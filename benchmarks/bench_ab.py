#!/usr/bin/env python
"""The Python layer of two rnnfast trees against the same engine, in one process, calls alternated.

bench_cpu.py compares implementations within one run; two builds can only be compared by alternating
processes, whose spread on a shared machine (+-10-40% between runs here) hides a few percent. This loads
two python/rnnfast trees as two packages (copies renamed rnnfast_a and rnnfast_b, each with the same
_core built from one tree), builds the same layer in both, and alternates them every ~20 ms for 41 rounds:
the ratio's median and quartiles resolve ~0.5%.

    python benchmarks/bench_ab.py --a /path/to/main/python/rnnfast --b python/rnnfast \\
        --core build/.../_core*.so --configs 25x1x65x100,100x8x128x128 --json /tmp/ab.json
    (RNNFAST_NUM_THREADS=1 for the engine on one thread)
    --core-b B_CORE gives --b its own engine: two builds, each tree with its _core, alternated the same way.
"""

import argparse
import importlib
import os
import shutil
import sys
import tempfile

import numpy as np

from _harness import interleaved, machine_info, median_time, write_json  # benchmarks/_harness.py


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", required=True, help="the baseline package directory (a python/rnnfast tree)")
    p.add_argument("--b", required=True, help="the package directory to compare")
    p.add_argument("--core", default=None, help="the _core extension both use (default: the one in --a)")
    p.add_argument("--core-b", default=None,
                   help="a second _core for --b: two builds A/B (each tree with its own engine)")
    p.add_argument("--cells", default="RNN,LSTM,GRU")
    p.add_argument("--modes", default="fwd,fwdbwd")
    p.add_argument("--configs", default="25x1x65x100,100x8x128x128")
    p.add_argument("--rounds", type=int, default=41)
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def load(src, name, core, root):
    dst = os.path.join(root, name)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "_core*.so"))
    shutil.copy(core, dst)
    return importlib.import_module(name)


def main(argv=None):
    args = parse_args(argv)
    core = args.core or next(os.path.join(args.a, f) for f in os.listdir(args.a) if f.startswith("_core"))
    root = tempfile.mkdtemp(prefix="rnnfast-ab-")
    sys.path.insert(0, root)
    pkgs = {"a": load(args.a, "rnnfast_a", core, root), "b": load(args.b, "rnnfast_b", args.core_b or core, root)}
    rng = np.random.default_rng(0)
    out = {}
    try:
        for cfg in args.configs.split(","):
            T, N, C, H = (int(v) for v in cfg.split("x"))
            for cell in args.cells.split(","):
                for mode in args.modes.split(","):
                    x = rng.standard_normal((T, N, C)).astype(np.float32)
                    dy = rng.standard_normal((T, N, H)).astype(np.float32)
                    layers = {k: getattr(p, cell)(C, H, seed=0) for k, p in pkgs.items()}
                    if mode == "fwd":
                        for layer in layers.values():
                            layer.eval()

                    def run(layer, k, x=x, dy=dy, mode=mode):
                        for _ in range(k):
                            layer(x)
                            if mode == "fwdbwd":
                                layer.backward(dy)

                    k = max(3, int(0.02 / median_time(lambda: run(layers["a"], 3), 1, warmup=0) * 3))
                    t = interleaved({name: lambda layer=layer: run(layer, k) for name, layer in layers.items()},
                                    args.rounds)
                    t = {name: [s / k for s in v] for name, v in t.items()}
                    ratio = np.array(t["b"]) / np.array(t["a"])
                    key = f"{cell.lower()} {cfg} {mode}"
                    out[key] = dict(a_us=float(np.median(t["a"]) * 1e6), b_us=float(np.median(t["b"]) * 1e6),
                                    ratio=float(np.median(ratio)), q25=float(np.quantile(ratio, 0.25)),
                                    q75=float(np.quantile(ratio, 0.75)))
                    r = out[key]
                    print(f"{key:30s} a {r['a_us']:9.1f} us  b {r['b_us']:9.1f} us  b/a {r['ratio']:.3f} "
                          f"(quartiles {r['q25']:.3f}-{r['q75']:.3f})", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        write_json(args.json, dict(a=args.a, b=args.b, core_a=core, core_b=args.core_b or core, engine_threads=os.environ.get("RNNFAST_NUM_THREADS"),
                                   machine=machine_info(np), results=out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
