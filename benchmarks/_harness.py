"""The benchmarks' one harness: timing (median_time, interleaved), what every result records about the
machine and the code it ran (host_facts, machine_info), other processes' CPU use while timing (cpu_snapshot,
other_load, other_cores, wait_idle), CPU tiers (pin_tier) and the JSON result file (write_json).

Every script in benchmarks/ imports it (this folder is on sys.path when a script runs).
"""

import datetime
import json
import os
import platform
import statistics
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


def other_cores(seconds=0.5):
    """Cores used by other processes over the next `seconds` (0.0 off Linux)."""
    a = cpu_snapshot()
    time.sleep(seconds)
    load, _ = other_load(a, cpu_snapshot())
    return load or 0.0


# ---- timing -------------------------------------------------------------------------------------------
def median_time(fn, repeats, warmup=1):
    """The median wall time of fn() over `repeats` calls, after `warmup` untimed ones (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns, repeats, warmup=1):
    """name -> [seconds per call] of each fn in `fns` (a dict), called in turn, the order rotated every
    repetition, so that a slow spell of the machine falls on all of them alike."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


# ---- what a result records ----------------------------------------------------------------------------
def machine_info(np, rnnfast=None):
    """host_facts plus the platform, Python, CPU count, NumPy/SciPy versions, rnnfast's build and the
    environment variables that steer the libraries' threads and instruction sets."""
    info = dict(host_facts(np), platform=platform.platform(), python=sys.version.split()[0],
                cpu_count=os.cpu_count(), numpy=np.__version__,
                date=datetime.datetime.now().isoformat(timespec="seconds"))
    try:
        info["scipy"] = __import__("scipy").__version__
    except ImportError:
        info["scipy"] = None
    if rnnfast is not None:
        info["rnnfast"] = rnnfast.__version__
        info["rnnfast_build_info"] = rnnfast.build_info()
    info["env"] = {k: v for k, v in os.environ.items()
                   if k.startswith(("OPENBLAS", "OMP", "MKL", "GOMP", "RNNFAST", "ATEN", "ONEDNN", "NPY"))}
    return info


def write_json(path, result, **dump):
    """Write the result (a dict) to path, making its folder; says where."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=1, **dump)
    print(f"wrote {path}")


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


# ---- CPU tiers -------------------------------------------------------------------------------------------
# What holds each library to a CPU tier, so that a tier's comparison runs every side on the same
# instructions (on an AVX-512 machine, "avx2" means AVX2 for rnnfast, torch, oneDNN, MKL, OpenBLAS and NumPy).
# None unsets a variable: this machine's OPENBLAS_CORETYPE=Haswell would hold OpenBLAS to AVX2 in the avx512
# runs (see RESULTS.md).
TIER_ENV = {
    "avx512": {"RNNFAST_CPU_ISA": "avx512", "OPENBLAS_CORETYPE": None},
    "avx2": {"RNNFAST_CPU_ISA": "avx2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Haswell"},
    "baseline": {"RNNFAST_CPU_ISA": "baseline", "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OPENBLAS_CORETYPE": "Nehalem"},
}
_NPY_SSE = {"SSE", "SSE2", "SSE3", "SSSE3", "SSE41", "POPCNT", "SSE42", "X86_V2"}
_PINNED = "RNNFAST_BENCH_TIER"


def _numpy_disabled(tier):
    """NumPy's dispatched SIMD targets above the tier (names differ between NumPy versions)."""
    out = subprocess.run([sys.executable, "-c", "from numpy._core._multiarray_umath import __cpu_dispatch__ as d; "
                          "print(' '.join(d))"], capture_output=True, text=True)
    names = out.stdout.split()
    if tier == "avx2":
        return [n for n in names if "512" in n or n in ("X86_V4", "AVX512_SPR", "AVX512_ICL")]
    return [n for n in names if n not in _NPY_SSE]


def pin_tier(argv):
    """With `--isa TIER` (or --isa=TIER) in argv, re-run this script with rnnfast and its baselines held to
    that tier (TIER_ENV plus NumPy's NPY_DISABLE_CPU_FEATURES): the libraries read these variables when
    they load, so the process starts over. Call before importing NumPy or torch. Returns the tier (or
    None) and the variables set, for the record."""
    tier = None
    for i, a in enumerate(argv):
        if a == "--isa" and i + 1 < len(argv):
            tier = argv[i + 1]
        elif a.startswith("--isa="):
            tier = a.split("=", 1)[1]
    if tier is None:
        return None, {}
    if tier not in TIER_ENV:
        sys.exit(f"--isa must be one of {', '.join(TIER_ENV)}, got {tier!r}")
    if os.environ.get(_PINNED) == tier:
        return tier, json_env(tier)
    env = dict(os.environ)
    for k, v in TIER_ENV[tier].items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    disabled = _numpy_disabled(tier) if tier != "avx512" else []
    if disabled:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(disabled)
    env[_PINNED] = tier
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + argv, env)


def json_env(tier):
    """The tier-pinning variables as this process has them."""
    keys = list(TIER_ENV.get(tier, {})) + ["NPY_DISABLE_CPU_FEATURES"]
    return {k: os.environ.get(k) for k in keys}
