"""rnnfast.esn.search: every trial's score equals that of an ESN built and fitted alone; grid/random/Optuna;
the same scores, trial for trial, in one process, in loky workers and on a 2-worker Dask LocalCluster;
interrupt; table and report plot; argument errors."""

import math

import numpy as np
import pytest

import rnnfast
from rnnfast import datasets
from rnnfast.esn import hypersearch as es

SPACE = {"reservoir_size": 40, "spectral_radius": [0.5, 1.1], "leak_rate": [0.3, 1.0],
         "input_scaling": [0.5, 1.0], "density": 0.2, "ridge": [1e-7, 1e-4], "seed": [0, 1]}


@pytest.fixture(scope="module")
def data():
    mg = datasets.mackey_glass(700)
    u, y = mg[:-1], mg[1:]
    return u[:400], y[:400], u[400:], y[400:]


def _alone(data, cfg, washout, norm="minmax", dtype="float64"):
    ut, yt, uv, yv = data
    esn = rnnfast.ESN(1, cfg["reservoir_size"], 1, spectral_radius=cfg["spectral_radius"],
                      leak_rate=cfg["leak_rate"], input_scaling=cfg["input_scaling"], density=cfg["density"],
                      ridge=cfg["ridge"], seed=cfg["seed"], dtype=dtype)
    esn.fit(ut, yt, washout=washout)
    pred = esn.predict(uv)
    sse = float(((pred - yv) ** 2).sum())
    scale = np.ptp(yv) if norm == "minmax" else yv.std()
    return math.sqrt(sse / yv.size) / scale, 1 - sse / float(((yv - yv.mean()) ** 2).sum())


def _scores(result):
    return np.array([[t["nrmse"], t["r2"]] for t in result.trials])


def test_grid_trials_equal_esns_built_alone(data):
    res = es.search(data, SPACE, washout=20, n_jobs=1, progress=False)
    assert len(res) == 32 and not res.interrupted
    combos = {tuple(t[n] for n in es.PARAMETERS) for t in res.trials}
    assert len(combos) == 32                                  # every grid point once
    for t in res.trials[::7] + [res.best]:
        nrmse, r2 = _alone(data, t, 20)
        assert t["nrmse"] == pytest.approx(nrmse, rel=1e-6)
        assert t["r2"] == pytest.approx(r2, rel=1e-6, abs=1e-9)
    assert res.best["loss"] == min(t["loss"] for t in res.trials)
    assert res.best["nrmse"] < 0.05                          # Mackey-Glass one step ahead is easy


def test_float32_reservoir_trials_equal_float32_esns_alone(data):
    """dtype='float32': the reservoir runs in float32 (the read-out in float64) and each trial equals a
    float32 ESN fitted alone; the scores stay near float64's."""
    space = dict(SPACE, seed=0, ridge=1e-6)
    res = es.search(data, space, washout=20, n_jobs=1, progress=False, dtype="float32")
    ref = es.search(data, space, washout=20, n_jobs=1, progress=False)
    for t in res.trials:
        nrmse, _ = _alone(data, t, 20, dtype="float32")
        assert t["nrmse"] == pytest.approx(nrmse, rel=1e-3)
    np.testing.assert_allclose(_scores(res)[:, 0], _scores(ref)[:, 0], rtol=5e-3)


def test_population_grouping_runs_few_tasks():
    configs = es._configs_grid(es._check_space(SPACE, "grid"))
    tasks, where = es._tasks(configs, 1, None)
    assert len(tasks) == 2                                    # one per seed: 8 members, 2 ridges each
    assert all(len(t[2]) == 8 and len(t[3]) == 2 for t in tasks)
    assert sorted(where) == list(range(32))
    tasks2, _ = es._tasks(configs, 4, None)                  # 4 workers: each group split in two
    assert len(tasks2) == 4
    tasks3, _ = es._tasks(configs, 1, 3)                     # capped members per task
    assert max(len(t[2]) for t in tasks3) == 3


