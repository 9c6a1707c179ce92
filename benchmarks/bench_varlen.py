#!/usr/bin/env python
"""Variable-length batches, dropout and zoneout on the CPU: issue 17's targets.

  lengths   T=100, N=32, C=H=256, lengths uniform in [50, 100] (seeded; ~75% of the full work), forward in
            training mode + backward(dy): rnnfast with lengths= against torch with
            pack_padded_sequence(enforce_sorted=False) (target >= 2x) and against rnnfast's own run of the
            same batch at full length (target <= 0.85x)
  dropout   a 2-layer stack with dropout=0.2 against the same stack without (target <= 5% more)
  zoneout   zoneout=0.1 against none, one layer (target <= 5% more)

Before timing, rnnfast's packed outputs and dx are checked against torch's. Method as bench_cpu.py:
warm-up, then repetitions in which the implementations of a row run round-robin (order rotated); a sample
is the mean of k calls (k so that a sample lasts >= --min-sample s); the median of the samples is
reported, with the ratio of medians. float32, the engine's default threads.

    python benchmarks/bench_varlen.py [--isa avx2|avx512] [--quick] [--json FILE]
"""

import argparse
import json
import os
import statistics
import sys
import time

from _harness import cpu_snapshot, host_facts, other_load, pin_tier, wait_idle  # benchmarks/_harness.py

T, N, C, H = 100, 32, 256, 256


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--isa", default=None, help="hold rnnfast, torch and NumPy to this CPU tier (avx2, avx512)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int, default=None, help="samples per implementation (default 11, --quick 3)")
    p.add_argument("--min-sample", type=float, default=0.2)
    p.add_argument("--cells", default="lstm,gru")
    p.add_argument("--threads", type=int, default=None,
                   help="engine and torch threads (default: the libraries' own, all CPUs); set before they load")
    p.add_argument("--json", default=None)
    return p.parse_args()


