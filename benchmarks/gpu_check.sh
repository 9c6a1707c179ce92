#!/usr/bin/env bash
# The GPU run of the CUDA engine in one device call (H100/H200): build, check, sanitize and time, in an
# order that keeps the most valuable results first, every stage capped so that the whole call fits.
#
#   benchmarks/gpu_check.sh [--dry-run] OUT_DIR
#
# From the repository root, through the device tool with carry [".whl"] and timeout_s 540:
#   RNNFAST_COMMIT=<commit> bash benchmarks/gpu_check.sh $OUT
# .whl holds the wheels the device image lacks (scipy-openblas32 for CPython 3.12; benchmarks/RESULTS.md, "GPU").
#
# Stages and their caps in seconds (a stage that reaches its cap is killed and fails as "timeout"; the next
# one runs). After the build, the caps add up to CHECKS_BUDGET = 330 s; with the build's 150 s and the
# setup, the call ends within about 8 minutes at worst, about 5 to 6 as expected:
#   build       150  pip install for sm_90 with -lineinfo (a CMake define given here: line numbers in the
#                    sanitizers' reports; CMakeLists.txt is not involved)
#   small_case   25  benchmarks/gpu_small_case.py, plain: does every kernel variant run, and agree with the CPU?
#   gpu_tests   120  tests/engines/test_cuda.py (RNNFAST_TEST_GPU=1: an unusable GPU fails them), -x, 60 s per test
#                    (pytest-timeout), durations, CuPy/torch warnings shown rather than raised; every result
#                    and traceback appended to pytest_gpu.jsonl as it happens
#   memcheck     50  compute-sanitizer memcheck on gpu_small_case.py, rnnfast's kernels only (--kernel-name)
#   racecheck    30  racecheck on gpu_small_case.py --quick, rnnfast's kernels only
#   initcheck    25  initcheck on gpu_small_case.py --quick, rnnfast's kernels only
#   bench        80  benchmarks/bench_gpu.py --quick (per-step times, kernel variants, layers vs cuDNN, ESN)
#   cpu_tests     -  the CPU layer tests, only with what is left of CHECKS_BUDGET (at least 30 s)
# OUT_DIR gets 6 files (at most 8 come back): gpu_check.json (device, commit, each stage's status, seconds
# and cap; rewritten after every stage, so a cut run keeps its summary), gpu_check.log (everything printed),
# pytest_gpu.txt, pytest_gpu.jsonl, sanitizers.log, bench_gpu.json.
#
# --dry-run (or RNNFAST_GPU_CHECK_DRY_RUN=1), without a GPU: every stage's plumbing (caps, logs, files,
# summary) with stand-ins, each printed beside the command the GPU run uses: no build (the installed
# rnnfast; the CUDA emulation is compiled instead), the GPU scripts on the emulation
# (tests/engines/cuda_emulation/emulate.py; small case and bench in their quick/smoke sizes), the sanitizer stages
# without the sanitizer, and the test stage on a few emulated tests. RNNFAST_GPU_CHECK_CAPS="stage=s,..."
# sets other caps (e.g. small_case=2 to see a stage cut and the next one run).
set -uo pipefail
DRY="${RNNFAST_GPU_CHECK_DRY_RUN:-0}"
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
OUT="${1:?usage: gpu_check.sh [--dry-run] OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
TEE_PID=$!
cd "$(dirname "$0")/.."
REPO="$PWD"
PY="${PYTHON:-python3}"
SITE=/tmp/rnnfast-site
export PYTHONUNBUFFERED=1 REPO PY SITE OUT DRY

