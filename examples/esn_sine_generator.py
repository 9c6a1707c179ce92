#!/usr/bin/env python
"""The sine-frequency generator: an ESN with output feedback learns to produce sin of the integrated
phase of a slowly changing frequency input, then runs closed loop (its own output fed back through
W_fb) on frequencies it has not seen. Runs in a second or two on a CPU.

    python examples/esn_sine_generator.py
"""
import time

from rnnfast import datasets
from rnnfast.esn import ESN


def main():
    u, y = datasets.sine_frequency(7000, seed=0)    # u: frequency (cycles/step), y: sin(phase)
    n_train = 4000
    esn = ESN(1, 300, 1, spectral_radius=0.8, input_scaling=10.0, leak_rate=0.5, bias_scaling=0.5,
              feedback=True, feedback_scaling=1.0, ridge=1e-6, seed=1)
    t0 = time.perf_counter()
    # teacher forcing: y_{t-1} fed back, with a little noise so the closed loop is stable
    esn.fit(u[:n_train], y[:n_train], washout=200, feedback_noise=1e-2, seed=0)
    gen = esn.generate(len(u) - n_train, inputs=u[n_train:])    # closed loop from the training state
    dt = time.perf_counter() - t0
    truth = y[n_train:]
    print(f"closed-loop generation of {len(gen)} steps: NRMSE {datasets.nrmse(truth, gen):.3f} "
          f"(first 500 steps {datasets.nrmse(truth[:500], gen[:500]):.3f}); fit+generate {dt:.2f} s")
    for t in range(0, len(gen), 600):
        print(f"  t={n_train + t:5d}  frequency {u[n_train + t, 0]:.4f}  target {truth[t, 0]:+.3f}  "
              f"generated {gen[t, 0]:+.3f}")


if __name__ == "__main__":
    main()
