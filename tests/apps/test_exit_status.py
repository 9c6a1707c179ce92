"""Every `rnnfast` command exits non-zero on any failure: one `error: ...` line naming the file and the cause.

The failures are real ones, in subprocesses: a file-size limit (resource.setrlimit(RLIMIT_FSIZE), set in
the child before rnnfast starts; Python ignores SIGXFSZ, so the write fails with EFBIG), a read-only
output folder (chmod 555, or for root a read-only bind mount in a user namespace), a directory where a
file must go, /dev/full as the standard output. After a failed checkpoint write the previous checkpoint
still loads, and --resume continues from it to the same weights as a run that never failed.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rnnfast import char

from helpers.cli import one_error_line, run_module

TINY = ["--cell", "gru", "--hidden", "16", "--layers", "1", "--seq-len", "8", "--batch", "2", "--no-progress",
        "--val-every", "0", "--sample-every", "0"]

@pytest.fixture
def text_file(tmp_path):
    words = ["the", "quick", "fox", "dog", "runs", "home"]
    p = tmp_path / "t.txt"
    p.write_text(" ".join(np.random.default_rng(0).choice(words, 800)) + "\n", encoding="utf-8")
    return str(p)


def train(text_file, out, *extra, limit=None, prefix=()):
    return run_module("char", "train", "--text", text_file, "--out", out, *TINY, *extra, limit=limit, prefix=prefix)


def weights(out):
    meta, model = char.load_checkpoint(str(out))
    return meta["run"].step, model.state_dict()


def _bytes(folder, name):
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


def no_temp_files(out):
    return not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_failed_checkpoint_write_exits_nonzero_and_resume_continues(tmp_path, text_file):
    """A periodic save hits the file-size limit: status 1, the message names checkpoint.npz and EFBIG, the
    step-4 checkpoint is intact, and --resume from it ends where an uninterrupted run ends, bit for bit."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert train(text_file, a, "--steps", "12", "--save-every", "4")[0] == 0
    assert train(text_file, b, "--steps", "4", "--save-every", "4")[0] == 0
    size = os.path.getsize(os.path.join(b, "checkpoint.npz"))
    before = _bytes(b, "checkpoint.npz")

    code, _, err = train(text_file, b, "--steps", "12", "--save-every", "4", "--resume", limit=size // 2)
    assert code == 1
    one_error_line(err, os.path.join(b, "checkpoint.npz"), "File too large", "EFBIG", "holds step 4", "--resume")
    assert _bytes(b, "checkpoint.npz") == before and no_temp_files(b)
    assert weights(b)[0] == 4

    assert train(text_file, b, "--steps", "12", "--save-every", "4", "--resume")[0] == 0
    (sa, wa), (sb, wb) = weights(a), weights(b)
    assert sa == sb == 12 and wa.keys() == wb.keys()
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), k


def test_failed_first_checkpoint_says_none_was_saved(tmp_path, text_file):
    out = str(tmp_path / "run")
    code, _, err = train(text_file, out, "--steps", "3", "--save-every", "0", limit=2000)
    assert code == 1
    one_error_line(err, os.path.join(out, "checkpoint.npz"), "File too large", "no checkpoint was saved")
    assert not os.path.exists(os.path.join(out, "checkpoint.npz")) and no_temp_files(out)


def _read_only_prefix(folder):
    """A command prefix under which `folder` cannot be written, and the OS's words for that failure; None
    when this machine offers no way (root ignores chmod: then a read-only bind mount in a user and mount
    namespace, where `unshare` allows it)."""
    os.chmod(folder, 0o555)
    probe = os.path.join(folder, "probe")
    try:
        open(probe, "w").close()
    except PermissionError as e:
        return (), e.strerror  # an unprivileged user: the chmod holds
    os.unlink(probe)
    os.chmod(folder, 0o755)
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
    prefix = (unshare, "--user", "--map-root-user", "--mount", "sh", "-c", mount + ' && exec "$@"', "sh")
    r = subprocess.run([*prefix, sys.executable, "-c", f"open({probe!r}, 'w')"], capture_output=True, text=True,
                       timeout=60)
    if "Read-only file system" not in r.stderr:
        return None
    return prefix, "Read-only file system"


def test_read_only_output_folder(tmp_path, text_file):
    out = str(tmp_path / "run")
    assert train(text_file, out, "--steps", "3")[0] == 0
    before = _bytes(out, "checkpoint.npz")
    how = _read_only_prefix(out)
    if how is None:
        pytest.skip("no way to make a folder read-only for this user here (root, and no unshare)")
    prefix, cause = how
    try:
        code, _, err = train(text_file, out, "--steps", "6", "--resume", prefix=prefix)
    finally:
        os.chmod(out, 0o755)
    assert code == 1
    one_error_line(err, os.path.join(out, "checkpoint.npz"), cause, "holds step 3")
    assert _bytes(out, "checkpoint.npz") == before and no_temp_files(out)
    assert train(text_file, out, "--steps", "6", "--resume")[0] == 0 and weights(out)[0] == 6


@pytest.mark.parametrize("name", ["metrics.json", "loss.png"])
def test_failed_metrics_or_plot_write(tmp_path, text_file, name):
    """metrics.json or loss.png cannot be written (a folder is in its place): status 1, the file named;
    the checkpoint written just before is whole."""
    out = tmp_path / "run"
    (out / name).mkdir(parents=True)
    code, _, err = train(text_file, str(out), "--steps", "3")
    assert code == 1
    one_error_line(err, str(out / name), "Is a directory", "holds step 3")
    assert weights(out)[0] == 3 and no_temp_files(out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    text = out.parent / "t.txt"
    text.write_text("the quick fox runs home to the dog. " * 40, encoding="utf-8")
    code, _, err = run_module("char", "train", "--text", text, "--out", out, *TINY, "--steps", "2")
    assert code == 0, err
    return str(out), str(text)


@pytest.mark.parametrize("command", ["sample", "eval", "info", "demo"])
def test_standard_output_that_cannot_be_written(tmp_path, trained, command):
    """The command's output goes to a file under a size limit, then to /dev/full: status 1 and one line
    naming the standard output and the cause (no second failure when Python flushes at exit)."""
    out, text = trained
    args = {"sample": ["char", "sample", out, "--length", "3000", "--seed", "0"],
            "eval": ["char", "eval", out, "--text", text], "info": ["info"],
            "demo": ["demo", "--steps", "3", "--batch", "2", "--input-size", "4", "--hidden", "8"]}[command]
    with open(tmp_path / "stdout.txt", "w") as f:
        code, _, err = run_module(*args, limit=10, stdout=f)
    assert code == 1
    one_error_line(err, "standard output", "File too large")
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as f:
            code, _, err = run_module(*args, stdout=f)
        assert code == 1
        one_error_line(err, "standard output", "No space left on device")


def test_console_script_exit_status(tmp_path):
    """The installed `rnnfast` script passes main()'s status on (sys.exit(main()))."""
    script = os.path.join(os.path.dirname(sys.executable), "rnnfast")
    if not os.path.exists(script):
        pytest.skip("no rnnfast script next to this Python")
    with open(os.devnull, "w") as null:
        ok = subprocess.run([script, "info"], stdout=null, stderr=subprocess.PIPE, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    r = subprocess.run([script, "char", "sample", str(tmp_path / "missing")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    one_error_line(r.stderr, "no such directory")
