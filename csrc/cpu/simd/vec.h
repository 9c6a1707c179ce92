// The SIMD layer of the CPU engine: the one place that knows which instruction set a tier compiles for.
// Everything the kernels need from the ISA is here and in its neighbours (tiles.h, transpose.h, sell.h):
// the vector width and register count, portable vector types, and the few operations that need
// intrinsics. The rest of csrc/cpu is written against these and holds no `#if __AVX*`.
//
// Vectors are GCC/Clang vector extensions: the width follows the tier's target flags (64 bytes for
// AVX-512, 32 for AVX2, 16 for SSE4.2 and NEON), so the same kernel source is AVX-512, AVX2, SSE or NEON.
// Unaligned loads and stores are allowed (aligned(sizeof(T))).
#pragma once

#if !defined(RNNFAST_TIER)
#error "csrc/cpu/simd is compiled per tier only (RNNFAST_TIER is set by CMakeLists.txt)"
#endif

#include <cmath>

#if defined(__x86_64__) || defined(__i386__)
// GCC 12 reports the deliberately undefined sources of some AVX-512 intrinsics (_mm512_undefined_ps) as
// uninitialised where they are inlined (a false positive, GCC bug 105593)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace rnnfast {
namespace RNNFAST_TIER {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
constexpr int kVecRegisters = 32;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
constexpr int kVecRegisters = 16;
#elif defined(__aarch64__)
constexpr int kVecBytes = 16;
constexpr int kVecRegisters = 32;
#else
constexpr int kVecBytes = 16;
constexpr int kVecRegisters = 16;
#endif
// Fused multiply-add in hardware: a*b + c in one instruction (and one rounding). Without it a product and
// its sum take two registers' worth of work, which the register tiles account for.
#if defined(__FMA__) || defined(__aarch64__)
constexpr bool kHaveFma = true;
#else
constexpr bool kHaveFma = false;
#endif

template <typename T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(kVecBytes), aligned(4)));
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(kVecBytes), aligned(8)));
};
template <typename T>
using VecT = typename Vec<T>::type;

template <typename T>
constexpr int lanes() {
  return kVecBytes / int(sizeof(T));
}

template <typename T>
inline VecT<T> load(const T* p) {
  return *reinterpret_cast<const VecT<T>*>(p);
}
template <typename T>
inline void store(T* p, VecT<T> v) {
  *reinterpret_cast<VecT<T>*>(p) = v;
}
template <typename T>
inline VecT<T> splat(T x) {
  return VecT<T>{} + x;
}

template <typename T>
inline T hsum(VecT<T> v) {
  T s = 0;
  for (int i = 0; i < lanes<T>(); ++i) s += v[i];
  return s;
}

// Elementwise sqrt of a vector (IEEE, correctly rounded, as NumPy's). Not written as a scalar loop:
// without -fno-math-errno GCC keeps std::sqrt scalar, with a libm call for the errno path.
template <typename T>
inline VecT<T> vsqrt(VecT<T> v) {
#if defined(__AVX512F__)
  // the masked forms with every lane selected: GCC 12's _mm512_sqrt_ps warns about its undefined source
  if constexpr (sizeof(T) == 4) {
    const __m512 a = reinterpret_cast<__m512>(v);
    return reinterpret_cast<VecT<T>>(_mm512_mask_sqrt_ps(a, __mmask16(0xFFFF), a));
  } else {
    const __m512d a = reinterpret_cast<__m512d>(v);
    return reinterpret_cast<VecT<T>>(_mm512_mask_sqrt_pd(a, __mmask8(0xFF), a));
  }
#elif defined(__AVX__)
  if constexpr (sizeof(T) == 4) return reinterpret_cast<VecT<T>>(_mm256_sqrt_ps(reinterpret_cast<__m256>(v)));
  else return reinterpret_cast<VecT<T>>(_mm256_sqrt_pd(reinterpret_cast<__m256d>(v)));
#elif defined(__SSE2__)
  if constexpr (sizeof(T) == 4) return reinterpret_cast<VecT<T>>(_mm_sqrt_ps(reinterpret_cast<__m128>(v)));
  else return reinterpret_cast<VecT<T>>(_mm_sqrt_pd(reinterpret_cast<__m128d>(v)));
#elif defined(__aarch64__)
  if constexpr (sizeof(T) == 4) return reinterpret_cast<VecT<T>>(vsqrtq_f32(reinterpret_cast<float32x4_t>(v)));
  else return reinterpret_cast<VecT<T>>(vsqrtq_f64(reinterpret_cast<float64x2_t>(v)));
#else
  for (int i = 0; i < lanes<T>(); ++i) v[i] = std::sqrt(v[i]);
  return v;
#endif
}

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
