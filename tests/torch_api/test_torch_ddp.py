"""DistributedDataParallel over rnnfast.torch.LSTM: 2 processes (gloo, loopback) train to the same
parameters as one process on the combined batch (float64: they differ by the order of a sum, ~1e-16)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import torch_ddp_case as case  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one_process_on_the_whole_batch(tmp_path):
    out = tmp_path / "ddp.pt"
    port = free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1", RNNFAST_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, str(HERE / "torch_ddp_case.py"), str(out)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=120)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)

    ddp = torch.load(out)
    start = case.build().state_dict()
    single = case.train(case.build()).state_dict()
    assert ddp.keys() == single.keys()
    for k in single:
        assert not torch.equal(single[k], start[k]), k  # training moved every parameter
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-10, atol=1e-12, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.slow
def test_ddp_char_example_runs_under_torchrun_with_two_processes():
    """The README's command on one machine (small sizes): training lowers the held-out bits/char."""
    import shutil

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    if not Path(torchrun).exists():
        pytest.skip("torchrun is not installed")
    example = HERE.parents[1] / "examples" / "ddp_char.py"  # the repository (this is tests/torch_api)
    env = dict(os.environ, OMP_NUM_THREADS="1", RNNFAST_NUM_THREADS="1")
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(example), "--steps", "60",
                           "--hidden", "32", "--seq", "32", "--batch", "16", "--layers", "2"],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 processes" in proc.stdout and "held-out bits/char" in proc.stdout, proc.stdout
