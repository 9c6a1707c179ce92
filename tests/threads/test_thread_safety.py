"""What a forward keeps for backward: private copies (in-place changes of the caller's arrays are harmless),
kept per thread (a backward pairs with its own thread's forward), buffers from a pool (one thread reuses
one set), no_grad, and copies of modules. The concurrent runs themselves are tests/threads/test_threads_shared.py's.
"""

import copy
import threading

import numpy as np
import pytest

import rnnfast
from rnnfast import nn
from rnnfast.charmodel import CharModel

CELLS = {"rnn": lambda **kw: rnnfast.RNN(5, 6, **kw), "lstm": lambda **kw: rnnfast.LSTM(5, 6, **kw),
         "gru": lambda **kw: rnnfast.GRU(5, 6, **kw),
         "gru_cho": lambda **kw: rnnfast.GRU(5, 6, reset_after=False, **kw),
         "mrnn": lambda **kw: rnnfast.MRNN(5, 6, 7, **kw)}


def _grads(module):
    return {k: g.copy() for k, g in module.grads.items()}


def _hx(cell, h):
    return (h, h * 0.5) if cell == "lstm" else h


def _train_step(layer, x, hx, dy, change=None):
    """forward, change(x, hx) in place (or nothing), backward -> (dx, dh0, grads)."""
    layer.zero_grad()
    layer(x, hx)
    if change is not None:
        change()
    dx, dh = layer.backward(dy)
    return dx, dh, _grads(layer)


def _same(a, b):
    if isinstance(a, (tuple, list)):
        return all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return (a is None and b is None) or np.array_equal(a, b)


@pytest.mark.parametrize("engine", ["cpu", "reference"])
@pytest.mark.parametrize("cell,layout", [(c, lay) for c in CELLS
                                         for lay in ("batched", "batch_first", "unbatched", "index")
                                         if (c, lay) != ("mrnn", "index")])  # (its index input becomes one-hot rows)
def test_changing_inputs_in_place_before_backward_changes_nothing(cell, layout, engine):
    """The finding of issue 15: x (or hx) changed in place between forward and backward changed dW_ih."""
    rng = np.random.default_rng(0)
    layer = CELLS[cell](bidirectional=True, num_layers=2, dtype="float64", seed=1, engine=engine,
                        batch_first=layout == "batch_first")
    T, N = 4, 3
    if layout == "index":
        x = rng.integers(0, 5, (T, N))
    elif layout == "unbatched":
        x = rng.standard_normal((T, 5))
    else:
        x = rng.standard_normal((N, T, 5) if layout == "batch_first" else (T, N, 5))
    h = rng.standard_normal((4, 6) if layout == "unbatched" else (4, N, 6))
    hx = _hx(cell, h)
    y_shape = (T, 12) if layout == "unbatched" else ((N, T, 12) if layout == "batch_first" else (T, N, 12))
    dy = rng.standard_normal(y_shape)
    clean = _train_step(layer, x.copy(), _hx(cell, h.copy()), dy)

    def change():
        x[...] = 0 if layout == "index" else x * 3 + 1
        for a in (hx if isinstance(hx, tuple) else (hx,)):
            a[...] = 7

    changed = _train_step(layer, x, hx, dy, change)
    assert _same(changed, clean)


def test_linear_and_embedding_keep_their_own_inputs():
    rng = np.random.default_rng(0)
    lin, emb = nn.Linear(4, 3, dtype="float64", seed=0), nn.Embedding(6, 3, dtype="float64", seed=0)
    x, idx, dy = rng.standard_normal((5, 4)), rng.integers(0, 6, 5), rng.standard_normal((5, 3))
    lin(x.copy())
    want = lin.backward(dy), _grads(lin)
    lin.zero_grad()
    lin(x)
    x[...] = 9
    assert _same((lin.backward(dy), _grads(lin)), want)
    emb(idx.copy())
    emb.backward(dy)
    want = _grads(emb)
    emb.zero_grad()
    emb(idx)
    idx[...] = 0
    emb.backward(dy)
    assert _same(_grads(emb), want)


@pytest.mark.parametrize("cell", ["lstm", "mrnn"])
def test_backward_pairs_with_the_forward_of_its_own_thread(cell):
    layer = CELLS[cell](dtype="float64", seed=0)
    rng = np.random.default_rng(1)
    xa, xb = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2, 5))
    dya, dyb = rng.standard_normal((3, 2, 6)), rng.standard_normal((4, 2, 6))
    want = {}
    for name, x, dy in (("a", xa, dya), ("b", xb, dyb)):
        layer(x)
        want[name] = layer.backward(dy)[0]
    layer(xa)                                   # this thread's pending forward
    other = {}

    def in_other_thread():
        try:
            layer.backward(dyb)                 # no forward in that thread: an error, not xa's cache
        except RuntimeError as e:
            other["error"] = e
        layer(xb)
        other["dx"] = layer.backward(dyb)[0]    # its own forward

    t = threading.Thread(target=in_other_thread)
    t.start()
    t.join()
    assert "forward" in str(other["error"]) and np.array_equal(other["dx"], want["b"])
    assert np.array_equal(layer.backward(dya)[0], want["a"])  # still this thread's


