#!/usr/bin/env python
"""Reservoir computing at scale (issue #19): online RLS, a 64-configuration search, Dask workers.

(a) Online RLS (FORCE) with feedback, N=500 (density 0.1, one input, one output, float64): steps/s of
    rnnfast.esn.OnlineESN.partial_fit against reservoirpy's ``res << (res >> RLS)`` Model.partial_fit on
    the same matrices; the outputs are checked equal (first 200 steps) before timing.
(b) Grid search, 64 configurations: 4 spectral radii x 4 leak rates x 4 input scalings, N=500, density 0.1,
    ridge 1e-6, seed 0, Mackey-Glass (rnnfast.datasets.mackey_glass, 4000 steps: one step ahead, 3000 to
    train with a washout of 100, 1000 to validate), scored by NRMSE (max - min):
      rnnfast      rnnfast.esn.search(..., n_jobs=2)   (2 loky workers x 1 thread) and n_jobs=1 (this
                   process, 2 engine threads)
      reservoirpy  its documented joblib-parallel loop (as reservoirpy.hyper.parallel_research runs its
                   objective: joblib loky, 2 jobs, inner_max_num_threads=1), one objective per
                   configuration: Reservoir(W, Win, lr) >> Ridge(1e-6), fit with warmup 100, run on the
                   validation inputs, reservoirpy.observables.nrmse; W and Win are rnnfast's (the same
                   generated matrices, scaled per configuration), so both sides score the same reservoirs
    The best configuration of both must agree. Medians of --reps warm runs (the worker pools started
    by an untimed run first).
(c) Dask: the grid of (b) for 4 seeds (256 configurations, 4 populations) in a distributed LocalCluster of
    1 worker and of 2 workers (1 thread each, loopback), inside ``joblib.parallel_backend("dask")``: the
    2-worker speed-up. With a one-thread cluster joblib runs the tasks in the calling process (n_jobs == 1),
    so the 1-worker figure is also taken with the same tasks submitted to the worker by ``client.map``.

(d) The bound on (b): one configuration's float64 ridge statistics (X^T X of its training states) timed
    alone on one core, by the faster of the search's own update (the engine's ridge_stats_add, one thread)
    and SciPy's dsyrk; 64 of them on the machine's cores is the
    least time any exact float64 search of the grid can take, and reservoirpy's time over it the largest
    speed-up such a search can show.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_esn_search.py --isa avx512
    python benchmarks/bench_esn_search.py --isa avx2      # rnnfast, NumPy and OpenBLAS (both sides) on AVX2
    python benchmarks/bench_esn_search.py --quick           # smoke run (small sizes, no targets)
Writes benchmarks/results/bench_esn_search.json (bench_esn_search_<tier>.json with --isa).
"""

import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import pin_tier  # noqa: E402

if __name__ == "__main__":
    pin_tier(sys.argv)  # --isa TIER: restarts with rnnfast, NumPy and OpenBLAS held to the tier (workers inherit it)

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import rnnfast  # noqa: E402
from rnnfast import datasets  # noqa: E402
from rnnfast.esn import OnlineESN  # noqa: E402
from rnnfast.esn import hypersearch as es  # noqa: E402

from _harness import cpu_snapshot, host_facts, json_env, other_load, wait_idle  # noqa: E402

GRID = {"spectral_radius": [0.5, 0.8, 1.0, 1.25], "leak_rate": [0.1, 0.3, 0.6, 1.0],
        "input_scaling": [0.1, 0.5, 1.0, 2.0]}


def log(*a):
    print(*a, flush=True)




