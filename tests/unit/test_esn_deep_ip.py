"""Deep ESN (stacked reservoirs) and intrinsic plasticity: against reservoirpy (its Reservoir chain with a
Ridge on all states; its IPReservoir), against the NumPy reference, and their argument checks."""

import numpy as np
import pytest
import scipy.sparse as sp

from rnnfast import datasets
from rnnfast.esn import DeepESN, IPReservoir
from rnnfast.reference.plasticity import ip_run


@pytest.fixture(scope="module")
def mg():
    x = datasets.mackey_glass(1500)
    return x[:-1], x[1:]


def test_deep_esn_matches_reservoirpy_chain(mg):
    pytest.importorskip("reservoirpy")
    from reservoirpy.nodes import Reservoir, Ridge
    u, y = mg
    deep = DeepESN(1, [60, 50, 40], 1, spectral_radius=[0.9, 0.8, 0.7], leak_rate=0.3, density=0.2, ridge=1e-6,
                   seed=4)
    deep.fit(u[:1000], y[:1000], washout=50)
    pred = deep.predict(u[1000:])
    rs = [Reservoir(W=sp.csr_matrix(layer.W), Win=layer.W_in, bias=layer.bias, lr=0.3) for layer in deep.layers]
    readout = Ridge(ridge=1e-6)
    model = rs[0] >> rs[1] >> rs[2]
    model = model & (rs >> readout)                          # every layer's states to the read-out
    model.fit(u[:1000], y[:1000], warmup=50)
    np.testing.assert_allclose(pred, model.run(u[1000:]), rtol=0, atol=1e-8)
    assert np.sqrt(np.mean((pred - y[1000:]) ** 2)) / y.std() < 0.05


def test_deep_esn_layers_are_chained(mg):
    u, _ = mg
    deep = DeepESN(1, [30, 20], 1, input_to_readout=True, seed=1)
    X = deep.run_reservoir(u[:100])
    assert X.shape == (100, 1 + 30 + 20)
    deep.reset()
    x0 = deep.layers[0].run_reservoir(u[:100])
    np.testing.assert_array_equal(X[:, 1:31], x0)
    deep.layers[1].reset()
    np.testing.assert_array_equal(X[:, 31:], deep.layers[1].run_reservoir(x0))


def test_deep_esn_errors():
    with pytest.raises(TypeError, match="reservoir_sizes"):
        DeepESN(1, 100, 1)
    with pytest.raises(ValueError, match="reservoir_sizes"):
        DeepESN(1, [], 1)
    with pytest.raises(ValueError, match=r"reservoir_sizes\[1\]"):
        DeepESN(1, [10, 0], 1)
    with pytest.raises(ValueError, match="leak_rate"):
        DeepESN(1, [10, 10], 1, leak_rate=[0.5])
    with pytest.raises(RuntimeError, match="fit"):
        DeepESN(1, [50], 1, seed=0).predict(np.zeros((5, 1)))


@pytest.mark.parametrize("activation, mu, sigma", [("tanh", 0.0, 0.5), ("sigmoid", 0.3, 1.0)])
def test_ip_matches_reference_and_reservoirpy(mg, activation, mu, sigma):
    pytest.importorskip("reservoirpy")
    from reservoirpy.nodes import IPReservoir as RIP
    u, _ = mg
    u = u[:600]
    ip = IPReservoir(1, 80, mu=mu, sigma=sigma, learning_rate=1e-3, epochs=2, activation=activation,
                     leak_rate=0.5, density=0.2, bias_scaling=0.5, seed=2)
    W, W_in, bias = ip.W.copy(), ip.W_in.copy(), ip.bias.copy()
    ip.fit(u)
    ref = ip_run(u, W, W_in, bias, 0.5, np.ones(80), np.zeros(80), mu=mu, sigma=sigma, learning_rate=1e-3,
                 activation=activation)
    ref = ip_run(u, W, W_in, bias, 0.5, ref["a"], ref["b"], mu=mu, sigma=sigma, learning_rate=1e-3,
                 activation=activation, r0=ref["r"], x0=ref["x"])
    np.testing.assert_allclose(ip.a, ref["a"], rtol=1e-12)
    np.testing.assert_allclose(ip.b, ref["b"], rtol=1e-12, atol=1e-14)
    rip = RIP(units=80, W=sp.csr_matrix(W), Win=W_in, bias=bias, lr=0.5, mu=mu, sigma=sigma, learning_rate=1e-3,
              epochs=2, activation=activation)
    rip.fit(u)
    np.testing.assert_allclose(ip.a, rip.a, rtol=1e-12)
    np.testing.assert_allclose(ip.b, rip.b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ip.run(u[:50]), rip.run(u[:50]), rtol=0, atol=1e-12)
    assert not np.allclose(ip.a, 1.0)                        # it adapted


def test_ip_moves_the_distribution_toward_the_target(mg):
    u, _ = mg
    ip = IPReservoir(1, 100, mu=0.0, sigma=0.2, learning_rate=5e-3, epochs=3, spectral_radius=1.2, seed=0,
                     input_scaling=2.0)
    before = ip.run(u[:1000]).std()
    ip.reset()
    ip.fit(u[:1000])
    after = ip.run(u[:1000]).std()
    assert abs(after - 0.2) < abs(before - 0.2)


def test_ip_errors():
    with pytest.raises(ValueError, match="activation"):
        IPReservoir(1, 50, activation="relu")
    with pytest.raises(ValueError, match="sigma"):
        IPReservoir(1, 50, sigma=0)
    with pytest.raises(ValueError, match="mu"):
        IPReservoir(1, 50, activation="sigmoid", mu=0.0)
    with pytest.raises(TypeError, match="feedback"):
        IPReservoir(1, 50, feedback=True)
    with pytest.raises(RuntimeError, match="fit_readout"):
        IPReservoir(1, 50).predict(np.zeros((5, 1)))
