#!/usr/bin/env python
"""The lecture's argument for RNNs, run: the classic memory models against recurrent networks.

(a) Characters. Hidden Markov models with N = 1..256 states (rnnfast.statespace.HMM, Baum-Welch EM) and
    tanh RNNs / LSTMs of similar parameter counts (rnnfast.charmodel.CharModel, Adam) learn the same text
    (the running Python's standard library source, as `rnnfast char train`); validation bits/char against
    parameters and against log2(N), the bits of state an HMM has ("with N hidden states it can only remember
    log(N) bits").
(b) Memory. Each line is a key of 3 symbols from ABCD (6 bits), 24 random letters from a..h, '=' and the
    key again. Recalling the key needs 6 bits carried over 25 steps: an HMM with N states can carry log2(N)
    bits, so its recall is bounded by what fits; an LSTM of 32 units recalls it.
(c) Tracking. A damped oscillator driven by a control input, its position observed with noise: the Kalman
    filter (rnnfast.statespace.LinearGaussian: the true model, and one learned by EM from the data)
    against an RNN and an echo state network trained on the same data, one-step-ahead prediction error.

Writes a figure and the numbers (JSON) into --out-dir (default: a new temporary folder) and nothing
elsewhere; returns non-zero when a part falls short of what it shows.

    python examples/memory_models.py --out-dir benchmarks/results   # ~15 min on 2 cores
    python examples/memory_models.py --quick                        # small sizes, seconds (tests/apps/test_examples.py)
"""

import argparse
import json
import math
import os
import tempfile
import time

import numpy as np
import scipy.linalg

import rnnfast
from rnnfast import losses, nn, optim
from rnnfast.char import encode_text, stdlib_corpus
from rnnfast.charmodel import CharModel
from rnnfast.esn import ESN
from rnnfast.statespace import HMM, LinearGaussian

LN2 = math.log(2)


def log(msg):
    print(msg, flush=True)


def smoothed(h, eps=1e-6):
    """The model with eps of uniform mixed into its transition and emission rows: EM leaves exact zeros for
    what the training text never showed, which would make a held-out text impossible."""
    K, M = h.n_states, h.n_symbols
    return HMM(K, "categorical", startprob=(1 - eps) * h.startprob + eps / K,
               transmat=(1 - eps) * h.transmat + eps / K, emissionprob=(1 - eps) * h.emissionprob + eps / M)


def hmm_next_proba(h, X, lengths=None):
    """p(x_t+1 | x_0..t) for every t [R,M]: the filtered state times the transitions times the emissions."""
    filtered, _ = h.filter(X, lengths)
    return filtered @ h.transmat @ h.emissionprob


def train_char_model(cell, hidden, vocab_size, train, val, steps, seq, batch, lr, seed, eval_every):
    """A CharModel trained with Adam on random windows; returns (model, best validation bits/char)."""
    model = CharModel(vocab_size, cell, hidden, 1, seed=seed)
    opt = optim.Adam(model.modules(), lr=lr)
    rng = np.random.default_rng(seed)
    state = model.initial_state(batch)
    starts = rng.integers(0, len(train) - seq - 1, batch)
    best, best_state = float("inf"), None
    for step in range(1, steps + 1):
        idx = starts[None, :] + np.arange(seq + 1)[:, None]
        chunk = train[idx]
        opt.zero_grad()
        _, state = model.loss_and_backward(chunk[:-1], chunk[1:], state)
        optim.clip_grad_norm_(opt, 1.0)
        opt.step()
        starts += seq                                    # the streams go on through the text, state carried
        wrap = starts >= len(train) - seq - 1
        if wrap.any():
            starts[wrap] = rng.integers(0, seq, int(wrap.sum()))
        if step % eval_every == 0 or step == steps:
            bpc = model.evaluate(val, losses) / LN2
            if bpc < best:
                best, best_state = bpc, model.state_dict()
    model.load_state_dict(best_state)
    return model, best


