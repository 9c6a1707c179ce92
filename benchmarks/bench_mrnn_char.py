#!/usr/bin/env python
"""MRNN against a vanilla RNN with the same parameter count on the character task (issue #7).

Both cells are trained through the real CLI, each run in its own process:

    python -m rnnfast char train --cell rnn  --hidden 256               --steps S_rnn  ... --out DIR --no-progress
    python -m rnnfast char train --cell mrnn --hidden 178 --factors 178 --steps S_mrnn ... --out DIR --no-progress

on the same text (the CLI's default corpus: this Python's standard library source, its first 2 MiB), with
the same optimiser (Adam, lr 4e-3, global-norm clip 5; batch 32 x seq-len 64, truncated BPTT with the
state carried) and the same parameter count (within 2 %):

    RNN:  H (C + H + 2) + V (H + 1)                        C = V = vocabulary size
    MRNN: F (C + 2H) + H (C + 1) + V (H + 1)               (W_fx, W_fh, W_hf, W_hx, b; the readout)

Held-out text: the CLI holds out the tail (--val-fraction of the characters). Its default 5 % starts in the
middle of a module (locale.py, whose first half, the locale_alias table included, ends the training
part), so the val bpc drops sharply when the training streams reach the end of their first epoch, next to
the held-out half of the same module: an artefact of the data order that would favour whichever cell gets
further through the epoch. Here --val-fraction is set so the held-out tail starts at a module boundary
(the last '# file:' line at or before 95 % of the text: whole modules never trained on, about 7 %).

Validation bits per character (the CLI's own: 32768 held-out characters, every --val-every steps) are
read from each run's metrics.json, with its steps, chars_per_s, train_seconds and train loss.

Equal steps: the val bpc of both cells at step S_mrnn (the RNN runs longer, S_rnn >= S_mrnn, because its
step is cheaper). Equal wall time: each cell's time per step is the median over its runs of the CLI's
train_seconds / steps (training steps only, validation excluded; the runs alternate rnn/mrnn so both see
the same machine load); each run's val curve is put on that time axis (time = step x time per step) and
read (linear interpolation) at the common budget = the smaller of the two cells' whole-run times. Each
run's own final val bpc and measured train_seconds are recorded as well. The CLI has no wall-time limit,
so the budget is met by step counts chosen ahead (S_rnn = 2 S_mrnn: the RNN's step was 1.3-2.9x cheaper
on the shared two-core machine, depending on its load).

Then every trained model completes primes through `rnnfast char sample DIR --prime P --length 200
--seed 0` (temperature 1), as Sutskever, Martens & Hinton (2011) did from "The meaning of life is".

    python benchmarks/bench_mrnn_char.py               # 4-7 min on 2 shared cores (3 seeds)
    python benchmarks/bench_mrnn_char.py --quick       # smoke run, ~1 min
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from _harness import (  # benchmarks/_harness.py (on sys.path as a script)
    cpu_snapshot,
    host_facts,
    other_load,
    write_json,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRIMES = ("def ", "import ", "The meaning of life is")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: few steps, one seed")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..K-1 (default 3)")
    p.add_argument("--rnn-hidden", type=int, default=256)
    p.add_argument("--mrnn-hidden", type=int, default=178)
    p.add_argument("--factors", type=int, default=178)
    p.add_argument("--mrnn-steps", type=int, default=None, help="S_mrnn (default 500)")
    p.add_argument("--rnn-steps", type=int, default=None, help="S_rnn (default 2 S_mrnn)")
    p.add_argument("--val-every", type=int, default=100)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--sample-length", type=int, default=200)
    p.add_argument("--keep", metavar="DIR", help="keep the run directories under DIR (default: a temp dir)")
    p.add_argument("--json", default=os.path.join(REPO, "benchmarks", "results", "bench_mrnn_char.json"))
    a = p.parse_args(argv)
    a.seeds = a.seeds or (1 if a.quick else 3)
    a.mrnn_steps = a.mrnn_steps or (100 if a.quick else 500)
    a.rnn_steps = a.rnn_steps or 2 * a.mrnn_steps
    if a.mrnn_steps % a.val_every or a.rnn_steps % a.val_every:
        p.error("--val-every must divide both step counts (equal steps are read at a validation)")
    return a


def log(msg):
    print(msg, flush=True)


def child_env():
    return dict(os.environ)


def cli(argv, timeout=1800):
    """Run `python -m rnnfast ARGV`; returns (stdout, wall seconds, other processes' cores during it)."""
    a = cpu_snapshot()
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "rnnfast"] + argv, env=child_env(), capture_output=True, text=True,
                       timeout=timeout)
    wall = time.perf_counter() - t0
    load, _ = other_load(a, cpu_snapshot())
    if p.returncode != 0:
        raise RuntimeError(f"rnnfast {' '.join(argv)} failed (status {p.returncode}):\n{p.stdout[-2000:]}\n"
                           f"{p.stderr[-3000:]}")
    return p.stdout, wall, load


# ---- parameter counts ------------------------------------------------------------------------------
def count_rnn(V, H):
    return H * (V + H + 2) + V * (H + 1)


