"""`rnnfast char`: training learns, checkpoints round-trip and resume bit-identically, sampling, bad inputs.

Runs through rnnfast.__main__.main(argv) in-process (exit status returned or SystemExit), plus a few
subprocesses of `python -m rnnfast` for the end-to-end error lines and a save killed half-way.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import rnnfast
from rnnfast import char
from rnnfast import checkpoint as ckpt

from helpers.cli import env, load_run, run_main, run_module
from helpers.texts import make_text

# tiny, fast configurations (explicit flags override the preset)
TINY = ["--cell", "lstm", "--hidden", "32", "--layers", "1", "--seq-len", "16", "--batch", "4",
        "--no-progress", "--sample-length", "20", "--val-chars", "512"]


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "input.txt"
    p.write_text(make_text(), encoding="utf-8")
    return str(p)


def train(capsys, text_file, out, *extra):
    code, so, se = run_main(["char", "train", "--text", text_file, "--out", str(out), *TINY, *extra], capsys)
    assert code == 0, se
    return so, se


# ---- learning -----------------------------------------------------------------------------------
def test_training_lowers_the_loss_and_writes_outputs(tmp_path, capsys, text_file):
    out = tmp_path / "run"
    so, _ = train(capsys, text_file, out, "--steps", "60", "--val-every", "30", "--sample-every", "30",
                  "--log-every", "5", "--lr", "0.01")
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("steps", "chars_per_s", "train_loss", "val_bpc"):
        assert key in metrics
    assert metrics["steps"] == 60 and metrics["chars_per_s"] > 0
    hist = metrics["train_loss"]["history"]
    assert len(hist) == 12 and hist[-1][0] == 60
    assert hist[-1][1] < hist[0][1] - 0.5, hist               # nats/char
    assert metrics["train_loss"]["latest"] is not None
    vals = metrics["val_bpc"]["history"]
    assert [v[0] for v in vals] == [0, 30, 60]
    assert vals[-1][1] < vals[0][1] - 0.5 and metrics["val_bpc"]["latest"] == vals[-1][1]
    png = (out / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "checkpoint.npz").is_file()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    assert "sample at step 30" in so and "done: step 60/60" in so and "val" in so


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_other_cells_and_optimizers_train(tmp_path, capsys, text_file, cell):
    out = tmp_path / cell
    train(capsys, text_file, out, "--cell", cell, "--layers", "2", "--optimizer", "rmsprop", "--steps", "30",
          "--log-every", "5", "--val-every", "0", "--clip-mode", "value", "--clip", "1")
    hist = json.loads((out / "metrics.json").read_text())["train_loss"]["history"]
    assert hist[-1][1] < hist[0][1]


def test_min_char_rnn_preset(tmp_path, capsys, text_file):
    out = tmp_path / "mc"
    code, so, se = run_main(["char", "train", "--text", text_file, "--out", str(out), "--preset", "min-char-rnn",
                             "--steps", "200", "--no-progress", "--val-every", "0", "--log-every", "20",
                             "--sample-length", "10"], capsys)
    assert code == 0, se
    meta, w = load_run(out)
    cfg = meta["config"]
    assert (cfg["cell"], cfg["hidden"], cfg["seq_len"], cfg["batch"], cfg["optimizer"], cfg["lr"]) == \
        ("rnn", 100, 25, 1, "adagrad", 0.1)
    assert cfg["clip_mode"] == "value" and cfg["clip"] == 5 and cfg["adagrad_eps_inside_sqrt"]
    assert not w["rnn.bias_hh_l0"].any()  # the lecture's single hidden bias lives in bias_ih
    hist = meta["run"].history
    assert hist[-1][1] < hist[0][1]
    assert "loss summed over time" in so


# ---- checkpoints --------------------------------------------------------------------------------
def test_checkpoint_structure_round_trip(tmp_path):
    arrays = {}
    obj = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "t": (1, 2.5, "x"), "n": None,
           "nested": [{"k": np.ones(2)}, True], 3: "int key", "s": np.int64(7)}
    meta = {"obj": ckpt.encode(obj, arrays)}
    path = tmp_path / "c.npz"
    ckpt.save(path, meta, arrays)
    meta2, arrays2 = ckpt.load(path)
    back = ckpt.decode(meta2["obj"], arrays2)
    assert back["t"] == (1, 2.5, "x") and back["n"] is None and back[3] == "int key" and back["s"] == 7
    np.testing.assert_array_equal(back["a"], obj["a"])
    assert back["a"].dtype == np.float32
    np.testing.assert_array_equal(back["nested"][0]["k"], np.ones(2))


def test_char_checkpoint_round_trip(tmp_path, capsys, text_file):
    out = tmp_path / "run"
    train(capsys, text_file, out, "--steps", "8", "--val-every", "0")
    meta, model = char.load_checkpoint(str(out))
    assert meta["run"].step == 8 and meta["run"].pos == 8 * 16
    assert meta["vocab"] == "".join(sorted(set(make_text())))
    h, c = model.state_from_arrays(meta["hidden"], 4)
    assert h.shape == (1, 4, 32) and np.abs(h).max() > 0
    assert any(k.endswith(".exp_avg") for k in meta["optimizer"])
    # saving what was loaded gives the same weights back
    rng = np.random.default_rng(0)
    opt = char.make_optimizer(meta["config"], model)
    opt.load_state_dict(meta["optimizer"])
    out2 = tmp_path / "copy"
    out2.mkdir()
    char.save_checkpoint(str(out2), meta["config"], meta["vocab"], meta["counts"], meta["corpus"], model, opt,
                         (h, c), rng, meta["run"])
    _, w2 = load_run(out2)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, w2[k])


@pytest.mark.parametrize("preset_args", [[], ["--preset", "min-char-rnn", "--hidden", "24"],
                                         ["--cell", "gru", "--layers", "2", "--optimizer", "sgd"]],
                         ids=["lstm-adam", "min-char-rnn", "gru-sgd"])
def test_resume_is_bit_identical(tmp_path, capsys, text_file, preset_args):
    K = 7
    common = ["--val-every", "3", "--sample-every", "4", "--save-every", "2", "--log-every", "2", *preset_args]
    a, b = tmp_path / "a", tmp_path / "b"
    train(capsys, text_file, a, "--steps", str(2 * K), *common)
    train(capsys, text_file, b, "--steps", str(K), *common)
    so, _ = train(capsys, text_file, b, "--steps", str(2 * K), "--resume", *common)
    assert f"resuming {b} at step {K}" in so
    (ma, wa), (mb, wb) = load_run(a), load_run(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), k
    for x, y in zip(ma["hidden"], mb["hidden"]):
        assert np.array_equal(x, y)
    oa, ob = ma["optimizer"], mb["optimizer"]
    assert oa.keys() == ob.keys()
    for k in oa:
        assert np.array_equal(np.asarray(oa[k]), np.asarray(ob[k])), k
    ra, rb = ma["run"], mb["run"]
    assert (ra.step, ra.pos, ra.epochs, ra.history, ra.last_loss) == (rb.step, rb.pos, rb.epochs, rb.history,
                                                                      rb.last_loss)
    assert ma["rng"] == mb["rng"]


def test_resume_wraps_the_data_like_an_uninterrupted_run(tmp_path, capsys):
    # a text so short that the streams restart (epoch, zero state) several times
    p = tmp_path / "short.txt"
    p.write_text(make_text(400), encoding="utf-8")
    common = ["--val-fraction", "0", "--val-every", "0", "--batch", "2", "--seq-len", "20"]
    a, b = tmp_path / "a", tmp_path / "b"
    train(capsys, str(p), a, "--steps", "30", *common)
    train(capsys, str(p), b, "--steps", "13", *common)
    train(capsys, str(p), b, "--steps", "30", "--resume", *common)
    (ma, wa), (mb, wb) = load_run(a), load_run(b)
    assert ma["run"].epochs >= 3 and ma["run"].epochs == mb["run"].epochs
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_changed_flags_and_text(tmp_path, capsys, text_file):
    out = tmp_path / "run"
    train(capsys, text_file, out, "--steps", "3", "--val-every", "0")
    code, _, err = run_main(["char", "train", "--text", text_file, "--out", str(out), *TINY, "--resume",
                             "--hidden", "64"], capsys)
    assert code == 1 and err.startswith("error: ") and "--hidden 64" in err and err.count("\n") == 1
    other = tmp_path / "other.txt"
    other.write_text(make_text(seed=1), encoding="utf-8")
    code, _, err = run_main(["char", "train", "--text", str(other), "--out", str(out), *TINY, "--resume"], capsys)
    assert code == 1 and "differs" in err and err.count("\n") == 1
    # without --resume an existing run is not overwritten
    code, _, err = run_main(["char", "train", "--text", text_file, "--out", str(out), *TINY], capsys)
    assert code == 1 and "--resume" in err and err.count("\n") == 1
    # --resume without --text uses the checkpoint's text; --steps below the checkpoint's is a no-op
    code, so, err = run_main(["char", "train", "--out", str(out), "--resume", "--steps", "2", "--no-progress"],
                             capsys)
    assert code == 0 and "nothing to train" in so


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, capsys, text_file, monkeypatch):
    out = tmp_path / "run"
    train(capsys, text_file, out, "--steps", "4", "--val-every", "0")
    before = (out / "checkpoint.npz").read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.np, "savez", broken_savez)
    code, _, err = run_main(["char", "train", "--text", text_file, "--out", str(out), *TINY, "--resume",
                             "--steps", "6", "--val-every", "0"], capsys)
    monkeypatch.undo()
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"error: cannot write the checkpoint {out / 'checkpoint.npz'}: No space left on device")
    assert "holds step 4" in err
    assert (out / "checkpoint.npz").read_bytes() == before
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    assert char.load_checkpoint(str(out))[0]["run"].step == 4


def test_process_killed_mid_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    ckpt.save(path, {"v": 1}, {"w": np.zeros(1000, np.float32)})
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, sys, time
        import numpy as np
        from rnnfast import checkpoint as ckpt
        real_fsync = os.fsync
        def slow_fsync(fd):
            real_fsync(fd)
            print("saving", flush=True)
            time.sleep(60)
        os.fsync = slow_fsync
        ckpt.save({str(path)!r}, {{"v": 2}}, {{"w": np.ones(1000000, np.float32)}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert proc.stdout.readline().strip() == "saving"   # the new file is written, not yet moved
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert path.read_bytes() == before
    meta, arrays = ckpt.load(path)
    assert meta == {"v": 1} and not arrays["w"].any()


# ---- sampling -----------------------------------------------------------------------------------
def test_sample_starts_with_prime_and_is_deterministic(tmp_path, capsys, text_file):
    out = tmp_path / "run"
    train(capsys, text_file, out, "--steps", "20", "--val-every", "0")
    args = ["char", "sample", str(out), "--prime", "the fox", "--length", "80", "--seed", "3"]
    code, s1, err = run_main(args, capsys)
    assert code == 0, err
    code, s2, _ = run_main(args, capsys)
    assert s1 == s2 and s1.startswith("the fox") and len(s1.rstrip("\n")) >= len("the fox") + 60
    assert set(s1) <= set(make_text()) | {"\n"}
    code, s3, _ = run_main(args[:-1] + ["4"], capsys)
    assert code == 0 and s3.startswith("the fox") and s3 != s1
    code, s4, _ = run_main(["char", "sample", str(out), "--length", "30", "--seed", "0", "--temperature", "0.5"],
                           capsys)
    assert code == 0 and len(s4.rstrip("\n")) >= 25


def test_sample_burns_the_prime_into_the_state(tmp_path, capsys, text_file):
    out = tmp_path / "run"
    train(capsys, text_file, out, "--steps", "5", "--val-every", "0")
    _, model = char.load_checkpoint(str(out))
    vocab = char.load_checkpoint(str(out))[0]["vocab"]
    prime = char.encode_text("the lazy dog", vocab).tolist()
    model.train(False)
    full, _ = model.forward(np.array(prime)[:, None], model.initial_state(1))
    last, _ = model.forward(np.array(prime[-1:])[:, None], model.initial_state(1))
    model.train(True)
    assert np.abs(full[-1] - last[-1]).max() > 1e-3  # the earlier characters of the prime changed the state
    a = model.sample(prime, 30, 1.0, np.random.default_rng(1))
    assert a == model.sample(prime, 30, 1.0, np.random.default_rng(1)) and len(a) == 30


# ---- bad input ----------------------------------------------------------------------------------
def _one_error_line(code, err):
    assert code not in (0, None)
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize("case", ["missing", "empty", "binary", "latin1", "short", "dir"])
def test_bad_text_files(tmp_path, capsys, case):
    p = tmp_path / "f.txt"
    if case == "empty":
        p.write_bytes(b"")
    elif case == "binary":
        p.write_bytes(bytes(range(256)) * 4)
    elif case == "latin1":
        p.write_bytes("café crème\n".encode("latin-1") * 50)
    elif case == "short":
        p.write_text("hello world", encoding="utf-8")
    elif case == "dir":
        p.mkdir()
    code, _, err = run_main(["char", "train", "--text", str(p), "--out", str(tmp_path / "o"), *TINY], capsys)
    _one_error_line(code, err)
    expect = {"missing": "no such file", "empty": "empty", "binary": "binary", "latin1": "not utf-8 text",
              "short": "too short", "dir": "directory"}[case]
    assert expect in err
    assert not (tmp_path / "o" / "checkpoint.npz").exists()


def test_batch_too_large_for_the_text(tmp_path, capsys):
    p = tmp_path / "t.txt"
    p.write_text(make_text(300), encoding="utf-8")
    code, _, err = run_main(["char", "train", "--text", str(p), "--out", str(tmp_path / "o"), *TINY,
                             "--batch", "64"], capsys)
    _one_error_line(code, err)
    assert "--batch" in err


@pytest.mark.parametrize("flag,value", [("--preset", "huge"), ("--cell", "transformer"), ("--optimizer", "lbfgs"),
                                        ("--device", "tpu"), ("--hidden", "0"), ("--lr", "-1"),
                                        ("--val-fraction", "0.9")])
def test_bad_choices(tmp_path, capsys, text_file, flag, value):
    code, _, err = run_main(["char", "train", "--text", text_file, "--out", str(tmp_path / "o"), flag, value],
                            capsys)
    _one_error_line(code, err)
    assert flag in err and value in err


def test_cuda_without_gpu(tmp_path, capsys, text_file):
    if rnnfast.build_info()["cuda_available"]:
        pytest.skip("a GPU is available")
    code, _, err = run_main(["char", "train", "--text", text_file, "--out", str(tmp_path / "o"), *TINY,
                             "--device", "cuda"], capsys)
    _one_error_line(code, err)
    assert "cuda" in err.lower() and "cpu" in err


def test_sample_errors(tmp_path, capsys, text_file):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_main(["char", "sample", str(empty)], capsys)
    _one_error_line(code, err)
    assert "no checkpoint" in err
    code, _, err = run_main(["char", "sample", str(tmp_path / "nope")], capsys)
    _one_error_line(code, err)

    out = tmp_path / "run"
    train(capsys, text_file, out, "--steps", "3", "--val-every", "0")
    code, _, err = run_main(["char", "sample", str(out), "--prime", "the ZEBRA"], capsys)
    _one_error_line(code, err)
    assert "'ABERZ'" in err and "vocabulary" in err
    code, _, err = run_main(["char", "sample", str(out), "--temperature", "0"], capsys)
    _one_error_line(code, err)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not-char", "version", "shapes"])
def test_corrupted_or_incompatible_checkpoint(tmp_path, capsys, text_file, damage):
    out = tmp_path / "run"
    train(capsys, text_file, out, "--steps", "3", "--val-every", "0")
    path = out / "checkpoint.npz"
    if damage == "garbage":
        path.write_bytes(b"this is not a zip file at all")
    elif damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "not-char":
        ckpt.save(path, {"kind": "something-else"}, {})
    else:
        meta, arrays = ckpt.load(path)
        if damage == "version":
            import json as _json
            header = _json.dumps({"format": ckpt.FORMAT, "version": 99, "meta": meta})
            entries = {"__header__": np.frombuffer(header.encode(), np.uint8)}
            entries.update({"x_" + k: v for k, v in arrays.items()})
            np.savez(path, **entries)
        else:
            meta["config"]["hidden"] = 64
            ckpt.save(path, meta, arrays)
    for argv in (["char", "sample", str(out)],
                 ["char", "train", "--text", text_file, "--out", str(out), "--resume", "--no-progress"]):
        code, _, err = run_main(argv, capsys)
        _one_error_line(code, err)
        assert str(path) in err or "checkpoint" in err


def test_errors_end_to_end_in_a_subprocess(tmp_path):
    r = run_module("char", "train", "--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o"))
    assert r[0] == 1 and r[2].startswith("error: ") and r[2].count("\n") == 1, r[2]
    r = run_module("char", "train", "--cell", "lstmx", "--out", str(tmp_path / "o"))
    assert r[0] == 2 and r[2].startswith("error: ") and r[2].count("\n") == 1, r[2]
    r = run_module("char", "sample", str(tmp_path))
    assert r[0] == 1 and r[2].startswith("error: ") and r[2].count("\n") == 1, r[2]


def test_end_to_end_train_and_sample_subprocess(tmp_path, text_file):
    out = tmp_path / "run"
    t0 = time.perf_counter()
    r = run_module("char", "train", "--text", text_file, "--out", str(out), *TINY, "--steps", "10")
    assert r[0] == 0, r[2]
    assert time.perf_counter() - t0 < 60
    assert "done: step 10/10" in r[1]
    r = run_module("char", "sample", str(out), "--prime", "fox", "--length", "10", "--seed", "1")
    assert r[0] == 0 and r[1].startswith("fox"), r[2]


# ---- corpus, other commands ----------------------------------------------------------------------
def test_default_corpus_is_the_stdlib_and_deterministic():
    text, desc = char.stdlib_corpus(cap=200_000)
    assert len(text) == 200_000 and "standard library" in desc
    assert text.startswith("# file: ") and "def " in text and text.isascii()
    assert char.stdlib_corpus(cap=200_000)[0] == text


def test_encode_text_and_vocab():
    vocab = "".join(sorted(set("héllo wörld\n")))
    idx = char.encode_text("wörld", vocab)
    assert idx.dtype == np.int32 and char.decode_idx(vocab, idx) == "wörld"
    with pytest.raises(char.CharError):
        char.encode_text("xyz", vocab)


def test_info_and_help_still_work(capsys):
    code, out, _ = run_main(["info"], capsys)
    assert code == 0 and "version" in json.loads(out)
    code, out, _ = run_main(["char", "train", "--help"], capsys)
    assert code == 0 and "--preset" in out and "--resume" in out
