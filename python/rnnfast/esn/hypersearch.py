"""Hyperparameter search for echo state networks: grid, random or Optuna, local or on a cluster.

    result = rnnfast.esn.search(
        (u_train, y_train, u_val, y_val),
        {"reservoir_size": 500, "spectral_radius": [0.5, 0.9, 1.1, 1.3], "leak_rate": [0.1, 0.3, 0.6, 1.0],
         "input_scaling": [0.1, 0.5, 1.0, 2.0], "density": 0.1, "ridge": [1e-8, 1e-6], "seed": 0},
        method="grid", washout=100)
    result.best            # {'spectral_radius': ..., 'nrmse': ..., 'r2': ...}
    result.table()         # a pandas DataFrame (a list of dicts without pandas)
    result.plot("report.png")

Searched parameters: spectral_radius, leak_rate, input_scaling, density, ridge, reservoir_size, seed. Each
entry of ``space`` is a fixed value, a list of values (the grid's axis; a uniform choice in a random search)
or, for random and Optuna searches, a distribution: ``uniform(lo, hi)``, ``loguniform(lo, hi)``,
``randint(lo, hi)`` (hi excluded).

How it runs. A configuration's reservoir is ``rnnfast.ESN(I, reservoir_size, O, spectral_radius=...,
leak_rate=..., input_scaling=..., density=..., seed=...)``: its W depends only on (reservoir_size, density,
seed), and configurations that share those share W and W_in up to the scales of W and W_in and the leak
rate. They run as one population (``rnnfast.esn.run_population``): one engine call per time chunk for all
of them, one ridge statistic per member, every ridge value solved from it. Each trial is scored on the
validation data after training (continuing from the training state, as ``ESN.predict`` would) by
reservoirpy's definitions: ``nrmse`` = RMSE / (max - min) of y_val (``norm='std'``: / std), ``r2`` =
1 - SSE / SST, both pooled over all outputs and steps.

Parallel and distributed: the populations are split into tasks run by joblib: local processes (loky) by
default, ``n_jobs`` of them; inside ``with joblib.parallel_backend("dask"):`` (a ``distributed.Client``
connected) the same call runs on the Dask cluster, and likewise on any joblib backend (Ray's). Each task
limits its engine threads (``rnnfast._core.set_num_threads``) and its BLAS (threadpoolctl) to
``threads_per_worker`` (see ``search``), so the workers never oversubscribe the cores. Results do not
depend on where a task ran. A KeyboardInterrupt stops the search and keeps the trials already finished
(``result.interrupted``). When a task fails (its own error, a worker process killed, a lost cluster) the
search raises ``SearchError``: the cause is the task's error, and ``error.result`` holds the trials that
finished before it.
"""

import itertools
import math
import os
import time
import uuid

import numpy as np

from .. import _core
from .._util import checks as _checks
from .model import ESN
from .population import _fit_and_score

__all__ = ["search", "SearchResult", "SearchError", "uniform", "loguniform", "randint", "plot_search_report",
           "PARAMETERS"]

PARAMETERS = ("spectral_radius", "leak_rate", "input_scaling", "density", "ridge", "reservoir_size", "seed")
_DEFAULTS = {"spectral_radius": 0.9, "leak_rate": 1.0, "input_scaling": 1.0, "density": 0.1, "ridge": 1e-6,
             "seed": 0}
_INT_PARAMS = ("reservoir_size", "seed")
_ACC_BYTES = 256 << 20  # ridge statistics (N x N float64 per member) held at once by one task


# ---------------------------------------------------------------------------------------------
# distributions
# ---------------------------------------------------------------------------------------------

class _Distribution:
    def __init__(self, lo, hi, name):
        self.lo = _checks.real(lo, f"{name} low")
        self.hi = _checks.real(hi, f"{name} high")
        if not self.lo < self.hi:
            raise ValueError(f"{name}: low must be < high, got {lo} and {hi}")

    def __repr__(self):
        return f"{type(self).__name__.lstrip('_').lower()}({self.lo:g}, {self.hi:g})"


class _Uniform(_Distribution):
    def sample(self, rng):
        return float(rng.uniform(self.lo, self.hi))

    def suggest(self, trial, name):
        return trial.suggest_float(name, self.lo, self.hi)


