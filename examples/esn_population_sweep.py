#!/usr/bin/env python
"""Choose an ESN's spectral radius and input scaling by validation NRMSE with a population sweep.

All 5 x 4 = 20 configurations share one random reservoir (W, W_in, bias) and run together in one engine
call per time chunk (rnnfast.esn.population_sweep, built on run_population); each gets its own ridge
readout. Task: NARMA-10. Prints the validation NRMSE grid and the test NRMSE of the chosen
configuration. Runs in well under a minute on a CPU.

    python examples/esn_population_sweep.py
"""
import itertools
import time

from rnnfast import datasets
from rnnfast.esn import ESN, population_sweep


def main():
    u, y = datasets.narma(6000, order=10, seed=0)
    tr, va, te = slice(0, 3000), slice(3000, 4500), slice(4500, 6000)
    base = ESN(1, 300, 1, spectral_radius=1.0, input_scaling=1.0, leak_rate=1.0, density=0.1,
               bias_scaling=0.0, ridge=1e-8, seed=0)
    radii = [0.5, 0.7, 0.9, 1.0, 1.1]
    scalings = [0.1, 0.3, 1.0, 3.0]
    grid = list(itertools.product(radii, scalings))
    t0 = time.perf_counter()
    res = population_sweep(base, u[tr], y[tr], u[va], y[va],
                           spectral_radii=[r for r, _ in grid], input_scalings=[s for _, s in grid],
                           ridge=[1e-8, 1e-6, 1e-4], washout=100)
    dt = time.perf_counter() - t0
    best_per_member = res["scores"].min(axis=1).reshape(len(radii), len(scalings))
    print(f"validation NRMSE (best ridge per cell), {len(grid)} members in {dt:.2f} s:")
    print("  radius \\ input scaling " + "".join(f"{s:>8g}" for s in scalings))
    for r, row in zip(radii, best_per_member):
        print(f"  {r:>22g} " + "".join(f"{v:8.3f}" for v in row))
    b = res["best"]
    print(f"chosen: spectral_radius={b['spectral_radius']}, input_scaling={b['input_scaling']}, "
          f"ridge={b['ridge']:g}, validation NRMSE {b['nrmse']:.3f}")
    esn = res["esn"]                        # the chosen configuration with its readout, state after val
    print(f"test NRMSE: {datasets.nrmse(y[te], esn.predict(u[te])):.3f}")


if __name__ == "__main__":
    main()
