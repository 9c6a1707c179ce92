"""The text of `rnnfast char`: reading a corpus, the standard library's source, the vocabulary's indices."""

import hashlib
import os
import sys
import sysconfig

import numpy as np

from .errors import CharError

STDLIB_CAP = 2 * 1024 * 1024


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


def decode_idx(vocab, idx):
    return "".join(vocab[i] for i in idx)
