"""Validation, samples, `rnnfast char sample` and `rnnfast char eval` start from states the model learned
to read (issue 14), and short runs on several texts and seeds learn something real.

The failure: a min-char-rnn (tanh RNN, small biases: nearly odd-symmetric) can learn two mirror-image
attractors, h and about -h, and a read-out for only the one its (never reset) training stream sits in. A
zero state, burnt in on any amount of text, may settle in the other: validation from zeros then scored
9-20 bits/char where uniform guessing is 6, and samples were strings of rare characters. The carried
training state is the one the read-out was trained on. The texts are built in tests/helpers/texts.py.
"""

import json
import math
import re

import numpy as np
import pytest

from rnnfast import char, losses
from rnnfast import checkpoint as ckpt
from rnnfast.charmodel import bits

from helpers.cli import cli
from helpers.texts import common_fraction, english_like, python_docs, python_source, unigram_bits, unigram_entropy

# English-like text (58 characters) on which min-char-rnn's preset (3000 steps, 75,000 characters) learns
# the mirror attractors and a zero state lands in the wrong one for these seeds (a search over seeds 0-60
# found 15, 24, 44 failing both with the fused loop and with the general layers, whose float32 rounding
# differs; from zeros 9.2, 10.6, 9.6 bits/char, from the carried state 3.1, 2.8, 2.7). Rounding moves which
# seeds fail: with the engine's AVX2 tier seed 44 reads well from zeros, 15 and 24 still fail.
MIRROR_SEEDS = (15, 24, 44)
MC_RUN = ["--preset", "min-char-rnn", "--steps", "3000", "--val-every", "1000", "--sample-every", "0",
          "--sample-length", "300", "--no-progress"]


def train(text_file, out, *flags):
    code, so, se = cli("char", "train", "--text", text_file, "--out", out, *flags)
    assert code == 0, se
    return so, se, json.loads((out / "metrics.json").read_text())


def end_sample(stdout):
    """The sample printed at the end of training."""
    return re.search(r"---- sample at step \d+ \(end[^\n]*\n(.*)\n----\n", stdout, re.DOTALL).group(1)


def eval_bits(stdout):
    return float(re.match(r".*?: (\S+) bits/char over", stdout).group(1))


def write(tmp, name, text):
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def is_text_like(sample, text):
    """A sample of the text's kind: mostly letters, spaces and common punctuation, and made of the text's
    usual characters (its unigram cost within a bit of the text's own entropy)."""
    return common_fraction(sample) >= 0.9 and unigram_bits(sample, text) <= unigram_entropy(text) + 1.0


def val_part(text):
    """The held-out tail `rnnfast char train` validates on (--val-fraction 0.05)."""
    return text[len(text) - int(len(text) * 0.05):]


def model_state(out):
    meta, model = char.load_checkpoint(str(out))
    return meta, model, model.state_from_arrays(meta["hidden"], meta["config"]["batch"])


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """min-char-rnn runs of MIRROR_SEEDS on English-like text: {seed: (out dir, stdout, stderr, metrics)}."""
    tmp = tmp_path_factory.mktemp("mirror")
    text = english_like(120_000)
    text_file, val_file = write(tmp, "english.txt", text), write(tmp, "val.txt", val_part(text))
    runs = {seed: (tmp / f"s{seed}", *train(text_file, tmp / f"s{seed}", *MC_RUN, "--seed", seed))
            for seed in MIRROR_SEEDS}
    return text, text_file, val_file, runs


# ---- the failure, reproduced; the fix ---------------------------------------------------------------
@pytest.mark.slow
def test_a_zero_state_reads_the_mirror_attractor_the_carried_state_does_not(mirror):
    text, _, val_file, runs = mirror
    uniform = math.log2(len(set(text)))
    failed = []
    for seed, (out, so, se, metrics) in runs.items():
        val = metrics["val_bpc"]["latest"]
        # validation (from the carried state) is well below guessing, and is what `eval` reproduces
        assert val < uniform - 2, (seed, val)
        assert metrics["val_bpc"]["state"] == "carried" and "from the carried training state" in so
        assert "warning" not in se, se
        code, eo, _ = cli("char", "eval", out, "--text", val_file)
        assert code == 0 and abs(eval_bits(eo) - val) <= 5e-4 and "from the carried training state" in eo
        assert is_text_like(end_sample(so), text), end_sample(so)
        # from zeros, as validation ran before the fix: the mirror attractor, far worse than guessing
        code, eo, ee = cli("char", "eval", out, "--text", val_file, "--state", "zero")
        assert code == 0 and "from a zero state" in eo
        if eval_bits(eo) > uniform + 1:
            failed.append(seed)
            assert "warning: " in ee and "far worse than guessing uniformly" in ee and "--state carried" in ee
            # ... which is the mirror image of the carried state: -h reads as badly
            meta, model, state = model_state(out)
            data = char.encode_text(val_part(text), meta["vocab"])
            assert bits(model.evaluate(data, losses, state=-state)) > uniform + 1
            code, zs, _ = cli("char", "sample", out, "--state", "zero", "--length", "300", "--seed", 1)
            assert not is_text_like(zs, text), zs
            code, cs, _ = cli("char", "sample", out, "--length", "300", "--seed", 1)
            assert is_text_like(cs, text), cs
    # the failure is reproduced (by all three seeds on AVX-512, two on AVX2: one is enough)
    assert failed, "no seed reproduced the mirror-state failure"