def count_mrnn(V, H, F):
    return F * (V + 2 * H) + H * (V + 1) + V * (H + 1)


def cells(args):
    """name -> (CLI flags, steps, hidden, factors)."""
    return {
        "rnn": (["--cell", "rnn", "--hidden", str(args.rnn_hidden)], args.rnn_steps, args.rnn_hidden, None),
        "mrnn": (["--cell", "mrnn", "--hidden", str(args.mrnn_hidden), "--factors", str(args.factors)],
                 args.mrnn_steps, args.mrnn_hidden, args.factors),
    }


# ---- held-out modules -------------------------------------------------------------------------------
def module_boundary_split(text, at_least=0.05):
    """(--val-fraction, held-out module names): the tail from the last '# file: ' line at or before
    (1 - at_least) of the text, so the CLI's split (int(len * fraction) held out) falls on that line."""
    starts = _file_marks(text)
    pos = max(i for i in starts if i <= (1 - at_least) * len(text))
    n_val = len(text) - pos
    fraction = (n_val + 0.5) / len(text)
    if int(len(text) * fraction) != n_val:
        raise RuntimeError("could not express the module-boundary split as --val-fraction")
    names = [text[i + 8:text.index("\n", i)] for i in starts if i >= pos]
    return fraction, names


def _file_marks(text):
    """Offsets of the '# file: NAME' lines that char.stdlib_corpus() puts before each module."""
    marks, i = [], text.find("# file: ")
    while i >= 0:
        if i == 0 or text[i - 1] == "\n":
            marks.append(i)
        i = text.find("# file: ", i + 1)
    return marks


# ---- curves ----------------------------------------------------------------------------------------
def interp(xs, ys, x):
    """Piecewise-linear y(x) on sorted xs; x must lie in [xs[0], xs[-1]]."""
    if not xs[0] <= x <= xs[-1] + 1e-9:
        raise ValueError(f"{x} outside [{xs[0]}, {xs[-1]}]")
    for i in range(1, len(xs)):
        if x <= xs[i]:
            w = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
            return ys[i - 1] + w * (ys[i] - ys[i - 1])
    return ys[-1]


def val_at_step(run, step):
    for s, v in run["val_history"]:
        if s == step:
            return v
    raise KeyError(f"no validation at step {step}")


def spread(values):
    return dict(median=statistics.median(values), min=min(values), max=max(values), values=values)


