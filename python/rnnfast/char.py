"""`rnnfast char`: train, sample and score character-level language models (min-char-rnn, char-rnn).

    rnnfast char train --out runs/py                       # default corpus: this Python's stdlib source
    rnnfast char train --text input.txt --preset min-char-rnn --out runs/mc
    rnnfast char train --out runs/py --steps 5000 --resume  # continue to step 5000, bit-identically
    rnnfast char sample runs/py --prime "def " --length 300 --temperature 0.8 --seed 1
    rnnfast char eval runs/py --text other.py                # bits/char of the checkpoint on any text

Training: the text is split into a training part and a held-out tail (--val-fraction). The training part is
read by --batch parallel streams starting at evenly spaced offsets; each step takes the next --seq-len
characters of every stream (one-hot), runs the recurrent stack over the whole (T, N) block in one call per
layer, the output Linear and softmax cross-entropy on the whole block, backpropagates through the chunk
(truncated BPTT: the hidden state is carried to the next chunk, its gradient is not), clips, steps the
optimizer. When the streams reach the end of their part they restart at their offsets with a zero state.
Validation, the samples, `sample` and `eval` start from the hidden state training has carried (the one the
read-out was trained to read; `--state zero` in sample and eval starts from zeros instead): a min-char-rnn
can learn two mirror-image attractors and read only one, and a zero state may settle in the other (issue 14).

Measured (min-char-rnn, English-like text, seeds that show it): burning a zero state in on 100 to 10,000
characters of training text first leaves it in the wrong attractor (9.2 bits/char before and after), and
burning the carried state in first changes nothing (3.14 either way), so validation uses the carried state
as it is.

The run directory holds `checkpoint.npz` (config, vocabulary, weights, optimizer state, RNG state, step,
carried hidden state, data position, metrics; replaced atomically), `metrics.json` and `loss.png`.
`--steps` is the total number of steps: with --resume the run continues from the checkpoint's step to it.
"""

import argparse
import errno
import hashlib
import json
import math
import os
import signal
import sys
import sysconfig
import time

import numpy as np

from ._blas import limit_numpy_blas_threads  # also for the benchmarks, as rnnfast char runs

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.json"
PLOT = "loss.png"
FORMAT = "rnnfast-char"

CELLS = ("rnn", "lstm", "gru", "mrnn")
OPTIMIZERS = ("sgd", "rmsprop", "adagrad", "adam")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_LR = {"sgd": 1.0, "rmsprop": 2e-3, "adagrad": 0.1, "adam": 2e-3}
STATES = ("carried", "zero")  # where sample and eval start: the checkpoint's carried training state, or zeros
BURN_IN = 1000  # characters of the training text burnt into a zero state for a checkpoint without a carried one

# A preset fixes everything about the model and the optimisation; explicit flags override it.
PRESETS = {
    # Karpathy's min-char-rnn.py: vanilla tanh RNN, hidden 100, 25 steps, batch 1, Adagrad lr 0.1 with
    # p -= lr g / sqrt(mem + 1e-8), every gradient element clipped to [-5, 5], weights N(0, 0.01^2), zero
    # biases, the loss summed over the 25 time steps (so its gradient is 25x the per-char mean's).
    "min-char-rnn": dict(cell="rnn", hidden=100, layers=1, seq_len=25, batch=1, optimizer="adagrad", lr=0.1,
                         clip=5.0, clip_mode="value", steps=3000, init="min-char-rnn", loss_sum_over_time=True,
                         adagrad_eps=1e-8, adagrad_eps_inside_sqrt=True),
    # Default: learns visibly within a minute on two CPU cores.
    "small": dict(cell="lstm", hidden=256, layers=1, seq_len=64, batch=32, optimizer="adam", lr=2e-3,
                  clip=5.0, clip_mode="norm", steps=2500, init="default", loss_sum_over_time=False),
    "medium": dict(cell="lstm", hidden=512, layers=2, seq_len=100, batch=64, optimizer="adam", lr=2e-3,
                   clip=5.0, clip_mode="norm", steps=20000, init="default", loss_sum_over_time=False),
}
DEFAULT_PRESET = "small"

