"""Tests of rnnfast.init (spectral radius, orthogonal, the ESN-style initialisation of trained RNNs) and
rnnfast.diagnostics (per-step gradient norms showing vanishing / exploding gradients)."""

import numpy as np
import pytest

import rnnfast
from rnnfast import diagnostics, init, nn


def rotation_like(n, rho, seed=0):
    """A real matrix whose dominant eigenvalues are a complex pair of modulus rho (plus smaller ones),
    made non-normal by a random similarity transform: power iteration's ratio estimate does not converge."""
    rng = np.random.default_rng(seed)
    D = np.diag(rng.uniform(-0.5, 0.5, n) * rho)
    D[:2, :2] = rho * np.array([[np.cos(1.0), -np.sin(1.0)], [np.sin(1.0), np.cos(1.0)]])
    S = rng.standard_normal((n, n)) + 3 * np.eye(n)
    return S @ D @ np.linalg.inv(S)


# ---------------------------------------------------------------------------------------------
# spectral radius
# ---------------------------------------------------------------------------------------------

def test_spectral_radius_exact_for_complex_non_normal():
    W = rotation_like(30, 1.7)
    assert init.spectral_radius(W) == pytest.approx(1.7, rel=1e-9)
    assert init.spectral_radius(np.array([[0.0, -2.0], [2.0, 0.0]])) == pytest.approx(2.0, rel=1e-15)


def test_spectral_radius_arnoldi_and_power_paths():
    pytest.importorskip("scipy")
    W = rotation_like(60, 1.3, seed=1)
    exact = max(abs(np.linalg.eigvals(W)))
    assert init.spectral_radius(W, method="arnoldi") == pytest.approx(exact, rel=1e-6)
    assert init.spectral_radius(W, method="arnoldi") == init.spectral_radius(W, method="arnoldi")
    assert init.spectral_radius(W, method="power", iters=2000) == pytest.approx(exact, rel=2e-2)