class _LogUniform(_Distribution):
    def __init__(self, lo, hi):
        super().__init__(lo, hi, "loguniform")
        if self.lo <= 0:
            raise ValueError(f"loguniform: low must be > 0, got {lo}")

    def sample(self, rng):
        return float(np.exp(rng.uniform(np.log(self.lo), np.log(self.hi))))

    def suggest(self, trial, name):
        return trial.suggest_float(name, self.lo, self.hi, log=True)


class _RandInt(_Distribution):
    def __init__(self, lo, hi):
        for v, what in ((lo, "low"), (hi, "high")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"randint: {what} must be an int, got {type(v).__name__}")
        super().__init__(lo, hi, "randint")
        self.lo, self.hi = int(lo), int(hi)

    def sample(self, rng):
        return int(rng.integers(self.lo, self.hi))

    def suggest(self, trial, name):
        return trial.suggest_int(name, self.lo, self.hi - 1)


def uniform(low, high):
    """A real drawn uniformly in [low, high) (random and Optuna searches)."""
    return _Uniform(low, high, "uniform")


def loguniform(low, high):
    """A real whose log is drawn uniformly: spectral radii, ridges, input scalings over decades."""
    return _LogUniform(low, high)


def randint(low, high):
    """An int drawn uniformly in [low, high): reservoir sizes, seeds."""
    return _RandInt(low, high)


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------

def _check_value(name, v):
    """One hyperparameter value -> float or int, or a ValueError/TypeError naming it."""
    where = f"space[{name!r}]"
    if name in _INT_PARAMS:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{where} must hold ints, got {v!r}")
        v = int(v)
        if name == "reservoir_size" and v < 1:
            raise ValueError(f"{where} must be >= 1, got {v}")
        if name == "seed" and v < 0:
            raise ValueError(f"{where} must be >= 0, got {v}")
        return v
    v = _checks.real(v, where)
    if name == "leak_rate" and not 0 < v <= 1:
        raise ValueError(f"{where} must lie in (0, 1], got {v}")
    if name == "density" and not 0 < v <= 1:
        raise ValueError(f"{where} must lie in (0, 1], got {v}")
    if name in ("spectral_radius", "input_scaling") and v <= 0:
        raise ValueError(f"{where} must be > 0, got {v}")
    if name == "ridge" and v < 0:
        raise ValueError(f"{where} must be >= 0, got {v}")
    return v


def _check_space(space, method):
    if not isinstance(space, dict):
        raise TypeError(f"space must be a dict of hyperparameter -> value(s), got {type(space).__name__}")
    unknown = [k for k in space if k not in PARAMETERS]
    if unknown:
        raise ValueError(f"space has unknown hyperparameters {unknown}; known: {list(PARAMETERS)}")
    if "reservoir_size" not in space:
        raise ValueError("space must give reservoir_size (a value, a list or randint(...))")
    out = {}
    for name in PARAMETERS:
        v = space.get(name, _DEFAULTS.get(name))
        if isinstance(v, _Distribution):
            if method == "grid":
                raise ValueError(f"space[{name!r}] is a distribution ({v!r}): a grid search needs a list of values")
            if name in _INT_PARAMS and not isinstance(v, _RandInt):
                raise TypeError(f"space[{name!r}] must be a list of ints or randint(...), got {v!r}")
            if name not in _INT_PARAMS and isinstance(v, _RandInt):
                raise TypeError(f"space[{name!r}] takes uniform(...) or loguniform(...), not randint")
            if isinstance(v, _LogUniform) or isinstance(v, _Uniform):
                for bound in (v.lo, v.hi if name != "leak_rate" else min(v.hi, 1.0)):
                    _check_value(name, bound if bound != 0 or name == "ridge" else v.hi)
            out[name] = v
        elif isinstance(v, (list, tuple, np.ndarray)):
            vals = list(np.asarray(v, dtype=object).ravel())
            if not vals:
                raise ValueError(f"space[{name!r}] must not be an empty list")
            out[name] = [_check_value(name, x) for x in vals]
        else:
            out[name] = [_check_value(name, v)]
    return out


