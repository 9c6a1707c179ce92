"""The fused min-char-rnn training loop (`_core.char_rnn_train`, `charmodel.FusedMinCharRNN`).

It must be the same math as rnnfast char's step on the general layers: from the same weights it agrees with
that path to float32 rounding (tolerance from a baseline: its error against a float64 run is at most about
the general float32 path's own), in float64 with the NumPy MinCharRNN reference, and `rnnfast char train
--preset min-char-rnn` gives the same run with it as without it (rnnfast.char.trainer.FUSED_LOOP = False).
"""

import numpy as np
import pytest

from rnnfast import _core, char, losses, optim
from rnnfast.charmodel import CharModel, FusedMinCharRNN
from rnnfast.reference.min_char_rnn import MinCharRNN

from helpers.cli import load_run, run_main
from helpers.texts import make_text

V, H, T = 23, 40, 25
NAMES = ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "out.weight", "out.bias")


def corpus(n, seed=0):
    return np.random.default_rng(seed).integers(0, V, n).astype(np.int32)


def weights(seed=1):
    """min-char-rnn's init plus non-zero biases (so that both biases are exercised)."""
    rng = np.random.default_rng(seed)
    return {"rnn.weight_ih_l0": rng.standard_normal((H, V)) * 0.01,
            "rnn.weight_hh_l0": rng.standard_normal((H, H)) * 0.01,
            "rnn.bias_ih_l0": rng.standard_normal(H) * 0.1, "rnn.bias_hh_l0": rng.standard_normal(H) * 0.1,
            "out.weight": rng.standard_normal((V, H)) * 0.01, "out.bias": rng.standard_normal(V) * 0.1}


def make(dtype, w=None, freeze=True):
    model = CharModel(V, "rnn", H, 1, seed=0, init="min-char-rnn" if freeze else "default", dtype=dtype)
    model.load_state_dict({k: v.astype(dtype) for k, v in (w or weights()).items()})
    opt = optim.Adagrad(model.modules(), lr=0.1, eps=1e-8, eps_inside_sqrt=True)
    return model, opt


def general_steps(model, opt, data, steps, state=None, pos=0, freeze=True):
    """rnnfast char's step on the general layers (batch 1, loss summed over time, elementwise clip 5)."""
    state = model.initial_state(1) if state is None else state
    out = []
    for _ in range(steps):
        if pos + T + 1 >= len(data) and pos > 0:
            pos, state = 0, model.initial_state(1)
        chunk = data[pos:pos + T + 1].astype(np.int64)[:, None]
        opt.zero_grad()
        logits, state = model.forward(chunk[:-1], state)
        loss, dlogits = losses.softmax_cross_entropy(logits, chunk[1:])
        dlogits *= T
        model.backward(dlogits)
        if freeze:
            model.freeze_extra_bias()
        optim.clip_grad_value_(opt, 5.0)
        opt.step()
        pos += T
        out.append(loss)
    return out, state, pos


def fused_steps(model, opt, data, steps, state=None, pos=0, freeze=True, chunks=None):
    fused = FusedMinCharRNN.create(model, opt, data, T, 5.0, True, freeze)
    assert fused is not None
    state = model.initial_state(1).copy() if state is None else state
    out, restarts = [], 0
    for k in chunks or [steps]:
        ls, pos, r = fused.train(k, state, pos)
        out += ls
        restarts += r
    return out, state, pos, restarts


def snapshot(model, opt, state):
    return ({k: v.copy() for k, v in model.state_dict().items()},
            {n: opt.state[n]["sum"].copy() for n in NAMES}, state.copy())