# ---- (a) characters ------------------------------------------------------------------------------------------
def part_characters(args):
    text, where = stdlib_corpus()
    text = text[:args.train_chars + args.val_chars]
    train_text, val_text = text[:args.train_chars], text[args.train_chars:]
    vocab = "".join(sorted(set(train_text)))
    val_text = "".join(c for c in val_text if c in vocab)  # characters the training text never shows: dropped
    train, val = encode_text(train_text, vocab), encode_text(val_text, vocab)
    V = len(vocab)
    log(f"(a) {where}: {len(train)} training and {len(val)} validation characters, {V} symbols")
    freq = np.bincount(train, minlength=V) / len(train)
    val_freq = freq[val]
    unigram = float(-np.log2(val_freq).mean())
    out = {"corpus": where, "train_chars": len(train), "val_chars": len(val), "vocab": V,
           "unigram_bits": unigram, "hmm": [], "rnn": [], "lstm": []}
    seq_len = args.hmm_seq
    n = len(train) // seq_len
    X, lengths = train[:n * seq_len].astype(np.int64), [seq_len] * n
    for N in args.hmm_states:
        t0 = time.perf_counter()
        h = HMM(N, "categorical", n_symbols=V)
        iters = args.hmm_iters if N <= 64 else max(5, args.hmm_iters // 2)
        h.fit(X, lengths, n_iter=iters, tol=1e-5, n_init=2 if N <= 16 else 1, seed=N)
        hs = smoothed(h)
        bpc = -hs.score(val.astype(np.int64)) / (len(val) * LN2)
        train_bpc = -hs.score(X, lengths) / (len(X) * LN2)
        rec = {"states": N, "state_bits": math.log2(N), "params": h.n_parameters(), "val_bits_per_char": bpc,
               "train_bits_per_char": train_bpc, "em_iterations": len(h.history), "seconds": time.perf_counter() - t0}
        out["hmm"].append(rec)
        log(f"  HMM N={N:3d} ({rec['params']:6d} parameters, {rec['state_bits']:.0f} bits of state): validation "
            f"{bpc:.3f} bits/char (train {train_bpc:.3f}), {rec['em_iterations']} EM iterations, "
            f"{rec['seconds']:.0f} s")
    for cell, sizes in (("rnn", args.rnn_hidden), ("lstm", args.lstm_hidden)):
        for H in sizes:
            t0 = time.perf_counter()
            model, bpc = train_char_model(cell, H, V, train, val, args.rnn_steps, 64, 32, 3e-3, H, args.eval_every)
            rec = {"hidden": H, "params": int(model.num_parameters()), "val_bits_per_char": bpc,
                   "seconds": time.perf_counter() - t0}
            out[cell].append(rec)
            log(f"  {cell.upper():4s} H={H:3d} ({rec['params']:6d} parameters): validation {bpc:.3f} bits/char, "
                f"{rec['seconds']:.0f} s")
    return out


# ---- (b) memory beyond log2(N) bits ------------------------------------------------------------------------------
KEYS, FILLER = "ABCD", "abcdefgh"


def memory_text(lines, key_len, gap, rng):
    """Lines 'KEY' + gap random filler letters + '=' + 'KEY' + newline; the positions of the recalled key."""
    out, recall = [], []
    pos = 0
    for _ in range(lines):
        key = "".join(rng.choice(list(KEYS), key_len))
        line = key + "".join(rng.choice(list(FILLER), gap)) + "=" + key + "\n"
        recall += [pos + key_len + gap + 1 + j for j in range(key_len)]
        out.append(line)
        pos += len(line)
    return "".join(out), np.asarray(recall)


def recall_scores(scores, targets, keys):
    """(accuracy, bits): the model's choice among the key symbols at the recall positions, and
    -log2 p(the right one | a key symbol comes). scores: log-probabilities or logits [n, vocab]."""
    z = scores[:, keys]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float((z.argmax(axis=1) == targets).mean()), float(-logp[np.arange(len(targets)), targets].mean() / LN2)


def capacity_bound(N, key_len):
    """The best recall accuracy with log2(N) bits carried: whole key symbols (2 bits each) remembered, the
    others guessed (1/4)."""
    held = min(key_len, int(math.log2(N) // 2))
    return (held + 0.25 * (key_len - held)) / key_len


def part_memory(args):
    rng = np.random.default_rng(0)
    key_len, gap = 3, 24
    train_text, _ = memory_text(args.memory_lines, key_len, gap, rng)
    test_text, recall = memory_text(300, key_len, gap, rng)
    vocab = "".join(sorted(set(train_text + test_text)))
    train, test = encode_text(train_text, vocab), encode_text(test_text, vocab)
    V = len(vocab)
    line = key_len + gap + 1 + key_len + 1
    log(f"(b) memory task: {key_len} key symbols ({2 * key_len} bits) recalled after {gap + 1} steps; "
        f"{len(train)} training characters")
    out = {"key_symbols": key_len, "key_bits": 2 * key_len, "gap": gap, "train_chars": len(train), "hmm": [],
           "lstm": None}
    keys = np.array([vocab.index(k) for k in KEYS])
    targets = np.searchsorted(keys, test[recall])  # which key symbol (vocab is sorted)
    per_seq = 50 * line
    n = len(train) // per_seq
    X, lengths = train[:n * per_seq].astype(np.int64), [per_seq] * n
    for N in args.memory_states:
        t0 = time.perf_counter()
        h = HMM(N, "categorical", n_symbols=V).fit(X, lengths, n_iter=args.memory_hmm_iters, tol=1e-6,
                                                   n_init=2 if N <= 16 else 1, seed=N)
        p = hmm_next_proba(smoothed(h), test.astype(np.int64))
        acc, bits = recall_scores(np.log(p[recall - 1]), targets, keys)  # the predictions one step before
        out["hmm"].append({"states": N, "state_bits": math.log2(N), "recall_accuracy": acc, "recall_bits": bits,
                           "capacity_bound": capacity_bound(N, key_len), "seconds": time.perf_counter() - t0})
        log(f"  HMM N={N:3d} ({math.log2(N):.0f} bits): recall accuracy {acc:.3f} (bound from its bits "
            f"{capacity_bound(N, key_len):.3f}; chance 0.25), {bits:.2f} bits per recalled symbol (chance 2)")
    t0 = time.perf_counter()
    model, _ = train_char_model("lstm", 32, V, train, test, args.memory_lstm_steps, 64, 32, 1e-2, 0,
                                args.memory_lstm_steps)
    model.train(False)
    logits, _ = model.forward(test[:-1, None], model.initial_state(1))
    acc, bits = recall_scores(logits[:, 0].astype(np.float64)[recall - 1], targets, keys)
    out["lstm"] = {"hidden": 32, "params": int(model.num_parameters()), "recall_accuracy": acc, "recall_bits": bits,
                   "seconds": time.perf_counter() - t0}
    log(f"  LSTM H=32 ({out['lstm']['params']} parameters): recall accuracy {acc:.3f}, {bits:.2f} bits per "
        f"recalled symbol")
    return out


# ---- (c) tracking a driven, damped oscillator --------------------------------------------------------------------
def oscillator(T, seed, period=40.0, damping=0.1, q=0.01, r=0.25, push=0.03):
    """(model, u [T,1], x [T,2], y [T,1]): x = (position, velocity) of x'' = -w^2 x - 2 z w x' + u, sampled
    exactly at unit steps (matrix exponential, the input held over each step), process noise of variance q
    on the velocity, the position observed with noise of variance r; u a smooth random control."""
    w = 2 * np.pi / period
    Ac = np.array([[0.0, 1.0], [-w * w, -2 * damping * w]])
    aug = np.zeros((3, 3))
    aug[:2, :2], aug[1, 2] = Ac, 1.0
    E = scipy.linalg.expm(aug)                        # [[A, B], [0, 1]]
    A, B = E[:2, :2], E[:2, 2:]
    lds = LinearGaussian(2, 1, 1, transition_matrix=A, control_matrix=B, observation_matrix=[[1.0, 0.0]],
                         transition_covariance=np.diag([1e-6, q]), observation_covariance=[[r]],
                         initial_state_covariance=np.eye(2))
    rng = np.random.default_rng(seed)
    steps = rng.standard_normal(T // 25 + 1).repeat(25)[:T] * push  # a new push every 25 steps
    u = np.convolve(steps, np.ones(5) / 5, mode="same")[:, None]
    x, y = lds.sample(T, u, seed=seed + 1)
    return lds, u, x, y


def lag_embedding_start(y, u, width=5):
    """A starting point for EM: the state taken as (smoothed y_t, its change), regressed on its previous value
    and the input by least squares. EM of a linear dynamical system has local optima: from pykalman's default
    start (A = I) it stalls here far below the true model's likelihood; from this one it reaches it."""
    ys = np.convolve(y, np.ones(width) / width, mode="same")
    s = np.stack([ys[1:], ys[1:] - ys[:-1]], axis=1)            # s_t for t = 1..T-1
    Z = np.concatenate([s[:-1], u[2:, None]], axis=1)
    W = np.linalg.lstsq(Z, s[1:], rcond=None)[0]
    Q = np.cov((s[1:] - Z @ W).T) + 1e-4 * np.eye(2)
    return LinearGaussian(2, 1, 1, transition_matrix=W[:2].T, control_matrix=W[2:].T, observation_matrix=[[1.0, 0.0]],
                          transition_covariance=Q, observation_covariance=[[float(np.var(y - ys)) + 1e-3]],
                          initial_state_mean=[y[0], 0.0])


def train_rnn_predictor(inp, target, hidden, steps, seed, lr=3e-3, seq=100, batch=32):
    """A tanh RNN + Linear read-out trained (Adam, MSE) to map inp [T,2] to target [T,1]; float32."""
    model = nn.ModuleDict(rnn=rnnfast.RNN(inp.shape[1], hidden, seed=seed), out=nn.Linear(hidden, 1, seed=seed))
    opt = optim.Adam(model, lr=lr)
    rng = np.random.default_rng(seed)
    inp32, tgt32 = inp.astype(np.float32), target.astype(np.float32)
    for _ in range(steps):
        s = rng.integers(0, len(inp) - seq, batch)
        idx = s[None, :] + np.arange(seq)[:, None]
        model.zero_grad()
        hseq, _ = model.rnn(inp32[idx])
        mask = np.ones((seq, batch), bool)
        mask[:20] = False                              # the first steps start from a zero state
        _, d = losses.mse(model.out.forward(hseq), tgt32[idx], mask=mask)
        model.rnn.backward(model.out.backward(d))
        optim.clip_grad_norm_(model, 1.0)
        opt.step()
    model.eval()
    return model


def part_tracking(args):
    T_train, T_test = args.track_train, 2000
    lds, u, x, y = oscillator(T_train + T_test, seed=3)
    tr, te = slice(0, T_train), slice(T_train, T_train + T_test)
    log(f"(c) tracking: damped oscillator (period 40 steps) driven by a control input, position observed with "
        f"noise (std {math.sqrt(lds.observation_covariance[0, 0]):.2f}); {T_train} training and {T_test} test steps")
    # one-step-ahead: predict y[t+1] from y[..t] and u[..t+1]; every model is scored on the test steps
    target = y[te][1:, 0]
    preds = {}
    kal = lds.forecast(y, u, 1)[:, 0]                  # row t predicts y[t+1]
    preds["Kalman (true model)"] = kal[T_train:T_train + T_test - 1]
    t0 = time.perf_counter()
    learned = lag_embedding_start(y[tr, 0], u[tr, 0])
    learned.fit(y[tr], u[tr], n_iter=args.track_em_iters)
    em_seconds = time.perf_counter() - t0
    preds["Kalman (EM-learned)"] = learned.forecast(y, u, 1)[T_train:T_train + T_test - 1, 0]
    inp = np.concatenate([y[:-1], u[1:]], axis=1)      # (y_t, u_t+1) -> y_t+1
    tgt = y[1:]
    t0 = time.perf_counter()
    rnn = train_rnn_predictor(inp[tr], tgt[tr], 32, args.track_rnn_steps, 0)
    hseq, _ = rnn.rnn(inp.astype(np.float32)[:, None])
    preds["RNN (tanh, 32 units)"] = rnn.out.forward(hseq)[T_train:T_train + T_test - 1, 0, 0]
    rnn_seconds = time.perf_counter() - t0
    esn = ESN(2, 400, 1, spectral_radius=0.95, leak_rate=0.5, input_scaling=0.5, density=0.1, seed=0)
    esn.fit(inp[tr], tgt[tr], washout=100, ridge=[1e-6, 1e-4, 1e-2, 1.0],
            validation=(inp[T_train - 1000:T_train], tgt[T_train - 1000:T_train]))
    esn.reset()
    preds["ESN (400 units)"] = esn.predict(inp)[T_train:T_train + T_test - 1, 0]
    preds["last observation"] = y[te][:-1, 0]
    rmse = {k: float(np.sqrt(np.mean((p - target) ** 2))) for k, p in preds.items()}
    noise = float(math.sqrt(lds.observation_covariance[0, 0]))
    out = {"train_steps": T_train, "test_steps": T_test, "observation_noise_std": noise, "rmse": rmse,
           "em_history": learned.history, "em_seconds": em_seconds, "rnn_seconds": rnn_seconds,
           "true_loglik_train": lds.loglikelihood(y[tr], u[tr]),
           "trace": {"position": x[te][:200, 0].tolist(), "observed": y[te][:200, 0].tolist(),
                     **{k: p[:199].tolist() for k, p in preds.items() if k != "last observation"}}}
    for k, v in rmse.items():
        log(f"  {k:22s} one-step RMSE {v:.4f}  ({v / noise:.3f} x the observation noise)")
    return out


# ---- the figure ----------------------------------------------------------------------------------------------------
def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(2, 3, figsize=(17, 9.5))
    a = res["characters"]
    hmm = a["hmm"]
    for key, label, mk in (("hmm", "HMM (N states)", "o-"), ("rnn", "tanh RNN", "s-"), ("lstm", "LSTM", "^-")):
        pts = a[key]
        if pts:
            ax[0, 0].plot([p["params"] for p in pts], [p["val_bits_per_char"] for p in pts], mk, label=label)
    for p in hmm:
        ax[0, 0].annotate(f"N={p['states']}", (p["params"], p["val_bits_per_char"]), fontsize=7,
                          textcoords="offset points", xytext=(3, 3))
    ax[0, 0].axhline(a["unigram_bits"], color="gray", ls=":", label="unigram (no memory)")
    ax[0, 0].set_xscale("log")
    ax[0, 0].set(xlabel="parameters", ylabel="validation bits/char", title="(a) characters: bits/char vs parameters")
    ax[0, 0].legend(fontsize=8)
    ax[0, 1].plot([p["state_bits"] for p in hmm], [p["val_bits_per_char"] for p in hmm], "o-", label="HMM")
    for key, color in (("rnn", "C1"), ("lstm", "C2")):
        if a[key]:
            best = min(a[key], key=lambda p: p["val_bits_per_char"])
            ax[0, 1].axhline(best["val_bits_per_char"], color=color, ls="--",
                             label=f"best {key.upper()} (H={best['hidden']}, {best['params']} parameters)")
    ax[0, 1].axhline(a["unigram_bits"], color="gray", ls=":", label="unigram")
    ax[0, 1].set(xlabel="log2(N): bits of state of the HMM", ylabel="validation bits/char",
                 title="(a) an HMM remembers log2(N) bits")
    ax[0, 1].legend(fontsize=8)
    b = res["memory"]
    xs = [p["state_bits"] for p in b["hmm"]]
    ax[0, 2].plot(xs, [p["recall_accuracy"] for p in b["hmm"]], "o-", label="HMM (EM)")
    ax[0, 2].plot(xs, [p["capacity_bound"] for p in b["hmm"]], "k:", label="best possible with log2(N) bits")
    ax[0, 2].axhline(b["lstm"]["recall_accuracy"], color="C2", ls="--",
                     label=f"LSTM, 32 units ({b['lstm']['params']} parameters)")
    ax[0, 2].axhline(0.25, color="gray", ls=":", label="chance")
    ax[0, 2].set(xlabel="log2(N)", ylabel="recall accuracy", ylim=(0, 1.05),
                 title=f"(b) recall a {b['key_bits']}-bit key after {b['gap'] + 1} steps")
    ax[0, 2].legend(fontsize=8)
    c = res["tracking"]
    tr = c["trace"]
    t = np.arange(len(tr["position"]))
    ax[1, 0].plot(t, tr["observed"], ".", color="gray", ms=3, label="observed (noisy)")
    ax[1, 0].plot(t, tr["position"], "k-", lw=1.5, label="true position")
    for k, style in (("Kalman (true model)", "C0-"), ("RNN (tanh, 32 units)", "C1--"), ("ESN (400 units)", "C2:")):
        ax[1, 0].plot(t[1:], tr[k], style, lw=1.2, label=f"{k}: prediction")
    ax[1, 0].set(xlabel="test step", ylabel="position", title="(c) one-step-ahead prediction")
    ax[1, 0].legend(fontsize=7)
    names = list(c["rmse"])
    ax[1, 1].barh(names, [c["rmse"][k] for k in names], color=["C0", "C0", "C1", "C2", "gray"][:len(names)])
    ax[1, 1].axvline(c["observation_noise_std"], color="k", ls=":", label="observation noise std")
    ax[1, 1].set(xlabel="RMSE of the next observation", title="(c) prediction error on the test steps")
    ax[1, 1].legend(fontsize=8)
    ax[1, 2].plot(np.arange(len(c["em_history"])), c["em_history"], "-", label="EM-learned model")
    ax[1, 2].axhline(c["true_loglik_train"], color="k", ls=":", label="true model")
    ax[1, 2].set(xlabel="EM iteration", ylabel="log-likelihood of the training steps",
                 title="(c) EM of all the matrices, with the input")
    lo = c["true_loglik_train"]
    ax[1, 2].set_ylim(lo - 0.5 * abs(lo), lo + 0.1 * abs(lo))
    ax[1, 2].legend(fontsize=8)
    fig.suptitle("Memory models: hidden Markov models and linear dynamical systems against RNNs "
                 f"(rnnfast {rnnfast.__version__})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    p.add_argument("--out-dir", default=None,
                   help="folder for memory_models[_quick].png and .json (default: a new temporary folder)")
    args = p.parse_args(argv)
    q = args.quick
    args.train_chars, args.val_chars = (30000, 6000) if q else (250000, 25000)
    args.hmm_states = [1, 4, 16] if q else [1, 2, 4, 8, 16, 32, 64, 128, 256]
    args.hmm_seq, args.hmm_iters = 1000, (8 if q else 40)
    args.rnn_hidden, args.lstm_hidden = ([32], [16]) if q else ([16, 32, 64, 128, 256], [8, 16, 32, 64, 128])
    args.rnn_steps, args.eval_every = (150, 150) if q else (2000, 250)
    args.memory_lines = 400 if q else 2000
    args.memory_states = [4, 16] if q else [2, 4, 8, 16, 32, 64, 128, 256]
    args.memory_hmm_iters = 15 if q else 60
    args.memory_lstm_steps = 300 if q else 5000
    args.track_train, args.track_em_iters, args.track_rnn_steps = (3000, 20, 300) if q else (8000, 150, 2000)
    name = "memory_models_quick" if q else "memory_models"
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="rnnfast_memory_models_")
    fig_path, json_path = os.path.join(out_dir, f"{name}.png"), os.path.join(out_dir, f"{name}.json")
    t0 = time.perf_counter()
    res = {"quick": q, "characters": part_characters(args), "memory": part_memory(args),
           "tracking": part_tracking(args)}
    res["seconds"] = time.perf_counter() - t0
    res["build_info"] = rnnfast.build_info()
    os.makedirs(out_dir, exist_ok=True)
    plot(res, fig_path)
    with open(json_path, "w") as f:
        json.dump(res, f, indent=1)
    log(f"wrote {fig_path} and {json_path} ({res['seconds']:.0f} s)")

    # what the example shows (non-zero exit when it does not)
    c = res["tracking"]["rmse"]
    ok = c["Kalman (true model)"] < c["last observation"]
    ok &= c["Kalman (true model)"] <= min(c["RNN (tanh, 32 units)"], c["ESN (400 units)"]) * 1.02
    a = res["characters"]
    ok &= min(h["val_bits_per_char"] for h in a["hmm"] if h["states"] > 1) < a["unigram_bits"]  # state helps
    if not q:
        b = res["memory"]
        small = [h for h in b["hmm"] if h["state_bits"] < b["key_bits"]]
        ok &= b["lstm"]["recall_accuracy"] > 0.9 and all(h["recall_accuracy"] < 0.9 for h in small)
        best_hmm = min(h["val_bits_per_char"] for h in a["hmm"])
        best_lstm = min(r["val_bits_per_char"] for r in a["lstm"])
        ok &= best_lstm < best_hmm < a["unigram_bits"]
    log("shown: " + ("yes" if ok else "NO (see the numbers above)"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
