// Portable SIMD vectors through GCC/Clang vector extensions: the width follows the target (-march),
// 16 bytes at least, so the same kernel code is AVX-512, AVX2 or SSE. Unaligned loads and stores are
// allowed (aligned(sizeof(T))).
#pragma once

namespace rnnfast {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
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
constexpr int lanes() { return kVecBytes / int(sizeof(T)); }

}  // namespace rnnfast