def timed(fns, reps, min_sample, loads, cpu):
    """name -> median seconds per call; fns: name -> zero-argument callable; round-robin, order rotated.
    Waits (up to 60 s) for the other processes to go quiet first; appends their load while timing to loads.
    cpu: name -> median CPU seconds per call of this process (all its threads), filled in: on a shared
    machine less disturbed by other processes than the wall time."""
    wait_idle(60, print)
    snap = cpu_snapshot()
    names = list(fns)
    for f in fns.values():  # warm-up (and buffers allocated)
        f()
        f()
    k = {}
    for n in names:
        t0 = time.perf_counter()
        fns[n]()
        k[n] = max(1, int(min_sample / max(time.perf_counter() - t0, 1e-6)))
    samples = {n: [] for n in names}
    cpus = {n: [] for n in names}
    for r in range(reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            f = fns[n]
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(k[n]):
                f()
            samples[n].append((time.perf_counter() - t0) / k[n])
            cpus[n].append((time.process_time() - c0) / k[n])
    loads.append(other_load(snap, cpu_snapshot())[0])
    cpu.update({n: statistics.median(v) for n, v in cpus.items()})
    return {n: statistics.median(s) for n, s in samples.items()}


def main():
    args = parse_args()
    tier, env = pin_tier(sys.argv)
    if args.threads:
        os.environ["RNNFAST_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    import rnnfast

    if args.threads:
        torch.set_num_threads(args.threads)
    reps = args.reps or (3 if args.quick else 11)
    rng = np.random.default_rng(0)
    lengths = rng.integers(50, T + 1, N)
    work = lengths.sum() / (T * N)
    x = rng.standard_normal((T, N, C)).astype(np.float32)
    dy = rng.standard_normal((T, N, H)).astype(np.float32)
    facts = host_facts(np)
    print(f"CPU: {facts['cpu_model']} ({os.cpu_count()} CPUs); tier: {tier or 'native'}; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); rnnfast {rnnfast.build_info()['version']} "
          f"({rnnfast.build_info()['threads']} engine threads, tier {rnnfast.build_info()['cpu_isa']})")
    print(f"T={T} N={N} C={C} H={H}, lengths uniform in [50, 100]: {work:.1%} of the full work; medians of {reps}")
    rows, loads, cpu = [], [], {}

    def row(name, res, a, b, target):
        ratio, cpu_ratio = res[a] / res[b], cpu[a] / cpu[b]
        rows.append(dict(row=name, a=a, b=b, a_ms=res[a] * 1e3, b_ms=res[b] * 1e3, ratio=ratio, target=target,
                         a_cpu_ms=cpu[a] * 1e3, b_cpu_ms=cpu[b] * 1e3, cpu_ratio=cpu_ratio))
        print(f"  {name:28s} {a:>16s} {res[a] * 1e3:8.2f} ms   {b:>16s} {res[b] * 1e3:8.2f} ms   "
              f"ratio {ratio:5.3f} (CPU time {cpu_ratio:5.3f})  (target {target})")

    for cell in args.cells.split(","):
        cls = {"lstm": rnnfast.LSTM, "gru": rnnfast.GRU}[cell]
        tcls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        torch.manual_seed(0)
        tm = tcls(C, H)
        layer = cls(C, H, seed=0)
        layer.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
        tx = torch.tensor(x, requires_grad=True)
        tdy = torch.tensor(dy)
        tlen = torch.tensor(lengths)

        def torch_packed():
            tx.grad = None
            out, _ = tm(pack_padded_sequence(tx, tlen, enforce_sorted=False))
            y, _ = pad_packed_sequence(out, total_length=T)
            y.backward(tdy)
            return y

        def torch_full():
            tx.grad = None
            y, _ = tm(tx)
            y.backward(tdy)

        def ours(lengths_=None, layer=layer):
            y, _ = layer(x, lengths=lengths_)
            return y, layer.backward(dy)[0]

        # correct before fast
        yt = torch_packed().detach().numpy()
        y, dx = ours(lengths)
        err = max(np.abs(y - yt).max() / np.abs(yt).max(), np.abs(dx - tx.grad.numpy()).max() / np.abs(tx.grad.numpy()).max())
        print(f"{cell}: max relative error against torch packed: {err:.2e}")
        if not err < 1e-4:
            sys.exit(f"{cell}: rnnfast with lengths differs from torch packed ({err:.2e})")
        res = timed({"rnnfast lengths": lambda: ours(lengths), "rnnfast full": lambda: ours(None),
                     "torch packed": torch_packed, "torch full": torch_full}, reps, args.min_sample, loads, cpu)
        row(f"{cell} lengths vs torch packed", res, "rnnfast lengths", "torch packed", "<= 0.5")
        row(f"{cell} lengths vs own full", res, "rnnfast lengths", "rnnfast full", "<= 0.85")
        row(f"{cell} torch packed vs full", res, "torch packed", "torch full", "(info)")

        drop = cls(C, H, num_layers=2, dropout=0.2, seed=0)
        plain = cls(C, H, num_layers=2, seed=0)
        dy2 = dy

        def run2(m):
            m(x)
            m.backward(dy2)
        res = timed({"dropout 0.2": lambda: run2(drop), "no dropout": lambda: run2(plain)}, reps, args.min_sample, loads, cpu)
        row(f"{cell} 2 layers dropout", res, "dropout 0.2", "no dropout", "<= 1.05")

        zo = cls(C, H, zoneout=0.1, seed=0)
        res = timed({"zoneout 0.1": lambda: run2(zo), "no zoneout": lambda: run2(layer)}, reps, args.min_sample, loads, cpu)
        row(f"{cell} zoneout", res, "zoneout 0.1", "no zoneout", "<= 1.05")

    load = max((v for v in loads if v is not None), default=None)
    print(f"other processes' load while timing: at most {load:.2f} cores" if load is not None else "")
    out = dict(benchmark="bench_varlen", tier=tier, env=env, host=facts, torch=torch.__version__, reps=reps,
               threads=dict(torch=torch.get_num_threads(), rnnfast=rnnfast.build_info()["threads"]),
               other_load_max=load,
               shape=dict(T=T, N=N, C=C, H=H), lengths=lengths.tolist(), rows=rows)
    path = args.json or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                     f"bench_varlen{'_' + tier if tier else ''}{f'_t{args.threads}' if args.threads else ''}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
