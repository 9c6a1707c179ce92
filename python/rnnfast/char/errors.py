"""Errors of `rnnfast char` that the user can fix, and how they are printed."""

import errno
import sys


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


def print_line(text, file=None):
    """print() that survives a terminal encoding without some of the characters."""
    file = file or sys.stdout
    try:
        print(text, file=file, flush=True)
    except UnicodeEncodeError:
        enc = getattr(file, "encoding", None) or "ascii"
        print(text.encode(enc, "backslashreplace").decode(enc), file=file, flush=True)