def _check_data(data):
    if not (isinstance(data, (tuple, list)) and len(data) == 4):
        raise TypeError("data must be a tuple (u_train, y_train, u_val, y_val)")
    names = ("data[0] (u_train)", "data[1] (y_train)", "data[2] (u_val)", "data[3] (y_val)")
    arrs = []
    for a, name in zip(data, names):
        if isinstance(a, (str, bytes)) or a is None or not (isinstance(a, np.ndarray) or hasattr(a, "__array__")
                                                            or isinstance(a, (list, tuple))):
            raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
        a = np.asarray(a)
        if a.dtype == np.bool_ or a.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        if a.ndim not in (2, 3):
            raise ValueError(f"{name} must have shape (T, F) or (T, B, F), got {a.shape}")
        if a.shape[0] < 1 or a.shape[-1] < 1 or (a.ndim == 3 and a.shape[1] < 1):
            raise ValueError(f"{name} must not be empty, got shape {a.shape}")
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or Inf")
        arrs.append(a[:, None, :] if a.ndim == 2 else a)
    ut, yt, uv, yv = arrs
    if ut.shape[:2] != yt.shape[:2]:
        raise ValueError(f"u_train and y_train must have the same (T, B), got {ut.shape} and {yt.shape}")
    if uv.shape[:2] != yv.shape[:2]:
        raise ValueError(f"u_val and y_val must have the same (T, B), got {uv.shape} and {yv.shape}")
    if ut.shape[1] != uv.shape[1]:
        raise ValueError(f"train and validation data must have the same number of sequences B, "
                         f"got {ut.shape[1]} and {uv.shape[1]}")
    if ut.shape[2] != uv.shape[2] or yt.shape[2] != yv.shape[2]:
        raise ValueError("train and validation data must have the same numbers of input and output features")
    return ut, yt, uv, yv


# ---------------------------------------------------------------------------------------------
# the work: one population of configurations sharing W
# ---------------------------------------------------------------------------------------------

_ESN_CACHE = {"search": None}


def _base_esn(I, N, O, density, seed, dtype, search_id):
    """The ESN whose W and W_in a population scales (spectral radius 1, input scaling 1). Kept while a
    worker runs tasks of one search call (search_id), so it builds each W (and computes its spectral
    radius) once per search; a new search starts afresh (its timing never depends on an earlier one)."""
    if _ESN_CACHE["search"] != search_id:
        _ESN_CACHE.clear()
        _ESN_CACHE["search"] = search_id
    key = (I, N, O, density, seed, dtype)
    esn = _ESN_CACHE.get(key)
    if esn is None:
        if len(_ESN_CACHE) > 8:
            _ESN_CACHE.clear()
            _ESN_CACHE["search"] = search_id
        esn = _ESN_CACHE[key] = ESN(I, N, O, spectral_radius=1.0, input_scaling=1.0, density=density,
                                    seed=seed, dtype=dtype, ridge=0.0)
    return esn


def _population_sse(esn, ut, yt, uv, yv, members, ridges, washout):
    """SSE (members, ridges) on the validation data of each member (sr, leak, input scaling) with each
    ridge, trained on ut/yt after `washout` steps; the validation run continues from the training state."""
    N, dt = esn.reservoir_size, esn.dtype
    sr = np.array([m[0] for m in members], dt)
    leak = np.repeat(np.array([m[1] for m in members], dt)[:, None], N, axis=1)
    ins = np.array([m[2] for m in members], dt)
    sse, _, _ = _fit_and_score(esn, ut, yt, uv, yv, sr, ins, leak, ridges, washout)
    return sse.sum(axis=2)


def _limit_threads(threads):
    """Engine and BLAS threads of this process -> threads (None: the engine's left as they are, BLAS to one:
    the search's BLAS calls (the ridge statistics) alternate with engine calls, and BLAS threads left
    spinning after a call take the cores from the engine's, measured 10x slower on 2 cores); returns a
    function that restores them."""
    from threadpoolctl import threadpool_limits
    before = _core.build_info()["threads"]
    if threads is not None:
        _core.set_num_threads(threads)
    limits = threadpool_limits(limits=threads or 1)

    def restore():
        limits.restore_original_limits()
        _core.set_num_threads(before)
    return restore


