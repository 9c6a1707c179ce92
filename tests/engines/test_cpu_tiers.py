"""The CPU engine's instruction-set tiers: one build holds the engine compiled for each tier (x86-64:
baseline SSE4.2, AVX2+FMA, AVX-512), and one is chosen at import (RNNFAST_CPU_ISA forces one).

* build_info names the tier in use, the tiers compiled and those the CPU runs; a forced tier is the one
  used; an unknown tier, or one the CPU cannot run, is refused at import with the reason;
* no function outside a tier's namespace contains that tier's instructions (the module disassembled):
  the rule that makes one build safe on every CPU (rnnfast/tier.h);
* every tier gives the same results on every engine entry point (tier_cases.py), float64 to rounding and
  float32 within the float32 error of the baseline tier;
* under qemu's user-mode emulation of a CPU without AVX (Nehalem) and of one without AVX-512 (Haswell),
  the module picks baseline and avx2 and runs every entry point without executing an instruction the
  modelled CPU lacks (qemu stops the process with SIGILL on one), with the native tier's results.

The engine's own tests (test_layers.py, test_esn.py, ...) run once per tier in CI (.ci/run).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnfast
from rnnfast import _core

INFO = rnnfast.build_info()
SUPPORTED = INFO["cpu_isa_supported"]
X86 = INFO["cpu_features"].startswith("x86-64")
CASES = Path(__file__).with_name("tier_cases.py")


def run_python(args, env=None, prefix=(), timeout=300):
    full = dict(os.environ)
    for k in ("RNNFAST_CPU_ISA", "RNNFAST_CPU_ISA_MAX"):
        full.pop(k, None)
    full.update(env or {})
    return subprocess.run([*prefix, sys.executable, *args], env=full, capture_output=True, text=True,
                          timeout=timeout, cwd=Path(__file__).parent)


def test_build_info_names_the_tier():
    compiled = INFO["cpu_isa_compiled"]
    assert INFO["cpu_isa"] in SUPPORTED and set(SUPPORTED) <= set(compiled)
    if X86:
        assert compiled == ["baseline", "avx2", "avx512"]
        assert SUPPORTED == compiled[:len(SUPPORTED)], "tiers run by a CPU are a prefix of the list"
        if os.environ.get("RNNFAST_CPU_ISA") is None and os.environ.get("RNNFAST_CPU_ISA_MAX") is None:
            assert INFO["cpu_isa"] == SUPPORTED[-1], "without RNNFAST_CPU_ISA the best tier is chosen"
        has = INFO["cpu_features"].split()
        assert ("avx2" in SUPPORTED) == all(f in has for f in ("avx2", "fma"))
        assert ("avx512" in SUPPORTED) == all(f in has for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl"))


@pytest.mark.parametrize("tier", SUPPORTED)
def test_forced_tier_is_the_one_used(tier):
    r = run_python(["-c", "import rnnfast; print(rnnfast.build_info()['cpu_isa'])"], {"RNNFAST_CPU_ISA": tier})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == tier


def test_unknown_tier_is_refused():
    r = run_python(["-c", "import rnnfast"], {"RNNFAST_CPU_ISA": "avx1024"})
    assert r.returncode != 0
    assert "ImportError: RNNFAST_CPU_ISA=avx1024: unknown tier" in r.stderr
    assert ", ".join(INFO["cpu_isa_compiled"]) in r.stderr
    r = run_python(["-c", "import rnnfast"], {"RNNFAST_CPU_ISA_MAX": "sse9"})
    assert r.returncode != 0 and "ImportError: RNNFAST_CPU_ISA_MAX=sse9: unknown tier" in r.stderr


@pytest.mark.skipif(not X86 or "avx2" not in SUPPORTED, reason="needs an x86-64 CPU with AVX2")
def test_tier_the_cpu_cannot_run_is_refused():
    # RNNFAST_CPU_ISA_MAX=baseline: the CPU is taken to have nothing above SSE4.2
    r = run_python(["-c", "import rnnfast"], {"RNNFAST_CPU_ISA_MAX": "baseline", "RNNFAST_CPU_ISA": "avx2"})
    assert r.returncode != 0
    assert "RNNFAST_CPU_ISA=avx2: this CPU cannot run that tier" in r.stderr
    assert "(supported: baseline)" in r.stderr
    r = run_python(["-c", "import rnnfast; print(rnnfast.build_info()['cpu_isa'])"], {"RNNFAST_CPU_ISA_MAX": "avx2"})
    assert r.returncode == 0 and r.stdout.strip() == "avx2", r.stderr


@pytest.mark.skipif("avx512" in SUPPORTED or not X86, reason="this CPU runs every tier")
def test_tier_above_this_cpu_is_refused():
    r = run_python(["-c", "import rnnfast"], {"RNNFAST_CPU_ISA": "avx512"})
    assert r.returncode != 0 and "cannot run that tier" in r.stderr


# ---- the module's instructions --------------------------------------------------------------------------
VEX_FREE = {"verr", "verw"}
BMI = {"shlx", "shrx", "sarx", "andn", "bzhi", "pdep", "pext", "rorx", "mulx", "lzcnt", "tzcnt", "movbe", "blsr",
       "blsi", "blsmsk", "bextr"}


def instruction_leaks(objdump_text):
    """{function: [instructions]} of functions using instructions above their tier: AVX-512 (zmm or mask
    registers) outside rnnfast::avx512::, and any VEX-encoded (AVX) or BMI instruction outside rnnfast::avx2::
    and rnnfast::avx512:: (the baseline tier and all ISA-free code)."""
    leaks, func = {}, None
    header = re.compile(r"^[0-9a-f]+ <(.*)>:$")
    for line in objdump_text.splitlines():
        m = header.match(line)
        if m:
            func = m.group(1)
            continue
        parts = line.split("\t")
        if func is None or len(parts) < 2 or not parts[1].strip():
            continue
        ins = parts[1].strip()
        mnem = ins.split()[0]
        avx512 = "%zmm" in ins or re.search(r"%k[0-7]", ins) is not None
        above_sse = avx512 or "%ymm" in ins or (mnem.startswith("v") and mnem not in VEX_FREE) or mnem in BMI
        if "::avx512::" in func:
            continue
        if ("::avx2::" in func and avx512) or ("::avx2::" not in func and above_sse):
            leaks.setdefault(func, []).append(ins)
    return leaks


def test_instruction_leak_finder_finds_leaks():
    text = ("0000000000001000 <rnnfast::baseline::f()>:\n    1000:\tvmovups %ymm0,(%rdi)\n"
            "0000000000002000 <rnnfast::avx2::g()>:\n    2000:\tvfmadd231ps %ymm1,%ymm2,%ymm3\n"
            "    2004:\tvaddps %zmm1,%zmm2,%zmm3\n"
            "0000000000003000 <std::vector<int>::assign()>:\n    3000:\tshlx %eax,%ebx,%ecx\n"
            "0000000000004000 <rnnfast::avx512::h()>:\n    4000:\tvaddps %zmm1,%zmm2,%zmm3\n"
            "0000000000005000 <rnnfast::baseline::ok()>:\n    5000:\tmovups %xmm0,(%rdi)\n")
    assert set(instruction_leaks(text)) == {"rnnfast::baseline::f()", "rnnfast::avx2::g()",
                                            "std::vector<int>::assign()"}


@pytest.mark.skipif(not X86 or shutil.which("objdump") is None, reason="needs x86-64 and binutils' objdump")
def test_no_tier_instructions_outside_the_tier():
    text = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", _core.__file__], capture_output=True,
                          text=True, check=True).stdout
    assert "rnnfast::avx512::" in text and "rnnfast::avx2::" in text, "the module has no tier symbols (stripped?)"
    leaks = instruction_leaks(text)
    assert not leaks, "instructions above their tier in: " + "; ".join(f"{f}: {v[:2]}"
                                                                        for f, v in list(leaks.items())[:5])


# ---- the tiers' results ------------------------------------------------------------------------------
def run_cases(path, env=None, prefix=()):
    r = run_python([str(CASES), str(path)], env, prefix)
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
    return dict(np.load(path))


@pytest.fixture(scope="module")
def tier_results(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiers")
    return {t: run_cases(d / f"{t}.npz", {"RNNFAST_CPU_ISA": t}) for t in SUPPORTED}


# Training runs (several optimizer steps): Adagrad's and Adam's first steps are about lr * sign(g), so
# rounding decides the step of near-zero gradients and float32 runs of two builds differ by more than
# single products do (tier_cases.py keeps them to 3 steps)
TRAJECTORIES = ("fused_", "general_")


def compare(results, base):
    """Mismatches of results against base: float64 beyond 1e-10 of the largest value, float32 beyond
    4x base's own float32 error (against its float64 run) or 1e-5 of the largest value (1e-3 for the
    training runs)."""
    bad = []
    for key in base:
        if not key.startswith("float64/"):
            continue
        name = key[len("float64/"):]
        a64, b64 = base[key], results[key]
        scale = float(np.abs(a64).max()) or 1.0
        if np.abs(b64 - a64).max() > 1e-10 * scale:
            bad.append((key, float(np.abs(b64 - a64).max() / scale)))
        e_base = float(np.abs(base["float32/" + name] - a64).max()) / scale
        e = float(np.abs(results["float32/" + name] - a64).max()) / scale
        if e > max(4 * e_base, 1e-3 if name.startswith(TRAJECTORIES) else 1e-5):
            bad.append(("float32/" + name, e, e_base))
    return bad


def test_every_tier_gives_the_baseline_tiers_results(tier_results):
    base = tier_results[SUPPORTED[0]]
    assert len(base) > 300
    for tier, res in tier_results.items():
        assert str(res["tier"]) == tier
        assert compare(res, base) == [], tier


def test_tier_comparison_sees_a_wrong_result(tier_results):
    base = tier_results[SUPPORTED[0]]
    for key in ("float32/lstm_7x13x11x37_dx", "float64/esn_csr_one"):
        wrong = dict(base)
        wrong[key] = base[key] * (1 + 1e-4)
        assert [b[0] for b in compare(wrong, base)] == [key]


QEMU_CPUS = [("Nehalem", "baseline"), ("Haswell", "avx2")]  # SSE4.2 without AVX; AVX2 without AVX-512


@pytest.mark.skipif(not X86 or shutil.which("qemu-x86_64") is None, reason="needs qemu-x86_64 (Debian's qemu-user)")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's shadow memory does not map under qemu-user")
@pytest.mark.slow
@pytest.mark.parametrize("cpu, tier", QEMU_CPUS)
def test_on_an_emulated_older_cpu(cpu, tier, tmp_path, tier_results):
    if tier not in tier_results:
        pytest.skip(f"this CPU cannot run {tier} natively, so there is nothing to compare with")
    res = run_cases(tmp_path / "q.npz", prefix=("qemu-x86_64", "-cpu", cpu))
    assert str(res["tier"]) == tier
    assert compare(res, tier_results[tier]) == []
