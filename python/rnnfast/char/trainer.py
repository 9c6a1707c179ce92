"""`rnnfast char train`: the training loop, its checkpoints, validation, samples and progress."""

import math
import os
import signal
import sys
import time

import numpy as np

from .. import optim
from ..nn import losses
from .config import RESUME_OVERRIDABLE, _cuda_error, _device, check_resume_flags, describe, make_optimizer, resolve_config
from .data import decode_idx, encode_text, read_text, split_data, stdlib_corpus, text_sha256, training_text
from .errors import CharError, os_error_text, print_line
from .evaluation import val_warning
from .model import CharModel, FusedMinCharRNN, bits
from .rundir import CHECKPOINT, METRICS, PLOT, Run, load_checkpoint, metrics_dict, save_checkpoint, write_metrics, write_plot

# Train the min-char-rnn configuration with the fused engine loop (charmodel.FusedMinCharRNN) when it
# applies, and every other configuration with the fused read-out and loss (CharModel.loss_and_backward);
# False runs every configuration through the general layers (tests compare the two).
USE_FUSED = True


class _Stop:
    """SIGTERM or SIGINT (Ctrl-C) -> stop after the current step, which then saves a consistent checkpoint.

    Both are caught as a flag: a KeyboardInterrupt raised in the middle of a step would leave the hidden
    state, the parameters and the optimizer one step ahead of the step counter and data position, and
    `--resume` would no longer continue exactly.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.flag = False
        self.name = None
        self._old = {}

    def __enter__(self):
        for sig in self.SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, _frame):
        self.flag = True
        self.name = "SIGTERM" if signum == signal.SIGTERM else "interrupt"

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(args):
    wall0 = time.perf_counter()
    device = _device(args.device)
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise CharError(f"--out {out} exists and is not a directory")
    ckpt_path = os.path.join(out, CHECKPOINT)
    resuming = args.resume and os.path.exists(ckpt_path)
    if os.path.exists(ckpt_path) and not (args.resume or args.overwrite):
        raise CharError(f"{out} already holds a checkpoint; pass --resume to continue it, --overwrite to start "
                        "afresh, or choose another --out")

    if resuming:
        meta, model = load_checkpoint(out)
        cfg, vocab, counts, corpus = meta["config"], meta["vocab"], meta["counts"], meta["corpus"]
        check_resume_flags(args, cfg)
        try:
            text, desc = training_text(corpus, args.text, args.encoding), corpus["description"]
        except CharError as e:
            raise CharError(f"--resume: {e}") from None
        for key in RESUME_OVERRIDABLE:
            if getattr(args, key) is not None:
                cfg[key] = getattr(args, key)
        run = meta["run"]
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = meta["rng"]
        except (TypeError, ValueError, KeyError) as e:
            raise CharError(f"{ckpt_path}: unusable RNG state ({e})") from None
    else:
        if args.resume:
            print(f"note: {out} holds no checkpoint yet; starting a new run", file=sys.stderr)
        cfg = resolve_config(args)
        if args.text is not None:
            text = read_text(args.text, args.encoding)
            desc = f"{os.path.basename(args.text)}"
            corpus = {"path": os.path.abspath(args.text), "encoding": args.encoding}
        else:
            text, desc = stdlib_corpus()
            corpus = {"path": None}
        vocab = "".join(sorted(set(text)))
        corpus.update(description=desc, chars=len(text), sha256=text_sha256(text))
        rng = np.random.default_rng(cfg["seed"])
        try:
            model = CharModel(len(vocab), cfg["cell"], cfg["hidden"], cfg["layers"],
                              seed=int(rng.integers(2**63 - 1)), init=cfg["init"], factors=cfg["factors"])
        except ValueError as e:  # e.g. an absurd --hidden: refused before allocating
            raise CharError(f"--hidden {cfg['hidden']} --layers {cfg['layers']}: {e}") from None
        run = Run()
        meta = None

    T, N = cfg["seq_len"], cfg["batch"]
    data = encode_text(text, vocab)
    if not resuming:
        counts = np.bincount(data, minlength=len(vocab)).tolist()
    train_data, val_data = split_data(data, cfg["val_fraction"])
    n_train, n_val = len(train_data), len(val_data)
    if n_train < T + 1:
        raise CharError(f"the text is too short: {n_train} training characters, but one sequence needs "
                        f"--seq-len + 1 = {T + 1}")
    seg = n_train // N
    if seg < T + 1:
        raise CharError(f"the text is too short for --batch {N} x --seq-len {T}: each of the {N} streams gets "
                        f"{seg} of the {n_train} training characters, it needs at least {T + 1}; lower --batch "
                        "or --seq-len")
    val_data = val_data if len(val_data) >= 2 else None
    offsets = np.arange(N, dtype=np.int64) * seg
    steps_t = np.arange(T + 1, dtype=np.int64)[:, None]

    sum_over_time = cfg["loss_sum_over_time"]
    clip, clip_mode = cfg["clip"], cfg["clip_mode"]
    opt = make_optimizer(cfg, model)
    # min-char-rnn's configuration (batch 1, elementwise clip, Adagrad, 1-layer tanh RNN on the CPU) runs
    # many whole steps per engine call, with the same math and the same arrays updated in place; it is
    # faster on the CPU than a GPU's per-step launches, so --device auto keeps it there
    fused = None
    if USE_FUSED and device != "cuda" and N == 1 and (clip_mode == "value" or not clip):
        fused = FusedMinCharRNN.create(model, opt, train_data, T, clip, sum_over_time,
                                       freeze_extra_bias=cfg["init"] == "min-char-rnn")
    if device == "cuda" or (device == "auto" and fused is None and _cuda_error() is None):
        device = "cuda"
        model.to("cuda")
        opt = make_optimizer(cfg, model)  # optimizers bind the parameter arrays: build it on the device
    else:
        device = "cpu"
    if resuming:
        try:
            opt.load_state_dict(meta["optimizer"])
            opt.lr = cfg["lr"]
            if meta["hidden"] is not None:
                state = model.state_from_arrays(meta["hidden"], N)
            else:
                state = model.initial_state(N)
                print("note: the checkpoint holds no carried state (an older rnnfast saved it): the streams "
                      "continue from a zero state", file=sys.stderr)
        except (TypeError, ValueError, KeyError) as e:
            raise CharError(f"{ckpt_path} does not fit its own config ({e}); the checkpoint is incompatible") \
                from None
    else:
        state = model.initial_state(N)
    target = cfg["steps"]

    os.makedirs(out, exist_ok=True)
    print(f"corpus: {desc}: {len(text):,} characters, {len(vocab)} distinct; training on {n_train:,}, "
          f"validating on the last {n_val:,}" + (f" ({args.val_chars:,} of them, spread over it, per check)"
                                                  if n_val > args.val_chars else ""))
    print(describe(cfg, model, len(vocab)) + f"; device {device}")
    print("validation and samples start from the carried training state (the state the model learns to read)")
    if resuming:
        print(f"resuming {out} at step {run.step} (data position {run.pos}, epoch {run.epochs}) -> {target}")
    if run.step >= target:
        print(f"the checkpoint is at step {run.step}, --steps is {target}: nothing to train (raise --steps)")
        return 0

    def validate():
        if val_data is None:
            return None
        vb = bits(model.evaluate(val_data, losses, max_chars=args.val_chars, state=state))
        run.val_history.append([run.step, vb])
        return vb

    warned = {}  # kind of warning -> the step it was last printed at

    def guard(vb):
        """Say so plainly (once per kind, and again at the end) when val is far worse than guessing or training."""
        w = val_warning(vb, run.smooth_loss / math.log(2), len(vocab), "the held-out text")
        if w is not None and (w[0] not in warned or (run.step == target and warned[w[0]] != run.step)):
            warned[w[0]] = run.step
            bar_write(f"warning: {w[1]}", file=sys.stderr)

    def show_sample(label):
        if args.sample_length == 0:
            return
        srng = np.random.default_rng([cfg["seed"], run.step])  # independent of training: resume-safe
        p = np.asarray(counts, dtype=np.float64)
        first = int(srng.choice(len(vocab), p=p / p.sum()))
        idx = model.sample([first], args.sample_length, 0.8, srng, state=state)
        bar_write(f"---- sample at step {run.step} ({label}, temperature 0.8, from the carried state) ----\n"
                  f"{decode_idx(vocab, [first] + idx)}\n----")

    saved_step = [run.step if resuming else None]  # the step of the checkpoint on disk

    def kept():
        """What the run directory still holds, after a write that failed."""
        if saved_step[0] is None:
            return "no checkpoint was saved yet"
        return f"{ckpt_path} holds step {saved_step[0]}: continue with --resume"

    def save():
        """The checkpoint, then metrics.json; a write that fails stops the run with a CharError (status 1)
        naming the file and the cause; the checkpoint file is replaced atomically, so the last good one
        stays loadable."""
        try:
            save_checkpoint(out, cfg, vocab, counts, corpus, model, opt, state, rng, run)
        except OSError as e:
            raise CharError(f"cannot write the checkpoint {os_error_text(e, ckpt_path)}; {kept()}") from None
        saved_step[0] = run.step
        try:
            write_metrics(out, metrics_dict(cfg, corpus, run, target, len(vocab), time.perf_counter() - wall0))
        except OSError as e:
            raise CharError(f"cannot write {os_error_text(e, os.path.join(out, METRICS))}; {kept()}") from None

    bar = None
    if not args.no_progress:
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            tty = sys.stderr.isatty()
            bar = tqdm(total=target, initial=run.step, unit="step", file=sys.stderr, dynamic_ncols=True,
                       mininterval=0.2 if tty else 10.0, smoothing=0.1, leave=True)

    def bar_write(msg, file=None):
        if bar is not None:
            bar.clear()
            print_line(msg, file)
            bar.refresh()
        else:
            print_line(msg, file)

    if run.step == 0 and args.val_every:
        vb = validate()
        if vb is not None:
            bar_write(f"step 0: val {vb:.3f} bits/char (uniform guessing: {math.log2(len(vocab)):.3f})")

    interrupted = None
    session_t0, session_chars, shown = time.perf_counter(), 0, 0.0
    if fused is not None:
        state = np.array(state, dtype=model.dtype, order="C")  # owned: the engine updates it in place
    events = [e for e in (args.val_every, args.sample_every, args.save_every) if e]
    try:
        with _Stop() as stop:
            while run.step < target:
                t0 = time.perf_counter()
                if fused is not None:
                    # every step up to the next event (validation, sample, save, the end) in one call
                    k = min([target, run.step + fused.MAX_STEPS] + [(run.step // e + 1) * e for e in events])
                    step_losses, run.pos, restarts = fused.train(k - run.step, state, run.pos)
                    run.epochs += restarts
                else:
                    # min-char-rnn's rule: restart the streams (and zero the state) when the next chunk would
                    # run past their segment
                    if run.pos + T + 1 >= seg and run.pos > 0:
                        run.pos, run.epochs = 0, run.epochs + 1
                        state = model.initial_state(N)
                    chunk = train_data[offsets[None, :] + (run.pos + steps_t)]       # (T+1, N)
                    opt.zero_grad()
                    loss, state = model.loss_and_backward(chunk[:-1], chunk[1:], state,
                                                          T if sum_over_time else 1.0, fused=USE_FUSED)
                    if cfg["init"] == "min-char-rnn":
                        model.freeze_extra_bias()
                    if clip:
                        if clip_mode == "value":
                            optim.clip_grad_value_(opt, clip)  # the optimizer's bound parameter list
                        else:
                            optim.clip_grad_norm_(opt, clip)
                    opt.step()
                    run.pos += T
                    step_losses = (loss,)
                for loss in step_losses:
                    run.step += 1
                    run.ema = 0.98 * run.ema + 0.02 * loss  # debiased: the mean of roughly the last 50 steps
                    run.acc_loss += loss
                    run.acc_n += 1
                    if run.acc_n >= args.log_every:
                        run.history.append([run.step, run.acc_loss / run.acc_n])
                        run.acc_loss, run.acc_n = 0.0, 0
                run.chars += T * N * len(step_losses)
                session_chars += T * N * len(step_losses)
                run.last_loss = loss
                run.smooth_loss = run.ema / (1 - 0.98 ** run.step)
                run.train_time += time.perf_counter() - t0

                if bar is not None:
                    bar.update(len(step_losses))
                    now = time.perf_counter()
                    if now - shown > 0.5 or run.step == target:
                        shown = now
                        bar.set_postfix_str(f"loss {run.smooth_loss:.3f} nats/char "
                                            f"({run.smooth_loss / math.log(2):.2f} bpc), "
                                            f"{session_chars / max(now - session_t0, 1e-9):,.0f} chars/s",
                                            refresh=False)
                last = run.step == target
                if args.val_every and (run.step % args.val_every == 0 or last):
                    vb = validate()
                    if vb is not None:
                        bar_write(f"step {run.step}: train {run.smooth_loss:.3f} nats/char "
                                  f"({run.smooth_loss / math.log(2):.3f} bpc), val {vb:.3f} bpc, "
                                  f"{run.chars / run.train_time:,.0f} chars/s")
                        guard(vb)
                if (args.sample_every and run.step % args.sample_every == 0) or last:
                    show_sample("end" if last else "progress")
                if (args.save_every and run.step % args.save_every == 0) and not last:
                    save()
                if stop.flag:
                    interrupted = stop.name
                    break
    except KeyboardInterrupt:
        interrupted = "interrupt"
    finally:
        if bar is not None:
            bar.close()

    if not args.val_every and val_data is not None:
        vb = validate()
        print_line(f"step {run.step}: val {vb:.3f} bpc")
        guard(vb)
    save()
    try:
        note = write_plot(out, run, f"rnnfast char: {cfg['cell'].upper()} {cfg['layers']}x{cfg['hidden']} on {desc}")
    except OSError as e:
        raise CharError(f"cannot write {os_error_text(e, os.path.join(out, PLOT))}; {kept()}") from None
    if note:
        print(f"note: {note}", file=sys.stderr)
    cps = run.chars / run.train_time if run.train_time else 0.0
    vl = run.val_history[-1][1] if run.val_history else None
    print(f"done: step {run.step}/{target}, train loss {run.smooth_loss:.3f} nats/char, "
          + (f"val {vl:.3f} bpc, " if vl is not None else "") + f"{cps:,.0f} chars/s, "
          f"{time.perf_counter() - wall0:.1f} s; wrote {os.path.join(out, CHECKPOINT)}, {METRICS}"
          + ("" if note else f", {PLOT}"))
    if interrupted:
        print(f"stopped by {interrupted} at step {run.step}; continue with --resume", file=sys.stderr)
        return 130 if interrupted == "interrupt" else 143
    return 0
