#!/usr/bin/env bash
# One call on the device machine (H100/H200): build, GPU tests, compute-sanitizer, timings against cuDNN.
#
#   benchmarks/gpu_check.sh OUT_DIR
#
# Run from the repository root, e.g. through the device tool with carry [".whl"]:
#   bash benchmarks/gpu_check.sh $OUT
# where .whl holds the wheels the device image lacks (scipy-openblas32 for CPython 3.12; see
# benchmarks/RESULTS.md, "GPU"). Writes into OUT_DIR (at most 8 files come back):
#   gpu_check.json  device, date, commit, pass/fail and seconds of each check
#   gpu_check.log   everything printed
#   bench_gpu.json  the timing table's numbers;  pytest_gpu.txt  the GPU tests' summary
# Budget: about 8 minutes on an H100 (build ~1-2 min, tests ~1 min, sanitizers ~2 min, timings ~2 min);
# the GPU tests are cut at 120 s, the CPU layer tests at 90 s, each sanitizer at 60 s and the timings at 200 s (a cut is a failed check), and
# gpu_check.json is rewritten after every check, so a run stopped by the device call's limit keeps its summary.
set -uo pipefail
OUT="${1:?usage: gpu_check.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
TEE_PID=$!
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
SITE=/tmp/rnnfast-site
declare -A STATUS SECONDS_OF

write_summary() {  # gpu_check.json after every check: a run cut short still leaves the checks done so far
  {
    echo "{"
    echo "  \"device\": \"$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)\","
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "  \"commit\": \"${RNNFAST_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}\","
    echo "  \"dirty\": $( [ -n "$(git status --porcelain 2>/dev/null)" ] && echo true || echo false),"
    echo "  \"checks\": {"
    first=1
    for name in build gpu_tests cpu_layer_tests memcheck racecheck initcheck bench; do
      [ -n "${STATUS[$name]:-}" ] || continue
      [ $first = 1 ] || echo ","
      printf '    "%s": {"status": "%s", "seconds": %s}' "$name" "${STATUS[$name]}" "${SECONDS_OF[$name]}"
      first=0
    done
    echo ""
    echo "  }"
    echo "}"
  } > "$OUT/gpu_check.json"
}

run_check() {  # name, command...
  local name="$1"; shift
  local t0=$SECONDS
  echo "=== $name: $*"
  if "$@"; then STATUS[$name]=pass; else STATUS[$name]=fail; fi
  SECONDS_OF[$name]=$((SECONDS - t0))
  echo "=== $name: ${STATUS[$name]} (${SECONDS_OF[$name]} s)"
  write_summary
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
nvcc --version | tail -1
mkdir -p "$SITE"
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"

build() {
  RNNFAST_CUDA=ON "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
    --target "$SITE" --upgrade . -C build-dir=build/gpu -C cmake.define.CMAKE_CUDA_ARCHITECTURES=90 &&
  (cd /tmp && "$PY" -c "import rnnfast, json; i = rnnfast.build_info(); print(json.dumps(i)); assert i['cuda_available']")
}
run_check build build

gpu_tests() {
  (cd /tmp && timeout 120 "$PY" -m pytest -q -p no:cacheprovider -m gpu "$OLDPWD/tests" -rs) | tee "$OUT/pytest_gpu.txt"
  return "${PIPESTATUS[0]}"
}
cpu_tests() {  # the CPU suite on this machine too (quick; catches a build that differs from CI's)
  (cd /tmp && timeout 90 "$PY" -m pytest -q -p no:cacheprovider -x "$OLDPWD/tests/test_layers.py" \
    "$OLDPWD/tests/test_reference.py")
}
if [ "${STATUS[build]}" = pass ]; then
  run_check gpu_tests gpu_tests
  run_check cpu_layer_tests cpu_tests
  export RNNFAST_NO_POOL=1  # exact allocations for the sanitizers (see gpu_small_case.py)
  # each sanitizer is cut at 60 s (a timeout is a failed check) so that the timings below always run
  for tool in memcheck racecheck initcheck; do
    extra=(); [ "$tool" = memcheck ] && extra=(--leak-check no)
    run_check "$tool" timeout 60 compute-sanitizer --tool "$tool" ${extra[@]+"${extra[@]}"} --error-exitcode 3 \
      "$PY" benchmarks/gpu_small_case.py
  done
  unset RNNFAST_NO_POOL
  run_check bench timeout 200 "$PY" benchmarks/bench_gpu.py --out "$OUT/bench_gpu.json"
fi

cat "$OUT/gpu_check.json"
rc=0
for name in "${!STATUS[@]}"; do [ "${STATUS[$name]}" = pass ] || rc=1; done
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null  # the log is complete before the folder is collected
exit $rc
