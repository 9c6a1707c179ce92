// Register tiles of the CPU engine's hand-blocked products, per tier: sized to the register file (16
// vector registers for SSE and AVX2, 32 for AVX-512 and NEON) from measurements on each tier
// (benchmarks/RESULTS.md, "Portable CPU engine"). A tile keeps MR x NR vectors of accumulators live, plus
// NR vectors of B and one broadcast of A; without FMA, each product also needs a temporary.
#pragma once

#include "simd/vec.h"

namespace rnnfast {
namespace RNNFAST_TIER {

#if defined(RNNFAST_GEMM_MR) && defined(RNNFAST_GEMM_NR)
// another shape, for measuring (e.g. CXXFLAGS="-DRNNFAST_GEMM_MR=4 -DRNNFAST_GEMM_NR=3")
constexpr int kGemmMR = RNNFAST_GEMM_MR, kGemmNR = RNNFAST_GEMM_NR;
#elif defined(__AVX512F__)
// 16 accumulators of 32 zmm, 8 rows x 2 vectors: the fastest shape measured (against 4 x 4 and others:
// benchmarks/RESULTS.md, "Measurements behind the engine's rules")
constexpr int kGemmMR = 8, kGemmNR = 2;
#elif defined(__AVX2__)
// BLIS's Haswell sgemm shape: 6 rows x 2 vectors = 12 accumulators + 2 of B + 1 broadcast = 15 of 16 ymm
// (an 8 x 2 tile spills: 16 accumulators alone fill the register file)
constexpr int kGemmMR = 6, kGemmNR = 2;
#elif defined(__aarch64__)
constexpr int kGemmMR = 8, kGemmNR = 2;
#else
// SSE: no FMA, so a product needs a temporary: 4 x 2 = 8 accumulators + 2 of B + broadcast + temporaries
constexpr int kGemmMR = 4, kGemmNR = 2;
#endif

// The fused min-char-rnn loop's products (csrc/cpu/char_rnn.cpp): the widest blocks of vectors that keep
// all accumulators in registers. kAxpyWide: rows x vectors of its thin-C tile and of its usual tile;
// kMatvecBlock: vectors per block of its matrix-vector product, which keeps two chains of accumulators.
#if defined(__AVX512F__) || defined(__aarch64__)
constexpr int kAxpyThinRows = 8, kAxpyThinVecs = 2, kAxpyRows = 4, kAxpyVecs = 4, kMatvecBlock = 8;
#else
constexpr int kAxpyThinRows = 6, kAxpyThinVecs = 2, kAxpyRows = 4, kAxpyVecs = 3, kMatvecBlock = 6;
#endif

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
