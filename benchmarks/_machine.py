"""What every benchmark records about the machine and the code it ran: CPU model, NumPy's BLAS, git commit."""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def host_facts(np):
    """cpu_model, numpy_blas, git_commit and git_dirty (None where they cannot be read)."""
    info = {"cpu_model": None, "numpy_blas": None, "git_commit": None, "git_dirty": None}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["numpy_blas"] = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas")
    except Exception:
        pass
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                            text=True, timeout=10).stdout.strip() or None
        st = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True,
                            timeout=10).stdout
        info["git_dirty"] = bool(st.strip())
    except Exception:
        pass
    return info
