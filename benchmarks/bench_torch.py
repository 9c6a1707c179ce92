"""One training step of a PyTorch model: torch.nn's RNN/LSTM/GRU against the same model after rnnfast.torch.convert.

The model: a 2-layer recurrent module (input C, hidden H) and a linear readout of every step, trained with
cross-entropy and torch.optim.Adam. One step = zero_grad, forward, loss, backward, Adam step. Four sides per
cell, timed interleaved round-robin in one process: torch eager, rnnfast eager, and both under torch.compile
(torch's module graph-breaks there: dynamo leaves nn.RNN/LSTM/GRU to eager; the converted model compiles with
fullgraph=True). Before timing, the converted model's loss and every gradient are checked against torch's on
the same weights and batch.

Threads: `--torch-threads 2,1` times every side with torch.set_num_threads(k) for each k (rnnfast's engine
keeps its own pool, RNNFAST_NUM_THREADS).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_torch.py --isa avx512 \
        --json benchmarks/results/bench_torch_avx512.json
    python benchmarks/bench_torch.py --isa avx2 --json benchmarks/results/bench_torch_avx2.json
"""

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import cpu_snapshot, host_facts, other_load, pin_tier, wait_idle  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELLS = ("gru", "rnn", "lstm")
TARGET = {"gru": 2.5, "rnn": 2.5, "lstm": 1.3}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", default=",".join(CELLS))
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--N", type=int, default=32)
    p.add_argument("--C", type=int, default=256, help="input size (default 256)")
    p.add_argument("--H", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--classes", type=int, default=32, help="readout size (default 32)")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--steps-per-sample", type=int, default=2)
    p.add_argument("--gap", type=float, default=0.15, help="sleep before each sample (idle thread pools)")
    p.add_argument("--torch-threads", default="2,1", help="comma list of torch.set_num_threads values")
    p.add_argument("--no-compile", action="store_true", help="eager sides only")
    p.add_argument("--isa", choices=("baseline", "avx2", "avx512"), default=None,
                   help="hold rnnfast and torch (ATen, oneDNN, MKL) to this CPU tier (the script restarts itself)")
    p.add_argument("--wait-idle", type=float, default=60.0)
    p.add_argument("--json", default=os.path.join(REPO, "benchmarks", "results", "bench_torch.json"))
    a = p.parse_args(argv)
    a.cells = [c for c in a.cells.split(",") if c]
    a.torch_threads = [int(k) for k in a.torch_threads.split(",") if k]
    return a


def build(torch, cell, args):
    nn = torch.nn
    cls = {"gru": nn.GRU, "rnn": nn.RNN, "lstm": nn.LSTM}[cell]

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cls(args.C, args.H, num_layers=args.layers, batch_first=True)
            self.head = nn.Linear(args.H, args.classes)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.head(y)

    torch.manual_seed(0)
    return Model()


