"""Binary addition, the lecture's toy problem for recurrent networks.

An RNN reads two numbers bit by bit, least significant bit first (input x_t = (a_t, b_t)), and outputs
the sum bit s_t at every step: it has to learn to carry. Trained on 8-bit numbers, it is tested on 16- and
32-bit numbers, which a feedforward net with a fixed number of inputs could not even be applied to.

    python examples/binary_addition.py
"""

import argparse
import time

import numpy as np

import rnnfast
from rnnfast import losses, nn, optim


def make_batch(rng, n_bits, batch):
    """Inputs (T, N, 2) and target bits (T, N) for random a + b with n_bits-bit operands (T = n_bits + 1)."""
    a = rng.integers(0, 2, size=(n_bits, batch))
    b = rng.integers(0, 2, size=(n_bits, batch))
    T = n_bits + 1  # one extra step for the final carry
    x = np.zeros((T, batch, 2), np.float32)
    x[:n_bits, :, 0], x[:n_bits, :, 1] = a, b
    s = np.zeros((T, batch), np.int64)
    carry = np.zeros(batch, np.int64)
    for t in range(T):
        total = (a[t] if t < n_bits else 0) + (b[t] if t < n_bits else 0) + carry
        s[t], carry = total % 2, total // 2
    return x, s


class Adder(nn.ModuleDict):
    def __init__(self, hidden, seed):
        super().__init__(rnn=rnnfast.RNN(2, hidden, seed=seed), out=nn.Linear(hidden, 2, seed=seed + 1))

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.out.forward(y)

    def backward(self, dlogits):
        self.rnn.backward(self.out.backward(dlogits))


def accuracy(model, rng, n_bits, n=2000):
    """Fraction of whole numbers added exactly (every bit right)."""
    x, s = make_batch(rng, n_bits, n)
    model.eval()
    pred = model.forward(x).argmax(-1)
    model.train()
    return float((pred == s).all(axis=0).mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    model = Adder(args.hidden, args.seed)
    opt = optim.Adam(model, lr=1e-2)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, s = make_batch(rng, 8, args.batch)
        model.zero_grad()
        loss, dlogits = losses.softmax_cross_entropy(model.forward(x), s)
        model.backward(dlogits)
        optim.clip_grad_norm_(model, 5.0)
        opt.step()
        if step % 250 == 0:
            print(f"step {step:5d}  loss {loss:.4f}  8-bit accuracy {accuracy(model, rng, 8):.3f}")
    print(f"trained in {time.perf_counter() - t0:.1f} s on 8-bit numbers")
    results = {bits: accuracy(model, rng, bits) for bits in (8, 16, 32)}
    for bits, acc in results.items():
        print(f"exact-sum accuracy on {bits:2d}-bit numbers: {acc:.3f}")
    return 0 if results[32] > 0.95 else 1


if __name__ == "__main__":
    raise SystemExit(main())
