"""Every CPU engine entry point on fixed inputs, saved to an .npz: run once per instruction-set tier
(RNNFAST_CPU_ISA=...) by tests/engines/test_cpu_tiers.py, which compares the tiers' results.

    python tests/engines/tier_cases.py OUT.npz

Odd sizes on purpose (register-tile and vector remainders), and batches large enough for the engine's
two-thread schedules. Each case runs in float32 and float64; the float64 run of the same tier is the
scale of the float32 one's rounding error (see test_cpu_tiers.py).
"""

import sys

import numpy as np

import rnnfast
from rnnfast import esn as esn_mod
from rnnfast import losses, optim
from rnnfast.charmodel import CharModel, FusedMinCharRNN
from rnnfast.statespace import HMM, LinearGaussian

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho"]


def layer(cell, C, H, dtype, **kw):
    if cell.startswith("rnn"):
        return rnnfast.RNN(C, H, nonlinearity=cell[4:], dtype=dtype, seed=0, **kw)
    if cell == "lstm":
        return rnnfast.LSTM(C, H, dtype=dtype, seed=0, **kw)
    return rnnfast.GRU(C, H, dtype=dtype, reset_after=(cell == "gru"), seed=0, **kw)


def recurrent(out, dtype):
    rng = np.random.default_rng(1)
    for T, N, C, H, bidir in [(7, 13, 11, 37, True), (6, 40, 24, 96, False), (5, 1, 9, 21, False)]:
        for cell in CELLS:
            lay = layer(cell, C, H, dtype, bidirectional=bidir, num_layers=2 if bidir else 1)
            x = rng.standard_normal((T, N, C)).astype(dtype)
            y, _ = lay(x)
            dx, _ = lay.backward(np.cos(np.arange(y.size)).reshape(y.shape).astype(dtype))
            key = f"{cell}_{T}x{N}x{C}x{H}"
            out[key + "_y"] = y
            out[key + "_dx"] = dx
            for name, g in lay.grads.items():
                out[f"{key}_d{name}"] = g
    # one-hot input (a character model's first layer): the gather and scatter paths, batch 1 and 40
    for N in (1, 40):
        lay = layer("lstm", 17, 48, dtype)
        idx = rng.integers(0, 17, (9, N))
        y, _ = lay(idx)
        lay.backward(np.sin(np.arange(y.size)).reshape(y.shape).astype(dtype))
        out[f"onehot{N}_y"] = y
        for name, g in lay.grads.items():
            out[f"onehot{N}_d{name}"] = g
    mr = rnnfast.MRNN(10, 27, 19, dtype=dtype, seed=0)
    x = rng.standard_normal((8, 5, 10)).astype(dtype)
    y, _ = mr(x)
    dx, _ = mr.backward(np.cos(np.arange(y.size)).reshape(y.shape).astype(dtype))
    out["mrnn_y"], out["mrnn_dx"] = y, dx
    for name, g in mr.grads.items():
        out[f"mrnn_d{name}"] = g


def reservoirs(out, dtype):
    rng = np.random.default_rng(2)
    u = rng.standard_normal((64, 3)).astype(dtype)
    ub = rng.standard_normal((20, 5, 3)).astype(dtype)
    for name, N, density in [("csr", 301, 0.1), ("dense", 130, 1.0)]:
        e = esn_mod.ESN(3, N, 2, spectral_radius=0.9, leak_rate=0.4, bias_scaling=0.2, density=density,
                        seed=3, dtype=dtype)
        out[f"esn_{name}_one"] = e.run_reservoir(u)  # one sequence (the SELL or matrix-vector kernels)
        e.reset()
        out[f"esn_{name}_batch"] = e.run_reservoir(ub)
        pop = esn_mod.run_population(ub[:, :2], e, spectral_radii=[0.5, 0.9, 1.1], leak_rates=[0.3, 0.6, 1.0])
        out[f"esn_{name}_population"] = np.asarray(pop)


