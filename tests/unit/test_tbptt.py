"""Truncated BPTT: the hidden state carried across chunks continues the sequence exactly."""

import numpy as np
import pytest

from rnnfast import losses
from rnnfast.charmodel import CharModel


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_carried_state_equals_one_long_sequence(cell):
    rng = np.random.default_rng(0)
    model = CharModel(vocab_size=11, cell=cell, hidden=16, layers=2, seed=1)
    idx = rng.integers(0, 11, size=(30, 3))
    model.train(False)
    whole, _ = model.forward(idx, model.initial_state(3))
    state = model.initial_state(3)
    parts = []
    for start in (0, 7, 19):  # uneven chunks
        stop = {0: 7, 7: 19, 19: 30}[start]
        logits, state = model.forward(idx[start:stop], state)
        parts.append(logits)
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-5, atol=1e-6)


def test_chunk_gradient_stops_at_the_carried_state():
    """The gradient of a chunk's loss depends on the carried state's value, not on earlier chunks' inputs."""
    rng = np.random.default_rng(1)
    model = CharModel(vocab_size=7, cell="lstm", hidden=8, layers=1, seed=2)
    first, second = rng.integers(0, 7, size=(5, 2)), rng.integers(0, 7, size=(6, 2))
    model.train(False)
    _, carried = model.forward(first, model.initial_state(2))
    model.train(True)

    def chunk_grads(state):
        model.zero_grad()
        logits, _ = model.forward(second[:-1], state)
        _, dlogits = losses.softmax_cross_entropy(logits, second[1:])
        model.backward(dlogits)
        return {k: v.copy() for m in model.modules().values() for k, v in m.grads.items()}

    g1 = chunk_grads(carried)
    g2 = chunk_grads(tuple(s.copy() for s in carried))  # same values, no history
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])
    g0 = chunk_grads(model.initial_state(2))  # a different carried state changes the gradient
    assert any(not np.allclose(g0[k], g1[k]) for k in g1)
