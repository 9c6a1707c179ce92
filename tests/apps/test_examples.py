"""The examples run and reach what they print they reach (each returns non-zero when it falls short)."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each example trains a model to its stated result

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def run_example(name, *args):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_binary_addition_generalises_to_32_bits():
    out = run_example("binary_addition.py")
    assert "exact-sum accuracy on 32-bit numbers: 1.000" in out or "32-bit numbers: 0.9" in out


def test_sequence_classifier_learns_from_the_last_step():
    out = run_example("sequence_classifier.py")
    assert "test accuracy" in out


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn")
def test_image_captioning_names_the_digits():
    out = run_example("image_captioning.py")
    assert "exact captions" in out


def test_hf_long_range_quick_runs_both_optimizers():
    out = run_example("hf_long_range.py", "--quick")
    assert "adam: success rate" in out and "hf: success rate" in out


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs dask[distributed]")
def test_esn_search_dask_quick(tmp_path):
    out = run_example("esn_search_dask.py", "--quick", "--plot", str(tmp_path / "report.png"))
    assert "same scores trial for trial: True" in out and "best configuration:" in out
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_memory_models_quick_writes_only_into_its_folder(tmp_path):
    """HMMs against RNNs on characters and on a recall task, the Kalman filter against an RNN and an ESN:
    the quick sizes run in seconds, and the figure and numbers go into --out-dir only."""
    import json
    out_dir = tmp_path / "out"
    out = run_example("memory_models.py", "--quick", "--out-dir", str(out_dir))
    assert "shown: yes" in out
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["memory_models_quick.json", "memory_models_quick.png", "out"]
    res = json.loads((out_dir / "memory_models_quick.json").read_text())
    rmse = res["tracking"]["rmse"]
    assert rmse["Kalman (true model)"] < rmse["last observation"]
    assert [h["states"] for h in res["characters"]["hmm"]] == [1, 4, 16]