# ---- (a) online RLS ----------------------------------------------------------------------------------
def bench_rls(N, T_fast, T_rpy, reps):
    from reservoirpy.nodes import RLS, Reservoir
    base = rnnfast.ESN(1, N, 1, density=0.1, spectral_radius=1.0, feedback=True, seed=0)
    W, W_in, W_fb = base.W, base.W_in, base.W_fb
    rng = np.random.default_rng(0)
    T = max(T_fast, T_rpy)
    u = rng.uniform(-1, 1, (T, 1))
    y = np.sin(np.arange(T) / 10)[:, None]

    def ours(n):
        esn = OnlineESN(1, N, 1, rule="rls", alpha=1e-3, feedback=True, W=W, W_in=W_in, W_fb=W_fb,
                        leak_rate=0.3)
        t0 = time.perf_counter()
        out = esn.partial_fit(u[:n], y[:n])
        return time.perf_counter() - t0, out

    def theirs(n):
        res = Reservoir(W=W, Win=np.concatenate([W_in, W_fb], axis=1), bias=np.zeros(N), lr=0.3)
        model = res << (res >> RLS(alpha=1e-3))
        t0 = time.perf_counter()
        out = model.partial_fit(u[:n], y[:n])
        return time.perf_counter() - t0, out

    a, b = ours(200)[1], theirs(200)[1]
    err = float(np.abs(a - b).max() / np.abs(b).max())
    log(f"RLS N={N}: max relative difference of the first 200 outputs vs reservoirpy {err:.2e}")
    assert err < 1e-8, err
    t_ours = [T_fast / ours(T_fast)[0] for _ in range(reps)]
    t_rpy = [T_rpy / theirs(T_rpy)[0] for _ in range(reps)]
    r = {"N": N, "rnnfast_steps_per_s": statistics.median(t_ours),
         "reservoirpy_steps_per_s": statistics.median(t_rpy), "max_rel_diff_200_steps": err,
         "rnnfast_all": t_ours, "reservoirpy_all": t_rpy}
    r["speedup"] = r["rnnfast_steps_per_s"] / r["reservoirpy_steps_per_s"]
    log(f"  rnnfast {r['rnnfast_steps_per_s']:.0f} steps/s, reservoirpy {r['reservoirpy_steps_per_s']:.0f} "
        f"steps/s: {r['speedup']:.1f}x")
    return r


# ---- (b) the grid ------------------------------------------------------------------------------------
def mg_data(n_steps, n_train):
    mg = datasets.mackey_glass(n_steps + 1)
    u, y = mg[:-1], mg[1:]
    return u[:n_train], y[:n_train], u[n_train:], y[n_train:]


def _rpy_objective(data, W, W_in, rho, sr, lr, isc, ridge, washout):
    """reservoirpy's objective for one configuration (its hyperparameter-search tutorial's shape)."""
    from reservoirpy.nodes import Reservoir, Ridge
    from reservoirpy.observables import nrmse
    ut, yt, uv, yv = data
    res = Reservoir(W=W * (sr / rho), Win=W_in * isc, bias=np.zeros(W.shape[0]), lr=lr)
    model = res >> Ridge(ridge=ridge)
    model.fit(ut, yt, warmup=washout)
    pred = model.run(uv)
    return {"spectral_radius": sr, "leak_rate": lr, "input_scaling": isc, "nrmse": float(nrmse(yv, pred))}


def rpy_grid(data, N, density, ridge, washout, n_jobs):
    from joblib import Parallel, delayed, parallel_config
    base = rnnfast.ESN(1, N, 1, spectral_radius=1.0, input_scaling=1.0, density=density, seed=0)
    W, W_in = sp.csr_matrix(base.W), base.W_in
    configs = [(sr, lr, isc) for sr in GRID["spectral_radius"] for lr in GRID["leak_rate"]
               for isc in GRID["input_scaling"]]
    t0 = time.perf_counter()
    with parallel_config(backend="loky", inner_max_num_threads=1):
        out = Parallel(n_jobs=n_jobs)(delayed(_rpy_objective)(data, W, W_in, 1.0, sr, lr, isc, ridge, washout)
                                      for sr, lr, isc in configs)
    return time.perf_counter() - t0, out