def test_random_search_reproducible_and_in_range(data):
    space = dict(SPACE, spectral_radius=es.loguniform(0.3, 1.5), leak_rate=es.uniform(0.1, 1.0),
                 seed=es.randint(0, 3))
    a = es.search(data, space, method="random", n_trials=12, seed=5, n_jobs=1, progress=False)
    b = es.search(data, space, method="random", n_trials=12, seed=5, n_jobs=1, progress=False)
    assert [t["spectral_radius"] for t in a.trials] == [t["spectral_radius"] for t in b.trials]
    np.testing.assert_array_equal(_scores(a), _scores(b))
    for t in a.trials:
        assert 0.3 <= t["spectral_radius"] <= 1.5 and 0.1 <= t["leak_rate"] <= 1.0 and t["seed"] in (0, 1, 2)
        assert t["input_scaling"] in (0.5, 1.0)
    t = a.trials[3]
    assert t["nrmse"] == pytest.approx(_alone(data, t, 0)[0], rel=1e-6)


def test_optuna_search(data):
    pytest.importorskip("optuna")
    space = dict(SPACE, spectral_radius=es.loguniform(0.3, 1.5), ridge=es.loguniform(1e-8, 1e-2))
    a = es.search(data, space, method="optuna", n_trials=10, seed=1, n_jobs=1, progress=False, metric="r2")
    b = es.search(data, space, method="optuna", n_trials=10, seed=1, n_jobs=1, progress=False, metric="r2")
    assert len(a) == 10 and a.metric == "r2"
    np.testing.assert_array_equal(_scores(a), _scores(b))
    assert a.best["loss"] == pytest.approx(1 - a.best["r2"])
    assert a.best["r2"] == max(t["r2"] for t in a.trials)


def test_loky_workers_give_the_same_scores(data):
    local = es.search(data, SPACE, n_jobs=1, progress=False)
    par = es.search(data, SPACE, n_jobs=2, threads_per_worker=1, progress=False)
    np.testing.assert_allclose(_scores(par), _scores(local), rtol=1e-12)


