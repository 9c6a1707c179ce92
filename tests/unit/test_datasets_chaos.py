"""The dynamical-system datasets: equal to reservoirpy.datasets' functions of the same name (same defaults),
their dynamics, and their argument checks."""

import numpy as np
import pytest

from rnnfast import datasets


@pytest.mark.parametrize("name, kwargs", [
    ("lorenz", {}), ("lorenz", dict(rho=20.0, h=0.01, x0=[0.5, 1.0, 2.0])), ("rossler", {}),
    ("rossler", dict(c=4.0, h=0.05)), ("henon_map", {}), ("henon_map", dict(a=1.2, x0=[0.1, 0.2])),
    ("logistic_map", {}), ("logistic_map", dict(r=3.7, x0=0.3)), ("mso2", {}), ("mso8", {}),
    ("mso8", dict(normalize=False)),
])
def test_equal_to_reservoirpy(name, kwargs):
    rds = pytest.importorskip("reservoirpy.datasets")
    want = getattr(rds, name)(500, **kwargs)
    got = getattr(datasets, name)(500, **kwargs)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_mso_frequencies():
    rds = pytest.importorskip("reservoirpy.datasets")
    np.testing.assert_array_equal(datasets.mso(300, [0.1, 0.5]), rds.mso(300, [0.1, 0.5]))
    y = datasets.mso(1000, [0.2])
    assert y.min() == pytest.approx(-1) and y.max() == pytest.approx(1)


def test_dynamics():
    h = datasets.henon_map(1000)
    np.testing.assert_allclose(h[1:, 0], 1 - 1.4 * h[:-1, 0] ** 2 + h[:-1, 1])
    lg = datasets.logistic_map(1000)
    assert ((lg > 0) & (lg < 1)).all()
    lz = datasets.lorenz(2000)
    assert 10 < lz[:, 2].mean() < 35 and (lz[:, 0] > 0).any() and (lz[:, 0] < 0).any()   # both wings


@pytest.mark.parametrize("call, exc, match", [
    (lambda: datasets.lorenz(0), ValueError, "n_steps"),
    (lambda: datasets.lorenz(10, x0=[1, 2]), ValueError, "x0"),
    (lambda: datasets.rossler(10, h=0), ValueError, "h"),
    (lambda: datasets.henon_map(10.5), TypeError, "n_steps"),
    (lambda: datasets.logistic_map(10, x0=1.5), ValueError, "x0"),
    (lambda: datasets.logistic_map(10, r=-1), ValueError, "r"),
    (lambda: datasets.mso(10, []), TypeError, "freqs"),
    (lambda: datasets.mso(10, ["a"]), TypeError, "freqs"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
