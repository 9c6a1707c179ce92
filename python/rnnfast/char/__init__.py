"""`rnnfast char`: character-level language models (min-char-rnn, char-rnn), an application of the library.

cli (the command line), config (presets and flags), data (the text), model (CharModel, FusedMinCharRNN),
trainer (the training loop), evaluation (sample and eval), rundir (checkpoint, metrics, plot), errors.
"""

from .._util.blas import limit_numpy_blas_threads
from .cli import add_parser, run
from .config import PRESETS, make_optimizer, resolve_config
from .data import decode_idx, encode_text, read_text, split_data, stdlib_corpus
from .errors import CharError
from .evaluation import evaluate, sample, val_warning
from .model import CharModel, FusedMinCharRNN, bits
from .rundir import load_checkpoint, save_checkpoint
from .trainer import train

__all__ = ["add_parser", "run", "train", "sample", "evaluate", "CharModel", "FusedMinCharRNN", "bits", "CharError",
           "PRESETS", "make_optimizer", "resolve_config", "decode_idx", "encode_text", "read_text", "split_data",
           "stdlib_corpus", "val_warning", "load_checkpoint", "save_checkpoint", "limit_numpy_blas_threads"]