def max_err(a, b):
    """Largest absolute difference over (params, sums, state) snapshots."""
    pa, sa, ha = a
    pb, sb, hb = b
    return max([float(np.abs(pa[k] - pb[k].astype(pa[k].dtype)).max()) for k in pa] +
               [float(np.abs(sa[k] - sb[k].astype(sa[k].dtype)).max() / max(1.0, np.abs(sa[k]).max())) for k in sa] +
               [float(np.abs(ha - hb.astype(ha.dtype)).max())])


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("freeze", [True, False])
def test_fused_float32_agrees_with_the_general_path_to_rounding(steps, freeze):
    data = corpus(3000)
    m64, o64 = make("float64", freeze=freeze)
    l64, s64, p64 = general_steps(m64, o64, data, steps, freeze=freeze)
    ref = snapshot(m64, o64, s64)
    mg, og = make("float32", freeze=freeze)
    lg, sg, pg = general_steps(mg, og, data, steps, freeze=freeze)
    mf, of = make("float32", freeze=freeze)
    lf, sf, pf, _ = fused_steps(mf, of, data, steps, freeze=freeze)
    assert pf == pg == p64 == steps * T
    err_general = max_err(ref, snapshot(mg, og, sg))
    err_fused = max_err(ref, snapshot(mf, of, sf))
    # the fused path is no further from float64 than float32 rounding takes the general path
    assert err_fused <= 2 * err_general + 1e-6, (err_fused, err_general)
    assert np.allclose(lf, l64, rtol=0, atol=1e-5) and np.allclose(lg, l64, rtol=0, atol=1e-5)
    for n in NAMES:
        assert of.state[n]["step"] == og.state[n]["step"] == steps
    if freeze:  # b_hh is frozen: exactly unchanged
        assert np.array_equal(mf.rnn.parameters()["bias_hh_l0"], weights()["rnn.bias_hh_l0"].astype(np.float32))


def test_fused_float64_matches_the_numpy_min_char_rnn_through_a_wrap():
    data = corpus(4 * T + 10)  # the 5th step restarts at 0 with a zero state
    w = weights()
    w["rnn.bias_hh_l0"][:] = 0  # the reference has one hidden bias
    ref = MinCharRNN(V, H, T, 0.1)
    ref.params.update(W_xh=w["rnn.weight_ih_l0"].copy(), W_hh=w["rnn.weight_hh_l0"].copy(),
                      W_hy=w["out.weight"].copy(), b_h=w["rnn.bias_ih_l0"][:, None].copy(),
                      b_y=w["out.bias"][:, None].copy())
    ref_losses = [ref.step(data.tolist()) / T for _ in range(6)]
    model, opt = make("float64", w)
    got, state, pos, restarts = fused_steps(model, opt, data, 6)
    assert restarts == 1 and pos == ref.position == 2 * T
    np.testing.assert_allclose(got, ref_losses, rtol=1e-9)
    p = model.state_dict()
    for mine, theirs in (("rnn.weight_ih_l0", "W_xh"), ("rnn.weight_hh_l0", "W_hh"), ("out.weight", "W_hy"),
                         ("rnn.bias_ih_l0", "b_h"), ("out.bias", "b_y")):
        np.testing.assert_allclose(p[mine], ref.params[theirs].reshape(p[mine].shape), rtol=0, atol=1e-9)
        np.testing.assert_allclose(opt.state[mine]["sum"], ref.memory[theirs].reshape(p[mine].shape), rtol=1e-7,
                                   atol=1e-12)
    np.testing.assert_allclose(state.reshape(-1), ref.h[:, 0], rtol=0, atol=1e-9)


def test_steps_per_call_do_not_change_the_result():
    data = corpus(400)
    runs = []
    for chunks in ([17], [1, 5, 11], [8, 0, 9]):
        model, opt = make("float32")
        ls, state, pos, restarts = fused_steps(model, opt, data, 17, chunks=chunks)
        runs.append((ls, snapshot(model, opt, state), pos, restarts))
    for ls, snap, pos, restarts in runs[1:]:
        assert ls == runs[0][0] and (pos, restarts) == runs[0][2:]
        assert max_err(runs[0][1], snap) == 0


