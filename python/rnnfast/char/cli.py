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
Burning a zero state in on training text first does not help (it settles in the wrong attractor all the
same), and burning the carried state in changes nothing, so validation uses the carried state as it is
(RESULTS.md, issue 14).

The run directory holds `checkpoint.npz` (config, vocabulary, weights, optimizer state, RNG state, step,
carried hidden state, data position, metrics; replaced atomically), `metrics.json` and `loss.png`.
`--steps` is the total number of steps: with --resume the run continues from the checkpoint's step to it.
"""

import argparse
import math
import sys

from .._util.blas import limit_numpy_blas_threads
from ..io.checkpoint import CheckpointError
from .config import CELLS, DEFAULT_PRESET, DEVICES, OPTIMIZERS, PRESETS
from .errors import CharError
from .evaluation import STATES, evaluate, sample
from .trainer import train


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
