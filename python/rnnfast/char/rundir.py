"""A run directory: checkpoint.npz (the whole training state), metrics.json and loss.png."""

import json
import math
import os

import numpy as np

from ..io.checkpoint import CheckpointError, atomic_write, atomic_write_text, decode, encode, load, save
from .errors import CharError
from .model import CharModel

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.json"
PLOT = "loss.png"
FORMAT = "rnnfast-char"


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
    atomic_write_text(os.path.join(out, METRICS), json.dumps(metrics, indent=1, allow_nan=False) + "\n")


def write_plot(out, run, title):
    """loss.png: train loss and validation, in bits per character. Skipped (with a note) without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed: no loss.png"
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