# What --resume may change; every other flag must agree with the checkpoint.
RESUME_OVERRIDABLE = ("steps", "lr", "clip")
MODEL_KEYS = ("cell", "factors", "hidden", "layers", "seq_len", "batch", "optimizer", "lr", "clip", "clip_mode", "init",
              "loss_sum_over_time", "momentum", "val_fraction", "seed")

STDLIB_CAP = 2 * 1024 * 1024

# Train the min-char-rnn configuration with the fused engine loop (charmodel.FusedMinCharRNN) when it
# applies, and every other configuration with the fused read-out and loss (CharModel.loss_and_backward);
# False runs every configuration through the general layers (tests compare the two).
USE_FUSED = True


class CharError(Exception):
    """A bad input or state the user can fix: printed as one `error: ...` line, exit status 1."""


def os_error_text(e, path=None):
    """One line for an OSError: the file (`path`, else the error's own) and the cause with its errno name,
    e.g. "runs/a/checkpoint.npz: File too large (EFBIG)"."""
    cause = e.strerror or str(e)
    name = errno.errorcode.get(e.errno) if e.errno is not None else None
    if name:
        cause += f" ({name})"
    where = path if path is not None else e.filename
    return f"{where}: {cause}" if where else cause


# ---- argument parsing ------------------------------------------------------------------------
def _int_at_least(low):
    """An argparse type: an integer >= low (1: 'a positive integer')."""
    what = "a positive integer" if low == 1 else f"an integer >= {low}"

    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {v}")
        return v
    return parse


_positive_int, _nonneg_int = _int_at_least(1), _int_at_least(0)


