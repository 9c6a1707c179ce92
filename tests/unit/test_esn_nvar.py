"""NVAR (next-generation reservoir computing): features and read-out against reservoirpy's NVAR and Ridge,
and against the step-by-step NumPy reference; statefulness; forecasting the Lorenz system; errors."""

import numpy as np
import pytest

from rnnfast.esn import NVAR
from rnnfast.reference.nvar import nvar_features


@pytest.mark.parametrize("delay, order, strides", [(2, 2, 1), (3, 3, 2), (1, 1, 1), (4, 2, 3)])
def test_features_match_reference_across_calls(delay, order, strides):
    u = np.random.default_rng(0).normal(size=(40, 3))
    nv = NVAR(delay, order, strides)
    got = np.concatenate([nv.features(u[:7]), nv.features(u[7:8]), nv.features(u[8:])])
    want, store = nvar_features(u, delay, order, strides)
    assert got.shape == (40, nv.feature_size)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(nv._store, store)
    nv.reset()
    np.testing.assert_array_equal(nv.features(u), want)


def test_matches_reservoirpy_nvar_and_ridge():
    pytest.importorskip("reservoirpy")
    from reservoirpy.nodes import NVAR as RNVAR
    from reservoirpy.nodes import Ridge

    from rnnfast.datasets import lorenz
    X = lorenz(1200)
    u, y = X[:-1], X[1:] - X[:-1]
    feats = RNVAR(delay=2, order=2, strides=1).run(u)
    np.testing.assert_allclose(NVAR(2, 2, 1).features(u), feats, rtol=1e-15, atol=0)
    nv = NVAR(2, 2, 1, ridge=2.5e-6).fit(u[:1000], y[:1000], washout=2)
    model = RNVAR(delay=2, order=2, strides=1) >> Ridge(ridge=2.5e-6)
    model.fit(u[:1000], y[:1000], warmup=2)
    ours, theirs = nv.predict(u[1000:]), model.run(u[1000:])
    # the read-out is ill-conditioned here (raw Lorenz features, ridge 2.5e-6): the tolerance comes from a
    # baseline, reservoirpy's own error against the ridge solution by least squares (QR, no normal equations)
    X = NVAR(2, 2, 1).features(u[:1000])[2:]
    Xm, ym = X.mean(axis=0), y[2:1000].mean(axis=0)
    A = np.vstack([X - Xm, np.sqrt(2.5e-6) * np.eye(X.shape[1])])
    B = np.vstack([y[2:1000] - ym, np.zeros((X.shape[1], 3))])
    W = np.linalg.lstsq(A, B, rcond=None)[0]
    exact = NVAR(2, 2, 1).features(u)[1000:] @ W + (ym - Xm @ W)
    err_ours, err_rpy = np.abs(ours - exact).max(), np.abs(theirs - exact).max()
    assert err_ours <= 2 * err_rpy + 1e-12 * np.abs(exact).max(), (err_ours, err_rpy)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4 * np.abs(theirs).max())


def test_forecasts_lorenz():
    from rnnfast.datasets import lorenz
    X = lorenz(3000, h=0.025)
    X = X / X.std(axis=0)
    nv = NVAR(2, 2, 1, ridge=2.5e-6).fit(X[:2000], X[1:2001] - X[:2000], washout=2)
    pred = nv.predict(X[2000:2500]) + X[2000:2500]               # one step ahead
    err = np.sqrt(np.mean((pred[:-1] - X[2001:2500]) ** 2))
    assert err < 0.01
    gen = NVAR(2, 2, 1, ridge=2.5e-6)
    gen.fit(X[:2000], X[1:2001] - X[:2000], washout=2)
    traj = gen.generate(20)                                       # closed loop, continuing after X[1999]
    assert np.sqrt(np.mean((traj - X[2000:2020]) ** 2)) < 0.05


def test_errors():
    with pytest.raises(ValueError, match="delay"):
        NVAR(0, 2)
    with pytest.raises(TypeError, match="order"):
        NVAR(2, 1.5)
    with pytest.raises(ValueError, match="strides"):
        NVAR(2, 2, strides=-1)
    with pytest.raises(ValueError, match="ridge"):
        NVAR(2, 2, ridge=-1.0)
    nv = NVAR(2, 2)
    with pytest.raises(ValueError, match="shape"):
        nv.features(np.zeros(5))
    with pytest.raises(RuntimeError, match="fit"):
        nv.predict(np.zeros((5, 1)))
    nv.features(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2 features"):
        nv.features(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="washout"):
        nv.fit(np.zeros((3, 2)), np.zeros((3, 1)), washout=3)
    with pytest.raises(ValueError, match="NaN"):
        nv.features(np.full((3, 2), np.nan))