def test_scale_to_spectral_radius():
    rng = np.random.default_rng(0)
    for dtype, rtol in ((np.float64, 1e-6), (np.float32, 1e-5)):
        W = rng.standard_normal((40, 40)).astype(dtype)
        S = init.scale_to_spectral_radius(W, 0.9)
        assert S.dtype == dtype and S.shape == W.shape
        assert init.spectral_radius(S) == pytest.approx(0.9, rel=rtol)
    with pytest.raises(ValueError, match="spectral radius 0"):
        init.scale_to_spectral_radius(np.triu(np.ones((3, 3)), 1), 1.0)  # nilpotent
    with pytest.raises(ValueError, match="rho"):
        init.scale_to_spectral_radius(np.eye(3), 0.0)
    with pytest.raises(ValueError, match=r"\bW\b"):
        init.spectral_radius(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\bW\b"):
        init.spectral_radius(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="method"):
        init.spectral_radius(np.eye(2), method="qr")


def test_orthogonal():
    for shape in ((4, 6), (6, 4), (5, 5)):
        Q = init.orthogonal(shape, gain=2.0, rng=0, dtype="float64")
        small = min(shape)
        G = Q @ Q.T if shape[0] <= shape[1] else Q.T @ Q
        assert Q.shape == shape and np.allclose(G, 4.0 * np.eye(small), atol=1e-12)
    assert np.array_equal(init.orthogonal((3, 3), rng=1), init.orthogonal((3, 3), rng=np.random.default_rng(1)))
    assert init.orthogonal((3, 3)).dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        init.orthogonal((3,))


# ---------------------------------------------------------------------------------------------
# init_recurrent_esn
# ---------------------------------------------------------------------------------------------

LAYERS = {
    "rnn": lambda **kw: rnnfast.RNN(3, 20, num_layers=2, bidirectional=True, **kw),
    "lstm": lambda **kw: rnnfast.LSTM(3, 20, num_layers=2, bidirectional=True, **kw),
    "gru": lambda **kw: rnnfast.GRU(3, 20, num_layers=2, bidirectional=True, **kw),
}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_esn_init_sets_radius_per_block(kind):
    layer = LAYERS[kind](dtype="float64", seed=0)
    init.init_recurrent_esn(layer, spectral_radius=1.1, seed=3)
    radii = diagnostics.recurrent_spectral_radius(layer)
    assert len(radii) == 4 * GATES[kind]  # 2 layers x 2 directions x gate blocks
    for key, r in radii.items():
        assert r == pytest.approx(1.1, rel=1e-6), key
    params = layer.parameters()
    for name, p in params.items():
        if name.startswith("weight_hh"):
            for g in range(GATES[kind]):
                block = p[g * 20:(g + 1) * 20]
                assert ((block != 0).sum(axis=1) == 15).all()  # Sutskever's 15 connections per unit
        elif name.startswith("weight_ih"):
            assert np.abs(p).max() <= 1 / np.sqrt(p.shape[1]) and p.std() > 0.2 / np.sqrt(p.shape[1])
        else:
            assert not p.any(), name  # biases zero
    again = LAYERS[kind](dtype="float64", seed=7)
    init.init_recurrent_esn(again, spectral_radius=1.1, seed=3)
    assert all(np.array_equal(again.parameters()[k], p) for k, p in params.items())


def test_esn_init_density_input_scale_bias_float32():
    layer = rnnfast.RNN(4, 50, seed=0)
    init.init_recurrent_esn(layer, spectral_radius=0.95, density=0.1, input_scale=0.5, bias=None, seed=0)
    W = layer.parameters()["weight_hh_l0"]
    assert ((W != 0).sum(axis=1) == 5).all() and W.dtype == np.float32
    assert init.spectral_radius(W) == pytest.approx(0.95, rel=1e-5)
    assert np.abs(layer.parameters()["weight_ih_l0"]).max() <= 0.5 / 2
    assert layer.parameters()["bias_ih_l0"].any()  # bias=None leaves the biases


def test_esn_init_through_containers():
    model = nn.ModuleDict(rnn=rnnfast.GRU(3, 6, dtype="float64"), out=nn.Linear(6, 2, dtype="float64"))
    out_w = model.out.parameters()["weight"].copy()
    init.init_recurrent_esn(model, spectral_radius=0.8, seed=0)
    radii = diagnostics.recurrent_spectral_radius(model)
    assert sorted(radii) == ["rnn.weight_hh_l0[n]", "rnn.weight_hh_l0[r]", "rnn.weight_hh_l0[z]"]
    assert all(r == pytest.approx(0.8, rel=1e-6) for r in radii.values())
    assert not model.rnn.parameters()["bias_hh_l0"].any()
    assert np.array_equal(model.out.parameters()["weight"], out_w)  # not a recurrent layer: untouched
    cap = nn.Conditioned(rnnfast.RNN(5, 4, dtype="float64"), cond_size=2)
    init.init_recurrent_esn(cap, spectral_radius=1.2, seed=0)
    assert diagnostics.recurrent_spectral_radius(cap)["weight_hh_l0"] == pytest.approx(1.2, rel=1e-6)


def test_esn_init_errors():
    layer = rnnfast.RNN(3, 4)
    with pytest.raises(ValueError, match="spectral_radius"):
        init.init_recurrent_esn(layer, spectral_radius=0)
    with pytest.raises(ValueError, match="density"):
        init.init_recurrent_esn(layer, density=1.5)
    with pytest.raises(ValueError, match="input_scale"):
        init.init_recurrent_esn(layer, input_scale=-1)
    with pytest.raises(TypeError, match="seed"):
        init.init_recurrent_esn(layer, seed="x")
    with pytest.raises(ValueError, match="weight_hh"):
        init.init_recurrent_esn(nn.Linear(3, 4))


# ---------------------------------------------------------------------------------------------
# diagnostics
# ---------------------------------------------------------------------------------------------

T = 20


def x_seq(C=3, N=4, seed=0):
    return np.random.default_rng(seed).standard_normal((T, N, C))


def test_gradient_norms_vanish_for_small_recurrent_weights():
    rnn = rnnfast.RNN(3, 16, dtype="float64", seed=0)
    init.init_recurrent_esn(rnn, spectral_radius=0.5, seed=0)
    norms = diagnostics.gradient_norms_per_step(rnn, x_seq())
    assert norms.shape == (T,) and norms.dtype == np.float64
    assert norms[0] < 1e-4 * norms[-1]
    assert (np.diff(np.log(norms)) > 0).mean() > 0.9  # decaying going back in time, step by step


def test_gradient_norms_explode_for_large_recurrent_weights():
    rnn = rnnfast.RNN(3, 16, nonlinearity="relu", dtype="float64", seed=0)
    init.init_recurrent_esn(rnn, spectral_radius=3.0, density=1.0, seed=0)
    norms = diagnostics.gradient_norms_per_step(rnn, x_seq())
    assert norms[0] > 1e4 * norms[-1]
    assert (np.diff(np.log(norms)) < 0).mean() > 0.9


def test_gradient_norms_leave_no_trace():
    rnn = rnnfast.LSTM(3, 5, dtype="float64", batch_first=True, seed=0)
    rng = np.random.default_rng(1)
    for g in rnn.grads.values():
        g[...] = rng.standard_normal(g.shape)
    before = {k: g.copy() for k, g in rnn.grads.items()}
    x = x_seq()
    rnn.eval()
    norms_bf = diagnostics.gradient_norms_per_step(rnn, np.ascontiguousarray(x.transpose(1, 0, 2)))
    assert not rnn.training
    assert all(np.array_equal(rnn.grads[k], v) for k, v in before.items())
    rnn.train()
    assert diagnostics.gradient_norms_per_step(rnn, x[:, 0]).shape == (T,)  # unbatched
    assert rnn.training
    # batch_first gives the same norms as the time-major layer with the same weights
    tm = rnnfast.LSTM(3, 5, dtype="float64", seed=0)
    assert np.allclose(diagnostics.gradient_norms_per_step(tm, x), norms_bf, rtol=1e-12)


def test_gradient_norms_direction():
    rnn = rnnfast.RNN(3, 4, dtype="float64", seed=0)
    x = x_seq()
    d = np.zeros((4, 4))
    assert not diagnostics.gradient_norms_per_step(rnn, x, direction=d).any()
    d[0, 0] = 1.0
    norms = diagnostics.gradient_norms_per_step(rnn, x, direction=d)
    # only sequence 0's output unit 0 at the last step: by hand, dL/dx_T = W_ih^T (1 - h_T^2) e_0
    y, _ = rnn(x)
    W_ih = rnn.parameters()["weight_ih_l0"]
    assert norms[-1] == pytest.approx(np.linalg.norm(W_ih[0] * (1 - y[-1, 0, 0] ** 2)), rel=1e-12)
    with pytest.raises(ValueError, match="direction"):
        diagnostics.gradient_norms_per_step(rnn, x, direction=np.zeros((4, 5)))


def test_recurrent_spectral_radius_keys():
    lstm = rnnfast.LSTM(2, 3, dtype="float64", seed=0)
    radii = diagnostics.recurrent_spectral_radius(lstm)
    assert list(radii) == [f"weight_hh_l0[{g}]" for g in "ifgo"]
    W = lstm.parameters()["weight_hh_l0"]
    assert radii["weight_hh_l0[g]"] == pytest.approx(max(abs(np.linalg.eigvals(W[6:9]))), rel=1e-12)