def _float(low=None, low_open=False, high=None):
    def parse(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
        if not math.isfinite(v) or (low is not None and (v < low or (low_open and v == low))) or (
                high is not None and v > high):
            rng = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be {rng}, got {s}")
        return v
    return parse


def _choice(name, choices):
    def parse(s):
        if s not in choices:
            raise argparse.ArgumentTypeError(f"unknown {name} {s!r} (choose from {', '.join(choices)})")
        return s
    return parse


def add_parser(subparsers):
    """Register `char` (with `train`, `sample` and `eval`) on the subparsers of `rnnfast`'s parser."""
    p = subparsers.add_parser("char", help="train and sample character-level language models",
                              description="Character-level language models (min-char-rnn / char-rnn).")
    sub = p.add_subparsers(dest="char_command", metavar="{train,sample,eval}")

    t = sub.add_parser("train", help="train a model (default corpus: this Python's standard library source)",
                       description=__doc__.split("\n\n")[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--text", metavar="FILE", help="UTF-8 text file (default: the standard library's source)")
    t.add_argument("--encoding", default="utf-8", help="encoding of --text (default utf-8)")
    t.add_argument("--preset", type=_choice("preset", tuple(PRESETS)), default=None,
                   help=f"{' | '.join(PRESETS)} (default {DEFAULT_PRESET}); explicit flags override it")
    t.add_argument("--cell", type=_choice("cell", CELLS), help="rnn | lstm | gru | mrnn (multiplicative RNN)")
    t.add_argument("--factors", type=_positive_int, metavar="F", help="factors of --cell mrnn (default: --hidden)")
    t.add_argument("--hidden", type=_positive_int, metavar="N", help="hidden size")
    t.add_argument("--layers", type=_positive_int, metavar="N", help="stacked recurrent layers")
    t.add_argument("--seq-len", type=_positive_int, metavar="N", help="truncated BPTT length")
    t.add_argument("--batch", type=_positive_int, metavar="N", help="parallel streams")
    t.add_argument("--steps", type=_positive_int, metavar="N", help="total optimizer steps")
    t.add_argument("--optimizer", type=_choice("optimizer", OPTIMIZERS), help="sgd | rmsprop | adagrad | adam")
    t.add_argument("--lr", type=_float(0, low_open=True), metavar="X", help="learning rate")
    t.add_argument("--momentum", type=_float(0, high=0.999), metavar="X", help="for sgd and rmsprop (default 0)")
    t.add_argument("--clip", type=_float(0), metavar="X", help="gradient clip (0: none)")
    t.add_argument("--clip-mode", type=_choice("clip mode", ("norm", "value")),
                   help="norm: global L2 norm; value: each element to [-X, X]")
    t.add_argument("--device", type=_choice("device", DEVICES), default="auto", help="auto | cpu | cuda")
    t.add_argument("--seed", type=_nonneg_int, help="seed of the initialisation (default 0)")
    t.add_argument("--val-fraction", type=_float(0, high=0.5), metavar="F",
                   help="held-out tail of the text for validation (default 0.05)")
    t.add_argument("--val-every", type=_nonneg_int, default=250, metavar="N", help="validate every N steps")
    t.add_argument("--val-chars", type=_positive_int, default=32768, metavar="N",
                   help="validate on at most N held-out characters (default 32768)")
    t.add_argument("--sample-every", type=_nonneg_int, default=500, metavar="N",
                   help="print a sample every N steps (0: only at the end)")
    t.add_argument("--sample-length", type=_nonneg_int, default=200, metavar="N")
    t.add_argument("--save-every", type=_nonneg_int, default=500, metavar="N",
                   help="checkpoint every N steps (always at the end)")
    t.add_argument("--log-every", type=_positive_int, default=10, metavar="N",
                   help="train-loss history resolution (mean over N steps)")
    t.add_argument("--out", required=True, metavar="DIR", help="run directory")
    t.add_argument("--resume", action="store_true", help="continue the checkpoint in DIR (if there is one)")
    t.add_argument("--overwrite", action="store_true", help="start afresh even if DIR holds a checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="print text sampled from a trained model")
    s.add_argument("dir", metavar="DIR", help="run directory (holds checkpoint.npz)")
    s.add_argument("--prime", default="", help="text to start with; burnt into the hidden state first")
    s.add_argument("--length", type=_nonneg_int, default=500, metavar="N", help="characters to sample")
    s.add_argument("--temperature", type=_float(0, low_open=True), default=1.0, metavar="T")
    s.add_argument("--seed", type=_nonneg_int, default=None, help="sampling seed (default: fresh randomness)")
    state_help = ("carried: the checkpoint's carried training state (default, the state the model learned to "
                  "read); zero: a zero state")
    s.add_argument("--state", type=_choice("state", STATES), default="carried", metavar="carried|zero", help=state_help)

    e = sub.add_parser("eval", help="score a trained model on a text (bits per character)")
    e.add_argument("dir", metavar="DIR", help="run directory (holds checkpoint.npz)")
    e.add_argument("--text", required=True, metavar="FILE", help="UTF-8 text file to score")
    e.add_argument("--encoding", default="utf-8", help="encoding of --text (default utf-8)")
    e.add_argument("--state", type=_choice("state", STATES), default="carried", metavar="carried|zero",
                   help=state_help)
    e.add_argument("--max-chars", type=_positive_int, default=None, metavar="N",
                   help="score at most N characters, spread over the text (default: all)")
    p.set_defaults(char_parser=p)
    return p


def run(args):
    """Dispatch `rnnfast char ...`; returns the exit status. CharError -> `error: ...` on stderr, 1."""
    from .checkpoint import CheckpointError

    if args.char_command is None:
        args.char_parser.print_help(sys.stderr)
        return 2
    limit_numpy_blas_threads(1)
    try:
        return {"train": train, "sample": sample, "eval": evaluate}[args.char_command](args)
    except (CharError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    # an OSError goes on to rnnfast's main(), which reports every command's (standard output's included)


# ---- corpus --------------------------------------------------------------------------------------
def read_text(path, encoding="utf-8"):
    """The file's text; CharError if missing, empty or not text."""
    if os.path.isdir(path):
        raise CharError(f"--text {path} is a directory, not a text file")
    if not os.path.exists(path):
        raise CharError(f"--text {path}: no such file")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CharError(f"--text {path}: cannot read it ({e.strerror or e})") from None
    if not raw:
        raise CharError(f"--text {path} is empty")
    if b"\x00" in raw[:1 << 20] and not encoding.lower().replace("-", "").startswith("utf16") and \
            not encoding.lower().replace("-", "").startswith("utf32"):
        raise CharError(f"--text {path} looks binary (it contains NUL bytes), not text")
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise CharError(f"unknown --encoding {encoding!r}") from None
    except UnicodeDecodeError as e:
        raise CharError(f"--text {path} is not {encoding} text (undecodable byte 0x{raw[e.start]:02x} at "
                        f"offset {e.start}); pass --encoding if it is text in another encoding") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text:
        raise CharError(f"--text {path} is empty")
    return text


def stdlib_corpus(cap=STDLIB_CAP):
    """(text, description): the running Python's standard library source, deterministic for a version.

    The top-level modules (*.py directly in sysconfig's stdlib directory), sorted by name, ASCII-only ones,
    concatenated (each preceded by a '# file: NAME' line) and cut at `cap` characters.
    """
    root = sysconfig.get_paths()["stdlib"]
    try:
        names = sorted(n for n in os.listdir(root) if n.endswith(".py"))
    except OSError:
        names = []
    parts, total, used = [], 0, 0
    for name in names:
        try:
            with open(os.path.join(root, name), "rb") as f:
                raw = f.read()
            src = raw.decode("ascii")
        except (OSError, UnicodeDecodeError):
            continue
        src = src.replace("\r\n", "\n")
        chunk = f"# file: {name}\n{src}\n"
        parts.append(chunk)
        total += len(chunk)
        used += 1
        if total >= cap:
            break
    text = "".join(parts)[:cap]
    if len(text) < 1000:
        raise CharError(f"could not find the standard library's source in {root}; pass --text FILE")
    v = sys.version_info
    return text, f"Python {v.major}.{v.minor}.{v.micro} standard library source ({used} modules from {root})"


def training_text(corpus, path=None, encoding="utf-8"):
    """The text a checkpoint was trained on: `path`, else the file it was trained from, else the standard
    library's source; CharError unless it is that same text (its SHA-256)."""
    source = path if path is not None else corpus.get("path")
    text = read_text(source, corpus.get("encoding") or encoding) if source else stdlib_corpus()[0]
    if text_sha256(text) != corpus["sha256"]:
        raise CharError(f"the text ({source or 'the standard library source'}) differs from the one the checkpoint "
                        f"was trained on ({corpus['description']}); pass the same --text")
    return text


def split_data(data, val_fraction):
    """(training part, held-out tail): the tail holds int(len(data) * val_fraction) characters."""
    n_train = len(data) - int(len(data) * val_fraction)
    return data[:n_train], data[n_train:]


def encode_text(text, vocab):
    """text -> int32 indices into vocab (a sorted string)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.frombuffer(vocab.encode("utf-32-le"), dtype=np.uint32)
    idx = np.searchsorted(table, codes)
    idx = np.minimum(idx, len(table) - 1)
    if not np.array_equal(table[idx], codes):
        bad = sorted(set(text) - set(vocab))
        raise CharError(f"characters not in the model's vocabulary: {''.join(bad[:20])!r}")
    return idx.astype(np.int32)


def text_sha256(text):
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# ---- configuration -------------------------------------------------------------------------------
def _cuda_error():
    """Why device='cuda' cannot be used here (no CUDA build, no GPU, no CuPy), or None when it can."""
    from . import _checks

    try:
        _checks.device("cuda")
    except (RuntimeError, NotImplementedError) as e:
        return e
    return None


def _device(name):
    """--device -> 'cpu', 'cuda' (checked now: a clear error when CUDA cannot be used) or 'auto'."""
    if name == "cuda":
        why = _cuda_error()
        if why is not None:
            raise CharError(f"--device cuda: {why}; use --device cpu")
    return name


def resolve_config(args):
    """The training config of a fresh run: the preset, overridden by explicit flags."""
    preset = args.preset or DEFAULT_PRESET
    cfg = dict(PRESETS[preset])
    cfg["preset"] = preset
    cfg.setdefault("adagrad_eps", 1e-10)
    cfg.setdefault("adagrad_eps_inside_sqrt", False)
    for key in ("cell", "hidden", "layers", "seq_len", "batch", "steps", "clip", "clip_mode"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.optimizer is not None and args.optimizer != cfg["optimizer"]:
        cfg["optimizer"] = args.optimizer
        cfg["lr"] = DEFAULT_LR[args.optimizer]
    if args.lr is not None:
        cfg["lr"] = args.lr
    if args.factors is not None and cfg["cell"] != "mrnn":
        raise CharError(f"--factors applies to --cell mrnn, not {cfg['cell']}")
    cfg["factors"] = (args.factors or cfg["hidden"]) if cfg["cell"] == "mrnn" else None
    cfg["momentum"] = args.momentum if args.momentum is not None else 0.0
    if cfg["momentum"] and cfg["optimizer"] not in ("sgd", "rmsprop"):
        raise CharError(f"--momentum applies to sgd and rmsprop, not {cfg['optimizer']}")
    cfg["seed"] = args.seed if args.seed is not None else 0
    cfg["val_fraction"] = args.val_fraction if args.val_fraction is not None else 0.05
    return cfg


def check_resume_flags(args, cfg):
    """On --resume, flags that would change the run must agree with the checkpoint's config."""
    clashes = []
    if args.preset is not None and args.preset != cfg["preset"]:
        clashes.append(f"--preset {args.preset} (checkpoint: {cfg['preset']})")
    for key in ("cell", "hidden", "layers", "seq_len", "batch", "optimizer", "clip_mode", "momentum", "seed",
                "val_fraction"):
        v = getattr(args, key)
        if v is not None and v != cfg[key]:
            clashes.append(f"--{key.replace('_', '-')} {v} (checkpoint: {cfg[key]})")
    if args.factors is not None and args.factors != cfg.get("factors"):
        clashes.append(f"--factors {args.factors} (checkpoint: {cfg.get('factors')})")
    if clashes:
        raise CharError("--resume: these flags differ from the checkpoint's run: " + "; ".join(clashes) +
                        " (drop them, or start a new run in another --out)")


def make_optimizer(cfg, model):
    from . import optim

    params, name, lr = model.modules(), cfg["optimizer"], cfg["lr"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"])
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=cfg["momentum"])
    if name == "adagrad":
        return optim.Adagrad(params, lr=lr, eps=cfg["adagrad_eps"], eps_inside_sqrt=cfg["adagrad_eps_inside_sqrt"])
    return optim.Adam(params, lr=lr)


def describe(cfg, model, vocab_size):
    clip = "no clipping" if not cfg["clip"] else (
        f"clip each gradient element to ±{cfg['clip']:g}" if cfg["clip_mode"] == "value" else
        f"clip global grad norm to {cfg['clip']:g}")
    factors = f" with {cfg['factors']} factors" if cfg.get("factors") else ""
    return (f"model: {cfg['cell'].upper()} {cfg['layers']}x{cfg['hidden']}{factors}, vocabulary {vocab_size}, "
            f"{model.num_parameters() / 1e6:.2f}M parameters (preset {cfg['preset']}); batch {cfg['batch']} x "
            f"seq-len {cfg['seq_len']}; {cfg['optimizer']} lr {cfg['lr']:g}; {clip}"
            + ("; loss summed over time" if cfg["loss_sum_over_time"] else ""))


# ---- the guard on validation --------------------------------------------------------------------
GUARD_BITS = 0.5  # a score this far above uniform guessing (bits/char) is not a noisy estimate: it is wrong


def val_warning(val_bpc, train_bpc, vocab_size, what):
    """(kind, one-line warning) when a score on `what` is not finite, far worse than guessing uniformly among
    the vocab_size characters, or far worse than the train loss (train_bpc, None: not known); else None.

    Uniform guessing costs log2(V) bits/char, so a model that scores worse is confidently wrong (a state it
    never learned to read, diverged weights, a text unlike the training text); val above train by more than
    max(1, train/2) bits/char means the model does not carry over to the text (overfitting, or another kind
    of text). Normal runs stay far from both: val tracks train within a few tenths of a bit.
    """
    uniform = math.log2(vocab_size)
    if not math.isfinite(val_bpc):
        return "nonfinite", (f"the score on {what} is {val_bpc} bits/char: the model's predictions are not finite "
                             "(training diverged); try a lower --lr or a smaller --clip")
    if val_bpc > uniform + GUARD_BITS:
        return "uniform", (f"{val_bpc:.2f} bits/char on {what} is far worse than guessing uniformly among the "
                           f"{vocab_size} characters ({uniform:.2f} bits/char): the model is confidently wrong "
                           "there. Try: check that it is the same kind of text as the training text; compare "
                           "`rnnfast char eval DIR --text FILE` with --state carried and --state zero; train "
                           "again with a lower --lr or another --seed")
    if train_bpc is not None and val_bpc > train_bpc + max(1.0, 0.5 * train_bpc):
        return "train", (f"{val_bpc:.2f} bits/char on {what} is far worse than the train loss ({train_bpc:.2f} "
                         "bits/char): the model does not carry over to it. It may be overfitting (try a longer "
                         "text, a smaller --hidden or fewer --steps), or the text is unlike the training text")
    return None


# ---- run state <-> checkpoint --------------------------------------------------------------------
class Run:
    """Everything that evolves during training and goes into the checkpoint."""

    def __init__(self):
        self.step = 0
        self.pos = 0           # offset into each stream's segment
        self.epochs = 0        # completed passes over the training part
        self.train_time = 0.0  # seconds spent in training steps (all sessions)
        self.chars = 0         # characters trained on
        self.history = []      # [step, mean train loss (nats/char) over the last log_every steps]
        self.val_history = []  # [step, val bpc]
        self.acc_loss = 0.0
        self.acc_n = 0
        self.last_loss = None
        self.smooth_loss = None
        self.ema = 0.0

    def to_json(self):
        return dict(step=self.step, pos=self.pos, epochs=self.epochs, train_time=self.train_time,
                    chars=self.chars, history=self.history, val_history=self.val_history,
                    acc_loss=self.acc_loss, acc_n=self.acc_n, last_loss=self.last_loss,
                    smooth_loss=self.smooth_loss, ema=self.ema)

    @classmethod
    def from_json(cls, d):
        r = cls()
        for k, v in d.items():
            if not hasattr(r, k):
                raise KeyError(k)
            setattr(r, k, v)
        return r


def save_checkpoint(out, cfg, vocab, counts, corpus, model, opt, state, rng, run):
    from .checkpoint import encode, save

    arrays = {}
    meta = {
        "kind": FORMAT,
        "config": cfg,
        "vocab": vocab,
        "counts": counts,
        "corpus": corpus,
        "run": run.to_json(),
        "rng": rng.bit_generator.state,
        "weights": encode(model.state_dict(), arrays, "w"),
        "optimizer": encode(opt.state_dict(), arrays, "o"),
        "hidden": encode(model.state_arrays(state), arrays, "h"),
    }
    save(os.path.join(out, CHECKPOINT), meta, arrays)


def load_checkpoint(out):
    """(meta, model) from DIR/checkpoint.npz; CharError/CheckpointError with a clear line if unusable."""
    from .charmodel import CharModel
    from .checkpoint import CheckpointError, decode, load

    path = os.path.join(out, CHECKPOINT)
    if not os.path.isdir(out):
        raise CharError(f"{out}: no such directory")
    if not os.path.exists(path):
        raise CharError(f"{out} holds no checkpoint ({CHECKPOINT}); train one with `rnnfast char train --out {out}`")
    meta, arrays = load(path)
    try:
        if meta.get("kind") != FORMAT:
            raise CheckpointError(f"{path} is not a `rnnfast char` checkpoint")
        cfg, vocab = meta["config"], meta["vocab"]
        model = CharModel(len(vocab), cfg["cell"], cfg["hidden"], cfg["layers"], seed=cfg["seed"], init="default",
                          factors=cfg.get("factors"))
        model.load_state_dict(decode(meta["weights"], arrays))
        meta["optimizer"] = decode(meta["optimizer"], arrays)
        meta["hidden"] = decode(meta["hidden"], arrays) if "hidden" in meta else None  # None: older checkpoints
        meta["run"] = Run.from_json(meta["run"])
        missing = [key for key in ("counts", "corpus", "rng") if key not in meta]
        if missing:
            raise KeyError(", ".join(missing))
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path} is incompatible with this version of rnnfast ({type(e).__name__}: {e})") \
            from None
    return meta, model


# ---- outputs --------------------------------------------------------------------------------------
def metrics_dict(cfg, corpus, run, target_steps, vocab_size, wall_s):
    cps = run.chars / run.train_time if run.train_time > 0 else None
    return {
        "steps": run.step,
        "target_steps": target_steps,
        "chars_per_s": cps,
        "chars_trained": run.chars,
        "train_seconds": run.train_time,
        "wall_seconds_this_session": wall_s,
        "epochs": run.epochs,
        "train_loss": {"unit": "nats/char", "latest": run.last_loss, "smoothed": run.smooth_loss,
                       "history": run.history},
        "train_bpc": None if run.smooth_loss is None else run.smooth_loss / math.log(2),
        "val_bpc": {"latest": run.val_history[-1][1] if run.val_history else None, "history": run.val_history,
                    "state": "carried"},
        "corpus": corpus,
        "vocab_size": vocab_size,
        "config": cfg,
    }


def write_metrics(out, metrics):
    from .checkpoint import atomic_write_text

    atomic_write_text(os.path.join(out, METRICS), json.dumps(metrics, indent=1, allow_nan=False) + "\n")


def write_plot(out, run, title):
    """loss.png: train loss and validation, in bits per character. Skipped (with a note) without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed: no loss.png"
    from .checkpoint import atomic_write

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    if run.history:
        h = np.asarray(run.history, dtype=float)
        ax.plot(h[:, 0], h[:, 1] / math.log(2), lw=1, label="train")
    if run.val_history:
        v = np.asarray(run.val_history, dtype=float)
        ax.plot(v[:, 0], v[:, 1], "o-", ms=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("bits per character")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(os.path.join(out, PLOT), lambda f: fig.savefig(f, format="png"))
    return None


def decode_idx(vocab, idx):
    return "".join(vocab[i] for i in idx)


def _print(text, file=None):
    """print() that survives a terminal encoding without some of the characters."""
    file = file or sys.stdout
    try:
        print(text, file=file, flush=True)
    except UnicodeEncodeError:
        enc = getattr(file, "encoding", None) or "ascii"
        print(text.encode(enc, "backslashreplace").decode(enc), file=file, flush=True)


# ---- train --------------------------------------------------------------------------------------
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
    from . import losses, optim
    from .charmodel import CharModel, bits

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
        from .charmodel import FusedMinCharRNN

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
            _print(msg, file)
            bar.refresh()
        else:
            _print(msg, file)

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
        _print(f"step {run.step}: val {vb:.3f} bpc")
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


# ---- sample and eval ----------------------------------------------------------------------------
def start_state(meta, model, how):
    """(state, words): where sample and eval start. how='carried': the checkpoint's carried training state,
    the state the model learned to read (for a checkpoint without one, a zero state burnt in on the last
    BURN_IN characters of the training text when it is at hand); how='zero': zeros (state None)."""
    if how == "zero":
        return None, "a zero state"
    if meta["hidden"] is not None:
        try:
            state = model.state_from_arrays(meta["hidden"], meta["config"]["batch"])
        except ValueError as e:
            raise CharError(f"the checkpoint's carried state is unusable ({e}); pass --state zero") from None
        return state, f"the carried training state (step {meta['run'].step})"
    why = "the checkpoint holds no carried state (an older rnnfast saved it)"
    try:
        text = training_text(meta["corpus"])
        train_data, _ = split_data(encode_text(text, meta["vocab"]), meta["config"]["val_fraction"])
    except CharError as e:
        return None, f"a zero state: {why} and its training text is not at hand ({e})"
    tail = train_data[-BURN_IN:]
    return model.burn_in(tail), f"a zero state burnt in on the last {len(tail):,} characters of the training text: {why}"


def sample(args):
    meta, model = load_checkpoint(args.dir)
    vocab = meta["vocab"]
    prime = args.prime
    rng = np.random.default_rng(args.seed)
    if prime:
        bad = sorted(set(prime) - set(vocab))
        if bad:
            raise CharError(f"--prime has characters the model never saw: {''.join(bad)!r} (its vocabulary has "
                            f"{len(vocab)} characters)")
        prime_idx = encode_text(prime, vocab).tolist()
        start = prime
    else:  # no prime: start from one character drawn from the training text's frequencies
        p = np.asarray(meta["counts"], dtype=np.float64)
        prime_idx = [int(rng.choice(len(vocab), p=p / p.sum()))]
        start = vocab[prime_idx[0]]
    state, words = start_state(meta, model, args.state)
    print(f"sampling from {words}, then the " + ("prime" if prime else "first character, drawn from the training "
                                                  "text's frequencies,") + " burnt in", file=sys.stderr)
    idx = model.sample(prime_idx, args.length, args.temperature, rng, state=state)
    _print(start + decode_idx(vocab, idx))
    return 0


def evaluate(args):
    """`rnnfast char eval DIR --text FILE`: the checkpoint's bits/char on a text."""
    from . import losses
    from .charmodel import bits

    meta, model = load_checkpoint(args.dir)
    vocab = meta["vocab"]
    text = read_text(args.text, args.encoding)
    try:
        data = encode_text(text, vocab)
    except CharError as e:
        raise CharError(f"--text {args.text}: {e} (it has {len(vocab)} characters)") from None
    if len(data) < 2:
        raise CharError(f"--text {args.text} holds one character: there is nothing to predict (it needs at least 2)")
    state, words = start_state(meta, model, args.state)
    score = bits(model.evaluate(data, losses, max_chars=args.max_chars, state=state))
    streams, _, per_stream = model.eval_layout(len(data) - 1, args.max_chars)
    run = meta["run"]
    own = f"; the checkpoint's own val: {run.val_history[-1][1]:.3f}" if run.val_history else ""
    print(f"{args.text}: {score:.3f} bits/char over {streams * per_stream:,} characters, from {words}; uniform guessing: "
          f"{math.log2(len(vocab)):.3f}{own}")
    train_bpc = None if run.smooth_loss is None else run.smooth_loss / math.log(2)
    w = val_warning(score, train_bpc, len(vocab), args.text)
    if w is not None:
        zero = args.state == "zero" and w[0] != "nonfinite"
        print(f"warning: {w[1]}" + (". This score starts from a zero state, which the model may never have learned "
                                    "to read: try --state carried" if zero else ""), file=sys.stderr)
    return 0
