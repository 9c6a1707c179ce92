// Transposed copies, dst[c][i] = src[i][c]: whole SIMD blocks (floats 16 x 16 under AVX-512, 8 x 8 under AVX;
// doubles 8 x 8 and 4 x 4), scalar 16 x 16 cache blocks elsewhere and at the edges.
#pragma once

#include <algorithm>

#include "rnnfast/common.h"
#include "simd/vec.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace simd_detail {

#if defined(__AVX512F__)
constexpr int kTransposeBlockF32 = 16;
// One 16 x 16 block: pairs of rows interleaved within 128-bit lanes, then 4 x 4 within lanes, then the lanes.
inline void transpose_block_f32(const float* s, index_t lds, float* d, index_t ldd) {
  __m512 t[16], u[16];
  for (int k = 0; k < 16; k += 2) {
    const __m512 a = _mm512_loadu_ps(s + k * lds), b = _mm512_loadu_ps(s + (k + 1) * lds);
    t[k] = _mm512_unpacklo_ps(a, b);
    t[k + 1] = _mm512_unpackhi_ps(a, b);
  }
  for (int m = 0; m < 4; ++m) {  // u[4m + c], 128-bit lane l: column 4l + c of rows 4m .. 4m+3
    u[4 * m + 0] = _mm512_shuffle_ps(t[4 * m], t[4 * m + 2], 0x44);
    u[4 * m + 1] = _mm512_shuffle_ps(t[4 * m], t[4 * m + 2], 0xEE);
    u[4 * m + 2] = _mm512_shuffle_ps(t[4 * m + 1], t[4 * m + 3], 0x44);
    u[4 * m + 3] = _mm512_shuffle_ps(t[4 * m + 1], t[4 * m + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {  // column 4l + c of all 16 rows
    const __m512 w0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), w1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    const __m512 v0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88),
                 v1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    _mm512_storeu_ps(d + c * ldd, _mm512_shuffle_f32x4(w0, v0, 0x88));
    _mm512_storeu_ps(d + (4 + c) * ldd, _mm512_shuffle_f32x4(w1, v1, 0x88));
    _mm512_storeu_ps(d + (8 + c) * ldd, _mm512_shuffle_f32x4(w0, v0, 0xDD));
    _mm512_storeu_ps(d + (12 + c) * ldd, _mm512_shuffle_f32x4(w1, v1, 0xDD));
  }
}
#elif defined(__AVX__)
constexpr int kTransposeBlockF32 = 8;
// One 8 x 8 block, with the usual unpack / shuffle / lane-permute network.
inline void transpose_block_f32(const float* s, index_t lds, float* d, index_t ldd) {
  __m256 r[8], t[8], u[8];
  for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(s + k * lds);
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int m = 0; m < 2; ++m) {
    u[4 * m + 0] = _mm256_shuffle_ps(t[4 * m], t[4 * m + 2], 0x44);
    u[4 * m + 1] = _mm256_shuffle_ps(t[4 * m], t[4 * m + 2], 0xEE);
    u[4 * m + 2] = _mm256_shuffle_ps(t[4 * m + 1], t[4 * m + 3], 0x44);
    u[4 * m + 3] = _mm256_shuffle_ps(t[4 * m + 1], t[4 * m + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(d + c * ldd, _mm256_permute2f128_ps(u[c], u[4 + c], 0x20));
    _mm256_storeu_ps(d + (4 + c) * ldd, _mm256_permute2f128_ps(u[c], u[4 + c], 0x31));
  }
}
#else
constexpr int kTransposeBlockF32 = 0;
inline void transpose_block_f32(const float*, index_t, float*, index_t) {}
#endif

#if defined(__AVX512F__)
constexpr int kTransposeBlockF64 = 8;
// One 8 x 8 block of doubles: pairs of rows interleaved within 128-bit lanes, then the lanes regrouped twice.
inline void transpose_block_f64(const double* s, index_t lds, double* d, index_t ldd) {
  __m512d t[8], u[8];
  for (int k = 0; k < 8; k += 2) {
    const __m512d a = _mm512_loadu_pd(s + k * lds), b = _mm512_loadu_pd(s + (k + 1) * lds);
    t[k] = _mm512_unpacklo_pd(a, b);      // columns 0 2 4 6 of rows k, k+1 (one pair per 128-bit lane)
    t[k + 1] = _mm512_unpackhi_pd(a, b);  // columns 1 3 5 7
  }
  for (int h = 0; h < 2; ++h)  // rows 4h .. 4h+3; u[4h + j]: columns j and j + 4 (j = 0, 2, 1, 3 in turn)
    for (int j = 0; j < 2; ++j) {
      u[4 * h + 2 * j] = _mm512_shuffle_f64x2(t[4 * h + j], t[4 * h + 2 + j], 0x88);
      u[4 * h + 2 * j + 1] = _mm512_shuffle_f64x2(t[4 * h + j], t[4 * h + 2 + j], 0xDD);
    }
  // u[0] / u[1]: columns 0+4 / 2+6 of rows 0-3; u[2] / u[3]: columns 1+5 / 3+7; u[4..7]: the same, rows 4-7
  const int col[4] = {0, 2, 1, 3};
  for (int q = 0; q < 4; ++q) {
    _mm512_storeu_pd(d + col[q] * ldd, _mm512_shuffle_f64x2(u[q], u[4 + q], 0x88));
    _mm512_storeu_pd(d + (col[q] + 4) * ldd, _mm512_shuffle_f64x2(u[q], u[4 + q], 0xDD));
  }
}
#elif defined(__AVX__)
constexpr int kTransposeBlockF64 = 4;
inline void transpose_block_f64(const double* s, index_t lds, double* d, index_t ldd) {
  const __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + lds), r2 = _mm256_loadu_pd(s + 2 * lds),
                r3 = _mm256_loadu_pd(s + 3 * lds);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(d, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(d + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(d + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(d + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}
#else
constexpr int kTransposeBlockF64 = 0;
inline void transpose_block_f64(const double*, index_t, double*, index_t) {}
#endif

template <typename T>
constexpr int transpose_block() {
  return sizeof(T) == 4 ? kTransposeBlockF32 : sizeof(T) == 8 ? kTransposeBlockF64 : 0;
}

template <typename T>
inline void transpose_block_t(const T* s, index_t lds, T* d, index_t ldd) {
  if constexpr (sizeof(T) == 4)
    transpose_block_f32(reinterpret_cast<const float*>(s), lds, reinterpret_cast<float*>(d), ldd);
  else transpose_block_f64(reinterpret_cast<const double*>(s), lds, reinterpret_cast<double*>(d), ldd);
}

}  // namespace simd_detail

// dst[c * ldd + i] = src[i * lds + c] for i < rows, c < cols.
template <typename T>
void transpose(int rows, int cols, const T* src, index_t lds, T* dst, index_t ldd) {
  int r0 = 0, c0 = 0;
  if constexpr (simd_detail::transpose_block<T>() > 0) {
    constexpr int B = simd_detail::transpose_block<T>();
    const int rb = rows / B * B, cb = cols / B * B;
    for (int i = 0; i < rb; i += B)
      for (int c = 0; c < cb; c += B) simd_detail::transpose_block_t(src + i * lds + c, lds, dst + c * ldd + i, ldd);
    // the edges: columns [cb, cols) of every row, then rows [rb, rows) of the block columns
    for (int i = 0; i < rows; ++i)
      for (int c = cb; c < cols; ++c) dst[c * ldd + i] = src[i * lds + c];
    r0 = rb;
    c0 = 0;
    for (int i = r0; i < rows; ++i)
      for (int c = c0; c < cb; ++c) dst[c * ldd + i] = src[i * lds + c];
    return;
  }
  constexpr int B = 16;
  for (int i0 = r0; i0 < rows; i0 += B)
    for (int b0 = c0; b0 < cols; b0 += B) {
      const int i1 = std::min(rows, i0 + B), b1 = std::min(cols, b0 + B);
      for (int i = i0; i < i1; ++i)
        for (int c = b0; c < b1; ++c) dst[c * ldd + i] = src[i * lds + c];
    }
}

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
