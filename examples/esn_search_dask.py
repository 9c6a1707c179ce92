#!/usr/bin/env python
"""Search an ESN's hyperparameters for Mackey-Glass forecasting, locally and on a Dask cluster.

240 random configurations (reservoir size, spectral radius, leak rate, input scaling, density, ridge,
seed) are scored by validation NRMSE with rnnfast.esn.search: first on local worker processes (joblib's
loky), then on a Dask cluster (here a LocalCluster of 2 workers on the loopback address; for a real
cluster give its scheduler's address: ``Client("tcp://scheduler:8786")``). Both runs give the same scores,
trial for trial. Prints the best configuration, its test NRMSE, and writes the report plot (validation
NRMSE against each hyperparameter).

    python examples/esn_search_dask.py                     # 240 trials, ~15 s on 2 cores (Zen 4)
    python examples/esn_search_dask.py --quick             # a small search (seconds)
    python examples/esn_search_dask.py --scheduler tcp://host:8786 --plot report.png
"""
import argparse
import sys
import time

import numpy as np

import rnnfast
from rnnfast import datasets
from rnnfast.esn import hypersearch as es


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="24 small trials")
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--scheduler", default=None, help="a Dask scheduler's address (default: a LocalCluster)")
    p.add_argument("--plot", default="esn_search_report.png", help="where to write the report plot")
    a = p.parse_args(argv)
    n_trials = a.trials or (24 if a.quick else 240)
    sizes = [50, 100] if a.quick else [200, 300, 500]

    mg = datasets.mackey_glass(4001 if not a.quick else 1501)
    u, y = mg[:-1], mg[1:]                                    # one step ahead
    n = len(u)
    tr, va, te = slice(0, n // 2), slice(n // 2, 3 * n // 4), slice(3 * n // 4, n)
    data = (u[tr], y[tr], u[va], y[va])
    space = {"reservoir_size": sizes, "spectral_radius": es.loguniform(0.3, 1.5),
             "leak_rate": es.loguniform(0.05, 1.0), "input_scaling": es.loguniform(0.05, 3.0),
             "density": [0.05, 0.1, 0.2], "ridge": es.loguniform(1e-9, 1e-3), "seed": [0, 1, 2]}

    t0 = time.perf_counter()
    local = es.search(data, space, method="random", n_trials=n_trials, seed=0, washout=100, n_jobs=2)
    t_local = time.perf_counter() - t0
    print(f"local (2 loky workers): {len(local)} trials in {t_local:.1f} s")

    import joblib
    from distributed import Client, LocalCluster
    cluster = None
    if a.scheduler is None:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
    with Client(a.scheduler or cluster) as client:
        t0 = time.perf_counter()
        with joblib.parallel_backend("dask"):              # the one-line switch to the cluster
            remote = es.search(data, space, method="random", n_trials=n_trials, seed=0, washout=100)
        t_dask = time.perf_counter() - t0
        print(f"dask ({len(client.scheduler_info()['workers'])} workers): {len(remote)} trials in {t_dask:.1f} s")
    if cluster is not None:
        cluster.close()

    a_scores = np.array([t["nrmse"] for t in local.trials])
    b_scores = np.array([t["nrmse"] for t in remote.trials])
    same = np.allclose(a_scores, b_scores, rtol=1e-9, atol=0)
    print(f"same scores trial for trial: {same}")

    best = local.best
    print("best configuration: " + ", ".join(f"{k}={best[k]:.4g}" for k in es.PARAMETERS)
          + f"; validation NRMSE {best['nrmse']:.4f}, R2 {best['r2']:.5f}")
    esn = rnnfast.ESN(1, best["reservoir_size"], 1, spectral_radius=best["spectral_radius"],
                      leak_rate=best["leak_rate"], input_scaling=best["input_scaling"], density=best["density"],
                      ridge=best["ridge"], seed=best["seed"])
    esn.fit(u[tr], y[tr], washout=100)
    esn.predict(u[va])                                        # continue the state through validation
    test_nrmse = float(np.sqrt(np.mean((esn.predict(u[te]) - y[te]) ** 2)) / np.ptp(y[te]))
    print(f"test NRMSE of the best configuration: {test_nrmse:.4f}")
    import matplotlib
    matplotlib.use("Agg")
    local.plot(a.plot)
    print(f"report plot written to {a.plot}")
    ok = same and len(local) == n_trials and test_nrmse < (0.05 if a.quick else 0.02)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
