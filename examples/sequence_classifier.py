"""A many-to-one recurrent classifier: the target is given at the last step only.

Each sequence is a noisy sine whose frequency is one of K classes; a GRU reads it and the class is read
off its final hidden state (the lecture's "specify the desired final activities"). The loss mask
`losses.target_mask(T, N, "last")` puts the target on the last step alone.

    python examples/sequence_classifier.py
"""

import argparse
import time

import numpy as np

import rnnfast
from rnnfast import losses, nn, optim

FREQS = np.array([0.05, 0.08, 0.11, 0.14])


def make_batch(rng, T, N, noise=0.3):
    labels = rng.integers(0, len(FREQS), N)
    phase = rng.uniform(0, 2 * np.pi, N)
    t = np.arange(T)[:, None]
    x = np.sin(2 * np.pi * FREQS[labels][None, :] * t + phase) + noise * rng.standard_normal((T, N))
    return x[:, :, None].astype(np.float32), labels


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--length", type=int, default=60)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    T, N, K = args.length, args.batch, len(FREQS)
    model = nn.ModuleDict(rnn=rnnfast.GRU(1, 32, seed=args.seed), out=nn.Linear(32, K, seed=args.seed))
    opt = optim.Adam(model, lr=5e-3)
    mask = losses.target_mask(T, N, "last")
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, labels = make_batch(rng, T, N)
        targets = np.broadcast_to(labels, (T, N))  # only the last step counts (mask)
        model.zero_grad()
        y, _ = model.rnn(x)
        loss, dlogits = losses.softmax_cross_entropy(model.out.forward(y), targets, mask=mask)
        model.rnn.backward(model.out.backward(dlogits))
        optim.clip_grad_norm_(model, 5.0)
        opt.step()
        if step % 100 == 0:
            print(f"step {step:4d}  loss {loss:.4f}")
    model.eval()
    x, labels = make_batch(rng, T, 2000)
    y, _ = model.rnn(x)
    acc = float((model.out.forward(y[-1]).argmax(-1) == labels).mean())
    print(f"trained in {time.perf_counter() - t0:.1f} s; test accuracy over {K} classes: {acc:.3f} "
          f"(chance {1 / K:.2f})")
    return 0 if acc > 0.9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