def ours_grid(data, N, density, ridge, washout, n_jobs):
    space = dict(GRID, reservoir_size=N, density=density, ridge=ridge, seed=0)
    t0 = time.perf_counter()
    r = es.search(data, space, washout=washout, n_jobs=n_jobs, progress=False)
    return time.perf_counter() - t0, r


def bench_grid(N, n_steps, n_train, washout, reps):
    data = mg_data(n_steps, n_train)
    ridge, density = 1e-6, 0.1
    _, r1 = ours_grid(data, N, density, ridge, washout, 2)          # untimed: starts the loky workers
    _, rp = rpy_grid(data, N, density, ridge, washout, 2)
    ours_best = r1.best
    rpy_best = min(rp, key=lambda d: d["nrmse"])
    same = all(abs(ours_best[k] - rpy_best[k]) < 1e-12 for k in ("spectral_radius", "leak_rate", "input_scaling"))
    by_cfg = {(d["spectral_radius"], d["leak_rate"], d["input_scaling"]): d["nrmse"] for d in rp}
    diffs = [abs(t["nrmse"] - by_cfg[(t["spectral_radius"], t["leak_rate"], t["input_scaling"])])
             / by_cfg[(t["spectral_radius"], t["leak_rate"], t["input_scaling"])] for t in r1.trials]
    log(f"grid: best rnnfast {ours_best['spectral_radius']}/{ours_best['leak_rate']}/{ours_best['input_scaling']} "
        f"nrmse {ours_best['nrmse']:.5f}; reservoirpy {rpy_best['spectral_radius']}/{rpy_best['leak_rate']}/"
        f"{rpy_best['input_scaling']} nrmse {rpy_best['nrmse']:.5f}; same best: {same}; max relative nrmse "
        f"difference over the 64: {max(diffs):.2e}")
    t2 = [ours_grid(data, N, density, ridge, washout, 2)[0] for _ in range(reps)]
    t1 = [ours_grid(data, N, density, ridge, washout, 1)[0] for _ in range(reps)]
    tr = [rpy_grid(data, N, density, ridge, washout, 2)[0] for _ in range(max(1, reps // 2))]
    res = {"N": N, "density": density, "ridge": ridge, "steps": n_steps, "train": n_train, "washout": washout,
           "rnnfast_2workers_s": statistics.median(t2), "rnnfast_1process_s": statistics.median(t1),
           "reservoirpy_2jobs_s": statistics.median(tr), "same_best": same, "max_rel_nrmse_diff": max(diffs),
           "best_rnnfast": {k: ours_best[k] for k in ("spectral_radius", "leak_rate", "input_scaling", "nrmse")},
           "best_reservoirpy": rpy_best, "all": {"rnnfast_2": t2, "rnnfast_1": t1, "reservoirpy": tr}}
    res["speedup_2workers"] = res["reservoirpy_2jobs_s"] / res["rnnfast_2workers_s"]
    res["speedup_1process"] = res["reservoirpy_2jobs_s"] / res["rnnfast_1process_s"]
    log(f"  rnnfast 2 workers {res['rnnfast_2workers_s']:.2f} s, 1 process {res['rnnfast_1process_s']:.2f} s, "
        f"reservoirpy 2 jobs {res['reservoirpy_2jobs_s']:.2f} s: {res['speedup_2workers']:.1f}x / "
        f"{res['speedup_1process']:.1f}x")
    return res, data


# ---- (d) the bound ------------------------------------------------------------------------------------
def gram_bound(grid, N, n_train, washout, reps):
    """Seconds of one configuration's ridge statistics on one core, by the faster of two float64 updates
    (the engine's, which the search uses: centring + OpenBLAS dsyrk with the GIL released; SciPy's dsyrk on
    already centred rows, which counts only the rank-k update) -> the least time of 64 on all cores, and
    the speed-up it allows."""
    from scipy.linalg.blas import dsyrk
    from threadpoolctl import threadpool_limits

    from rnnfast.esn.readout import RidgeAccumulator
    rng = np.random.default_rng(0)
    X = np.tanh(rng.standard_normal((n_train - washout, N)))
    Y = rng.standard_normal((n_train - washout, 1))
    scratch = np.empty_like(X)
    times = {"rnnfast_engine": [], "scipy_dsyrk": []}
    before = rnnfast._core.build_info()["threads"]
    rnnfast._core.set_num_threads(1)  # one core: the engine's statistic splits over its threads otherwise
    try:
        with threadpool_limits(1):
            for _ in range(3 * reps):  # interleaved
                acc = RidgeAccumulator(N, 1)
                t0 = time.perf_counter()
                acc._add(X, Y, scratch)
                times["rnnfast_engine"].append(time.perf_counter() - t0)
                c = np.zeros((N, N), order="F")
                t0 = time.perf_counter()
                dsyrk(1.0, X.T, beta=1.0, c=c, trans=0, lower=0, overwrite_c=1)
                times["scipy_dsyrk"].append(time.perf_counter() - t0)
    finally:
        rnnfast._core.set_num_threads(before)
    med = {k: statistics.median(v) for k, v in times.items()}
    t1 = min(med.values())
    cores = os.cpu_count() or 1
    n_cfg = 64
    least = n_cfg * t1 / cores
    flop = (n_train - washout) * N * (N + 1)  # syrk's multiply-adds x 2
    out = {"stat_seconds_one_core": t1, "by_implementation_s": med, "gflops_one_core": flop / t1 / 1e9,
           "configs": n_cfg, "cores": cores, "least_search_s": least,
           "rnnfast_2workers_s": grid["rnnfast_2workers_s"], "reservoirpy_2jobs_s": grid["reservoirpy_2jobs_s"],
           "max_speedup": grid["reservoirpy_2jobs_s"] / least,
           "stat_share_of_rnnfast": 64 * med["rnnfast_engine"] / cores / grid["rnnfast_2workers_s"]}
    log(f"bound: one configuration's float64 X^T X ({n_train - washout}x{N}) on one core: rnnfast's engine "
        f"{med['rnnfast_engine'] * 1e3:.1f} ms, SciPy's dsyrk alone {med['scipy_dsyrk'] * 1e3:.1f} ms "
        f"({out['gflops_one_core']:.1f} GFLOP/s at the faster); 64 on {cores} cores >= {least:.3f} s: an exact "
        f"float64 search is at most {out['max_speedup']:.1f}x reservoirpy's {grid['reservoirpy_2jobs_s']:.2f} s; "
        f"rnnfast's statistics are {100 * out['stat_share_of_rnnfast']:.0f}% of its {grid['rnnfast_2workers_s']:.2f} s")
    return out


# ---- (c) Dask ----------------------------------------------------------------------------------------
def bench_dask(data, N, washout, reps, seeds=(0, 1, 2, 3)):
    import uuid

    import joblib
    from distributed import Client, LocalCluster
    # the grid for 4 seeds (256 configurations, 4 populations of 64): a cluster's fixed costs (scheduler,
    # transfers, each worker building its W) are then a small part, as in a real search
    space = dict(GRID, reservoir_size=N, density=0.1, ridge=1e-6, seed=list(seeds))
    checked = es._check_data(data)
    tasks, _ = es._tasks(es._configs_grid(es._check_space(space, "grid")), 1, None)
    out = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            with joblib.parallel_backend("dask"):
                es.search(data, space, washout=washout, progress=False)         # untimed: imports, caches
                ts = []
                cpu0 = time.process_time()
                for _ in range(reps):
                    t0 = time.perf_counter()
                    es.search(data, space, washout=washout, progress=False)
                    ts.append(time.perf_counter() - t0)
                # this process runs the client and, in a LocalCluster, the scheduler: its CPU use competes
                # with the workers on a 2-core machine. With one worker thread in the cluster joblib runs the
                # search's tasks here (its rule for n_jobs == 1): that run is the work without Dask.
                out[f"{workers}_workers_client_cpu_per_s"] = (time.process_time() - cpu0) / sum(ts)
            if workers == 1:
                # the same 4 tasks submitted straight to the one Dask worker (client.map): one Dask worker
                # with Dask's overheads, which joblib's search above does not use
                d = client.scatter(checked, broadcast=True)
                td = []
                for _ in range(reps + 1):
                    sid = uuid.uuid4().hex
                    t0 = time.perf_counter()
                    client.gather(client.map(es._run_task, tasks, data=d, dtype="float64", washout=washout,
                                             threads=1, search_id=sid, pure=False))
                    td.append(time.perf_counter() - t0)
                out["1_worker_on_dask_s"] = statistics.median(td[1:])
                out["1_worker_on_dask_all"] = td[1:]
        out[f"{workers}_workers_s"] = statistics.median(ts)
        out[f"{workers}_workers_all"] = ts
        log(f"dask {workers} worker(s), esn.search: {out[f'{workers}_workers_s']:.2f} s (client+scheduler process: "
            f"{out[f'{workers}_workers_client_cpu_per_s']:.2f} cores)")
        if workers == 1:
            log(f"dask 1 worker, the same tasks by client.map on the worker: {out['1_worker_on_dask_s']:.2f} s")
    out["speedup"] = out["1_workers_s"] / out["2_workers_s"]
    out["speedup_vs_1_worker_on_dask"] = out["1_worker_on_dask_s"] / out["2_workers_s"]
    log(f"  2 workers / 1 worker: {out['speedup']:.2f}x (1 worker in this process, as joblib runs it); "
        f"{out['speedup_vs_1_worker_on_dask']:.2f}x against the tasks on the one Dask worker")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--isa", choices=("baseline", "avx2", "avx512"), default=None,
                   help="hold rnnfast, NumPy and OpenBLAS to this tier (the script restarts itself)")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    if a.json is None:
        a.json = os.path.join(REPO, "benchmarks", "results",
                              "bench_esn_search.json" if a.isa is None else f"bench_esn_search_{a.isa}.json")
    if a.quick:
        N, steps, train, washout, reps = 100, 800, 600, 50, 1
        rls_args = (100, 500, 100, 1)
    else:
        N, steps, train, washout, reps = 500, 4000, 3000, 100, a.reps
        rls_args = (500, 4000, 300, reps)
    import reservoirpy
    facts = host_facts(np)
    log(f"CPU: {facts['cpu_model']}; rnnfast {rnnfast.build_info()['cpu_isa']}, {os.cpu_count()} cores; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    result = {"machine": facts, "rnnfast": {k: str(v) for k, v in rnnfast.build_info().items()},
              "reservoirpy": reservoirpy.__version__, "env_OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
              "quick": a.quick, "tier_pinned": a.isa, "tier_env": json_env(a.isa) if a.isa else {}}
    def section(fn, *args):
        wait_idle(120, log)                      # start on a quiet machine (others' use < 0.15 cores)
        a = cpu_snapshot()
        out = fn(*args)
        load, steal = other_load(a, cpu_snapshot())
        log(f"  (other processes used {load:.2f} cores on average meanwhile)")
        res = out[0] if isinstance(out, tuple) else out
        res["other_load_cores"], res["steal_cores"] = load, steal
        return out

    result["rls"] = section(bench_rls, *rls_args)
    result["grid"], data = section(bench_grid, N, steps, train, washout, reps)
    result["bound"] = section(gram_bound, result["grid"], N, train, washout, reps)
    result["dask"] = section(bench_dask, data, N, washout, max(1, reps // 2 + 1))
    if not a.quick:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1, default=str)
        log(f"wrote {a.json}")


if __name__ == "__main__":
    main()