@pytest.mark.slow
def test_sample_starts_from_the_carried_state_unless_told_otherwise(mirror):
    runs = mirror[-1]
    out = runs[MIRROR_SEEDS[1]][0]
    meta, model, state = model_state(out)
    prime = char.encode_text("The king", meta["vocab"]).tolist()
    for flags, start, words in (([], state, "sampling from the carried training state (step 3000), then the prime"),
                                (["--state", "zero"], None, "sampling from a zero state, then the prime")):
        code, so, se = cli("char", "sample", out, "--prime", "The king", "--length", 50, "--seed", 7, *flags)
        assert code == 0 and words in se
        want = model.sample(prime, 50, 1.0, np.random.default_rng(7), state=start)
        assert so == "The king" + char.decode_idx(meta["vocab"], want) + "\n"
    code, _, se = cli("char", "sample", out, "--length", 10, "--seed", 7)
    assert code == 0 and "carried training state" in se and "first character, drawn" in se


# ---- short runs learn, on several texts and seeds --------------------------------------------------
TEXTS = {"english-like": lambda: english_like(120_000),   # 58 characters (not a multiple of 8)
         "python-docs": python_docs,                      # prose with code examples: 103 characters
         "python-source": lambda: python_source(200_000)}  # code: 95 characters


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list(TEXTS))
def test_short_min_char_rnn_runs_learn_and_use_their_memory(tmp_path, name, seed):
    text = TEXTS[name]()
    if text is None:
        pytest.skip("this Python ships no pydoc_data")
    so, se, metrics = train(write(tmp_path, "t.txt", text), tmp_path / "run", *MC_RUN, "--seed", seed)
    uniform = math.log2(len(set(text)))
    val = metrics["val_bpc"]["latest"]
    assert val < uniform - 1, (val, uniform)
    assert "warning" not in se, se
    assert is_text_like(end_sample(so), text), end_sample(so)
    code, s, _ = cli("char", "sample", tmp_path / "run", "--length", 300, "--seed", seed)
    assert code == 0 and is_text_like(s, text), s
    # the recurrent weights carry information: without them (a bigram model: h_t depends on x_t alone) the
    # same model is worse; and no better than possible: a model that saw its targets would score near 0,
    # the best character models of English need ~1 bit/char and days of training
    meta, model, state = model_state(tmp_path / "run")
    data = char.encode_text(val_part(text), meta["vocab"])
    assert abs(bits(model.evaluate(data, losses, max_chars=32768, state=state)) - val) < 1e-9
    model.rnn.parameters()["weight_hh_l0"][...] = 0
    bigram = bits(model.evaluate(data, losses, max_chars=32768, state=state))
    assert val < bigram - 0.1, (val, bigram)
    assert val > 1.0


@pytest.mark.parametrize("preset,flags", [("small", ["--steps", "150"]),
                                          ("medium", ["--hidden", "64", "--batch", "8", "--seq-len", "50",
                                                      "--steps", "120"])])
@pytest.mark.slow
def test_lstm_presets_validate_from_the_carried_state_and_use_their_memory(tmp_path, preset, flags):
    text = english_like(120_000)
    text_file, val_file = write(tmp_path, "t.txt", text), write(tmp_path, "val.txt", val_part(text))
    out = tmp_path / "run"
    so, se, metrics = train(text_file, out, "--preset", preset, *flags, "--val-every", "0", "--sample-length", "300",
                            "--no-progress")
    val = metrics["val_bpc"]["latest"]
    assert val < math.log2(len(set(text))) - 1 and "warning" not in se
    assert is_text_like(end_sample(so), text), end_sample(so)
    # validation ran from the carried state of the batch's streams (eval from the checkpoint: the same score)
    code, eo, _ = cli("char", "eval", out, "--text", val_file, "--max-chars", 32768)
    assert code == 0 and abs(eval_bits(eo) - val) <= 5e-4
    meta, model, state = model_state(out)
    assert state[0].shape[1] == meta["config"]["batch"] > 1 and np.abs(state[0]).max() > 0
    data = char.encode_text(val_part(text), meta["vocab"])
    for name, w in model.rnn.parameters().items():
        if name.startswith("weight_hh"):
            w[...] = 0
    assert val < bits(model.evaluate(data, losses, max_chars=32768, state=state)) - 0.1