def test_fused_applies_only_to_the_min_char_rnn_configuration():
    data = corpus(200)
    model, opt = make("float32")
    assert FusedMinCharRNN.create(model, opt, data, T, 5.0, True, True) is not None
    lstm = CharModel(V, "lstm", H, 1, seed=0)
    assert FusedMinCharRNN.create(lstm, optim.Adagrad(lstm.modules()), data, T, 5.0, True, True) is None
    two = CharModel(V, "rnn", H, 2, seed=0)
    assert FusedMinCharRNN.create(two, optim.Adagrad(two.modules()), data, T, 5.0, True, True) is None
    assert FusedMinCharRNN.create(model, optim.RMSprop(model.modules()), data, T, 5.0, True, True) is None
    assert FusedMinCharRNN.create(model, optim.Adagrad(model.modules(), lr_decay=0.1), data, T, 5.0, True,
                                  True) is None
    assert FusedMinCharRNN.create(model, opt, data[:T], T, 5.0, True, True) is None  # shorter than a chunk


def test_bad_data_and_non_finite_gradients_raise_without_updating():
    model, opt = make("float32")
    data = corpus(300)
    data[60] = V  # outside the vocabulary: the 3rd chunk (positions 50..75)
    fused = FusedMinCharRNN.create(model, opt, data, T, 5.0, True, True)
    state = model.initial_state(1).copy()
    with pytest.raises(ValueError, match="position 60"):
        fused.train(5, state, 0)
    assert opt.state[NAMES[0]]["step"] == 2  # two steps done, the third changed nothing
    model2, opt2 = make("float32")
    fused_steps(model2, opt2, data[:60], 2)
    assert max_err(snapshot(model, opt, state), snapshot(model2, opt2, state)) < 1e-6

    model, opt = make("float32")
    model.out.parameters()["weight"][3, 5] = np.nan
    fused = FusedMinCharRNN.create(model, opt, corpus(300), T, 5.0, True, True)
    w_before = model.rnn.parameters()["weight_hh_l0"].copy()
    with pytest.raises(ValueError, match="NaN or Inf"):
        fused.train(3, model.initial_state(1).copy(), 0)
    assert np.array_equal(model.rnn.parameters()["weight_hh_l0"], w_before)
    assert opt.state[NAMES[0]]["step"] == 0


def test_binding_checks_its_arguments():
    model, opt = make("float32")
    data = corpus(300)
    fused = FusedMinCharRNN.create(model, opt, data, T, 5.0, True, True)
    state = model.initial_state(1).copy()
    params, sums = fused.params, opt.sums()
    args = dict(params=params, sums=sums, h=state.reshape(-1), data=fused.data, seq_len=T, pos=0, steps=2, lr=0.1,
                eps=1e-8, eps_inside_sqrt=True, clip=5.0, loss_scale=1.0, freeze_b_hh=True, losses=fused.losses,
                work=fused.work)
    assert _core.char_rnn_train(**args)[:4] == (2, 2 * T, 0, 0)
    bad = [
        (dict(params=params[:5]), "6 arrays"),
        (dict(sums=[s.astype(np.float64) for s in sums]), "float32"),
        (dict(h=np.zeros(H + 1, np.float32)), "shape"),
        (dict(data=fused.data.astype(np.int64)), "int32"),
        (dict(work=fused.work[:100]), "workspace_size"),
        (dict(pos=len(data)), "pos"),
        (dict(losses=np.zeros(1)), "losses"),
        (dict(params=[np.ascontiguousarray(params[0].T)] + params[1:]), "shape"),
        (dict(params=[params[0][:, ::2]] + params[1:]), "C-contiguous|shape"),
        (dict(eps=0.0), "eps"),
    ]
    for change, msg in bad:
        with pytest.raises(ValueError, match=msg):
            _core.char_rnn_train(**{**args, **change})
    with pytest.raises(ValueError, match="float32 or float64"):
        _core.char_rnn_workspace_size(V, H, T, "int8")