# ---- main ------------------------------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    import numpy as np

    import rnnfast
    from rnnfast.char import stdlib_corpus
    from rnnfast.charmodel import CharModel

    text, desc = stdlib_corpus()
    V = len(set(text))
    val_fraction, val_modules = module_boundary_split(text)
    spec = cells(args)
    counts = {}
    for name, (_, _, H, F) in spec.items():
        formula = count_rnn(V, H) if name == "rnn" else count_mrnn(V, H, F)
        actual = CharModel(V, name, H, 1, seed=0, factors=F).num_parameters()
        if actual != formula:
            raise RuntimeError(f"{name}: CharModel has {actual} parameters, the formula says {formula}")
        counts[name] = actual
    ratio = counts["mrnn"] / counts["rnn"]
    log(f"corpus: {desc}, {len(text):,} chars, vocabulary V = {V}")
    log(f"parameters: RNN H={args.rnn_hidden}: {counts['rnn']:,}; MRNN H={args.mrnn_hidden} F={args.factors}: "
        f"{counts['mrnn']:,} ({100 * (ratio - 1):+.2f} %)")
    log(f"held out: the last {100 * val_fraction:.2f} % (--val-fraction {val_fraction!r}): "
        f"{', '.join(val_modules)} (the last one cut at 2 MiB)")
    if abs(ratio - 1) > 0.02:
        log("WARNING: the parameter counts differ by more than 2 %")

    common = ["--seq-len", str(args.seq_len), "--batch", str(args.batch), "--optimizer", args.optimizer,
              "--lr", repr(args.lr), "--clip", repr(args.clip), "--clip-mode", "norm",
              "--val-every", str(args.val_every), "--val-fraction", repr(val_fraction),
              "--sample-every", "0", "--sample-length", "0", "--save-every", "0", "--no-progress"]
    root = args.keep or tempfile.mkdtemp(prefix="bench_mrnn_char_")
    os.makedirs(root, exist_ok=True)
    runs = []
    t_all = time.perf_counter()
    for seed in range(args.seeds):
        order = ["rnn", "mrnn"] if seed % 2 == 0 else ["mrnn", "rnn"]  # alternate: drift in load hits both
        for name in order:
            flags, steps, _, _ = spec[name]
            out = os.path.join(root, f"{name}_seed{seed}")
            train_argv = ["char", "train"] + flags + ["--steps", str(steps), "--seed", str(seed)] + common + \
                ["--out", out, "--overwrite"]
            _, wall, load = cli(train_argv)
            with open(os.path.join(out, "metrics.json")) as f:
                m = json.load(f)
            run = dict(cell=name, seed=seed, dir=out, steps=m["steps"], chars_per_s=m["chars_per_s"],
                       train_seconds=m["train_seconds"], step_seconds=m["train_seconds"] / m["steps"],
                       process_wall_seconds=wall, other_load_cores=load,
                       train_loss_smoothed_nats=m["train_loss"]["smoothed"], train_bpc=m["train_bpc"],
                       val_bpc=m["val_bpc"]["latest"], val_history=m["val_bpc"]["history"],
                       argv=["python", "-m", "rnnfast"] + train_argv)
            runs.append(run)
            log(f"  {name:4s} seed {seed}: {run['steps']} steps, {run['train_seconds']:.1f} s training "
                f"({run['process_wall_seconds']:.1f} s process), {run['chars_per_s']:,.0f} chars/s, "
                f"val {run['val_bpc']:.3f} bpc; others used {load if load is not None else float('nan'):.2f} cores")

    # equal steps, equal time
    step_s = {c: statistics.median(r["step_seconds"] for r in runs if r["cell"] == c) for c in spec}
    total_s = {c: spec[c][1] * step_s[c] for c in spec}
    budget = min(total_s.values())
    eq_step = min(spec[c][1] for c in spec)
    table = {}
    for c in spec:
        mine = [r for r in runs if r["cell"] == c]
        for r in mine:
            xs = [s * step_s[c] for s, _ in r["val_history"]]
            ys = [v for _, v in r["val_history"]]
            r["val_bpc_at_budget"] = interp(xs, ys, budget)
            r["val_bpc_at_equal_steps"] = val_at_step(r, eq_step)
        table[c] = dict(
            parameters=counts[c], hidden=spec[c][2], factors=spec[c][3], steps=spec[c][1],
            step_seconds_median=step_s[c], run_seconds_at_median_step=total_s[c],
            chars_per_s=spread([r["chars_per_s"] for r in mine]),
            train_seconds=spread([r["train_seconds"] for r in mine]),
            val_bpc_at_budget=spread([r["val_bpc_at_budget"] for r in mine]),
            val_bpc_at_equal_steps=spread([r["val_bpc_at_equal_steps"] for r in mine]),
            val_bpc_final=spread([r["val_bpc"] for r in mine]),
        )
    log(f"\ntime per step (median over seeds): RNN {1e3 * step_s['rnn']:.1f} ms, MRNN {1e3 * step_s['mrnn']:.1f} ms "
        f"({step_s['mrnn'] / step_s['rnn']:.2f}x); common budget {budget:.1f} s of training")
    hdr = (f"| cell | params | steps | ms/step | chars/s | val bpc @ {budget:.0f} s | val bpc @ step {eq_step} | "
           "val bpc final (own steps) |")
    log(hdr)
    log("|" + "---|" * 8)
    for c in spec:
        t = table[c]

        def fmt(s):
            return f"{s['median']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"
        log(f"| {c.upper()} | {t['parameters']:,} | {t['steps']} | {1e3 * t['step_seconds_median']:.1f} | "
            f"{t['chars_per_s']['median']:,.0f} | {fmt(t['val_bpc_at_budget'])} | {fmt(t['val_bpc_at_equal_steps'])} | "
            f"{fmt(t['val_bpc_final'])} |")

    # completions
    samples = {}
    for r in runs:
        for prime in PRIMES:
            out, _, _ = cli(["char", "sample", r["dir"], "--prime", prime, "--length", str(args.sample_length),
                             "--seed", "0"])
            samples.setdefault(r["cell"], {}).setdefault(str(r["seed"]), {})[prime] = out.rstrip("\n")
    for c in spec:
        for prime in PRIMES:
            log(f"\n---- {c.upper()} seed 0, prime {prime!r} ----\n{samples[c]['0'][prime]}")

    info = dict(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                hostname=platform.node(), platform=platform.platform(), python=platform.python_version(),
                cpu_count=os.cpu_count(), numpy=np.__version__, rnnfast_build_info=rnnfast.build_info(),
                env={k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "GOMP_"))})
    info.update(host_facts(np))
    result = dict(
        benchmark="bench_mrnn_char", command=" ".join(["python", "benchmarks/bench_mrnn_char.py"] +
                                                        (argv if argv is not None else sys.argv[1:])),
        machine=info, corpus=desc, corpus_chars=len(text), vocab_size=V,
        settings=dict(seq_len=args.seq_len, batch=args.batch, optimizer=args.optimizer, lr=args.lr,
                      clip=args.clip, clip_mode="norm", val_every=args.val_every, val_chars=32768,
                      val_fraction=val_fraction, val_modules=val_modules,
                      seeds=args.seeds, sample_length=args.sample_length, sample_temperature=1.0),
        parameter_ratio_mrnn_to_rnn=ratio, equal_steps=eq_step, budget_seconds=budget, cells=table,
        runs=[{k: v for k, v in r.items() if k != "dir"} for r in runs], samples=samples,
        benchmark_wall_seconds=time.perf_counter() - t_all)
    write_json(os.path.abspath(args.json), result)
    log(f"\nwrote {args.json} ({result['benchmark_wall_seconds']:.0f} s); run directories in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
