// Adam's update, the sum of squares for clipping and the finiteness check (see rnnfast/adam.h).
//
// Why: NumPy's Adam makes ~10 passes over each parameter-sized array with temporaries (m *= b1,
// (1 - b1) * g, m += ..., g * g, ..., sqrt, two divisions, the product, p -= ...) and clipping's norm
// casts every gradient to float64 first: memory traffic of several times the parameters per step. Here
// each is one pass, split over the engine's threads.
// Compiled with -ffp-contract=off (no FMA: the same roundings as NumPy) and -fno-math-errno (sqrt
// vectorises), see CMakeLists.txt.
#include "rnnfast/adam.h"

#include <algorithm>
#include <cmath>

#include "rnnfast/parallel.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

constexpr index_t kChunk = 16384;  // elements per task

template <typename T>
__attribute__((noinline)) void adam_range(index_t n, T* __restrict p, const T* __restrict g, T* __restrict m,
                                          T* __restrict v, T b1, T omb1, T b2, T omb2, T eps, T wd, T step_size,
                                          T bias2_sqrt) {
  for (index_t i = 0; i < n; ++i) {
    const T gi = wd != T(0) ? g[i] + wd * p[i] : g[i];
    const T mi = m[i] * b1 + omb1 * gi;
    const T vi = v[i] * b2 + (omb2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * (mi / (std::sqrt(vi) / bias2_sqrt + eps));
  }
}

}  // namespace

template <typename T>
void adam_update_cpu(const AdamParams<T>& a) {
  const index_t tasks = (a.n + kChunk - 1) / kChunk;
  parallel_for(int(tasks), a.n >= 4 * kChunk, [&](int task) {
    const index_t i0 = task * kChunk, len = std::min(kChunk, a.n - i0);
    adam_range(len, a.p + i0, a.g + i0, a.m + i0, a.v + i0, a.b1, a.omb1, a.b2, a.omb2, a.eps, a.wd, a.step_size,
               a.bias2_sqrt);
  });
}

template <typename T>
double sum_squares_cpu(const T* g, index_t n) {
  // eight partial sums keep the additions independent (one vector of doubles); the order is fixed
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  index_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += double(g[i + j]) * double(g[i + j]);
  for (; i < n; ++i) s[0] += double(g[i]) * double(g[i]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

template <typename T>
bool all_finite_cpu(const T* g, index_t n) {
  // x - x is 0 for a finite x and NaN for an infinite or NaN one, and a NaN stays in its partial sum: one
  // vectorised pass with no temporary (NumPy's isfinite(g).all() writes a bool array and reads it back)
  T s[16] = {};
  index_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) s[j] += g[i + j] - g[i + j];
  for (; i < n; ++i) s[0] += g[i] - g[i];
  bool ok = true;
  for (int j = 0; j < 16; ++j) ok = ok && s[j] == T(0);
  return ok;
}

template void adam_update_cpu<float>(const AdamParams<float>&);
template void adam_update_cpu<double>(const AdamParams<double>&);
template double sum_squares_cpu<float>(const float*, index_t);
template double sum_squares_cpu<double>(const double*, index_t);
template bool all_finite_cpu<float>(const float*, index_t);
template bool all_finite_cpu<double>(const double*, index_t);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
