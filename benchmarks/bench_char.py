#!/usr/bin/env python
"""Character-level training benchmark of `rnnfast char train` (the training layer and the main job).

(a) min-char-rnn: the `min-char-rnn` preset, run through the real CLI (`python -m rnnfast char train --text
    FILE --preset min-char-rnn --steps K --out DIR --no-progress`, chars/s and train-loss history read from
    its metrics.json), against the NumPy min-char-rnn algorithm (rnnfast.reference.min_char_rnn.MinCharRNN,
    float64 as in the original) on the same text (the first 1 MB of char.stdlib_corpus(), same vocabulary,
    same characters: the first K*25 of the CLI's training part). Both run K steps of 25 characters, batch 1.
    Reported: chars/s over the training steps only (the CLI's own `chars_per_s`: sum of per-step times; the
    NumPy loop: the K step() calls), and the loss in nats/char averaged over the last 200 steps.
    In-process, the same CLI loop is also run from MinCharRNN's own initial weights (equal-init check: the
    loss curves must agree) and timed section by section (where a step's time goes), plus a cProfile; these
    run the general layers' step. The CLI itself runs the fused loop (rnnfast.char.model.FusedMinCharRNN) for this
    preset; it is also run in-process from the same initial weights (its equal-init check and chars/s).
(b) Time to a validation loss, `small` preset (LSTM 1x256 on one-hot characters, Linear read-out, batch 32 x
    seq-len 64, Adam lr 2e-3, global-norm clip 5, truncated BPTT with the state carried): rnnfast's training
    loop (`rnnfast char`'s loop, in a worker process) against the same model and optimiser in PyTorch CPU (2
    threads): identical initial weights (rnnfast's, copied into torch.nn.LSTM/Linear), identical data order
    (`rnnfast char`'s streams and wrap rule), validation on the same held-out characters with the same evaluation
    (16 streams x 2048 chars, chunks of 128, state carried; CharModel.evaluate and a line-by-line torch copy)
    every --val-every steps. Time to target = the summed training-step time up to the first validation at
    or below --target; validation time is excluded (the wall time including it is recorded too). Runs
    alternate in rotated order, torch and rnnfast, each in its own process; medians are reported.

Load: before each measurement the script waits (up to --wait-idle s) for other processes to use < 0.15
cores; other processes' CPU use during the measurement (machine busy time from /proc/stat minus this
process tree's, /proc/self/stat and the children's times) is recorded, and a measurement taken while they
used > 0.2 cores is rerun once (the lower-load one is kept).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_char.py      # ~4 min on 2 cores
    python benchmarks/bench_char.py --quick                                            # smoke run, ~40 s
    python benchmarks/bench_char.py --pilot                                            # (b) curves, no target
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from _harness import (  # benchmarks/_harness.py (this folder is on sys.path when run as a script)
    _import_with_retry,
    cpu_snapshot,
    host_facts,
    other_load,
    pin_tier,
    self_cpu,
    wait_idle,
    write_json,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_B = 0.6  # (b): rnnfast's time to the validation loss over torch's
MC_TEXT_CHARS = 1 << 20
LAST_STEPS = 200          # loss averaged over the last LAST_STEPS steps
VAL_CHARS = 32768         # `rnnfast char`'s --val-chars default
VAL_STREAMS, VAL_CHUNK = 16, 128  # CharModel.evaluate's defaults


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: few steps, one run each, loose target")
    p.add_argument("--pilot", action="store_true",
                   help="(b) only: one run each for --max-seconds without a target, print the val curves")
    p.add_argument("--mc-steps", type=int, default=None, help="(a) steps K (default 3000, the preset's)")
    p.add_argument("--mc-rounds", type=int, default=None, help="(a) alternating rounds (default 3)")
    p.add_argument("--target", type=float, default=None,
                   help="(b) validation loss to reach, nats/char (default 1.75)")
    p.add_argument("--val-every", type=int, default=None, help="(b) validate every N steps (default 25)")
    p.add_argument("--runs", type=int, default=None, help="(b) runs of each library (default 3)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="(b) give up a run after this many seconds of training (default 90)")
    p.add_argument("--skip-a", action="store_true")
    p.add_argument("--skip-b", action="store_true")
    p.add_argument("--wait-idle", type=float, default=60.0,
                   help="wait up to this long for other processes to go quiet before each measurement")
    p.add_argument("--json", default=os.path.join(REPO, "benchmarks", "results", "bench_char.json"))
    # internal: one measurement in a fresh process
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--isa", choices=("baseline", "avx2", "avx512"), default=None,
                   help="hold rnnfast and the baselines (torch, oneDNN, MKL, OpenBLAS, NumPy) to this CPU tier "
                        "(the script restarts itself with the variables set; its workers inherit them)")
    p.add_argument("--spec", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    q = a.quick
    a.mc_steps = a.mc_steps or (600 if q else 3000)
    a.mc_rounds = a.mc_rounds or (1 if q else 3)
    a.target = a.target if a.target is not None else (2.6 if q else 1.75)
    a.val_every = a.val_every or 25
    a.runs = a.runs or (1 if (q or a.pilot) else 3)
    a.max_seconds = a.max_seconds or (30.0 if q else 90.0)
    return a


# ---- other load on the machine ---------------------------------------------------------------
def measured(fn, args, log, label, attempts=2):
    """Run fn() (a measurement in a subprocess) after waiting for quiet; rerun (up to attempts - 1 times) if
    others used > 0.2 cores or the worker aborted because of them. Returns the lowest-load complete result,
    with other_load_cores, the loads of the discarded attempts, and the load seen while waiting."""
    best, tried = None, []
    for attempt in range(attempts):
        waited = wait_idle(args.wait_idle, log)
        a = cpu_snapshot()
        res = fn()
        res["other_load_cores"], res["steal_cores"] = other_load(a, cpu_snapshot())
        res["other_load_before_start_cores"] = waited
        load = res["other_load_cores"] or 0.0
        if res.get("aborted"):
            tried.append(dict(aborted=res["aborted"], other_load_cores=load))
            log(f"    {label}: aborted at step {res['aborted']['step']}: other processes used "
                f"{res['aborted']['other_load_cores']:.2f} cores" + ("; retrying" if attempt + 1 < attempts else ""))
            continue
        if best is None or load < (best["other_load_cores"] or 0.0):
            if best is not None:
                tried.append(dict(other_load_cores=best["other_load_cores"]))
            best = res
        else:
            tried.append(dict(other_load_cores=load))
        if (best["other_load_cores"] or 0.0) <= 0.2 or args.quick:
            break
        if attempt + 1 < attempts:
            log(f"    {label}: other processes used {load:.2f} cores during it; rerunning")
    if best is None:
        raise RuntimeError(f"{label}: every attempt was aborted because other processes loaded the machine "
                           f"({tried}); run the benchmark on a quiet machine")
    best["discarded_attempts"] = tried
    return best


# ---- machine ------------------------------------------------------------------------------------
def machine_info(np, rnnfast):
    info = dict(
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        hostname=platform.node(), platform=platform.platform(), python=platform.python_version(),
        cpu_count=os.cpu_count(), numpy=np.__version__,
        rnnfast=getattr(rnnfast, "__version__", None), rnnfast_build_info=rnnfast.build_info(),
        env={k: v for k, v in os.environ.items()
             if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "GOMP_", "RNNFAST_", "ATEN_", "ONEDNN_", "NPY_"))},
        cpu_isa=rnnfast.build_info()["cpu_isa"],
        env_openblas_coretype_unset="OPENBLAS_CORETYPE" not in os.environ,
    )
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    info.update(host_facts(np))
    return info


def child_env():
    return dict(os.environ)


def run_worker(kind, spec, workdir, timeout=900, env_extra=None):
    """Run `bench_char.py --worker kind` in a fresh process (env_extra added to its environment); returns
    its JSON result."""
    spec = dict(spec)
    spec["result"] = os.path.join(workdir, f"result_{kind}_{time.time_ns()}.json")
    spec_path = spec["result"][:-5] + "_spec.json"
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = child_env()
    env.update(env_extra or {})
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", kind, "--spec", spec_path],
                       env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"worker {kind} failed (status {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    with open(spec["result"]) as f:
        return json.load(f)


# ---- shared by the workers ----------------------------------------------------------------------
class Streams:
    """`rnnfast char`'s data order (rnnfast.char.trainer.Streams, imported: the torch workers read the same
    chunks) as an iterator: next() -> (chunk (T+1, N), restarted?); restarted: the caller zeroes the state."""

    def __init__(self, np, train_data, T, N):
        from rnnfast.char.trainer import Streams as CharStreams

        self._streams, self.T, self.pos = CharStreams(train_data, T, N), T, 0

    def next(self):
        restarted = self._streams.wraps(self.pos)
        if restarted:
            self.pos = 0
        chunk = self._streams.chunk(self.pos)
        self.pos += self.T
        return chunk, restarted


def split(data, val_fraction=0.05):
    n_val = int(len(data) * val_fraction)
    n_train = len(data) - n_val
    return data[:n_train], data[n_train:]


# ---- workers ------------------------------------------------------------------------------------
def worker_numpy_minchar(spec):
    """The NumPy min-char-rnn loop, K steps on the training part; only the step() calls are timed."""
    import numpy as np

    from rnnfast.reference.min_char_rnn import MinCharRNN

    data = np.load(spec["data"])
    train_data, _ = split(data)
    d = train_data.tolist()  # Python ints, as the original
    m = MinCharRNN(spec["vocab_size"], 100, 25, 0.1, seed=spec.get("seed", 0))
    init = {k: v.copy() for k, v in m.params.items()}
    K = spec["steps"]
    losses = []
    pc = time.perf_counter
    t = 0.0
    for _ in range(K):
        t0 = pc()
        loss = m.step(d)
        t += pc() - t0
        losses.append(loss / 25.0)
    if spec.get("save_init"):
        np.savez(spec["save_init"], **init)
    return dict(steps=K, chars=K * 25, train_seconds=t, chars_per_s=K * 25 / t, loss_per_step=losses,
                dtype="float64", numpy_blas_threads="default (not limited)")


def _mc_model_from_reference(np, CharModel, V, init):
    model = CharModel(V, "rnn", 100, 1, seed=0, init="min-char-rnn")
    model.load_state_dict({
        "rnn.weight_ih_l0": init["W_xh"].astype(np.float32), "rnn.weight_hh_l0": init["W_hh"].astype(np.float32),
        "rnn.bias_ih_l0": init["b_h"][:, 0].astype(np.float32), "rnn.bias_hh_l0": np.zeros(100, np.float32),
        "out.weight": init["W_hy"].astype(np.float32), "out.bias": init["b_y"][:, 0].astype(np.float32)})
    return model


def worker_rnnfast_minchar(spec):
    """`rnnfast char`'s min-char-rnn loop in-process from MinCharRNN's initial weights (equal-init check), then a
    per-section timing of the same loop and a cProfile of it."""
    import cProfile
    import pstats

    import numpy as np

    from rnnfast import char, losses, optim
    from rnnfast.char.trainer import train_step
    from rnnfast.charmodel import CharModel

    limited = char.limit_numpy_blas_threads(1)
    data = np.load(spec["data"])
    train_data, _ = split(data)
    V = spec["vocab_size"]
    init = dict(np.load(spec["init"]))
    cfg = dict(char.PRESETS["min-char-rnn"])
    T, N = cfg["seq_len"], cfg["batch"]
    out = {"numpy_blas_libraries_limited_to_1_thread": limited}

    def make():
        model = _mc_model_from_reference(np, CharModel, V, init)
        opt = optim.Adagrad(model.modules(), lr=cfg["lr"], eps=cfg["adagrad_eps"],
                            eps_inside_sqrt=cfg["adagrad_eps_inside_sqrt"])
        return model, opt

    def step(model, opt, streams, state):
        """One training step of `rnnfast char`'s general path (its own train_step); returns (loss, state)."""
        chunk, restarted = streams.next()
        if restarted:
            state = model.initial_state(N)
        return train_step(model, opt, cfg, chunk, state, fused_readout=char.trainer.FUSED_READOUT)

    # 1. `rnnfast char`'s general loop (plain: no section timers)
    model, opt = make()
    streams = Streams(np, train_data, T, N)
    state = model.initial_state(N)
    K = spec["steps"]
    losses_ = []
    pc = time.perf_counter
    ttot = 0.0
    for _ in range(K):
        t0 = pc()
        loss, state = step(model, opt, streams, state)
        ttot += pc() - t0
        losses_.append(loss)
    out.update(steps=K, train_seconds=ttot, chars_per_s=K * T * N / ttot, loss_per_step=losses_)

    # 1b. the fused loop `rnnfast char` uses for this configuration (rnnfast.char.model.FusedMinCharRNN), same init and data
    from rnnfast.charmodel import FusedMinCharRNN
    model, opt = make()
    fused = FusedMinCharRNN.create(model, opt, train_data, T, cfg["clip"], True, True)
    if fused is not None:
        state, pos, fl = model.initial_state(N).copy(), 0, []
        t0 = pc()
        while len(fl) < K:
            ls, pos, _ = fused.train(min(fused.MAX_STEPS, K - len(fl)), state, pos)
            fl += ls
        tf = pc() - t0
        out.update(fused_train_seconds=tf, fused_chars_per_s=K * T * N / tf, fused_loss_per_step=fl)

    # 2. the same loop with a timer around each section
    model, opt = make()
    streams = Streams(np, train_data, T, N)
    state = model.initial_state(N)
    from rnnfast import nn
    names = ["data", "zero_grad", "one_hot", "rnn.forward", "out.forward (Linear)", "loss",
             "loss x T", "out.backward (Linear)", "rnn.backward", "freeze_extra_bias", "clip_grad_value_",
             "opt.step (Adagrad)"]
    acc = dict.fromkeys(names, 0.0)
    Ks = spec["section_steps"]
    t_all0 = pc()
    for _ in range(Ks):
        t0 = pc()
        chunk, restarted = streams.next()
        if restarted:
            state = model.initial_state(N)
        t1 = pc(); acc["data"] += t1 - t0
        opt.zero_grad()
        t2 = pc(); acc["zero_grad"] += t2 - t1
        x = nn.one_hot(chunk[:-1], model.vocab_size, dtype=model.dtype)
        t3 = pc(); acc["one_hot"] += t3 - t2
        y, state = model.rnn.forward(x, state)
        t4 = pc(); acc["rnn.forward"] += t4 - t3
        logits = model.out.forward(y)
        t5 = pc(); acc["out.forward (Linear)"] += t5 - t4
        loss, dlogits = losses.softmax_cross_entropy(logits, chunk[1:])
        t6 = pc(); acc["loss"] += t6 - t5
        dlogits *= T
        t7 = pc(); acc["loss x T"] += t7 - t6
        dy = model.out.backward(dlogits)
        t8 = pc(); acc["out.backward (Linear)"] += t8 - t7
        model.rnn.backward(dy, None)
        t9 = pc(); acc["rnn.backward"] += t9 - t8
        model.freeze_extra_bias()
        t10 = pc(); acc["freeze_extra_bias"] += t10 - t9
        optim.clip_grad_value_(opt, cfg["clip"])
        t11 = pc(); acc["clip_grad_value_"] += t11 - t10
        opt.step()
        t12 = pc(); acc["opt.step (Adagrad)"] += t12 - t11
    t_all = pc() - t_all0
    out["sections_us_per_step"] = {k: v / Ks * 1e6 for k, v in acc.items()}
    out["sections_total_us_per_step"] = t_all / Ks * 1e6

    # 3. engine-call time inside the recurrent layer (forward/backward of the C++ engine alone)
    from rnnfast import _core as core_module
    from rnnfast.backends import engine_for
    eng = engine_for("recurrent", "cpu", "cpu")
    f0, b0 = eng.forward, eng.backward
    eacc = {"engine forward": 0.0, "engine backward": 0.0}

    def fwd(*a, **k):
        t = pc(); r = f0(*a, **k); eacc["engine forward"] += pc() - t; return r

    def bwd(*a, **k):
        t = pc(); r = b0(*a, **k); eacc["engine backward"] += pc() - t; return r

    core = core_module
    cacc = {"_core.recurrent_forward": 0.0, "_core.recurrent_backward": 0.0}
    if core is not None:
        cf0, cb0 = core.recurrent_forward, core.recurrent_backward

        def cf(*a, **k):
            t = pc(); r = cf0(*a, **k); cacc["_core.recurrent_forward"] += pc() - t; return r

        def cb(*a, **k):
            t = pc(); r = cb0(*a, **k); cacc["_core.recurrent_backward"] += pc() - t; return r
    eng.forward, eng.backward = fwd, bwd
    if core is not None:
        core.recurrent_forward, core.recurrent_backward = cf, cb
    try:
        model, opt = make()
        streams = Streams(np, train_data, T, N)
        state = model.initial_state(N)
        for _ in range(Ks):
            _, state = step(model, opt, streams, state)
    finally:
        eng.forward, eng.backward = f0, b0
        if core is not None:
            core.recurrent_forward, core.recurrent_backward = cf0, cb0
    out["engine_us_per_step"] = {k: v / Ks * 1e6 for k, v in {**eacc, **cacc}.items()}

    # 4. cProfile (adds its own overhead per Python call; for the ranking, not the absolute times)
    model, opt = make()
    streams = Streams(np, train_data, T, N)
    state = [model.initial_state(N)]

    def loop():
        for _ in range(Ks):
            _, state[0] = step(model, opt, streams, state[0])
    prof = cProfile.Profile()
    prof.runcall(loop)
    st = pstats.Stats(prof)
    rows = []
    for (fname, line, func), (_cc, nc, tt, ct, _) in st.stats.items():
        rows.append(dict(function=f"{os.path.basename(fname)}:{line}({func})", calls_per_step=nc / Ks,
                         tottime_us_per_step=tt / Ks * 1e6, cumtime_us_per_step=ct / Ks * 1e6))
    rows.sort(key=lambda r: -r["tottime_us_per_step"])
    out["cprofile_top_tottime"] = rows[:25]
    out["cprofile_total_us_per_step"] = sum(r["tottime_us_per_step"] for r in rows)
    out["python_calls_per_step"] = sum(r["calls_per_step"] for r in rows)
    return out


