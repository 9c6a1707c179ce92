"""Running rnnfast's command line from the tests: in this process (main()) or as `python -m rnnfast`."""

import contextlib
import io
import os
import subprocess
import sys

import rnnfast
from rnnfast import char
from rnnfast.__main__ import main

PYPATH = os.path.dirname(os.path.dirname(os.path.abspath(rnnfast.__file__)))  # the rnnfast under test

# `python -c LIMITED BYTES args...`: rnnfast's __main__ under a file-size limit of BYTES
LIMITED = ("import resource, runpy, sys; n = int(sys.argv.pop(1)); "
           "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); sys.argv[0] = 'rnnfast'; "
           "runpy.run_module('rnnfast', run_name='__main__', alter_sys=True)")


def run_main(argv, capsys):
    """(exit status, stdout, stderr) of main(argv) in this process (SystemExit included), through capsys."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def cli(*argv):
    """(exit status, stdout, stderr) of `rnnfast ARGV` in this process, without pytest's capture."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def env():
    """This environment with the rnnfast under test first on PYTHONPATH (for child processes)."""
    return dict(os.environ, PYTHONPATH=PYPATH + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run_module(*args, limit=None, prefix=(), stdout=subprocess.PIPE, timeout=120):
    """(exit status, stdout, stderr) of `python -m rnnfast ARGS` in a child process (under a file-size limit
    of `limit` bytes; `prefix`: a command to run it under)."""
    cmd = [sys.executable, "-c", LIMITED, str(limit)] if limit is not None else [sys.executable, "-m", "rnnfast"]
    r = subprocess.run([*prefix, *cmd, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE, text=True,
                       env=env(), timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def one_error_line(err, *words):
    """stderr ends with exactly one `error: ...` line holding every word, and shows no traceback."""
    lines = err.strip("\n").split("\n")
    assert lines[-1].startswith("error: ") and "Traceback" not in err and "Exception ignored" not in err, err
    assert sum(line.startswith("error: ") for line in lines) == 1, err
    for w in words:
        assert w in lines[-1], (w, err)
    return lines[-1]


def load_run(out):
    """(checkpoint metadata, weights) of the run directory `out`."""
    meta, model = char.load_checkpoint(str(out))
    return meta, model.state_dict()