def _run_task(task, data, dtype, washout, threads, search_id):
    """One unit of work (run in a worker): -> (task id, SSE (members, ridges), seconds)."""
    tid, (N, density, seed), members, ridges = task
    t0 = time.perf_counter()
    restore = _limit_threads(threads)
    try:
        ut, yt, uv, yv = data
        esn = _base_esn(ut.shape[2], N, yt.shape[2], density, seed, dtype, search_id)
        sse = _population_sse(esn, ut, yt, uv, yv, members, ridges, washout)
    finally:
        restore()
    return tid, sse, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# configurations -> tasks -> scores
# ---------------------------------------------------------------------------------------------

def _configs_grid(space):
    names = list(PARAMETERS)
    return [dict(zip(names, combo)) for combo in itertools.product(*(space[n] for n in names))]


def _sample(v, rng):
    if isinstance(v, _Distribution):
        return v.sample(rng)
    return v[int(rng.integers(len(v)))] if len(v) > 1 else v[0]


def _configs_random(space, n_trials, seed):
    rng = np.random.default_rng(seed)
    return [{n: _sample(space[n], rng) for n in PARAMETERS} for _ in range(n_trials)]


def _tasks(configs, workers, members_per_task):
    """Group the configurations by W (reservoir_size, density, seed) and split each group's distinct members
    (spectral_radius, leak_rate, input_scaling) into tasks: about `workers` tasks in all, shared among the
    groups by size (so one large group keeps every worker busy), none over the memory cap.
    -> (tasks [(id, (N, density, seed), members, ridges)], where[config] = (task id, member, ridge))."""
    def member(c):
        return (c["spectral_radius"], c["leak_rate"], c["input_scaling"])

    groups = {}
    for i, c in enumerate(configs):
        groups.setdefault((c["reservoir_size"], c["density"], c["seed"]), []).append(i)
    distinct = {key: sorted({member(configs[i]) for i in idx}) for key, idx in groups.items()}
    total = sum(len(m) for m in distinct.values())
    tasks, where = [], {}
    for key, idx in groups.items():
        members = distinct[key]
        cap = max(1, min(members_per_task or len(members), _ACC_BYTES // (8 * key[0] * key[0])))
        k = max(1, min(len(members), round(workers * len(members) / total)))
        per = min(cap, math.ceil(len(members) / k))
        for m0 in range(0, len(members), per):
            chunk = members[m0:m0 + per]
            pos = {m: j for j, m in enumerate(chunk)}
            mine = [i for i in idx if member(configs[i]) in pos]
            ridges = sorted({configs[i]["ridge"] for i in mine})
            rpos = {r: j for j, r in enumerate(ridges)}
            tasks.append((len(tasks), key, chunk, ridges))
            for i in mine:
                where[i] = (len(tasks) - 1, pos[member(configs[i])], rpos[configs[i]["ridge"]])
    return tasks, where


def _backend():
    """(name of the active joblib backend's class, its workers for n_jobs)."""
    from joblib.parallel import get_active_backend
    backend, _ = get_active_backend()
    return type(backend).__name__


class _Scorer:
    """Validation statistics of y_val for reservoirpy's pooled NRMSE and R^2."""

    def __init__(self, yv, norm):
        self.n = yv.size
        self.sst = float(((yv - yv.mean()) ** 2).sum())
        if norm == "minmax":
            self.scale = float(yv.max() - yv.min())
        elif norm == "std":
            self.scale = float(yv.std())
        else:
            raise ValueError(f"norm must be 'minmax' or 'std', got {norm!r}")

    def __call__(self, sse):
        nrmse = math.sqrt(sse / self.n) / max(self.scale, 1e-300)
        r2 = 1.0 - sse / self.sst if self.sst > 0 else float("nan")
        return nrmse, r2


def _n_workers(n_jobs):
    from joblib import effective_n_jobs
    try:
        return max(1, int(effective_n_jobs(n_jobs)))
    except Exception:  # a backend that cannot say (before it starts)
        return 1


# ---------------------------------------------------------------------------------------------
# the public call
# ---------------------------------------------------------------------------------------------

class SearchResult:
    """The trials of a search: ``trials`` (list of dicts: trial, the hyperparameters, nrmse, r2, loss),
    ``best`` (the trial of lowest loss), ``interrupted``, ``metric``, ``seconds``; ``table()`` and
    ``plot()``."""

    def __init__(self, trials, metric, interrupted, seconds, space):
        self.trials = sorted(trials, key=lambda t: t["trial"])
        self.metric = metric
        self.interrupted = interrupted
        self.seconds = seconds
        self.space = space
        finite = [t for t in self.trials if np.isfinite(t["loss"])]
        self.best = min(finite, key=lambda t: (t["loss"], t["trial"])) if finite else None

    def __len__(self):
        return len(self.trials)

    def __repr__(self):
        best = "none" if self.best is None else ", ".join(f"{k}={self.best[k]:g}" for k in PARAMETERS) + \
            f", {self.metric}={self.best[self.metric]:.4g}"
        return (f"SearchResult({len(self.trials)} trials{' (interrupted)' if self.interrupted else ''}, "
                f"best: {best})")

    def table(self):
        """The trials as a pandas DataFrame (one row per trial), or a list of dicts without pandas."""
        try:
            import pandas as pd
        except ImportError:
            return [dict(t) for t in self.trials]
        return pd.DataFrame(self.trials).set_index("trial")

    def plot(self, path=None, **kwargs):
        """The report plot (see plot_search_report)."""
        return plot_search_report(self, path=path, **kwargs)


def search(data, space, *, method="grid", n_trials=None, metric="nrmse", norm="minmax", washout=0,
           n_jobs=-1, threads_per_worker=None, progress=True, seed=0, dtype="float64", members_per_task=None):
    """Search ESN hyperparameters; returns a :class:`SearchResult`.

    data: (u_train, y_train, u_val, y_val), each (T, F) or (T, B, F) (B sequences trained together).
    space: dict hyperparameter -> value, list of values, or distribution (see the module doc); absent ones
      take rnnfast.ESN's defaults (spectral_radius 0.9, leak_rate 1, input_scaling 1, density 0.1,
      ridge 1e-6, seed 0); reservoir_size is required.
    method: 'grid' (every combination of the lists), 'random' (n_trials draws, reproducible from seed) or
      'optuna' (Optuna's TPE sampler seeded with seed, n_trials trials asked in batches of the worker
      count; needs the optuna package).
    metric: 'nrmse' (minimised) or 'r2' (maximised): the trial's loss is nrmse or 1 - r2.
    norm: NRMSE's normalisation, 'minmax' (reservoirpy's default) or 'std'.
    washout: training steps dropped from the ridge statistics.
    n_jobs: joblib workers (-1: all cores; inside a joblib backend context, that backend's workers). joblib
      runs one job in this process: so does a Dask cluster with a single worker thread in all.
    threads_per_worker: engine and BLAS threads of each task (default: local worker processes share the
      cores, cores // workers; in this process the engine keeps its threads and BLAS gets one; on a cluster
      backend (Dask, Ray) 1, as each of a worker's threads runs a task).
    progress: a tqdm progress bar. dtype: 'float32' or 'float64' for the reservoir (the readout is
      always trained in float64). members_per_task: cap on the configurations run as one population.
    """
    method = method if method in ("grid", "random", "optuna") else _bad("method", method,
                                                                        "'grid', 'random' or 'optuna'")
    metric = metric if metric in ("nrmse", "r2") else _bad("metric", metric, "'nrmse' or 'r2'")
    if norm not in ("minmax", "std"):
        _bad("norm", norm, "'minmax' or 'std'")
    dtype = _checks.as_dtype(dtype).name
    washout = _checks.positive_int(washout, "washout", minimum=0)
    seed = _checks.seed(seed)
    progress = _checks.boolean(progress, "progress")
    if members_per_task is not None:
        members_per_task = _checks.positive_int(members_per_task, "members_per_task")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))
                               or n_jobs == 0 or n_jobs < -1):
        raise ValueError(f"n_jobs must be a positive int or -1 (all cores), got {n_jobs!r}")
    space = _check_space(space, method)
    if method == "grid":
        if n_trials is not None:
            raise ValueError("n_trials is for random and Optuna searches; a grid search runs every combination")
    else:
        n_trials = _checks.positive_int(n_trials, "n_trials") if n_trials is not None else \
            _bad("n_trials", None, "an int >= 1 for a random or Optuna search")
    ut, yt, uv, yv = _check_data(data)
    if washout >= ut.shape[0]:
        raise ValueError(f"washout={washout} leaves no training steps (u_train has {ut.shape[0]})")
    scorer = _Scorer(yv, norm)
    workers = _n_workers(n_jobs)
    backend = _backend()
    if threads_per_worker is not None:
        threads_per_worker = _checks.positive_int(threads_per_worker, "threads_per_worker")
    elif backend == "LokyBackend" or backend == "MultiprocessingBackend":
        # local processes: the cores shared among them (one process: its threads left as they are)
        threads_per_worker = None if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
    elif backend in ("SequentialBackend", "ThreadingBackend"):
        threads_per_worker = None  # this process (threads: the engine runs one call at a time anyway)
    else:
        threads_per_worker = 1  # a cluster (Dask, Ray): each of a worker's task threads runs one engine thread
    data_d = (ut, yt, uv, yv)

    t_start = time.perf_counter()
    search_id = uuid.uuid4().hex
    trials, interrupted = [], False
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=(len(_configs_grid(space)) if method == "grid" else n_trials), unit="trial",
                   desc="esn.search")
    try:
        if method == "optuna":
            interrupted = _run_optuna(space, n_trials, seed, metric, data_d, dtype, washout, n_jobs, workers,
                                      threads_per_worker, members_per_task, scorer, trials, bar, search_id)
        else:
            configs = _configs_grid(space) if method == "grid" else _configs_random(space, n_trials, seed)
            interrupted = _evaluate(configs, 0, data_d, dtype, washout, n_jobs, workers, threads_per_worker,
                                    members_per_task, scorer, metric, trials, bar, search_id)
    except _TaskFailed as failed:  # a task's error, a worker killed, a lost cluster: keep what finished
        e = failed.__cause__
        partial = SearchResult(trials, metric, True, time.perf_counter() - t_start, space)
        raise SearchError(f"esn.search stopped: a task failed ({type(e).__name__}: {e}); the "
                          f"{len(partial.trials)} trials finished before are in this error's .result",
                          partial) from e
    finally:
        if bar is not None:
            bar.close()
    return SearchResult(trials, metric, interrupted, time.perf_counter() - t_start, space)


