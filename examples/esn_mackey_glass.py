#!/usr/bin/env python
"""Mackey-Glass one-step-ahead prediction with an echo state network (rnnfast.ESN).

Trains a 500-unit ESN (sparse reservoir, density 0.1) on 4000 steps of the Mackey-Glass series (tau=17),
chooses the ridge by validation NRMSE and reports the test NRMSE of one-step predictions, then runs
100 steps of closed-loop generation from the end of the test data. Runs in a few seconds on a CPU.

    python examples/esn_mackey_glass.py
"""
import time

from rnnfast import datasets
from rnnfast.esn import ESN


def main():
    series = datasets.mackey_glass(7000)
    u, y = series[:-1], series[1:]                  # input x_t, target x_{t+1}
    train, val = slice(0, 4000), slice(4000, 5000)
    test = slice(5000, len(u))

    esn = ESN(1, 500, 1, spectral_radius=0.9, leak_rate=1.0, input_scaling=1.0, bias_scaling=0.2,
              density=0.1, seed=0)
    t0 = time.perf_counter()
    esn.fit(u[train], y[train], washout=200, ridge=[1e-10, 1e-8, 1e-6, 1e-4],
            validation=(u[val], y[val]))
    esn.predict(u[val])                              # move the state to the start of the test data
    pred = esn.predict(u[test])
    dt = time.perf_counter() - t0
    print("validation NRMSE by ridge: " + ", ".join(f"{r:g}: {s:.2e}" for r, s in esn.validation_scores_.items()))
    print(f"chosen ridge {esn.ridge_:g}")
    print(f"test one-step NRMSE: {datasets.nrmse(y[test], pred):.2e}  ({len(pred)} steps; fit+predict {dt:.2f} s)")

    gen = esn.generate(100)                         # continues the series after the test data
    truth = datasets.mackey_glass(7100)[6999:7099]   # gen[0] predicts series[6999]
    print(f"closed-loop generation, NRMSE over the first 50 / 100 steps: "
          f"{datasets.nrmse(truth[:50], gen[:50]):.3f} / {datasets.nrmse(truth, gen):.3f}")


if __name__ == "__main__":
    main()
