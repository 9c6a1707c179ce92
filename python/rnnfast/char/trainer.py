"""`rnnfast char train`: the training loop, its checkpoints, validation, samples and progress."""

import math
import os
import signal
import sys
import time

import numpy as np

from .. import optim
from ..nn import losses
from .config import (
    RESUME_OVERRIDABLE,
    _cuda_error,
    _device,
    check_resume_flags,
    describe,
    make_optimizer,
    resolve_config,
)
from .data import decode_idx, encode_text, read_text, split_data, stdlib_corpus, text_sha256, training_text
from .errors import CharError, os_error_text, print_line
from .evaluation import val_warning
from .model import CharModel, FusedMinCharRNN, bits
from .rundir import (
    CHECKPOINT,
    METRICS,
    PLOT,
    Run,
    load_checkpoint,
    metrics_dict,
    save_checkpoint,
    write_metrics,
    write_plot,
)

# The two fusions, each the same math as the general layers (tests compare the paths with both False):
# FUSED_LOOP runs min-char-rnn's configuration as many whole steps per engine call (model.FusedMinCharRNN)
# where it applies; FUSED_READOUT runs every other configuration's read-out, loss and their backward in one
# engine call (CharModel.loss_and_backward(fused=True)).
FUSED_LOOP = True
FUSED_READOUT = True


class Streams:
    """min-char-rnn's data order for N streams: stream i reads segment i of the training part (offsets
    evenly spaced); a step takes the next T + 1 characters of every stream; when the next chunk would run
    past the segment, the streams restart at their offsets (and the trainer zeroes the state)."""

    def __init__(self, train_data, T, N):
        self.data, self.T, self.N = train_data, T, N
        self.seg = len(train_data) // N
        self.offsets = np.arange(N, dtype=np.int64) * self.seg
        self._steps = np.arange(T + 1, dtype=np.int64)[:, None]

    def wraps(self, pos):
        """Whether the chunk at data position pos would run past the segments (pos 0 never does)."""
        return pos + self.T + 1 >= self.seg and pos > 0

    def chunk(self, pos):
        """(T + 1, N) indices: inputs chunk[:-1], targets chunk[1:]."""
        return self.data[self.offsets[None, :] + (pos + self._steps)]


def train_step(model, opt, cfg, chunk, state, fused_readout=True):
    """One training step of the general path on a (T + 1, N) chunk: forward and backward through the chunk
    (truncated BPTT from `state`), min-char-rnn's frozen extra bias, clipping, the optimizer's step.
    Returns (mean loss in nats/char, the state after the chunk)."""
    T = chunk.shape[0] - 1
    opt.zero_grad()
    loss, state = model.loss_and_backward(chunk[:-1], chunk[1:], state, T if cfg["loss_sum_over_time"] else 1.0,
                                          fused=fused_readout)
    if cfg["init"] == "min-char-rnn":
        model.freeze_extra_bias()
    if cfg["clip"]:
        if cfg["clip_mode"] == "value":
            optim.clip_grad_value_(opt, cfg["clip"])  # the optimizer's bound parameter list
        else:
            optim.clip_grad_norm_(opt, cfg["clip"])
    opt.step()
    return loss, state


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