class SearchError(RuntimeError):
    """A search task failed: the original error is the cause (``__cause__``), the trials that finished
    before it are in ``result`` (a :class:`SearchResult`, marked interrupted)."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def _bad(name, value, what):
    raise ValueError(f"{name} must be {what}, got {value!r}")


def _evaluate(configs, first_trial, data, dtype, washout, n_jobs, workers, threads, members_per_task, scorer,
              metric, trials, bar, search_id):
    """Runs the configurations' tasks through joblib, appending finished trials; -> interrupted."""
    from joblib import Parallel, delayed
    tasks, where = _tasks(configs, workers, members_per_task)
    by_task = {}
    for i, (t, m, k) in where.items():
        by_task.setdefault(t, []).append((i, m, k))
    try:
        # batch_size=1: a task is seconds of work; joblib's automatic batching would hand several to
        # one worker (measured on Dask: both tasks of a 2-worker search on one worker)
        runner = Parallel(n_jobs=n_jobs, batch_size=1, return_as="generator_unordered")
        for tid, sse, secs in runner(delayed(_run_task)(task, data, dtype, washout, threads, search_id)
                                     for task in tasks):
            done = by_task[tid]
            for i, m, k in done:
                nrmse, r2 = scorer(sse[m, k])
                loss = nrmse if metric == "nrmse" else 1.0 - r2
                row = {"trial": first_trial + i}
                row.update({n: configs[i][n] for n in PARAMETERS})
                row.update(nrmse=nrmse, r2=r2, loss=loss if np.isfinite(loss) else float("inf"),
                           task_seconds=secs)
                trials.append(row)
            if bar is not None:
                bar.update(len(done))
                best = min(t["loss"] for t in trials)
                bar.set_postfix({"best " + metric: f"{best if metric == 'nrmse' else 1 - best:.4g}"})
    except KeyboardInterrupt:
        return True
    except Exception as e:
        raise _TaskFailed() from e
    return False


