"""Concurrency and resource use: the GIL is released during compute, concurrent calls give the same
results as serial ones, and thousands of calls do not grow resident memory."""

import threading

import numpy as np
import pytest

import rnnfast


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@pytest.mark.parametrize("make", [rnnfast.LSTM, rnnfast.GRU, rnnfast.RNN])
def test_four_threads_match_serial_calls(make):
    layers = [make(12, 48, num_layers=2, bidirectional=True, seed=i) for i in range(4)]
    xs = [np.random.default_rng(i).standard_normal((30, 16, 12)).astype(np.float32) for i in range(4)]

    def work(i, out):
        for _ in range(3):
            layers[i].zero_grad()
            y, _ = layers[i](xs[i])
            dx, _ = layers[i].backward(np.ones_like(y))
        out[i] = (y, dx, {k: g.copy() for k, g in layers[i].grads.items()})

    serial = [None] * 4
    for i in range(4):
        work(i, serial)
    threaded = [None] * 4
    threads = [threading.Thread(target=work, args=(i, threaded)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (y1, dx1, g1), (y2, dx2, g2) in zip(serial, threaded):
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(dx1, dx2)
        for k in g1:
            np.testing.assert_array_equal(g1[k], g2[k])


def test_reservoirs_in_threads_match_serial_runs():
    esns = [rnnfast.ESN(2, 300, 1, density=0.1, seed=i) for i in range(4)]
    us = [np.random.default_rng(i).standard_normal((200, 2)) for i in range(4)]
    serial = [e.run_reservoir(u) for e, u in zip(esns, us)]
    for e in esns:
        e.reset()
    out = [None] * 4

    def work(i):
        out[i] = esns[i].run_reservoir(us[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, out):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif("libasan" in __import__("os").environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine holds freed memory on purpose (RSS grows by design)")
def test_soak_resident_memory_stays_flat():
    """5000 forward/backward calls and 1000 reservoir runs after a warm-up grow RSS by < 16 MiB."""
    lstm = rnnfast.LSTM(8, 32, seed=0)
    esn = rnnfast.ESN(1, 200, 1, seed=0)
    x = np.random.default_rng(0).standard_normal((20, 4, 8)).astype(np.float32)
    u = np.random.default_rng(1).standard_normal((50, 1))

    def burst(n):
        for _ in range(n):
            y, _ = lstm(x)
            lstm.backward(y)
        for _ in range(n // 5):
            esn.run_reservoir(u)

    burst(500)  # warm-up: allocator pools, first-call caches
    before = _rss_kib()
    burst(5000)
    growth = _rss_kib() - before
    assert growth < 16 * 1024, f"resident memory grew by {growth} KiB over 5000 calls"


POOL_STRESS = r"""
import numpy as np, rnnfast
rng = np.random.default_rng(0)
# alternate parallel time loops (2 threads) with large standalone GEMMs (all pool threads) and serial calls
big = rnnfast.LSTM(64, 256, seed=1)       # N*G*H >= 32768: the time loop runs on the pool
small = rnnfast.GRU(8, 16, seed=2)        # serial
x_big = rng.standard_normal((12, 40, 64)).astype(np.float32)
x_small = rng.standard_normal((5, 2, 8)).astype(np.float32)
ref = rnnfast.LSTM(64, 256, seed=1, engine="reference")
y_ref, _ = ref(x_big); dx_ref, _ = ref.backward(np.ones_like(y_ref))
for i in range(40):
    big.zero_grad()
    y, _ = big(x_big)
    dx, _ = big.backward(np.ones_like(y))
    small(x_small)
    assert np.abs(y - y_ref).max() < 1e-4, i
    assert np.abs(dx - dx_ref).max() < 1e-4, i
    for k in ref.grads:
        assert np.abs(big.grads[k] - ref.grads[k]).max() < 1e-3 * max(1, np.abs(ref.grads[k]).max()), (i, k)
print("ok")
"""


@pytest.mark.parametrize("threads", ["1", "3", "4"])
def test_pool_with_more_threads_than_cores_stays_exact(threads):
    """RNNFAST_NUM_THREADS above the core count: jobs of different thread counts interleave on one pool."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, RNNFAST_NUM_THREADS=threads)
    proc = subprocess.run([sys.executable, "-c", POOL_STRESS], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
