"""Atomic checkpoints: one .npz file holding a JSON header and named arrays.

    save(path, meta, arrays)        # meta: JSON-able (arrays inside it are stored as npz entries too)
    meta, arrays = load(path)

The file is written to a temporary file in the same directory, flushed and fsync'ed, then moved over
`path` with os.replace (atomic on POSIX and Windows), and the directory is fsync'ed: a process killed at
any point leaves either the previous checkpoint or the new one, never a torn file. Loading never
unpickles (allow_pickle=False).

Nested structures (an optimizer's state_dict, say) go through `encode`/`decode`: numpy arrays become
npz entries, tuples and non-string-keyed dicts are tagged so they come back as they were, numpy scalars
become Python numbers.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "rnnfast-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, truncated, corrupted, or from something else."""


# ---- atomic files ------------------------------------------------------------------------------
def atomic_write(path, write):
    """Call write(fileobj) on a temporary file next to `path`, then move it over `path` atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# ---- structure <-> JSON + arrays ---------------------------------------------------------------
def encode(obj, arrays, prefix="a"):
    """A JSON-able form of obj; numpy arrays are moved into `arrays` (a dict) under fresh keys."""
    if isinstance(obj, np.ndarray):
        key = f"{prefix}{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v, arrays, prefix) for v in obj]}
    if isinstance(obj, list):
        return [encode(v, arrays, prefix) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode(v, arrays, prefix) for k, v in obj.items()}
        return {"__items__": [[encode(k, arrays, prefix), encode(v, arrays, prefix)] for k, v in obj.items()]}
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def decode(obj, arrays):
    if isinstance(obj, list):
        return [decode(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__tuple__" in obj:
            return tuple(decode(v, arrays) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {_hashable(decode(k, arrays)): decode(v, arrays) for k, v in obj["__items__"]}
        return {k: decode(v, arrays) for k, v in obj.items()}
    return obj


def _hashable(k):
    return tuple(_hashable(v) for v in k) if isinstance(k, list) else k


# ---- save / load -------------------------------------------------------------------------------
def save(path, meta, arrays):
    """Write meta (a JSON-able dict) and arrays (name -> ndarray) to `path` atomically."""
    path = _path(path)
    if not hasattr(arrays, "items"):
        raise TypeError(f"arrays must be a dict of name -> array, got {type(arrays).__name__}")
    header = json.dumps({"format": FORMAT, "version": VERSION, "meta": meta}, allow_nan=True)
    entries = {"__header__": np.frombuffer(header.encode("utf-8"), dtype=np.uint8)}
    for name, a in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f"arrays must be keyed by str, got {name!r}")
        a = np.asarray(a)
        if a.dtype.hasobject:  # load() never unpickles: such an entry could not be read back
            raise TypeError(f"arrays[{name!r}] has dtype {a.dtype}, which a checkpoint cannot store "
                            "without pickling")
        entries["x_" + name] = a

    atomic_write(path, lambda f: np.savez(f, **entries))


def load(path):
    """(meta, arrays) from a checkpoint written by save(); CheckpointError if it cannot be read."""
    path = _path(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            files = list(z.files)
            if "__header__" not in files:
                raise CheckpointError(f"{path} is not an rnnfast checkpoint (no header)")
            header = json.loads(bytes(z["__header__"]).decode("utf-8"))
            arrays = {name[2:]: z[name] for name in files if name.startswith("x_")}
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, UnicodeDecodeError,
            json.JSONDecodeError, zlib_error()) as e:
        raise CheckpointError(f"{path} is corrupted or not a checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rnnfast checkpoint")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {header.get('version')!r}; this rnnfast "
                              f"reads version {VERSION}")
    if "meta" not in header:
        raise CheckpointError(f"{path} is corrupted (its header has no 'meta')")
    return header["meta"], arrays


def _path(path):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def zlib_error():
    import zlib

    return zlib.error
