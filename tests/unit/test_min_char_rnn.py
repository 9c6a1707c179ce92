"""The NumPy min-char-rnn reference: its gradients are right and it learns."""

import numpy as np

from rnnfast.reference import MinCharRNN


def test_gradients_match_finite_differences():
    model = MinCharRNN(vocab_size=5, hidden_size=4, seq_length=6, seed=1)
    for p in model.params.values():
        p += np.random.default_rng(2).standard_normal(p.shape) * 0.3
    inputs, targets = [0, 1, 2, 3, 4, 0], [1, 2, 3, 4, 0, 1]
    h0 = np.random.default_rng(3).standard_normal((4, 1)) * 0.5
    _, grads, _ = model.loss_and_grads(inputs, targets, h0)
    eps = 1e-6
    for name, p in model.params.items():
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            lp, _, _ = model.loss_and_grads(inputs, targets, h0)
            p[idx] = old - eps
            lm, _, _ = model.loss_and_grads(inputs, targets, h0)
            p[idx] = old
            num[idx] = (lp - lm) / (2 * eps)
        assert np.abs(num - grads[name]).max() <= 1e-6 * max(1.0, np.abs(num).max()), name


def test_loss_falls_on_a_repetitive_text():
    text = "hello world. " * 40
    chars = sorted(set(text))
    data = [chars.index(c) for c in text]
    model = MinCharRNN(len(chars), hidden_size=32, seq_length=12, seed=0)
    first = np.mean([model.step(data) for _ in range(10)])
    for _ in range(300):
        model.step(data)
    last = np.mean([model.step(data) for _ in range(10)])
    assert last < 0.3 * first
    sample = "".join(chars[i] for i in model.sample(chars.index("h"), 40))
    assert "hello world" in sample
