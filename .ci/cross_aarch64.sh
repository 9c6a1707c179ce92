#!/usr/bin/env bash
# Keeps the CPU engine building for AArch64 (its NEON tier): cross-compiles the engine's sources, tier and
# ISA-free, with Debian's g++-aarch64-linux-gnu, warnings as errors. Objects only: there is no AArch64
# Python here to link the module against.
#   .ci/cross_aarch64.sh [PYTHON]     (PYTHON: an interpreter with scipy-openblas32, for cblas.h)
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=aarch64-linux-gnu-g++
PY="${1:-python3}"
blas_include="$("$PY" -c 'import scipy_openblas32 as s; print(s.get_include_dir())')"
out="$(mktemp -d)"
flags=(-std=c++17 -O2 -Wall -Wextra -Werror -Icsrc/include -Icsrc/cpu "-I$blas_include")
# the tier sources as CMakeLists.txt lists them
tier_sources=$(sed -n '/^set(RNNFAST_CPU_TIER_SOURCES/,/)/p' CMakeLists.txt | grep -o 'csrc/cpu/[a-z_]*\.cpp')
[ -n "$tier_sources" ] || { echo "no RNNFAST_CPU_TIER_SOURCES in CMakeLists.txt" >&2; exit 1; }
for f in $tier_sources; do
  "$CXX" "${flags[@]}" -DRNNFAST_TIER=neon -c "$f" -o "$out/$(basename "$f").o"
done
for f in csrc/cpu/parallel.cpp csrc/cpu/dispatch.cpp; do
  "$CXX" "${flags[@]}" -DRNNFAST_HAS_TIER_neon=1 -c "$f" -o "$out/$(basename "$f").o"
done
echo "aarch64 (neon tier): $(ls "$out" | wc -l) objects compiled"
rm -rf "$out"
