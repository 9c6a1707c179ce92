"""`rnnfast char sample` and `rnnfast char eval`, where they start from, and the guard on scores."""

import math
import sys

import numpy as np

from ..nn import losses
from .data import decode_idx, encode_text, read_text, split_data, training_text
from .errors import CharError, print_line
from .model import bits
from .rundir import load_checkpoint

STATES = ("carried", "zero")  # where sample and eval start: the checkpoint's carried training state, or zeros
BURN_IN = 1000  # characters of the training text burnt into a zero state for a checkpoint without a carried one


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
    return model.burn_in(tail), (f"a zero state burnt in on the last {len(tail):,} characters of the training "
                                 f"text: {why}")


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
    print_line(start + decode_idx(vocab, idx))
    return 0


def evaluate(args):
    """`rnnfast char eval DIR --text FILE`: the checkpoint's bits/char on a text."""
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
    print(f"{args.text}: {score:.3f} bits/char over {streams * per_stream:,} characters, from {words}; "
          "uniform guessing: "
          f"{math.log2(len(vocab)):.3f}{own}")
    train_bpc = None if run.smooth_loss is None else run.smooth_loss / math.log(2)
    w = val_warning(score, train_bpc, len(vocab), args.text)
    if w is not None:
        zero = args.state == "zero" and w[0] != "nonfinite"
        print(f"warning: {w[1]}" + (". This score starts from a zero state, which the model may never have learned "
                                    "to read: try --state carried" if zero else ""), file=sys.stderr)
    return 0