def test_dask_local_cluster_gives_the_same_scores(data):
    pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    import joblib
    local = es.search(data, SPACE, n_jobs=1, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with joblib.parallel_backend("dask"):
            remote = es.search(data, SPACE, progress=False)
        ran_on = client.run(lambda: 1)
    assert len(ran_on) == 2
    assert [tuple(t[n] for n in es.PARAMETERS) for t in remote.trials] == \
        [tuple(t[n] for n in es.PARAMETERS) for t in local.trials]
    np.testing.assert_allclose(_scores(remote), _scores(local), rtol=1e-12)
    assert remote.best["trial"] == local.best["trial"]


def test_interrupt_keeps_finished_trials(data, monkeypatch):
    calls = []
    real = es._population_sse

    def stop_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(es, "_population_sse", stop_on_third)
    res = es.search(data, SPACE, n_jobs=1, progress=False, members_per_task=2)
    assert res.interrupted
    assert len(res) == 2 * 2 * 2                              # two tasks: 2 members x 2 ridges each
    for t in res.trials:
        assert t["nrmse"] == pytest.approx(_alone(data, t, 0)[0], rel=1e-6)


def test_table_and_report_plot(data, tmp_path):
    pytest.importorskip("pandas")
    import matplotlib
    matplotlib.use("Agg")
    res = es.search(data, SPACE, n_jobs=1, progress=False)
    df = res.table()
    assert len(df) == 32 and {"nrmse", "r2", "loss", "spectral_radius", "ridge"} <= set(df.columns)
    assert df["loss"].idxmin() == res.best["trial"]
    path = tmp_path / "report.png"
    fig = res.plot(path)
    assert path.stat().st_size > 10_000
    assert sorted(ax.get_xlabel() for ax in fig.axes if ax.get_xlabel() in es.PARAMETERS) == \
        ["input_scaling", "leak_rate", "ridge", "seed", "spectral_radius"]   # one panel per varying one
    # a failed trial (r2 of -4000, as a diverging reservoir gives) must not set the colour scale: it spans
    # the middle 90% of the trials' r2, so the others keep distinct colours
    trials = [dict(t) for t in res.trials]
    trials[0].update(r2=-4000.0, nrmse=50.0, loss=50.0)
    bad = es.SearchResult(trials, "nrmse", False, 0.0, res.space)
    fig = bad.plot()
    lo, hi = fig.axes[0].collections[0].get_clim()
    r2 = np.array([t["r2"] for t in res.trials[1:]])
    assert lo > -4000.0 and lo >= r2.min() - 1e-12 and hi <= r2.max() + 1e-12 and lo < hi


def test_progress_bar_counts_trials(data, capsys):
    es.search(data, dict(SPACE, seed=0, ridge=1e-6), n_jobs=1, progress=True)
    err = capsys.readouterr().err
    assert "8/8" in err


@pytest.mark.parametrize("kwargs, match", [
    (dict(space={"spectral_radius": 0.9}), "reservoir_size"),
    (dict(space=dict(SPACE, size=3)), "unknown hyperparameters"),
    (dict(space=dict(SPACE, leak_rate=[0.5, 1.5])), "leak_rate"),
    (dict(space=dict(SPACE, ridge=[-1.0])), "ridge"),
    (dict(space=dict(SPACE, seed=[0.5])), "seed"),
    (dict(space=dict(SPACE, spectral_radius=[])), "spectral_radius"),
    (dict(space=dict(SPACE, spectral_radius=es.uniform(0.1, 1))), "grid search needs a list"),
    (dict(method="random"), "n_trials"),
    (dict(n_trials=5), "n_trials"),
    (dict(method="bayes"), "method"),
    (dict(metric="mse"), "metric"),
    (dict(norm="var"), "norm"),
    (dict(washout=10_000), "washout"),
    (dict(n_jobs=0), "n_jobs"),
    (dict(threads_per_worker=0), "threads_per_worker"),
])
def test_argument_errors(data, kwargs, match):
    args = dict(space=SPACE)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        es.search(data, args.pop("space"), progress=False, **args)


def test_data_errors(data):
    ut, yt, uv, yv = data
    with pytest.raises(TypeError, match="tuple"):
        es.search((ut, yt), SPACE)
    with pytest.raises(ValueError, match="y_train"):
        es.search((ut, yt[:-1], uv, yv), SPACE)
    with pytest.raises(ValueError, match="input and output features"):
        es.search((ut, yt, np.repeat(uv, 2, axis=1), yv), SPACE)
    with pytest.raises(ValueError, match="u_val"):
        es.search((ut, yt, uv[:, 0], yv), SPACE)
    with pytest.raises(ValueError, match="NaN"):
        es.search((ut, yt, uv, yv * np.nan), SPACE)
    with pytest.raises(ValueError, match="low must be < high"):
        es.loguniform(1.0, 0.5)
    with pytest.raises(TypeError, match="randint"):
        es.randint(0.5, 3)


def test_failed_task_keeps_finished_trials(data, monkeypatch):
    """A task that fails (here: the second W's task raises, as a worker's error or a lost worker would)
    stops the search with SearchError: the cause is the task's error and .result holds the trials that
    finished before it, with the scores of the full search."""
    full = es.search(data, SPACE, n_jobs=1, progress=False)
    real = es._run_task

    def failing(task, *args, **kwargs):
        if task[1][2] == 1:  # the task of seed 1
            raise OSError("injected: worker lost")
        return real(task, *args, **kwargs)

    monkeypatch.setattr(es, "_run_task", failing)
    with pytest.raises(es.SearchError, match="a task failed.*injected: worker lost") as err:
        es.search(data, SPACE, n_jobs=1, progress=False)
    assert isinstance(err.value.__cause__, OSError)
    part = err.value.result
    assert part.interrupted and len(part) == 16 and {t["seed"] for t in part.trials} == {0}
    by_trial = {t["trial"]: t for t in full.trials}
    for t in part.trials:
        assert t["nrmse"] == by_trial[t["trial"]]["nrmse"]
    assert part.best["trial"] == min((t for t in full.trials if t["seed"] == 0),
                                     key=lambda t: (t["loss"], t["trial"]))["trial"]


def test_configuration_over_memory_fails_with_its_reason_and_keeps_the_rest(data):
    """A reservoir size this machine cannot hold fails its task with the memory check's message (a clear
    error, not a crash or a swap storm); the smaller configurations' trials survive in the error."""
    space = dict(SPACE, reservoir_size=[40, 10**6], seed=0, ridge=1e-6)
    with pytest.raises(es.SearchError, match="would need") as err:
        es.search(data, space, n_jobs=1, progress=False)
    assert isinstance(err.value.__cause__, ValueError)
    part = err.value.result
    assert len(part) == 8 and {t["reservoir_size"] for t in part.trials} == {40}
    assert all(np.isfinite(t["nrmse"]) for t in part.trials)


def test_bad_arguments_are_not_wrapped(data):
    """Errors of the call itself (not of a task) keep their type."""
    with pytest.raises(ValueError, match="washout"):
        es.search(data, SPACE, washout=400, n_jobs=1, progress=False)
