"""A training run's configuration: the presets, the flags over them, the optimizer they name."""

from .. import optim
from ..backends.devices import check_device
from .errors import CharError

CELLS = ("rnn", "lstm", "gru", "mrnn")
OPTIMIZERS = ("sgd", "rmsprop", "adagrad", "adam")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_LR = {"sgd": 1.0, "rmsprop": 2e-3, "adagrad": 0.1, "adam": 2e-3}
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


def _cuda_error():
    """Why device='cuda' cannot be used here (no CUDA build, no GPU, no CuPy), or None when it can."""
    try:
        check_device("cuda")
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