def make_step(torch, model, x, target, compiled):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    fwd = model
    if compiled == "torch":
        fwd = torch.compile(model)
    elif compiled == "fullgraph":
        fwd = torch.compile(model, fullgraph=True)
    loss_fn = torch.nn.functional.cross_entropy

    def step():
        opt.zero_grad(set_to_none=True)
        out = fwd(x)
        loss = loss_fn(out.reshape(-1, out.shape[-1]), target.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    return step


def check_same(torch, cell, args, rt, x, target, log):
    """Loss and every gradient of the converted model against torch's, same weights, one step's batch."""
    ref = build(torch, cell, args)
    ours = rt.convert(copy.deepcopy(ref))
    out = {}
    for name, m in (("torch", ref), ("rnnfast", ours)):
        y = m(x)
        loss = torch.nn.functional.cross_entropy(y.reshape(-1, y.shape[-1]), target.reshape(-1))
        grads = torch.autograd.grad(loss, list(m.parameters()))
        out[name] = (loss.item(), grads)
    err = max((a - b).abs().max().item() / (b.abs().max().item() + 1e-30)
              for a, b in zip(out["rnnfast"][1], out["torch"][1]))
    log(f"  check {cell}: loss torch {out['torch'][0]:.6f} rnnfast {out['rnnfast'][0]:.6f}, "
        f"max relative gradient difference {err:.2e}")
    if abs(out["torch"][0] - out["rnnfast"][0]) > 1e-4 or err > 1e-3:
        sys.exit(f"{cell}: the converted model does not match torch's")
    return err


def main(argv=None):
    args = parse_args(argv)
    _, tier_env = pin_tier(sys.argv if argv is None else [sys.argv[0]] + list(argv))
    import numpy as np
    import torch

    import rnnfast
    import rnnfast.torch as rt

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    info = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                hostname=platform.node(), python=platform.python_version(), cpu_count=os.cpu_count(),
                torch=torch.__version__, rnnfast=rnnfast.__version__, cpu_isa=rnnfast.build_info()["cpu_isa"],
                torch_cpu_capability=torch.backends.cpu.get_cpu_capability(), tier_env=tier_env,
                env={k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                     "RNNFAST_NUM_THREADS", "ATEN_CPU_CAPABILITY",
                                                     "ONEDNN_MAX_CPU_ISA")},
                args=vars(args))
    info.update(host_facts(np))
    log(f"torch {torch.__version__} ({info['torch_cpu_capability']}), rnnfast {rnnfast.__version__} "
        f"({info['cpu_isa']}), CPU {info['cpu_model']}, {os.cpu_count()} CPUs")
    if args.wait_idle > 0:
        wait_idle(args.wait_idle, log)

    results = []
    sides = [("torch", "eager"), ("rnnfast", "eager")]
    if not args.no_compile:
        sides += [("torch", "compile"), ("rnnfast", "compile")]
    for cell in args.cells:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(args.N, args.T, args.C, generator=g)
        target = torch.randint(0, args.classes, (args.N, args.T), generator=g)
        err = check_same(torch, cell, args, rt, x, target, log)
        for k in args.torch_threads:
            torch.set_num_threads(k)
            steps = {}
            for lib, mode in sides:
                model = build(torch, cell, args)
                if lib == "rnnfast":
                    rt.convert(model)
                compiled = None if mode == "eager" else ("fullgraph" if lib == "rnnfast" else "torch")
                step = make_step(torch, model, x, target, compiled)
                t0 = time.perf_counter()
                step()
                step()  # compile (forward and backward graphs), warm caches
                steps[(lib, mode)] = step
                log(f"  {cell} threads={k} {lib} {mode}: ready in {time.perf_counter() - t0:.1f} s")
            samples = {s: [] for s in sides}
            loads = []
            for _ in range(args.reps):
                for s in sides:
                    time.sleep(args.gap)
                    steps[s]()  # untimed
                    a = cpu_snapshot()
                    t0 = time.perf_counter()
                    for _ in range(args.steps_per_sample):
                        steps[s]()
                    samples[s].append((time.perf_counter() - t0) / args.steps_per_sample)
                    loads.append(other_load(a, cpu_snapshot())[0])
            med = {s: statistics.median(v) for s, v in samples.items()}
            rec = dict(cell=cell, T=args.T, N=args.N, C=args.C, H=args.H, layers=args.layers, torch_threads=k,
                       check_max_rel_grad_diff=err, other_load_max=max(l for l in loads if l is not None),
                       samples_s={f"{lib}_{mode}": v for (lib, mode), v in samples.items()},
                       median_ms={f"{lib}_{mode}": 1e3 * v for (lib, mode), v in med.items()})
            rec["speedup_eager"] = med[("torch", "eager")] / med[("rnnfast", "eager")]
            if not args.no_compile:
                rec["speedup_compile"] = med[("torch", "compile")] / med[("rnnfast", "compile")]
            results.append(rec)
            log(f"{cell} threads={k}: " + ", ".join(f"{lib} {mode} {1e3 * v:.1f} ms" for (lib, mode), v in med.items())
                + f" | eager {rec['speedup_eager']:.2f}x" + (f", compile {rec['speedup_compile']:.2f}x"
                                                             if "speedup_compile" in rec else "")
                + f" (target {TARGET[cell]}x; other load <= {rec['other_load_max']:.2f} cores)")
            del steps
            torch._dynamo.reset()

    print("\n| cell | torch threads | torch eager ms | rnnfast eager ms | x | torch compile ms | "
          "rnnfast compile ms | x | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        m = r["median_ms"]
        print(f"| {r['cell']} | {r['torch_threads']} | {m['torch_eager']:.1f} | {m['rnnfast_eager']:.1f} | "
              f"{r['speedup_eager']:.2f}x | {m.get('torch_compile', float('nan')):.1f} | "
              f"{m.get('rnnfast_compile', float('nan')):.1f} | {r.get('speedup_compile', float('nan')):.2f}x | "
              f">= {TARGET[r['cell']]}x |")
    if args.json:
        import json
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(info=info, results=results), f, indent=1)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