def test_one_thread_reuses_one_buffer_set():
    """The speed of the layer that kept one set: a lone thread's calls get the same buffers back."""
    layer = rnnfast.LSTM(5, 6, seed=0)
    x = np.ones((3, 2, 5), np.float32)
    layer(x)
    layer.backward(np.ones((3, 2, 6), np.float32))
    pool = layer._pool()
    first = pool.take()
    pool.give(first)
    work = first[0]["work"]
    for _ in range(3):
        layer(x)
        layer.backward(np.ones((3, 2, 6), np.float32))
        layer.eval()
        layer(x)
        layer.train()
    assert len(pool) == 1 and pool.take()[0]["work"] is work


def test_concurrent_calls_take_separate_buffer_sets():
    """While one thread's training forward waits for its backward, another thread's calls use other buffers;
    afterwards both sets are kept for reuse."""
    layer = rnnfast.GRU(5, 6, seed=0)
    x = np.ones((3, 2, 5), np.float32)
    layer(x)                                    # pending: holds set 1
    t = threading.Thread(target=lambda: layer(x))
    t.start()
    t.join()                                    # the other thread's forward (kept until its thread ends)
    layer.backward(np.ones((3, 2, 6), np.float32))
    assert len(layer._pool()) == 1              # set 1 is back; set 2 stays with the other thread's forward


def test_no_grad_keeps_nothing_and_leaves_the_pending_forward():
    layer = rnnfast.RNN(5, 6, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x, x2, dy = rng.standard_normal((3, 2, 5)), rng.standard_normal((4, 2, 5)), rng.standard_normal((3, 2, 6))
    y2_eval = layer.eval()(x2)[0]
    layer.train()
    layer(x)
    want = layer.backward(dy)
    layer(x)
    with rnnfast.no_grad():
        y2, _ = layer(x2)                       # keeps nothing, replaces nothing
        assert layer.training
        with rnnfast.no_grad():
            pass
        layer(x2)
    np.testing.assert_array_equal(y2, y2_eval)
    assert _same(layer.backward(dy), want)
    with rnnfast.no_grad():
        layer(x)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(dy)
    # thread-local: another thread's forwards keep what they need while this one is inside no_grad
    kept = {}
    with rnnfast.no_grad():
        t = threading.Thread(target=lambda: (layer(x), kept.setdefault("dx", layer.backward(dy)[0])))
        t.start()
        t.join()
    np.testing.assert_array_equal(kept["dx"], want[0])


def test_evaluate_and_sample_leave_the_mode_alone():
    model = CharModel(7, "gru", hidden=8, seed=0)
    data = np.random.default_rng(0).integers(0, 7, 300).astype(np.int32)
    from rnnfast import losses
    for mode in (False, True):
        model.train(mode)
        model.evaluate(data, losses)
        model.sample([1, 2], 5, rng=np.random.default_rng(0))
        assert model.rnn.training is mode and model.out.training is mode


def test_copies_of_used_modules_are_independent():
    """copy.deepcopy after calls (locks and per-thread records are made anew): a copy per thread works."""
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((3, 2, 5)), rng.standard_normal((3, 2, 6))
    layer = rnnfast.LSTM(5, 6, dtype="float64", seed=0)
    layer(x)
    twin = copy.deepcopy(layer)
    with pytest.raises(RuntimeError, match="forward"):
        twin.backward(dy)                       # a pending forward is not copied
    twin(x)
    assert _same(twin.backward(dy), layer.backward(dy)) and _same(_grads(twin), _grads(layer))
    model = CharModel(7, "lstm", hidden=8, seed=0)
    model.loss_and_backward(np.zeros((4, 2), np.int64), np.ones((4, 2), np.int64), model.initial_state(2))
    assert copy.deepcopy(model).evaluate(np.arange(40) % 7, rnnfast.losses) == model.evaluate(np.arange(40) % 7,
                                                                                              rnnfast.losses)
    esn = rnnfast.ESN(2, 20, 1, seed=0)
    esn.run_reservoir(rng.standard_normal((5, 2)))
    esn2 = copy.deepcopy(esn)
    np.testing.assert_array_equal(esn2.state, esn.state)
    esn2.reset()
    assert np.any(esn.state)
