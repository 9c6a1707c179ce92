"""What every benchmark records about the machine and the code it ran (CPU model, NumPy's BLAS, git commit),
and how it watches for other processes' CPU use while it times."""

import os
import subprocess
import sys
import time

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


def self_cpu():
    """CPU seconds of this process (/proc/self/stat utime+stime) plus its waited-for children."""
    hz = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / hz      # utime, stime (fields 14, 15)
    except (OSError, ValueError, IndexError):
        t = os.times()
        own = t.user + t.system
    t = os.times()
    return own + t.children_user + t.children_system


def cpu_snapshot():
    """(wall s, machine busy CPU s, steal CPU s, this process tree's CPU s), from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    steal = v[7] if len(v) > 7 else 0
    busy = sum(v[:8]) - idle - steal
    return time.perf_counter(), busy / hz, steal / hz, self_cpu()


def other_load(a, b):
    """Average cores used by other processes (and stolen by the hypervisor) between two snapshots."""
    if a is None or b is None or b[0] <= a[0]:
        return None, None
    wall = b[0] - a[0]
    return max(0.0, ((b[1] - a[1]) - (b[3] - a[3])) / wall), (b[2] - a[2]) / wall


def wait_idle(max_s, log, threshold=0.15):
    """Wait (up to max_s seconds) until other processes use less than `threshold` cores; returns their use."""
    t_end = time.perf_counter() + max_s
    while True:
        a = cpu_snapshot()
        time.sleep(1.0)
        load, _ = other_load(a, cpu_snapshot())
        if load is None or load < threshold or time.perf_counter() >= t_end:
            if load is not None and load >= threshold:
                log(f"  other processes use {load:.2f} cores (gave up waiting)")
            return load


def _import_with_retry(name, tries=5, wait=3.0):
    """rnnfast may be being reinstalled while this runs: retry a failing import a few times."""
    import importlib
    for i in range(tries):
        try:
            return importlib.import_module(name)
        except ImportError:
            if i == tries - 1:
                raise
            for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[mod]
            time.sleep(wait)