def char(out, dtype):
    rng = np.random.default_rng(4)
    V, H, T = 23, 40, 25
    data = rng.integers(0, V, 2000).astype(np.int32)
    # the fused min-char-rnn loop (clip, Adagrad), 3 steps: Adagrad's first steps are about lr * sign(g), so
    # rounding decides the sign of near-zero gradients and a longer run diverges chaotically between any
    # two builds (in float32 after ~10 steps, even in float64 after ~30)
    model = CharModel(V, "rnn", H, 1, seed=0, init="min-char-rnn", dtype=dtype)
    opt = optim.Adagrad(model.modules(), lr=0.1, eps=1e-8, eps_inside_sqrt=True)
    fused = FusedMinCharRNN.create(model, opt, data, T, 5.0, True, True)
    assert fused is not None
    state = model.initial_state(1)
    step_losses, _, _ = fused.train(3, state, 0)
    out["fused_losses"] = np.asarray(step_losses)
    for name, a in model.state_dict().items():
        out[f"fused_{name}"] = a
    # the general step: one-hot LSTM, the fused read-out and loss, global-norm clipping, Adam
    model = CharModel(V, "lstm", 33, 2, seed=1, dtype=dtype)
    opt = optim.Adam(model.modules(), lr=1e-2)
    state = model.initial_state(4)
    general = []
    for step in range(3):
        chunk = data[step * 40:step * 40 + 41].reshape(41, 1).repeat(4, axis=1)
        opt.zero_grad()
        loss, state = model.loss_and_backward(chunk[:-1], chunk[1:], state)
        optim.clip_grad_norm_(opt, 1.0)
        opt.step()
        general.append(loss)
    out["general_losses"] = np.asarray(general)
    for name, a in model.state_dict().items():
        out[f"general_{name}"] = a
    logits = rng.standard_normal((30, V)).astype(dtype)
    out["xent_grad"] = losses.softmax_cross_entropy(logits, rng.integers(0, V, 30))[1]


def statespace(out, dtype):
    rng = np.random.default_rng(5)
    dt = np.dtype(dtype)
    K, M = 13, 7  # odd sizes: vector remainders of the K x K products
    lengths = [37, 1, 90]
    hmm = HMM(K, "categorical", startprob=rng.dirichlet(np.ones(K)).astype(dt),
              transmat=rng.dirichlet(np.ones(K), K).astype(dt), emissionprob=rng.dirichlet(np.ones(M), K).astype(dt),
              dtype=dtype)
    X = rng.integers(0, M, sum(lengths))
    fb = hmm.forward_backward(X, lengths)
    out["hmm_loglik"], out["hmm_posterior"], out["hmm_xi"] = fb.loglik, fb.posterior, fb.xi_sum
    out["hmm_viterbi_logprob"] = np.asarray(hmm.decode(X, lengths)[0])
    g = HMM(3, "gaussian", covariance_type="full", startprob=np.full(3, 1 / 3, dt),
            transmat=np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], dt),
            means=np.array([[-4, 0], [0, 4], [4, 0]], dt), covars=np.tile(np.eye(2, dtype=dt), (3, 1, 1)),
            dtype=dtype)
    Xg = rng.standard_normal((70, 2)).astype(dt) * 3
    out["hmm_gaussian_posterior"] = g.predict_proba(Xg, [30, 40])
    out["hmm_gaussian_path"] = g.predict(Xg, [30, 40]).astype(np.float64)  # well separated: no near ties
    X_, Y_, U_ = 5, 3, 1
    A = np.linalg.qr(rng.standard_normal((X_, X_)))[0] * 0.9
    lds = LinearGaussian(X_, Y_, U_, dtype=dtype, transition_matrix=A.astype(dt),
                         observation_matrix=rng.standard_normal((Y_, X_)).astype(dt),
                         control_matrix=rng.standard_normal((X_, U_)).astype(dt),
                         transition_covariance=(0.2 * np.eye(X_)).astype(dt),
                         observation_covariance=(0.5 * np.eye(Y_)).astype(dt))
    u = rng.standard_normal((40, 3, U_)).astype(dt)
    y = rng.standard_normal((40, 3, Y_)).astype(dt)
    y[7, 1] = np.nan
    f = lds.filter(y, u)
    s = lds.smooth(y, u, pair_covariances=True)
    out["lds_loglik"], out["lds_filtered"] = f.loglikelihood, f.state_means
    out["lds_filtered_cov"] = f.state_covariances
    out["lds_smoothed"], out["lds_smoothed_cov"] = s.state_means, s.state_covariances
    out["lds_pair"] = s.pair_covariances


def main(path):
    out = {"tier": np.asarray(rnnfast.build_info()["cpu_isa"])}
    for dtype in (np.float32, np.float64):
        part = {}
        recurrent(part, dtype)
        reservoirs(part, dtype)
        char(part, dtype)
        statespace(part, dtype)
        out.update({f"{np.dtype(dtype).name}/{k}": np.asarray(v) for k, v in part.items()})
    np.savez(path, **out)


if __name__ == "__main__":
    main(sys.argv[1])