class Trainer:
    """One `rnnfast char train` session, in named steps:

        open_run (a fresh run, or the checkpoint's with --resume) -> prepare_data (the streams and the
        held-out tail) -> prepare_device (the optimizer, the fused loop, the device, a resumed optimizer
        and carried state) -> announce -> loop (train_steps, record, events) -> finish (the last
        validation, checkpoint, metrics and plot; the exit status).
    """

    def __init__(self, args):
        self.args = args
        self.wall0 = time.perf_counter()
        self.device = _device(args.device)
        self.out = args.out
        self.ckpt_path = os.path.join(self.out, CHECKPOINT)
        self.warned = {}     # kind of warning -> the step it was last printed at
        self.bar = None

    def run(self):
        """The whole session; returns the exit status (0, or 130/143 when stopped by a signal)."""
        self.open_run()
        self.prepare_data()
        self.prepare_device()
        if not self.announce():
            return 0
        return self.finish(self.loop())

    # ---- setup --------------------------------------------------------------------------------------
    def open_run(self):
        args, out = self.args, self.out
        if os.path.exists(out) and not os.path.isdir(out):
            raise CharError(f"--out {out} exists and is not a directory")
        self.resuming = args.resume and os.path.exists(self.ckpt_path)
        if os.path.exists(self.ckpt_path) and not (args.resume or args.overwrite):
            raise CharError(f"{out} already holds a checkpoint; pass --resume to continue it, --overwrite to "
                            "start afresh, or choose another --out")
        if self.resuming:
            self._resume()
        else:
            if args.resume:
                print(f"note: {out} holds no checkpoint yet; starting a new run", file=sys.stderr)
            self._fresh()
        self.saved_step = self.run_state.step if self.resuming else None  # the checkpoint on disk

    def _resume(self):
        args = self.args
        self.meta, self.model = load_checkpoint(self.out)
        meta = self.meta
        cfg, self.vocab, self.counts, self.corpus = meta["config"], meta["vocab"], meta["counts"], meta["corpus"]
        check_resume_flags(args, cfg)
        try:
            self.text, self.desc = training_text(self.corpus, args.text, args.encoding), self.corpus["description"]
        except CharError as e:
            raise CharError(f"--resume: {e}") from None
        for key in RESUME_OVERRIDABLE:
            if getattr(args, key) is not None:
                cfg[key] = getattr(args, key)
        self.cfg = cfg
        self.run_state = meta["run"]
        self.rng = np.random.default_rng()
        try:
            self.rng.bit_generator.state = meta["rng"]
        except (TypeError, ValueError, KeyError) as e:
            raise CharError(f"{self.ckpt_path}: unusable RNG state ({e})") from None

    def _fresh(self):
        args = self.args
        cfg = self.cfg = resolve_config(args)
        if args.text is not None:
            self.text = read_text(args.text, args.encoding)
            self.desc = f"{os.path.basename(args.text)}"
            corpus = {"path": os.path.abspath(args.text), "encoding": args.encoding}
        else:
            self.text, self.desc = stdlib_corpus()
            corpus = {"path": None}
        self.vocab = "".join(sorted(set(self.text)))
        corpus.update(description=self.desc, chars=len(self.text), sha256=text_sha256(self.text))
        self.corpus = corpus
        self.rng = np.random.default_rng(cfg["seed"])
        try:
            self.model = CharModel(len(self.vocab), cfg["cell"], cfg["hidden"], cfg["layers"],
                                   seed=int(self.rng.integers(2**63 - 1)), init=cfg["init"], factors=cfg["factors"])
        except ValueError as e:  # e.g. an absurd --hidden: refused before allocating
            raise CharError(f"--hidden {cfg['hidden']} --layers {cfg['layers']}: {e}") from None
        self.run_state = Run()
        self.meta = None

    def prepare_data(self):
        cfg = self.cfg
        T, N = cfg["seq_len"], cfg["batch"]
        data = encode_text(self.text, self.vocab)
        if not self.resuming:
            self.counts = np.bincount(data, minlength=len(self.vocab)).tolist()
        self.train_data, val_data = split_data(data, cfg["val_fraction"])
        self.n_train, self.n_val = len(self.train_data), len(val_data)
        if self.n_train < T + 1:
            raise CharError(f"the text is too short: {self.n_train} training characters, but one sequence needs "
                            f"--seq-len + 1 = {T + 1}")
        seg = self.n_train // N
        if seg < T + 1:
            raise CharError(f"the text is too short for --batch {N} x --seq-len {T}: each of the {N} streams gets "
                            f"{seg} of the {self.n_train} training characters, it needs at least {T + 1}; lower "
                            "--batch or --seq-len")
        self.streams = Streams(self.train_data, T, N)
        self.val_data = val_data if len(val_data) >= 2 else None

    def prepare_device(self):
        """The optimizer; the fused loop where it applies; the device; on --resume the optimizer's state and
        the carried hidden state."""
        cfg, model = self.cfg, self.model
        T, N = cfg["seq_len"], cfg["batch"]
        clip, clip_mode = cfg["clip"], cfg["clip_mode"]
        self.opt = make_optimizer(cfg, model)
        # min-char-rnn's configuration (batch 1, elementwise clip, Adagrad, 1-layer tanh RNN on the CPU) runs
        # many whole steps per engine call, with the same math and the same arrays updated in place; it is
        # faster on the CPU than a GPU's per-step launches, so --device auto keeps it there
        self.fused = None
        if FUSED_LOOP and self.device != "cuda" and N == 1 and (clip_mode == "value" or not clip):
            self.fused = FusedMinCharRNN.create(model, self.opt, self.train_data, T, clip, cfg["loss_sum_over_time"],
                                                freeze_extra_bias=cfg["init"] == "min-char-rnn")
        if self.device == "cuda" or (self.device == "auto" and self.fused is None and _cuda_error() is None):
            self.device = "cuda"
            model.to("cuda")
            self.opt = make_optimizer(cfg, model)  # optimizers bind the parameter arrays: build it on the device
        else:
            self.device = "cpu"
        if not self.resuming:
            self.state = model.initial_state(N)
            return
        meta = self.meta
        try:
            self.opt.load_state_dict(meta["optimizer"])
            self.opt.lr = cfg["lr"]
            if meta["hidden"] is not None:
                self.state = model.state_from_arrays(meta["hidden"], N)
            else:
                self.state = model.initial_state(N)
                print("note: the checkpoint holds no carried state (an older rnnfast saved it): the streams "
                      "continue from a zero state", file=sys.stderr)
        except (TypeError, ValueError, KeyError) as e:
            raise CharError(f"{self.ckpt_path} does not fit its own config ({e}); the checkpoint is incompatible") \
                from None

    def announce(self):
        """Print what runs; False when the checkpoint is already at --steps (nothing to train)."""
        args, run, target = self.args, self.run_state, self.cfg["steps"]
        os.makedirs(self.out, exist_ok=True)
        print(f"corpus: {self.desc}: {len(self.text):,} characters, {len(self.vocab)} distinct; training on "
              f"{self.n_train:,}, validating on the last {self.n_val:,}"
              + (f" ({args.val_chars:,} of them, spread over it, per check)" if self.n_val > args.val_chars else ""))
        print(describe(self.cfg, self.model, len(self.vocab)) + f"; device {self.device}")
        print("validation and samples start from the carried training state (the state the model learns to read)")
        if self.resuming:
            print(f"resuming {self.out} at step {run.step} (data position {run.pos}, epoch {run.epochs}) -> {target}")
        if run.step >= target:
            print(f"the checkpoint is at step {run.step}, --steps is {target}: nothing to train (raise --steps)")
            return False
        return True

    # ---- the loop -----------------------------------------------------------------------------------
    def loop(self):
        """Train to --steps; returns None, or the name of the signal that stopped it."""
        args, run, target = self.args, self.run_state, self.cfg["steps"]
        self.bar = self._progress_bar()
        if run.step == 0 and args.val_every:
            vb = self.validate()
            if vb is not None:
                self.write(f"step 0: val {vb:.3f} bits/char (uniform guessing: {math.log2(len(self.vocab)):.3f})")
        self.session_t0, self.session_chars, self.shown = time.perf_counter(), 0, 0.0
        if self.fused is not None:
            self.state = np.array(self.state, dtype=self.model.dtype, order="C")  # owned: updated in place
        interrupted = None
        try:
            with _Stop() as stop:
                while run.step < target:
                    t0 = time.perf_counter()
                    self.record(self.train_steps(), t0)
                    self.events()
                    if stop.flag:
                        interrupted = stop.name
                        break
        except KeyboardInterrupt:
            interrupted = "interrupt"
        finally:
            if self.bar is not None:
                self.bar.close()
        return interrupted

    def train_steps(self):
        """One step, or with the fused loop every step up to the next event; returns their losses."""
        run, cfg = self.run_state, self.cfg
        if self.fused is not None:
            args = self.args
            events = [e for e in (args.val_every, args.sample_every, args.save_every) if e]
            k = min([cfg["steps"], run.step + self.fused.MAX_STEPS] + [(run.step // e + 1) * e for e in events])
            step_losses, run.pos, restarts = self.fused.train(k - run.step, self.state, run.pos)
            run.epochs += restarts
            return step_losses
        if self.streams.wraps(run.pos):  # min-char-rnn's rule: restart the streams with a zero state
            run.pos, run.epochs = 0, run.epochs + 1
            self.state = self.model.initial_state(cfg["batch"])
        loss, self.state = train_step(self.model, self.opt, cfg, self.streams.chunk(run.pos), self.state,
                                      fused_readout=FUSED_READOUT)
        run.pos += cfg["seq_len"]
        return (loss,)

    def record(self, step_losses, t0):
        """The steps' losses into the run's history, its smoothed loss and throughput; the progress bar."""
        run, target = self.run_state, self.cfg["steps"]
        for loss in step_losses:
            run.step += 1
            run.ema = 0.98 * run.ema + 0.02 * loss  # debiased below: the mean of roughly the last 50 steps
            run.acc_loss += loss
            run.acc_n += 1
            if run.acc_n >= self.args.log_every:
                run.history.append([run.step, run.acc_loss / run.acc_n])
                run.acc_loss, run.acc_n = 0.0, 0
        chars = self.cfg["seq_len"] * self.cfg["batch"] * len(step_losses)
        run.chars += chars
        self.session_chars += chars
        run.last_loss = step_losses[-1]
        run.smooth_loss = run.ema / (1 - 0.98 ** run.step)
        run.train_time += time.perf_counter() - t0
        if self.bar is not None:
            self.bar.update(len(step_losses))
            now = time.perf_counter()
            if now - self.shown > 0.5 or run.step == target:
                self.shown = now
                self.bar.set_postfix_str(f"loss {run.smooth_loss:.3f} nats/char "
                                         f"({run.smooth_loss / math.log(2):.2f} bpc), "
                                         f"{self.session_chars / max(now - self.session_t0, 1e-9):,.0f} chars/s",
                                         refresh=False)

    def events(self):
        """Validation, a sample and a checkpoint, each when its --*-every comes round (and at the end)."""
        args, run = self.args, self.run_state
        last = run.step == self.cfg["steps"]
        if args.val_every and (run.step % args.val_every == 0 or last):
            vb = self.validate()
            if vb is not None:
                self.write(f"step {run.step}: train {run.smooth_loss:.3f} nats/char "
                           f"({run.smooth_loss / math.log(2):.3f} bpc), val {vb:.3f} bpc, "
                           f"{run.chars / run.train_time:,.0f} chars/s")
                self.guard(vb)
        if (args.sample_every and run.step % args.sample_every == 0) or last:
            self.show_sample("end" if last else "progress")
        if (args.save_every and run.step % args.save_every == 0) and not last:
            self.save()

    # ---- what a session shows and writes ------------------------------------------------------------
    def validate(self):
        """Bits/char on the held-out tail from the carried state (None without one); kept in the history."""
        if self.val_data is None:
            return None
        vb = bits(self.model.evaluate(self.val_data, losses, max_chars=self.args.val_chars, state=self.state))
        self.run_state.val_history.append([self.run_state.step, vb])
        return vb

    def guard(self, vb):
        """Say so plainly (once per kind, and again at the end) when val is far worse than guessing or training."""
        run, target = self.run_state, self.cfg["steps"]
        w = val_warning(vb, run.smooth_loss / math.log(2), len(self.vocab), "the held-out text")
        if w is not None and (w[0] not in self.warned or (run.step == target and self.warned[w[0]] != run.step)):
            self.warned[w[0]] = run.step
            self.write(f"warning: {w[1]}", file=sys.stderr)

    def show_sample(self, label):
        if self.args.sample_length == 0:
            return
        step = self.run_state.step
        srng = np.random.default_rng([self.cfg["seed"], step])  # independent of training: resume-safe
        p = np.asarray(self.counts, dtype=np.float64)
        first = int(srng.choice(len(self.vocab), p=p / p.sum()))
        idx = self.model.sample([first], self.args.sample_length, 0.8, srng, state=self.state)
        self.write(f"---- sample at step {step} ({label}, temperature 0.8, from the carried state) ----\n"
                   f"{decode_idx(self.vocab, [first] + idx)}\n----")

    def _kept(self):
        """What the run directory still holds, after a write that failed."""
        if self.saved_step is None:
            return "no checkpoint was saved yet"
        return f"{self.ckpt_path} holds step {self.saved_step}: continue with --resume"

    def save(self):
        """The checkpoint, then metrics.json; a write that fails stops the run with a CharError (status 1)
        naming the file and the cause; the checkpoint file is replaced atomically, so the last good one
        stays loadable."""
        run = self.run_state
        try:
            save_checkpoint(self.out, self.cfg, self.vocab, self.counts, self.corpus, self.model, self.opt,
                            self.state, self.rng, run)
        except OSError as e:
            raise CharError(f"cannot write the checkpoint {os_error_text(e, self.ckpt_path)}; {self._kept()}") \
                from None
        self.saved_step = run.step
        try:
            write_metrics(self.out, metrics_dict(self.cfg, self.corpus, run, self.cfg["steps"], len(self.vocab),
                                                 time.perf_counter() - self.wall0))
        except OSError as e:
            raise CharError(f"cannot write {os_error_text(e, os.path.join(self.out, METRICS))}; {self._kept()}") \
                from None

    def _progress_bar(self):
        if self.args.no_progress:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        tty = sys.stderr.isatty()
        return tqdm(total=self.cfg["steps"], initial=self.run_state.step, unit="step", file=sys.stderr,
                    dynamic_ncols=True, mininterval=0.2 if tty else 10.0, smoothing=0.1, leave=True)

    def write(self, msg, file=None):
        """A line printed above the progress bar."""
        if self.bar is not None:
            self.bar.clear()
            print_line(msg, file)
            self.bar.refresh()
        else:
            print_line(msg, file)

    def finish(self, interrupted):
        """The last validation (when none ran in the loop), checkpoint, metrics, plot; the exit status."""
        args, run, cfg, out = self.args, self.run_state, self.cfg, self.out
        if not args.val_every and self.val_data is not None:
            vb = self.validate()
            print_line(f"step {run.step}: val {vb:.3f} bpc")
            self.guard(vb)
        self.save()
        try:
            note = write_plot(out, run, f"rnnfast char: {cfg['cell'].upper()} {cfg['layers']}x{cfg['hidden']} on "
                                        f"{self.desc}")
        except OSError as e:
            raise CharError(f"cannot write {os_error_text(e, os.path.join(out, PLOT))}; {self._kept()}") from None
        if note:
            print(f"note: {note}", file=sys.stderr)
        cps = run.chars / run.train_time if run.train_time else 0.0
        vl = run.val_history[-1][1] if run.val_history else None
        print(f"done: step {run.step}/{cfg['steps']}, train loss {run.smooth_loss:.3f} nats/char, "
              + (f"val {vl:.3f} bpc, " if vl is not None else "") + f"{cps:,.0f} chars/s, "
              f"{time.perf_counter() - self.wall0:.1f} s; wrote {os.path.join(out, CHECKPOINT)}, {METRICS}"
              + ("" if note else f", {PLOT}"))
        if interrupted:
            print(f"stopped by {interrupted} at step {run.step}; continue with --resume", file=sys.stderr)
            return 130 if interrupted == "interrupt" else 143
        return 0


def train(args):
    """`rnnfast char train`: returns the exit status."""
    return Trainer(args).run()