# ---- the CLI ------------------------------------------------------------------------------------
MC = ["--preset", "min-char-rnn", "--hidden", "32", "--no-progress", "--sample-length", "20", "--val-chars", "512",
      "--log-every", "1"]


@pytest.fixture
def short_text(tmp_path):
    p = tmp_path / "short.txt"
    p.write_text(make_text(700), encoding="utf-8")  # ~26 steps of 25 per pass: wraps within the run
    return str(p)


def test_cli_fused_run_matches_the_general_path(tmp_path, capsys, short_text, monkeypatch):
    calls = []
    real = FusedMinCharRNN.train

    def counting(self, steps, state, pos):
        calls.append(steps)
        return real(self, steps, state, pos)

    monkeypatch.setattr(FusedMinCharRNN, "train", counting)
    common = [*MC, "--steps", "40", "--val-every", "10", "--sample-every", "15", "--save-every", "0"]
    a, b = tmp_path / "fused", tmp_path / "general"
    code, _, err = run_main(["char", "train", "--text", short_text, "--out", str(a), *common], capsys)
    assert code == 0, err
    assert calls == [10, 5, 5, 10, 10]  # every step between two events in one call
    monkeypatch.setattr(char.trainer, "FUSED_LOOP", False)  # the general layers, step by step
    monkeypatch.setattr(char.trainer, "FUSED_READOUT", False)
    code, _, err = run_main(["char", "train", "--text", short_text, "--out", str(b), *common], capsys)
    assert code == 0, err
    assert len(calls) == 5
    (ma, wa), (mb, wb) = load_run(a), load_run(b)
    ra, rb = ma["run"], mb["run"]
    assert (ra.step, ra.pos, ra.epochs, ra.chars) == (rb.step, rb.pos, rb.epochs, rb.chars) and ra.epochs >= 1
    la, lb = np.array(ra.history)[:, 1], np.array(rb.history)[:, 1]
    # from the same weights the two agree to rounding at first; the chaotic drift of any two float32
    # orders of summation then grows (over seeds 0-7, the means of the last 10 of these 40 steps differ by
    # 0.01-0.58 nats between the two paths, and between any two summation orders), so later steps only
    # have to show that both paths learn
    assert np.abs(la[:2] - lb[:2]).max() < 1e-5
    assert np.abs(la[:5] - lb[:5]).max() < 1e-3
    assert la[-10:].mean() < la[0] - 0.5 and lb[-10:].mean() < lb[0] - 0.5
    oa, ob = ma["optimizer"], mb["optimizer"]
    assert oa.keys() == ob.keys()
    assert all(oa[f"state.{n}.step"] == ob[f"state.{n}.step"] == 40 for n in NAMES)
    assert np.array_equal(wa["rnn.bias_hh_l0"], wb["rnn.bias_hh_l0"])  # frozen at zero on both
    assert np.all(wa["rnn.bias_hh_l0"] == 0)


def test_cli_fused_resume_through_wraps_is_bit_identical(tmp_path, capsys, short_text):
    common = [*MC, "--val-every", "7", "--sample-every", "0", "--save-every", "5"]
    a, b = tmp_path / "a", tmp_path / "b"
    for out, extra in ((a, ["--steps", "60"]), (b, ["--steps", "23"]), (b, ["--steps", "60", "--resume"])):
        code, _, err = run_main(["char", "train", "--text", short_text, "--out", str(out), *common, *extra], capsys)
        assert code == 0, err
    (ma, wa), (mb, wb) = load_run(a), load_run(b)
    assert ma["run"].epochs >= 2
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert all(np.array_equal(np.asarray(ma["optimizer"][k]), np.asarray(mb["optimizer"][k])) for k in ma["optimizer"])
    assert np.array_equal(ma["hidden"][0], mb["hidden"][0])
    ra, rb = ma["run"], mb["run"]
    assert (ra.step, ra.pos, ra.epochs, ra.history, ra.last_loss) == (rb.step, rb.pos, rb.epochs, rb.history,
                                                                      rb.last_loss)
