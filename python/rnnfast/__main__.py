"""Command line: `rnnfast [demo|info|char]` (also `python -m rnnfast ...`).

`demo` (the default) needs no data: it runs each cell forward and backward through time on the C++
engine and on the NumPy reference, prints how far apart they are and how much faster the engine is.
`char train` / `char sample` train and sample character-level language models (see rnnfast.char).
Usage errors are one line on stderr, `error: ...`, with exit status 2.
"""

import argparse
import json
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
        t_fast = _median_time(lambda: run(fast), 5)
        t_ref = _median_time(lambda: run(ref), 3)
        print(f"{name:<6} {err:>26.2e} {t_fast * 1e3:>10.2f} {t_ref * 1e3:>13.2f} {t_ref / t_fast:>7.1f}x")
    if failed:
        print("error: the engine disagrees with the reference", file=sys.stderr)
        return 1
    return 0


def info(args):
    import rnnfast

    print(json.dumps(rnnfast.build_info(), indent=2))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: rnnfast char train: argument --cell: ...`."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def main(argv=None):
    from . import char

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
    return {"demo": demo, "info": info, "char": char.run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
