"""Command line: `rnnfast [demo|info|char]` (also `python -m rnnfast ...`).

`demo` (the default) needs no data: it runs each cell forward and backward through time on the C++
engine and on the NumPy reference, prints how far apart they are and how much faster the engine is.
`char train` / `char sample` train and sample character-level language models (see rnnfast.char).
Usage errors are one line on stderr, `error: ...`, with exit status 2; any other failure (a file or the
standard output that cannot be written included) is one `error: ...` line naming the file and the cause,
with exit status 1.
"""

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np


def _median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def demo(args):
    import rnnfast

    info = rnnfast.build_info()
    print(f"rnnfast {info['version']}  BLAS: {info['blas']}  CUDA compiled: {info['cuda_compiled']}  "
          f"GPU available: {info['cuda_available']}")
    T, N, C, H = args.steps, args.batch, args.input_size, args.hidden
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((T, N, C)).astype(np.float32)
    dy = rng.standard_normal((T, N, H)).astype(np.float32)
    print(f"forward + backward through time, float32, T={T} N={N} C={C} H={H}")
    print(f"{'cell':<6} {'max |engine - reference|':>26} {'engine ms':>10} {'reference ms':>13} {'speedup':>8}")
    failed = False
    for name, make in (("rnn", rnnfast.RNN), ("lstm", rnnfast.LSTM), ("gru", rnnfast.GRU)):
        fast = make(C, H, seed=args.seed)
        ref = make(C, H, engine="reference").load_state_dict(fast.state_dict())

        def run(layer):
            y, _ = layer(x)
            dx, _ = layer.backward(dy)
            return y, dx

        (y1, dx1), (y2, dx2) = run(fast), run(ref)
        err = max(float(np.abs(y1 - y2).max()), float(np.abs(dx1 - dx2).max()))
        failed |= not err < 1e-4
        # NumPy's OpenBLAS threads keep spinning for a while after the reference's matmuls and would
        # compete with the engine's threads for the cores: let them go idle before timing the engine.
        time.sleep(0.3)
        t_fast = _median_time(lambda fast=fast: run(fast), 5)
        t_ref = _median_time(lambda ref=ref: run(ref), 3)
        print(f"{name:<6} {err:>26.2e} {t_fast * 1e3:>10.2f} {t_ref * 1e3:>13.2f} {t_ref / t_fast:>7.1f}x")
    if failed:
        print("error: the engine disagrees with the reference", file=sys.stderr)
        return 1
    return 0


def info(args):
    import rnnfast

    print(json.dumps(rnnfast.build_info(), indent=2))
    return 0


class _NamedStream:
    """sys.stdout whose write failures name it ("standard output": a full disk, a file-size limit, a closed
    pipe), so that they are reported as the failures of any other file."""

    def __init__(self, stream, name):
        self._stream, self._name = stream, name

    def _call(self, method, *args):
        try:
            return getattr(self._stream, method)(*args)
        except OSError as e:
            raise OSError(e.errno, e.strerror or str(e), self._name) from None

    def write(self, text):
        return self._call("write", text)

    def flush(self):
        return self._call("flush")

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _stdout_named():
    real = sys.stdout
    sys.stdout = _NamedStream(real, "standard output")
    try:
        yield
    finally:
        sys.stdout = real


def _drop_pending_output():
    """After standard output failed: point it at /dev/null, so that the interpreter's flush at exit (of what
    is still buffered) cannot fail again with a second message and status 120."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (tests capture it in memory)
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: rnnfast char train: argument --cell: ...`."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def main(argv=None):
    from .char import cli as char
    from .char.errors import os_error_text

    parser = _Parser(prog="rnnfast", description="Fast recurrent neural networks.")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("demo", help="check the C++ engine against the NumPy reference and time both (default)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    sub.add_parser("info", help="print rnnfast.build_info() as JSON")
    char.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["demo"] + (argv or []))
    for field in ("steps", "batch", "input_size", "hidden") if args.command == "demo" else ():
        if getattr(args, field, 1) < 1:
            parser.error(f"--{field.replace('_', '-')} must be >= 1")
    with _stdout_named():
        try:
            code = {"demo": demo, "info": info, "char": char.run}[args.command](args)
            sys.stdout.flush()  # what is still buffered: a write that fails here fails the command too
        except OSError as e:
            print(f"error: {os_error_text(e)}", file=sys.stderr)
            if e.filename == "standard output":
                _drop_pending_output()
            code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
