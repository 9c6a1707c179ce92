"""Resource use and the engine's pool: thousands of calls do not grow resident memory, and jobs of
different thread counts interleave exactly on one pool.

Concurrent calls against serial ones (one layer or reservoir per thread, and one shared by all threads) are
tests/threads/test_threads_shared.py's, with the engine's thread count pinned and sizes above its cutoffs."""

import numpy as np
import pytest

import rnnfast

pytestmark = pytest.mark.slow  # soak: thousands of calls, pools under stress


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


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
