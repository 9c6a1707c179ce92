"""A tiny image-captioning model: an 8x8 digit image in, the digit's name out, character by character.

The image's pixels are the conditioning vector v added to the recurrent pre-activation at every step, as
in the lecture's captioning RNN, h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v) (rnnfast.nn.Conditioned);
x_t is the previous character (one-hot, teacher forcing in training), and a Linear layer predicts the next.
At test time the caption is decoded greedily from the start symbol. Needs scikit-learn for the digits.

    python examples/image_captioning.py
"""

import argparse
import sys
import time

import numpy as np

import rnnfast
from rnnfast import losses, nn, optim

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
VOCAB = ["^", "$"] + sorted(set("".join(WORDS)))  # ^ start, $ end
IDX = {c: i for i, c in enumerate(VOCAB)}
T = max(map(len, WORDS)) + 1


def encode(labels):
    """Inputs (T, N) starting with '^' and targets (T, N) ending with '$', padded with '$' (masked)."""
    inp = np.full((T, len(labels)), IDX["$"], np.int64)
    tgt = np.full((T, len(labels)), IDX["$"], np.int64)
    mask = np.zeros((T, len(labels)), bool)
    for n, lab in enumerate(labels):
        w = WORDS[lab]
        seq = [IDX[c] for c in w]
        inp[: len(w) + 1, n] = [IDX["^"]] + seq
        tgt[: len(w) + 1, n] = seq + [IDX["$"]]
        mask[: len(w) + 1, n] = True
    return inp, tgt, mask


def decode(model, v):
    """Greedy decoding from '^', one step at a time (the state carried between calls)."""
    N = v.shape[0]
    prev = np.full(N, IDX["^"])
    h, out = None, [[] for _ in range(N)]
    done = np.zeros(N, bool)
    for _ in range(T):
        x = nn.one_hot(prev[None, :], len(VOCAB))
        y, h = model.rnn(x, v, h)
        prev = model.out.forward(y[0]).argmax(-1)
        for n in range(N):
            if not done[n]:
                if prev[n] == IDX["$"]:
                    done[n] = True
                else:
                    out[n].append(VOCAB[prev[n]])
    return ["".join(c) for c in out]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("this example needs scikit-learn (pip install scikit-learn); skipped")
        return 0
    digits = load_digits()
    feats = (digits.data / 16.0).astype(np.float32)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(feats))
    train, test = order[:1400], order[1400:]
    V, K = feats.shape[1], len(VOCAB)
    model = nn.ModuleDict(rnn=nn.Conditioned(rnnfast.RNN(K + V, args.hidden, seed=args.seed), cond_size=V),
                          out=nn.Linear(args.hidden, K, seed=args.seed + 1))
    opt = optim.Adam(model, lr=3e-3)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = rng.choice(train, 64)
        inp, tgt, mask = encode(digits.target[batch])
        model.zero_grad()
        y, _ = model.rnn(nn.one_hot(inp, K), feats[batch])
        loss, dlogits = losses.softmax_cross_entropy(model.out.forward(y), tgt, mask=mask)
        model.rnn.backward(model.out.backward(dlogits))
        optim.clip_grad_norm_(model, 5.0)
        opt.step()
        if step % 200 == 0:
            print(f"step {step:4d}  loss {loss:.4f}")
    model.eval()
    captions = decode(model, feats[test])
    truth = [WORDS[lab] for lab in digits.target[test]]
    acc = float(np.mean([c == w for c, w in zip(captions, truth)]))
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    for c, w in list(zip(captions, truth))[:8]:
        print(f"  image of a {w!r:8} -> caption {c!r}")
    print(f"exact captions on {len(test)} held-out images: {acc:.3f}")
    return 0 if acc > 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