# ---- the guard ------------------------------------------------------------------------------------
def test_val_warning_thresholds():
    assert char.val_warning(3.0, 2.9, 58, "x") is None          # a normal run
    assert char.val_warning(2.5, 3.8, 58, "x") is None          # val below a lagging train loss
    assert char.val_warning(6.2, 5.9, 58, "x") is None          # untrained: about uniform (5.86)
    assert char.val_warning(6.5, None, 58, "x")[0] == "uniform"
    kind, msg = char.val_warning(10.6, 2.8, 58, "the held-out text")
    assert kind == "uniform" and "10.60 bits/char on the held-out text" in msg and "5.86" in msg and "Try" in msg
    kind, msg = char.val_warning(3.5, 1.2, 58, "f.txt")
    assert kind == "train" and "overfitting" in msg and "1.20" in msg
    assert char.val_warning(2.1, 1.2, 58, "x") is None
    assert char.val_warning(float("nan"), 1.0, 58, "x")[0] == "nonfinite"


def test_training_says_so_when_validation_is_worse_than_guessing(tmp_path):
    # the held-out tail is digits: characters the training part holds (years) but in a text of another kind
    text = english_like(40_000)
    text += "".join(np.random.default_rng(0).choice(list("0123456789"), size=len(text) // 19))
    _, se, metrics = train(write(tmp_path, "t.txt", text), tmp_path / "run", *MC_RUN, "--steps", "1000",
                            "--val-every", "500")
    val = metrics["val_bpc"]["latest"]
    assert val > math.log2(len(set(text))) + 0.5
    warnings = [line for line in se.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, se  # at the first validation that shows it, and again at the end
    assert "far worse than guessing uniformly" in warnings[-1] and f"{val:.2f} bits/char" in warnings[-1]
    assert "Try:" in warnings[-1] and "same kind of text" in warnings[-1]


# ---- eval: errors; checkpoints without a carried state ---------------------------------------------
def _one_error_line(code, err, *words):
    lines = err.strip("\n").split("\n")
    assert code not in (0, None) and len(lines) == 1 and lines[0].startswith("error: "), err
    for w in words:
        assert w in err, (w, err)


@pytest.mark.slow
def test_eval_bad_input(mirror, tmp_path):
    _, text_file, _, runs = mirror
    out = runs[MIRROR_SEEDS[0]][0]
    _one_error_line(*cli("char", "eval", tmp_path / "nope", "--text", text_file)[::2], "no such directory")
    _one_error_line(*cli("char", "eval", tmp_path, "--text", text_file)[::2], "no checkpoint")
    _one_error_line(*cli("char", "eval", out, "--text", tmp_path / "missing.txt")[::2], "no such file")
    _one_error_line(*cli("char", "eval", out, "--text", write(tmp_path, "e.txt", ""))[::2], "empty")
    _one_error_line(*cli("char", "eval", out, "--text", write(tmp_path, "one.txt", "a"))[::2], "nothing to predict")
    _one_error_line(*cli("char", "eval", out, "--text", write(tmp_path, "z.txt", "the zebra {x}"))[::2],
                    "vocabulary", "'x{}'", "z.txt")
    _one_error_line(*cli("char", "eval", out)[::2], "--text")
    _one_error_line(*cli("char", "eval", out, "--text", text_file, "--state", "warm")[::2], "--state", "warm")


@pytest.mark.slow
def test_a_checkpoint_without_a_carried_state_falls_back_to_burn_in(mirror, tmp_path):
    text, text_file, val_file, _ = mirror
    out = tmp_path / "old"
    train(text_file, out, "--preset", "min-char-rnn", "--steps", "200", "--val-every", "0", "--sample-length", "0",
          "--no-progress")
    path = out / "checkpoint.npz"
    meta, arrays = ckpt.load(path)
    del meta["hidden"]  # as a checkpoint without the carried state would be
    ckpt.save(path, meta, {k: v for k, v in arrays.items() if not k.startswith("h")})
    meta, model = char.load_checkpoint(str(out))
    assert meta["hidden"] is None
    code, eo, _ = cli("char", "eval", out, "--text", val_file)
    assert code == 0 and "burnt in on the last 1,000 characters of the training text" in eo and "no carried state" in eo
    data, train_data = (char.encode_text(t, meta["vocab"])
                        for t in (val_part(text), text[:len(text) - len(val_part(text))]))
    burnt = model.burn_in(train_data[-1000:])
    assert abs(eval_bits(eo) - bits(model.evaluate(data, losses, state=burnt))) <= 5e-4
    code, so, se = cli("char", "sample", out, "--length", 20, "--seed", 0)
    assert code == 0 and "no carried state" in se and len(so) > 20
    code, so, se = cli("char", "train", "--out", out, "--resume", "--steps", "210", "--no-progress", "--val-every", "0",
                       "--sample-length", "0")
    assert code == 0 and "holds no carried state" in se and "zero state" in se and "done: step 210/210" in so
    # without the training text at hand: a zero state, and it says so
    meta, arrays = ckpt.load(path)
    del meta["hidden"]
    meta["corpus"]["path"] = str(tmp_path / "gone.txt")
    ckpt.save(path, meta, {k: v for k, v in arrays.items() if not k.startswith("h")})
    code, eo, _ = cli("char", "eval", out, "--text", val_file)
    assert code == 0 and "from a zero state: the checkpoint holds no carried state" in eo and "not at hand" in eo