STAGES=(build small_case gpu_tests memcheck racecheck initcheck bench cpu_tests)
declare -A CAP=([build]=150 [small_case]=25 [gpu_tests]=120 [memcheck]=50 [racecheck]=30 [initcheck]=25 [bench]=80)
CHECKS_BUDGET=330
caps="${RNNFAST_GPU_CHECK_CAPS:-}"
for kv in ${caps//,/ }; do  # "stage=seconds,...": other caps (the timeout path in a dry run)
  [ -n "${CAP[${kv%%=*}]:-}" ] || { echo "gpu_check: RNNFAST_GPU_CHECK_CAPS: no stage ${kv%%=*}"; exit 2; }
  CAP[${kv%%=*}]=${kv#*=}
done
declare -A STATUS SECS
CALL_T0=$SECONDS
CHECKS_T0=

summary() {  # gpu_check.json, after every stage
  local device first=1
  device=$( [ "$DRY" = 1 ] && echo "none (dry run)" || nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  {
    echo "{"
    echo "  \"device\": \"${device:-unknown}\","
    echo "  \"dry_run\": $( [ "$DRY" = 1 ] && echo true || echo false),"
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "  \"commit\": \"${RNNFAST_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}\","
    echo "  \"dirty\": $( [ -n "$(git status --porcelain 2>/dev/null)" ] && echo true || echo false),"
    echo "  \"checks_budget_s\": $CHECKS_BUDGET, \"call_seconds\": $((SECONDS - CALL_T0)),"
    echo "  \"stages\": {"
    for name in "${STAGES[@]}"; do
      [ -n "${STATUS[$name]:-}" ] || continue
      [ $first = 1 ] || echo ","
      printf '    "%s": {"status": "%s", "seconds": %s, "cap_s": %s}' "$name" "${STATUS[$name]}" \
        "${SECS[$name]:-0}" "${CAP[$name]:-0}"
      first=0
    done
    echo ""
    echo "  }"
    echo "}"
  } > "$OUT/gpu_check.json"
}

stage() {  # name, command or exported function...: run it under its cap, record pass / fail / timeout
  local name="$1" t0=$SECONDS rc
  shift
  echo "=== $name (cap ${CAP[$name]} s): $*"
  if [ "$(type -t "$1")" = function ]; then set -- bash -c '"$@"' "$name" "$@"; fi  # timeout runs programs
  timeout --kill-after=10 "${CAP[$name]}" "$@"
  rc=$?
  SECS[$name]=$((SECONDS - t0))
  if [ $rc = 0 ]; then STATUS[$name]=pass; elif [ $rc = 124 ] || [ $rc = 137 ]; then STATUS[$name]=timeout
  else STATUS[$name]="fail (exit $rc)"; fi
  echo "=== $name: ${STATUS[$name]} (${SECS[$name]} s of ${CAP[$name]})"
  summary
}

skip() {  # name, reason
  STATUS[$1]="skipped: $2"
  SECS[$1]=0
  echo "=== $1: skipped ($2)"
  summary
}

on_gpu() {  # print the GPU run's command in a dry run (the stand-in follows)
  [ "$DRY" = 1 ] && echo "[dry-run] on the GPU this stage runs: $*"
  return 0
}

# ---- the plan --------------------------------------------------------------------------------------
sum=0
for name in "${STAGES[@]}"; do [ "$name" = build ] || [ -z "${CAP[$name]:-}" ] || sum=$((sum + CAP[$name])); done
echo "gpu_check: $( [ "$DRY" = 1 ] && echo "DRY RUN (no GPU: stand-ins, see --dry-run)" || echo "GPU run"), $(date -u)"
printf '  %-11s %5s\n' stage "cap s"
for name in "${STAGES[@]}"; do printf '  %-11s %5s\n' "$name" "${CAP[$name]:-rest}"; done
echo "  caps after the build: $sum s (budget $CHECKS_BUDGET s); with the build: $((sum + CAP[build])) s;" \
  "the device call's limit: 540 s"
[ "$sum" -le "$CHECKS_BUDGET" ] || { echo "gpu_check: the caps exceed the budget"; exit 2; }

if [ "$DRY" = 1 ]; then
  GPU_PY=("$PY" tests/engines/cuda_emulation/emulate.py)
  echo "python: $("$PY" --version 2>&1); rnnfast from $("$PY" -c 'import rnnfast; print(rnnfast.__file__)' 2>&1)"
else
  GPU_PY=("$PY")
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader || true
  nvcc --version | tail -1
  "$PY" --version
  mkdir -p "$SITE"
  if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export -f on_gpu

# ---- build -----------------------------------------------------------------------------------------
build() {
  local BUILD=("$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$SITE"
               --upgrade . -C build-dir=build/gpu -C cmake.define.CMAKE_CUDA_ARCHITECTURES=90
               -C cmake.define.CMAKE_CUDA_FLAGS=-lineinfo)
  if [ "$DRY" = 1 ]; then
    on_gpu "RNNFAST_CUDA=ON ${BUILD[*]}"
    echo "[dry-run] stand-in: the installed rnnfast, and the CUDA emulation compiled (build/cuda_emu)"
    "$PY" -c "import sys; sys.path.insert(0, 'tests/engines'); from cuda_emulation import emulate; emulate.build()" || return 1
  else
    RNNFAST_CUDA=ON "${BUILD[@]}" || return 1
  fi
  (cd /tmp && "$PY" -c "import rnnfast, json; i = rnnfast.build_info(); print(json.dumps(i)); \
assert i['cuda_compiled'], 'the CUDA engine was not compiled'; assert i['cuda_available'] or $DRY, 'no usable GPU'")
}
export -f build
stage build build
CHECKS_T0=$SECONDS

if [ "${STATUS[build]}" = pass ]; then
  # ---- small case, plain ---------------------------------------------------------------------------
  on_gpu "$PY benchmarks/gpu_small_case.py"
  stage small_case "${GPU_PY[@]}" benchmarks/gpu_small_case.py $( [ "$DRY" = 1 ] && echo --quick)

  # ---- GPU tests -----------------------------------------------------------------------------------
  gpu_tests() {
    local args=(-p no:cacheprovider -x -v -rfEs --durations=15
                -W "default::Warning:cupy" -W "default::Warning:cupyx" -W "default::Warning:torch"
                -W "default::Warning:cuda")  # third-party warnings: reported, not errors (ours still raise)
    if "$PY" -c "import pytest_timeout" 2> /dev/null; then
      args+=(--timeout=60 --timeout-method=thread)  # a hung test dumps every thread's stack, then ends the run
    else
      echo "(pytest-timeout missing: the stage's cap is the only timeout)"
    fi
    local tests=("$REPO/tests/engines/test_cuda.py" -m gpu)
    if [ "$DRY" = 1 ]; then
      on_gpu "RNNFAST_TEST_GPU=1 pytest ${args[*]} tests/engines/test_cuda.py -m gpu"
      echo "[dry-run] stand-in: a few of the emulated tests (tests/engines/test_cuda_emulation.py)"
      tests=("$REPO/tests/engines/test_cuda_emulation.py" -k "unbatched or sync_checks or fault or capture or tiling_setting")
    else
      export RNNFAST_TEST_GPU=1
    fi
    (cd /tmp && RNNFAST_TEST_LOG="$OUT/pytest_gpu.jsonl" "$PY" -m pytest "${args[@]}" "${tests[@]}") \
      | tee "$OUT/pytest_gpu.txt"
    return "${PIPESTATUS[0]}"
  }
  rm -f "$OUT/pytest_gpu.jsonl"
  export -f gpu_tests
  stage gpu_tests gpu_tests

  # ---- sanitizers: rnnfast's kernels only (every kernel's name has "rnnfast" in it) -----------------
  export RNNFAST_NO_POOL=1  # exact allocations for the sanitizers (see gpu_small_case.py)
  for tool in memcheck racecheck initcheck; do
    extra=(); [ "$tool" = memcheck ] && extra=(--leak-check no)
    quick=(); [ "$tool" = memcheck ] || quick=(--quick)
    san=(compute-sanitizer --tool "$tool" ${extra[@]+"${extra[@]}"} --kernel-name kns=rnnfast --print-limit 20
         --error-exitcode 3)
    echo "=== $tool" >> "$OUT/sanitizers.log"
    if [ "$DRY" = 1 ]; then
      on_gpu "${san[*]} $PY benchmarks/gpu_small_case.py ${quick[*]}"
      echo "[dry-run] stand-in: gpu_small_case.py --quick on the emulation, without a sanitizer"
      stage "$tool" bash -c '"$@" 2>&1 | tee -a "$0"; exit "${PIPESTATUS[0]}"' "$OUT/sanitizers.log" \
        "${GPU_PY[@]}" benchmarks/gpu_small_case.py --quick
    else
      stage "$tool" bash -c '"$@" 2>&1 | tee -a "$0"; exit "${PIPESTATUS[0]}"' "$OUT/sanitizers.log" \
        "${san[@]}" "$PY" benchmarks/gpu_small_case.py ${quick[@]+"${quick[@]}"}
    fi
  done
  unset RNNFAST_NO_POOL

  # ---- timings -------------------------------------------------------------------------------------
  on_gpu "$PY benchmarks/bench_gpu.py --quick --out $OUT/bench_gpu.json"
  stage bench "${GPU_PY[@]}" benchmarks/bench_gpu.py --quick $( [ "$DRY" = 1 ] && echo --smoke) \
    --out "$OUT/bench_gpu.json"

  # ---- with what is left: the CPU layer tests (a build that differs from CI's) ---------------------
  left=$((CHECKS_BUDGET - (SECONDS - CHECKS_T0)))
  if [ "$left" -ge 30 ]; then
    CAP[cpu_tests]=$left
    stage cpu_tests bash -c 'cd /tmp && "$1" -m pytest -q -p no:cacheprovider -x "$0/tests/unit/test_layers.py" \
      "$0/tests/unit/test_reference.py"' "$PWD" "$PY"
  else
    skip cpu_tests "${left} s left of the budget"
  fi
else
  for name in "${STAGES[@]:1}"; do skip "$name" "the build failed"; done
fi

# ---- summary (the device tool returns the end of the output) --------------------------------------
echo
echo "gpu_check summary ($( [ "$DRY" = 1 ] && echo "dry run" || echo "GPU")): checks took $((SECONDS - ${CHECKS_T0:-$SECONDS})) s" \
  "of $CHECKS_BUDGET, the call $((SECONDS - CALL_T0)) s; files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
printf '  %-11s %-28s %7s %6s\n' stage status seconds cap
rc=0
for name in "${STAGES[@]}"; do
  [ -n "${STATUS[$name]:-}" ] || continue
  printf '  %-11s %-28s %7s %6s\n' "$name" "${STATUS[$name]}" "${SECS[$name]}" "${CAP[$name]:-}"
  case "${STATUS[$name]}" in pass) ;; "skipped: "*" left of the budget") ;; *) rc=1 ;; esac
done
[ "$(cd "$OUT" && ls | wc -l)" -le 8 ] || { echo "more than 8 files in $OUT: some will not come back"; rc=1; }
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null  # the log is complete before the folder is collected
exit $rc
