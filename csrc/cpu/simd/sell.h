// The vector operations of the reservoir's SELL kernel (csrc/cpu/reservoir.cpp): one SpMV row slice of L
// rows (one vector) at a time, where an entry holds L values and their column offsets within a block of
// CB = 4L columns of x. x's block is held in four registers, and an entry's x values are picked from them
// by permutes and blends instead of L indexed loads (gathers are slower than scalar loads on AMD Zen).
//   AVX-512: two two-register permutes (vpermt2ps) and a masked blend per entry.
//   AVX2:    four one-register permutes (vpermps) and three blends, selected by bits 3 and 4 of the offset;
//            float32 only: for doubles (4 per entry) it is slower than the CSR row dot product (the
//            measurements: benchmarks/RESULTS.md, "Measurements behind the engine's rules").
// Elsewhere kHaveSell<T> is false and the CSR row dot product runs instead.
#pragma once

#include <cstdint>

#include "simd/vec.h"

namespace rnnfast {
namespace RNNFAST_TIER {

template <typename T>
struct SellOps;

#if defined(__AVX512F__)
template <typename T>
constexpr bool kHaveSell = true;
template <>
struct SellOps<float> {
  using V = __m512;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static void store(float* p, V a) { _mm512_storeu_ps(p, a); }
  static V pick(const std::uint8_t* cols, V x0, V x1, V x2, V x3) {
    const __m512i j = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cols)));
    const __mmask16 upper = _mm512_test_epi32_mask(j, _mm512_set1_epi32(32));  // offset >= 32: x2, x3
    return _mm512_mask_blend_ps(upper, _mm512_permutex2var_ps(x0, j, x1), _mm512_permutex2var_ps(x2, j, x3));
  }
};
template <>
struct SellOps<double> {
  using V = __m512d;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static void store(double* p, V a) { _mm512_storeu_pd(p, a); }
  static V pick(const std::uint8_t* cols, V x0, V x1, V x2, V x3) {
    const __m512i j = _mm512_cvtepu8_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(cols)));
    const __mmask8 upper = _mm512_test_epi64_mask(j, _mm512_set1_epi64(16));  // offset >= 16: x2, x3
    return _mm512_mask_blend_pd(upper, _mm512_permutex2var_pd(x0, j, x1), _mm512_permutex2var_pd(x2, j, x3));
  }
};
#elif defined(__AVX2__) && defined(__FMA__)
template <typename T>
constexpr bool kHaveSell = sizeof(T) == 4;
namespace simd_detail {
// Of four 8-lane registers (32 slots), the slots j: a vpermps of each by j's low 3 bits, blends by bit 3
// (x0|x1, x2|x3) and by bit 4 (the pair). blendv selects on a lane's sign bit, so the bits are shifted there.
inline __m256 pick32(__m256i j, __m256 x0, __m256 x1, __m256 x2, __m256 x3) {
  const __m256 b3 = _mm256_castsi256_ps(_mm256_slli_epi32(j, 28)), b4 = _mm256_castsi256_ps(_mm256_slli_epi32(j, 27));
  const __m256 lo = _mm256_blendv_ps(_mm256_permutevar8x32_ps(x0, j), _mm256_permutevar8x32_ps(x1, j), b3);
  const __m256 hi = _mm256_blendv_ps(_mm256_permutevar8x32_ps(x2, j), _mm256_permutevar8x32_ps(x3, j), b3);
  return _mm256_blendv_ps(lo, hi, b4);
}
}  // namespace simd_detail
template <>
struct SellOps<float> {
  using V = __m256;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static void store(float* p, V a) { _mm256_storeu_ps(p, a); }
  static V pick(const std::uint8_t* cols, V x0, V x1, V x2, V x3) {
    const __m256i j = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(cols)));
    return simd_detail::pick32(j, x0, x1, x2, x3);
  }
};
#else
template <typename T>
constexpr bool kHaveSell = false;
#endif

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