class _TaskFailed(Exception):
    """Raised from a failed task (its cause) to search(), which keeps the finished trials."""


def _run_optuna(space, n_trials, seed, metric, data, dtype, washout, n_jobs, workers, threads,
                members_per_task, scorer, trials, bar, search_id):
    try:
        import optuna
    except ImportError:
        raise ImportError("method='optuna' needs the optuna package (pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    batch = max(1, 2 * workers)
    done = 0
    while done < n_trials:
        asked = [study.ask() for _ in range(min(batch, n_trials - done))]
        configs = []
        for tr in asked:
            c = {}
            for n in PARAMETERS:
                v = space[n]
                if isinstance(v, _Distribution):
                    c[n] = v.suggest(tr, n)
                elif len(v) > 1:
                    c[n] = tr.suggest_categorical(n, v)
                else:
                    c[n] = v[0]
            configs.append(c)
        before = len(trials)
        interrupted = _evaluate(configs, done, data, dtype, washout, n_jobs, workers, threads, members_per_task,
                                scorer, metric, trials, bar, search_id)
        finished = {t["trial"]: t for t in trials[before:]}
        for j, tr in enumerate(asked):
            row = finished.get(done + j)
            if row is None:
                study.tell(tr, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(tr, row["loss"])
        if interrupted:
            return True
        done += len(asked)
    return False


# ---------------------------------------------------------------------------------------------
# the report plot
# ---------------------------------------------------------------------------------------------

def plot_search_report(result, path=None, metric=None, color="r2", log_params=None, title=None):
    """Loss against each searched hyperparameter (one panel each), the points coloured by another score
    and the best trials marked: reservoirpy's ``plot_hyperopt_report``, for a :class:`SearchResult`.

    metric: the plotted score (default the search's metric); color: the score that colours the points
    (None: one colour); log_params: hyperparameters on a log axis (default: those whose values span more
    than a decade). path: write the figure there (any format matplotlib knows). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    if not isinstance(result, SearchResult):
        raise TypeError(f"result must be a SearchResult, got {type(result).__name__}")
    if not result.trials:
        raise ValueError("result has no trials to plot")
    metric = result.metric if metric is None else metric
    if metric not in ("nrmse", "r2", "loss"):
        raise ValueError(f"metric must be 'nrmse', 'r2' or 'loss', got {metric!r}")
    if color is not None and color not in ("nrmse", "r2", "loss"):
        raise ValueError(f"color must be 'nrmse', 'r2', 'loss' or None, got {color!r}")
    trials = result.trials
    varying = [n for n in PARAMETERS if len({t[n] for t in trials}) > 1] or ["spectral_radius"]
    y = np.array([t[metric] for t in trials], float)
    c = None if color is None else np.array([t[color] for t in trials], float)
    order = np.argsort(y if metric != "r2" else -y)
    top = order[:max(1, len(trials) // 20)]
    ncol = min(3, len(varying))
    nrow = math.ceil(len(varying) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow + 0.6), squeeze=False,
                             layout="constrained")
    # the colour scale spans the middle 90% of the trials (a few failed ones, r2 of -1e3, would otherwise
    # paint every other trial one colour); the ends are clipped
    vmin = vmax = None
    clabel = color
    if c is not None:
        finite = c[np.isfinite(c)]
        if finite.size >= 20:
            vmin, vmax = np.percentile(finite, [5, 95])
            clabel = f"{color} (5-95% of trials)"
    for ax, name in zip(axes.ravel(), varying):
        x = np.array([t[name] for t in trials], float)
        sc = ax.scatter(x, y, c=c, s=14, cmap="viridis", alpha=0.8, vmin=vmin, vmax=vmax)
        ax.scatter(x[top], y[top], s=60, facecolors="none", edgecolors="red", linewidths=1.2,
                   label=f"best {len(top)}")
        positive = (x > 0).all()
        logx = (name in log_params) if log_params is not None else (positive and x.max() / x.min() > 10)
        if logx and positive:
            ax.set_xscale("log")
        if metric == "nrmse" and (y > 0).all() and y.max() / y.min() > 10:
            ax.set_yscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(varying):]:
        ax.axis("off")
    axes.ravel()[0].legend(loc="best", fontsize=8)
    if c is not None:
        fig.colorbar(sc, ax=axes.ravel().tolist(), label=clabel, shrink=0.8,
                     extend="both")
    best = result.best
    where = [f"{n}={best[n]:.3g}" for n in varying]
    lines = [", ".join(where[i:i + 4]) for i in range(0, len(where), 4)]
    fig.suptitle(title or (f"{len(trials)} trials; best {metric}={best[metric]:.4g} at " + ",\n".join(lines)),
                 fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
