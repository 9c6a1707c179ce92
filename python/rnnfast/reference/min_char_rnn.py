"""min-char-rnn in plain NumPy: the lecture's character-level vanilla RNN, trained by Adagrad.

The algorithm of Karpathy's min-char-rnn.py (the model the lecture walks through), written out as
teaching code and used as the baseline of `benchmarks/bench_char.py`: one sequence (batch 1) of
`seq_length` characters per step, one-hot inputs, h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h),
y_t = W_hy h_t + b_y, softmax cross-entropy summed over the chunk, backpropagation through time
inside the chunk with the hidden state carried to the next one, every gradient element clipped to
[-5, 5], and Adagrad: mem += g^2; p -= lr g / sqrt(mem + 1e-8).

Shapes (column vectors, as in the original): V = vocabulary size, H = hidden size.
W_xh (H,V), W_hh (H,H), W_hy (V,H), b_h (H,1), b_y (V,1).
"""

import numpy as np

__all__ = ["MinCharRNN"]


class MinCharRNN:
    def __init__(self, vocab_size, hidden_size=100, seq_length=25, learning_rate=0.1, seed=0):
        rng = np.random.default_rng(seed)
        V, H = vocab_size, hidden_size
        self.seq_length, self.learning_rate = seq_length, learning_rate
        self.params = {
            "W_xh": rng.standard_normal((H, V)) * 0.01,
            "W_hh": rng.standard_normal((H, H)) * 0.01,
            "W_hy": rng.standard_normal((V, H)) * 0.01,
            "b_h": np.zeros((H, 1)),
            "b_y": np.zeros((V, 1)),
        }
        self.memory = {k: np.zeros_like(v) for k, v in self.params.items()}  # Adagrad's sum of g^2
        self.h = np.zeros((H, 1))
        self.position = 0
        self.vocab_size = V

    def loss_and_grads(self, inputs, targets, h_prev):
        """Forward and backward through one chunk. Returns (summed loss, grads, last hidden state)."""
        W_xh, W_hh, W_hy, b_h, b_y = (self.params[k] for k in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"))
        xs, hs, ps = {}, {-1: h_prev}, {}
        loss = 0.0
        for t, (i, j) in enumerate(zip(inputs, targets)):
            xs[t] = np.zeros((self.vocab_size, 1))
            xs[t][i] = 1.0
            hs[t] = np.tanh(W_xh @ xs[t] + W_hh @ hs[t - 1] + b_h)
            y = W_hy @ hs[t] + b_y
            e = np.exp(y - y.max())
            ps[t] = e / e.sum()
            loss += -np.log(ps[t][j, 0])
        grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        dh_next = np.zeros_like(h_prev)
        for t in reversed(range(len(inputs))):
            dy = ps[t].copy()
            dy[targets[t]] -= 1.0  # softmax cross-entropy gradient
            grads["W_hy"] += dy @ hs[t].T
            grads["b_y"] += dy
            dh = W_hy.T @ dy + dh_next
            draw = (1.0 - hs[t] * hs[t]) * dh  # through tanh
            grads["b_h"] += draw
            grads["W_xh"] += draw @ xs[t].T
            grads["W_hh"] += draw @ hs[t - 1].T
            dh_next = W_hh.T @ draw
        for g in grads.values():
            np.clip(g, -5, 5, out=g)  # mitigate exploding gradients
        return loss, grads, hs[len(inputs) - 1]

    def step(self, data):
        """One training step on the next chunk of `data` (a sequence of integer ids). Returns the loss."""
        n = self.seq_length
        if self.position + n + 1 >= len(data):  # wrap around: restart with a zero state
            self.position = 0
            self.h = np.zeros_like(self.h)
        inputs = data[self.position:self.position + n]
        targets = data[self.position + 1:self.position + n + 1]
        loss, grads, self.h = self.loss_and_grads(inputs, targets, self.h)
        for k, p in self.params.items():  # Adagrad
            self.memory[k] += grads[k] * grads[k]
            p -= self.learning_rate * grads[k] / np.sqrt(self.memory[k] + 1e-8)
        self.position += n
        return loss

    def sample(self, seed_id, n, h=None, rng=None):
        """n ids sampled from the model, starting after the character seed_id."""
        rng = rng or np.random.default_rng(0)
        h = self.h if h is None else h
        x = np.zeros((self.vocab_size, 1))
        x[seed_id] = 1.0
        out = []
        for _ in range(n):
            h = np.tanh(self.params["W_xh"] @ x + self.params["W_hh"] @ h + self.params["b_h"])
            y = self.params["W_hy"] @ h + self.params["b_y"]
            p = np.exp(y - y.max())
            p = (p / p.sum()).ravel()
            i = int(rng.choice(self.vocab_size, p=p))
            x = np.zeros_like(x)
            x[i] = 1.0
            out.append(i)
        return out
