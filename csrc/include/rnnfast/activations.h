// Scalar activations shared by the CPU loops and the CUDA kernels.
//
// On the device they call CUDA's exp/tanh. On the host they use a branch-free exp (range reduction
// x = n ln2 + r, |r| <= ln2/2, Taylor polynomial, 2^n by exponent bits) so the compiler can vectorise
// the per-element loops; glibc's scalar expf/tanhf calls cannot be vectorised without -ffast-math, and
// at N=64, H=512 the LSTM's 5 transcendentals per unit would otherwise cost as much as the recurrent GEMM.
// Accuracy (checked in tests against the float64 reference): float32 ~2 ulp, float64 ~4 ulp for exp;
// tanh = 1 - 2 / (exp(2x) + 1) has absolute error ~eps, so relative error grows only for |x| << 1.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "rnnfast/common.h"
#include "rnnfast/tier.h"

namespace rnnfast {
RNNFAST_TIER_BEGIN

#if !defined(__CUDA_ARCH__)
namespace detail {

inline float exp_poly(float x) {
  x = x < -87.0f ? -87.0f : x;  // NaN passes through both comparisons unchanged
  x = x > 88.0f ? 88.0f : x;
  // round to nearest by the 1.5*2^23 trick (branch-free; std::nearbyint is a slow libm call): in
  // `shifted` the units are the last mantissa bits, so its bits minus the constant's are n as an integer
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n from the exponent bits, by integer arithmetic on the bits of `shifted` (no float-to-int conversion:
  // it would stop the AVX2 build vectorising the double version, which has no such instruction before
  // AVX-512DQ). NaN in x: NaN in r and p carries it to the result, whatever the bits give.
  std::uint32_t sbits, mbits;
  const float magic = 12582912.0f;
  std::memcpy(&sbits, &shifted, sizeof(sbits));
  std::memcpy(&mbits, &magic, sizeof(mbits));
  const std::uint32_t bits = (sbits - mbits + 127u) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline double exp_poly(double x) {
  x = x < -708.0 ? -708.0 : x;
  x = x > 709.0 ? 709.0 : x;
  const double shifted = x * 1.4426950408889634074 + 6755399441055744.0;  // 1.5 * 2^52: see the float version
  const double n = shifted - 6755399441055744.0;
  const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  std::uint64_t sbits, mbits;
  const double magic = 6755399441055744.0;
  std::memcpy(&sbits, &shifted, sizeof(sbits));
  std::memcpy(&mbits, &magic, sizeof(mbits));
  const std::uint64_t bits = (sbits - mbits + 1023u) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

}  // namespace detail
#endif

template <typename T>
RNNFAST_HD T act_exp(T x) {
#if defined(__CUDA_ARCH__)
  return exp(x);
#else
  return detail::exp_poly(x);
#endif
}

template <typename T>
RNNFAST_HD T act_sigmoid(T x) {
  return T(1) / (T(1) + act_exp(-x));
}

template <typename T>
RNNFAST_HD T act_tanh(T x) {
#if defined(__CUDA_ARCH__)
  return tanh(x);
#else
  // Odd Taylor series near 0 (where 1 - 2/(e^2x + 1) cancels), the exp form elsewhere; both are
  // computed and one selected, which keeps the loop branch-free.
  const T x2 = x * x;
  const T series =
      x * (T(1) + x2 * (T(-1) / T(3) +
                        x2 * (T(2) / T(15) +
                              x2 * (T(-17) / T(315) + x2 * (T(62) / T(2835) + x2 * (T(-1382) / T(155925) +
                                                                                    x2 * (T(21844) / T(6081075))))))));
  const T viaexp = T(1) - T(2) / (act_exp(T(2) * x) + T(1));
  const T small = sizeof(T) == 4 ? T(0.125) : T(0.03);
  // one comparison (x^2 < small^2, false for NaN), not `x < small && x > -small`: the && is control flow,
  // which GCC's vectoriser if-converts only with AVX-512's mask registers (the AVX2 and SSE loops stayed scalar)
  return x2 < small * small ? series : viaexp;
#endif
}

template <typename T>
RNNFAST_HD T act_relu(T x) {
  return x > T(0) ? x : T(0);
}

RNNFAST_TIER_END
}  // namespace rnnfast