def _val_plan(np, n):
    """CharModel.evaluate's positions: (offsets, length, chunk starts)."""
    n = n - 1
    streams = max(1, min(VAL_STREAMS, n // 16 or 1))
    seg = n // streams
    length = max(1, min(seg, VAL_CHARS // streams))
    return np.arange(streams) * seg, length, streams


def _train_b(spec, step_fn, validate_fn, reset_state, log_first):
    """The (b) driver shared by both libraries: train, validate every M steps, stop at the target."""
    import numpy as np
    data = np.load(spec["data"])
    train_data, val_data = split(data)
    T, N = spec["seq_len"], spec["batch"]
    streams = Streams(np, train_data, T, N)
    M, target, max_s = spec["val_every"], spec["target"], spec["max_seconds"]
    stop_at_target = spec["stop_at_target"]
    pc = time.perf_counter
    train_t, val_t, step = 0.0, 0.0, 0
    t_start = pc()
    v0 = validate_fn(val_data)
    val_t += pc() - t_start
    curve = [[0, 0.0, 0.0, v0]]
    first_losses = []
    reached = None
    snap_a = snap_i = cpu_snapshot()
    aborted = None
    while True:
        t0 = pc()
        chunk, restarted = streams.next()
        if restarted:
            reset_state()
        loss = step_fn(chunk)
        train_t += pc() - t0
        step += 1
        if step <= log_first:
            first_losses.append(loss)
        if step % M == 0:
            t1 = pc()
            vl = validate_fn(val_data)
            val_t += pc() - t1
            curve.append([step, train_t, pc() - t_start, vl])
            snap_j = cpu_snapshot()
            load_i, _ = other_load(snap_i, snap_j)
            if spec.get("abort_load") and load_i is not None and load_i > spec["abort_load"] and \
                    snap_j[0] - snap_i[0] > 0.5:
                aborted = dict(step=step, other_load_cores=load_i)
                break
            snap_i = snap_j
            if reached is None and vl <= target:
                reached = dict(step=step, train_seconds=train_t, wall_seconds_incl_val=pc() - t_start, val=vl)
                if stop_at_target:
                    break
            if train_t >= max_s or not math.isfinite(vl):
                break
    load, steal = other_load(snap_a, cpu_snapshot())
    return dict(aborted=aborted, reached=reached, curve=curve, steps=step, train_seconds=train_t, val_seconds=val_t,
                ms_per_step=train_t / step * 1e3, chars_per_s=step * T * N / train_t,
                first_step_losses=first_losses, other_load_in_loop_cores=load)


def worker_rnnfast_small(spec):
    import numpy as np

    from rnnfast import char, losses
    from rnnfast.char.trainer import train_step
    from rnnfast.charmodel import CharModel

    limited = char.limit_numpy_blas_threads(1)
    cfg = dict(char.PRESETS["small"])
    cfg.update(preset="small", seed=0, val_fraction=0.05, momentum=0.0, adagrad_eps=1e-10,
               adagrad_eps_inside_sqrt=False)
    V, _T, N = spec["vocab_size"], cfg["seq_len"], cfg["batch"]
    model = CharModel(V, cfg["cell"], cfg["hidden"], cfg["layers"], seed=0, init=cfg["init"])
    model.load_state_dict(dict(np.load(spec["init"])))
    opt = char.make_optimizer(cfg, model)
    st = {"state": model.initial_state(N)}

    def reset_state():
        st["state"] = model.initial_state(N)

    def step_fn(chunk):  # `rnnfast char`'s training step for the small preset
        loss, st["state"] = train_step(model, opt, cfg, chunk, st["state"], fused_readout=char.trainer.FUSED_READOUT)
        return loss

    def validate_fn(val_data):
        return model.evaluate(val_data, losses, max_chars=VAL_CHARS)

    res = _train_b(spec, step_fn, validate_fn, reset_state, spec["log_first"])
    res["numpy_blas_libraries_limited_to_1_thread"] = limited
    res["optimizer"] = repr(opt)
    res["step"] = f"rnnfast.char.trainer.train_step (fused read-out: {char.trainer.FUSED_READOUT})"
    return res


def worker_torch_small(spec):
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    torch.manual_seed(0)
    V, _T, N, H = spec["vocab_size"], spec["seq_len"], spec["batch"], spec["hidden"]
    w = dict(np.load(spec["init"]))
    lstm = torch.nn.LSTM(V, H, 1)
    lin = torch.nn.Linear(H, V)
    with torch.no_grad():
        for k, p in lstm.named_parameters():
            p.copy_(torch.from_numpy(w["rnn." + k]))
        for k, p in lin.named_parameters():
            p.copy_(torch.from_numpy(w["out." + k]))
    params = list(lstm.parameters()) + list(lin.parameters())
    opt = torch.optim.Adam(params, lr=spec["lr"])
    st = {}

    def reset_state():
        st["h"] = torch.zeros(1, N, H)
        st["c"] = torch.zeros(1, N, H)
    reset_state()

    def step_fn(chunk):
        c = torch.from_numpy(chunk).long()
        x = F.one_hot(c[:-1], V).float()
        opt.zero_grad(set_to_none=True)
        y, (h, cc) = lstm(x, (st["h"], st["c"]))
        logits = lin(y)
        loss = F.cross_entropy(logits.reshape(-1, V), c[1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, spec["clip"])
        opt.step()
        st["h"], st["c"] = h.detach(), cc.detach()
        return loss.item()

    def validate_fn(val_data):  # CharModel.evaluate, line by line
        offsets, length, streams = _val_plan(np, len(val_data))
        h = torch.zeros(1, streams, H)
        c = torch.zeros(1, streams, H)
        total = 0.0
        with torch.no_grad():
            for start in range(0, length, VAL_CHUNK):
                t = np.arange(start, min(start + VAL_CHUNK, length))
                idx = offsets[None, :] + t[:, None]
                x = F.one_hot(torch.from_numpy(val_data[idx]).long(), V).float()
                y, (h, c) = lstm(x, (h, c))
                logits = lin(y)
                nll = F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(val_data[idx + 1]).long().reshape(-1),
                                      reduction="none")
                total += float(nll.double().sum())
        return total / (length * streams)

    res = _train_b(spec, step_fn, validate_fn, reset_state, spec["log_first"])
    res["torch_threads"] = torch.get_num_threads()
    res["torch"] = torch.__version__
    return res


def worker_rnnfast_small_sections(spec):
    """Where one small-preset step's time goes in rnnfast (rnnfast char's step, timed section by section)."""
    import numpy as np

    from rnnfast import _core, char, optim
    from rnnfast.charmodel import CharModel

    char.limit_numpy_blas_threads(1)
    cfg = char.PRESETS["small"]
    V, T, N = spec["vocab_size"], cfg["seq_len"], cfg["batch"]
    model = CharModel(V, cfg["cell"], cfg["hidden"], cfg["layers"], seed=0, init=cfg["init"])
    model.load_state_dict(dict(np.load(spec["init"])))
    opt = optim.Adam(model.modules(), lr=cfg["lr"])
    train_data, _ = split(np.load(spec["data"]))
    streams = Streams(np, train_data, T, N)
    state = model.initial_state(N)
    names = ["data", "zero_grad", "rnn.forward (index input)", "read-out + loss, fwd + bwd (fused)",
             "rnn.backward", "clip_grad_norm_", "opt.step (Adam)"]
    R, H = T * N, cfg["hidden"]
    acc = dict.fromkeys(names, 0.0)
    pc = time.perf_counter
    n, warm = spec["steps"], 5
    c0, w0 = None, None
    for i in range(n + warm):
        if i == warm:
            c0, w0 = self_cpu(), pc()
        t = [pc()]
        chunk, _ = streams.next(); t.append(pc())
        opt.zero_grad(); t.append(pc())
        # CharModel.loss_and_backward's steps, one by one
        y, state = model.rnn.forward(chunk[:-1], state); t.append(pc())
        buf, W, g = model._readout_buffers(R), model.out.parameters(), model.out.grads
        _core.readout_xent(y.reshape(R, H), W["weight"], W["bias"], np.ascontiguousarray(chunk[1:], np.int32).reshape(R),
                           1.0 / R, buf["logits"], buf["nll"], g["weight"], g["bias"], buf["dy"]); t.append(pc())
        model.rnn.backward(buf["dy"].reshape(T, N, H), None); t.append(pc())
        optim.clip_grad_norm_(opt, cfg["clip"]); t.append(pc())
        opt.step(); t.append(pc())
        if i >= warm:
            for k, name in enumerate(names):
                acc[name] += t[k + 1] - t[k]
    wall = pc() - w0
    return dict(sections_ms_per_step={k: v / n * 1e3 for k, v in acc.items()}, total_ms_per_step=wall / n * 1e3,
                cpu_cores_used=(self_cpu() - c0) / wall, omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))


def worker_torch_small_sections(spec):
    """The same for torch (CPU autograd is synchronous, so the wall time of each call is its cost)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    V, T, N, H = spec["vocab_size"], spec["seq_len"], spec["batch"], spec["hidden"]
    lstm, lin = torch.nn.LSTM(V, H, 1), torch.nn.Linear(H, V)
    params = list(lstm.parameters()) + list(lin.parameters())
    opt = torch.optim.Adam(params, lr=spec["lr"])
    train_data, _ = split(np.load(spec["data"]))
    streams = Streams(np, train_data, T, N)
    h, c = torch.zeros(1, N, H), torch.zeros(1, N, H)
    names = ["data + one_hot", "zero_grad", "lstm forward", "linear + loss forward", "backward (autograd)",
             "clip_grad_norm_", "opt.step (Adam)", "loss.item"]
    acc = dict.fromkeys(names, 0.0)
    pc = time.perf_counter
    n, warm = spec["steps"], 5
    c0 = w0 = None
    for i in range(n + warm):
        if i == warm:
            c0, w0 = self_cpu(), pc()
        t = [pc()]
        chunk, _ = streams.next()
        ch = torch.from_numpy(chunk).long()
        x = F.one_hot(ch[:-1], V).float(); t.append(pc())
        opt.zero_grad(set_to_none=True); t.append(pc())
        y, (h2, c2) = lstm(x, (h, c)); t.append(pc())
        loss = F.cross_entropy(lin(y).reshape(-1, V), ch[1:].reshape(-1)); t.append(pc())
        loss.backward(); t.append(pc())
        torch.nn.utils.clip_grad_norm_(params, spec["clip"]); t.append(pc())
        opt.step(); t.append(pc())
        h, c = h2.detach(), c2.detach()
        loss.item(); t.append(pc())
        if i >= warm:
            for k, name in enumerate(names):
                acc[name] += t[k + 1] - t[k]
    wall = pc() - w0
    return dict(sections_ms_per_step={k: v / n * 1e3 for k, v in acc.items()}, total_ms_per_step=wall / n * 1e3,
                cpu_cores_used=(self_cpu() - c0) / wall)


WORKERS = {"rnnfast-small-sections": worker_rnnfast_small_sections,
           "torch-small-sections": worker_torch_small_sections,
"numpy-minchar": worker_numpy_minchar, "rnnfast-minchar": worker_rnnfast_minchar,
           "rnnfast-small": worker_rnnfast_small, "torch-small": worker_torch_small}


# ---- parts -------------------------------------------------------------------------------------
def cli_minchar(text_path, steps, workdir):
    out = tempfile.mkdtemp(prefix="mc_cli_", dir=workdir)
    cmd = [sys.executable, "-m", "rnnfast", "char", "train", "--text", text_path, "--preset", "min-char-rnn",
           "--steps", str(steps), "--out", out, "--no-progress"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=600, cwd=REPO)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"the CLI failed (status {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    hist = m["train_loss"]["history"]  # [step, mean over log_every=10 steps]
    last = [h[1] for h in hist if h[0] > steps - LAST_STEPS]
    return dict(command=" ".join(["python"] + cmd[1:]).replace(text_path, "TEXT").replace(out, "DIR"),
                steps=m["steps"], chars_per_s=m["chars_per_s"], train_seconds=m["train_seconds"],
                process_wall_seconds=wall, loss_last=sum(last) / len(last), history=hist,
                val_bpc=m["val_bpc"]["latest"], stdout_tail=p.stdout[-600:])


def part_a(args, np, char, workdir, log):
    text, desc = char.stdlib_corpus()
    text = text[:MC_TEXT_CHARS]
    text_path = os.path.join(workdir, "minchar.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text)
    vocab = "".join(sorted(set(text)))
    data = char.encode_text(text, vocab)
    data_path = os.path.join(workdir, "minchar.npy")
    np.save(data_path, data)
    K = args.mc_steps
    log(f"(a) min-char-rnn: {len(text):,} chars of {desc}, vocabulary {len(vocab)}, K = {K} steps x 25 chars")
    init_path = os.path.join(workdir, "minchar_init.npz")
    rounds = []
    for r in range(args.mc_rounds):
        spec = dict(data=data_path, vocab_size=len(vocab), steps=K, seed=0,
                    save_init=init_path if r == 0 else None)
        order = ("numpy", "cli") if r % 2 == 0 else ("cli", "numpy")
        rec = {}
        for which in order:
            if which == "numpy":
                res = measured(lambda: run_worker("numpy-minchar", spec, workdir), args, log, "numpy")
                res["loss_last"] = float(np.mean(res["loss_per_step"][-LAST_STEPS:]))
                log(f"  round {r + 1} numpy : {res['chars_per_s']:10,.0f} chars/s, loss(last {LAST_STEPS}) "
                    f"{res['loss_last']:.3f} nats/char, other load {res['other_load_cores']:.2f}")
            else:
                res = measured(lambda: cli_minchar(text_path, K, workdir), args, log, "cli")
                log(f"  round {r + 1} CLI   : {res['chars_per_s']:10,.0f} chars/s, loss(last {LAST_STEPS}) "
                    f"{res['loss_last']:.3f} nats/char, other load {res['other_load_cores']:.2f}")
            rec[which] = res
        rounds.append(rec)
    # the in-process loop from MinCharRNN's own initial weights, the breakdown and the profile
    spec = dict(data=data_path, vocab_size=len(vocab), steps=K, init=init_path,
                section_steps=min(K, 1000 if not args.quick else 300))
    inproc = measured(lambda: run_worker("rnnfast-minchar", spec, workdir), args, log, "in-process")
    ref_losses = rounds[0]["numpy"]["loss_per_step"]
    diffs = np.abs(np.asarray(inproc["loss_per_step"]) - np.asarray(ref_losses))
    inproc["equal_init_loss_diff"] = dict(
        first_step=float(diffs[0]), max_first_100=float(diffs[:100].max()),
        mean_last=float(np.mean(inproc["loss_per_step"][-LAST_STEPS:]) - np.mean(ref_losses[-LAST_STEPS:])))
    inproc["loss_last"] = float(np.mean(inproc["loss_per_step"][-LAST_STEPS:]))
    if "fused_loss_per_step" in inproc:
        fd = np.abs(np.asarray(inproc["fused_loss_per_step"]) - np.asarray(ref_losses))
        inproc["fused_equal_init_loss_diff"] = dict(
            first_step=float(fd[0]), max_first_10=float(fd[:10].max()), max_first_100=float(fd[:100].max()),
            mean_last=float(np.mean(inproc["fused_loss_per_step"][-LAST_STEPS:]) - np.mean(ref_losses[-LAST_STEPS:])))
        inproc["fused_loss_last"] = float(np.mean(inproc["fused_loss_per_step"][-LAST_STEPS:]))
        log(f"  in-process fused loop (MinCharRNN's init): {inproc['fused_chars_per_s']:,.0f} chars/s, loss(last "
            f"{LAST_STEPS}) {inproc['fused_loss_last']:.3f}; loss diff to NumPy: first step {fd[0]:.2e}, max over "
            f"the first 10 {fd[:10].max():.2e}")
        inproc["fused_loss_per_step"] = inproc["fused_loss_per_step"][:100] + ["..."] + \
            inproc["fused_loss_per_step"][-10:]
    log(f"  in-process (MinCharRNN's init): {inproc['chars_per_s']:,.0f} chars/s, loss(last {LAST_STEPS}) "
        f"{inproc['loss_last']:.3f} (NumPy same init {np.mean(ref_losses[-LAST_STEPS:]):.3f}); first-step loss "
        f"diff {diffs[0]:.2e}; sections sum {inproc['sections_total_us_per_step']:.0f} us/step")
    log("  in-process step sections (us): " + ", ".join(f"{k} {v:.1f}" for k, v in
                                                       inproc["sections_us_per_step"].items())
        + "; engine calls: " + ", ".join(f"{k} {v:.1f}" for k, v in inproc["engine_us_per_step"].items()))
    numpy_cps = statistics.median(r["numpy"]["chars_per_s"] for r in rounds)
    cli_cps = statistics.median(r["cli"]["chars_per_s"] for r in rounds)
    summary = dict(
        steps=K, text_chars=len(text), vocab_size=len(vocab), corpus=desc,
        numpy_chars_per_s_median=numpy_cps, cli_chars_per_s_median=cli_cps, ratio=cli_cps / numpy_cps,
        inproc_chars_per_s=inproc["chars_per_s"], inproc_ratio=inproc["chars_per_s"] / numpy_cps,
        inproc_fused_chars_per_s=inproc.get("fused_chars_per_s"),
        inproc_fused_ratio=inproc["fused_chars_per_s"] / numpy_cps if "fused_chars_per_s" in inproc else None,
        numpy_loss_last_median=statistics.median(r["numpy"]["loss_last"] for r in rounds),
        cli_loss_last_median=statistics.median(r["cli"]["loss_last"] for r in rounds),
        numpy_us_per_step=25 / numpy_cps * 1e6, cli_us_per_step=25 / cli_cps * 1e6,
        target_ratio=30.0, target_met=cli_cps / numpy_cps >= 30.0,
        loss_last_steps=LAST_STEPS)
    for r in rounds:  # keep the JSON small: the per-step losses of round 1 only
        for k in ("numpy",):
            if r is not rounds[0]:
                r[k].pop("loss_per_step", None)
    inproc["loss_per_step"] = inproc["loss_per_step"][:100] + ["..."] + inproc["loss_per_step"][-10:]
    log(f"  => CLI {cli_cps:,.0f} chars/s vs NumPy {numpy_cps:,.0f} chars/s: {cli_cps / numpy_cps:.1f}x "
        f"(target 30x: {'met' if summary['target_met'] else 'missed'}); loss {summary['cli_loss_last_median']:.3f}"
        f" vs {summary['numpy_loss_last_median']:.3f} nats/char")
    return dict(summary=summary, rounds=rounds, inprocess=inproc)


def part_b(args, np, char, workdir, log):
    from rnnfast.charmodel import CharModel

    text, desc = char.stdlib_corpus()
    vocab = "".join(sorted(set(text)))
    data = char.encode_text(text, vocab)
    data_path = os.path.join(workdir, "small.npy")
    np.save(data_path, data)
    cfg = char.PRESETS["small"]
    rng = np.random.default_rng(0)  # `rnnfast char`'s initialisation for --seed 0
    model = CharModel(len(vocab), cfg["cell"], cfg["hidden"], cfg["layers"], seed=int(rng.integers(2**63 - 1)),
                      init=cfg["init"])
    init_path = os.path.join(workdir, "small_init.npz")
    np.savez(init_path, **model.state_dict())
    train_data, val_data = split(data)
    offsets, length, streams = _val_plan(np, len(val_data))
    log(f"(b) small preset: {desc}: {len(text):,} chars, vocabulary {len(vocab)}; train {len(train_data):,}, "
        f"validate on {length * streams:,} of the {len(val_data):,} held-out chars every {args.val_every} steps; "
        + ("pilot (no target)" if args.pilot else f"target {args.target} nats/char"))
    spec = dict(data=data_path, init=init_path, vocab_size=len(vocab), seq_len=cfg["seq_len"], batch=cfg["batch"],
                hidden=cfg["hidden"], lr=cfg["lr"], clip=cfg["clip"], val_every=args.val_every,
                target=-1.0 if args.pilot else args.target, max_seconds=args.max_seconds,
                stop_at_target=not args.pilot, log_first=20, abort_load=None if args.quick else 0.5)
    series = {"torch": ("torch-small", None), "rnnfast": ("rnnfast-small", None)}
    names = list(series)
    runs = {lib: [] for lib in names}
    for r in range(args.runs):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate, so no series always runs first
        for lib in order:
            kind, env_extra = series[lib]
            res = measured(lambda: run_worker(kind, spec, workdir, env_extra=env_extra), args, log, lib, attempts=3)
            res["env_extra"] = env_extra
            runs[lib].append(res)
            rc = res["reached"]
            if rc:
                what = (f"val {rc['val']:.3f} at step {rc['step']} after {rc['train_seconds']:.1f} s training "
                        f"({rc['wall_seconds_incl_val']:.1f} s incl. validation)")
            else:
                what = (f"target not reached in {res['steps']} steps, {res['train_seconds']:.1f} s (last val "
                        f"{res['curve'][-1][3]:.3f})")
            log(f"  run {r + 1} {lib:14s}: {what}; {res['ms_per_step']:.1f} ms/step, {res['chars_per_s']:,.0f} "
                f"chars/s, other load {res['other_load_cores']:.2f}")
            if args.pilot:
                log("    curve (step, train s, val nats/char): " + ", ".join(
                    f"({c[0]}, {c[1]:.0f}, {c[3]:.3f})" for c in res["curve"][::4]))
    fl_t, fl_r = runs["torch"][0]["first_step_losses"], runs["rnnfast"][0]["first_step_losses"]
    check = dict(first_step_loss_torch=fl_t[0], first_step_loss_rnnfast=fl_r[0],
                 max_abs_diff_first_20_steps=max(abs(a - b) for a, b in zip(fl_t, fl_r)),
                 val0_torch=runs["torch"][0]["curve"][0][3], val0_rnnfast=runs["rnnfast"][0]["curve"][0][3])
    log(f"  same start: step-1 loss torch {fl_t[0]:.6f} rnnfast {fl_r[0]:.6f}; max |diff| over 20 steps "
        f"{check['max_abs_diff_first_20_steps']:.2e}; step-0 val {check['val0_torch']:.5f} / "
        f"{check['val0_rnnfast']:.5f}")
    summary = dict(check=check, target=args.target, val_every=args.val_every, val_chars=length * streams,
                   timing="training-step time only (validation excluded); wall incl. validation recorded too")
    med = {}
    for lib in runs:
        ok = [x["reached"] for x in runs[lib] if x["reached"]]
        med[lib] = dict(
            reached_runs=len(ok), runs=len(runs[lib]),
            seconds_to_target_median=statistics.median(x["train_seconds"] for x in ok) if ok else None,
            seconds_to_target_all=[x["train_seconds"] for x in ok],
            wall_incl_val_median=statistics.median(x["wall_seconds_incl_val"] for x in ok) if ok else None,
            steps_to_target=[x["step"] for x in ok],
            ms_per_step_median=statistics.median(x["ms_per_step"] for x in runs[lib]),
            chars_per_s_median=statistics.median(x["chars_per_s"] for x in runs[lib]),
            val_seconds_median=statistics.median(x["val_seconds"] for x in runs[lib]),
            other_load_cores_max=max((x["other_load_cores"] or 0.0) for x in runs[lib]))
    summary.update(med)
    for lib in names[1:]:
        if med["torch"]["seconds_to_target_median"] and med[lib]["seconds_to_target_median"]:
            ratio = med[lib]["seconds_to_target_median"] / med["torch"]["seconds_to_target_median"]
            summary[lib]["time_over_torch"] = ratio
            if lib == "rnnfast":
                # issue #12's target: time to the validation loss <= 0.6 of torch's on each CPU tier
                summary.update(rnnfast_over_torch_time=ratio, speedup=1 / ratio, target_met=ratio <= TARGET_B)
            log(f"  => time to val <= {args.target}: {lib} {med[lib]['seconds_to_target_median']:.1f} s, torch "
                f"{med['torch']['seconds_to_target_median']:.1f} s: {lib}/torch = {ratio:.2f} (target <= {TARGET_B}: "
                f"{'met' if ratio <= TARGET_B else 'missed'}); per step {med[lib]['ms_per_step_median']:.1f} vs "
                f"{med['torch']['ms_per_step_median']:.1f} ms")
    # where a step's time goes (short, after the timed runs)
    if not args.pilot:
        sec = {}
        for lib, (kind, env_extra) in (("torch", ("torch-small-sections", None)),
                                       ("rnnfast", ("rnnfast-small-sections", None))):
            if lib in series:
                sspec = dict(spec, steps=10 if args.quick else 40)
                sec[lib] = measured(lambda: run_worker(kind, sspec, workdir, env_extra=env_extra), args, log,
                                    lib + " sections")
                log(f"  {lib} step sections (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                                sec[lib]["sections_ms_per_step"].items())
                    + f"; total {sec[lib]['total_ms_per_step']:.1f} ms, {sec[lib]['cpu_cores_used']:.2f} cores busy")
        summary["step_sections"] = sec
    return dict(summary=summary, runs=runs)


def main(argv=None):
    args = parse_args(argv)
    if not args.worker:
        pin_tier(sys.argv if argv is None else [sys.argv[0]] + list(argv))
    if args.worker:
        with open(args.spec) as f:
            spec = json.load(f)
        res = WORKERS[args.worker](spec)
        with open(spec["result"], "w") as f:
            json.dump(res, f)
        return 0

    import numpy as np
    rnnfast = _import_with_retry("rnnfast")
    from rnnfast import char

    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", flush=True)

    info = machine_info(np, rnnfast)
    log(f"rnnfast {info['rnnfast_build_info']}; numpy {info['numpy']}; torch {info['torch']}; "
        f"env {info['env']}")
    if not info["env_openblas_coretype_unset"]:
        log("note: OPENBLAS_CORETYPE is set; run as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python "
            "benchmarks/bench_char.py` for NumPy's real BLAS speed")
    result = dict(machine=info, args={k: v for k, v in vars(args).items() if k not in ("worker", "spec")},
                  numpy_blas_threads=("rnnfast runs (CLI and in-process workers): every loaded OpenBLAS limited "
                                      "to 1 thread by char.limit_numpy_blas_threads(1), as `rnnfast char` does; "
                                      "the NumPy min-char-rnn baseline: default threads (its matrix-vector "
                                      "products are too small to use more than one)"))
    with tempfile.TemporaryDirectory(prefix="bench_char_") as workdir:
        if not args.skip_a and not args.pilot:
            result["min_char_rnn"] = part_a(args, np, char, workdir, log)
        if not args.skip_b:
            result["small_time_to_loss"] = part_b(args, np, char, workdir, log)
    result["total_seconds"] = time.perf_counter() - t_start
    if not args.pilot:
        write_json(args.json, result)
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
