// The read-out Linear and softmax cross-entropy fused (see rnnfast/readout.h).
//
// Why: through NumPy the read-out of the small preset (R = 2048 rows, H = 256, K ~ 100) costs three GEMMs
// on one BLAS thread (the engine owns the threads, so NumPy's BLAS is limited to one) plus ~8 passes of
// temporaries for the softmax, its log, the gather, the one-hot subtraction and the scaling. Here the GEMMs
// run on the engine's threads and the softmax with its gradient is one pass per row, in place.
#include "rnnfast/readout.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "rnnfast/activations.h"
#include "rnnfast/parallel.h"

#include "blas.h"
#include "buffer.h"
#include "simd/vec.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

#define RNNFAST_ROW_FN __attribute__((noinline))

// max and sum of a row with whole vectors (GCC does not vectorise float reductions without -ffast-math)
template <typename T>
T row_max(int K, const T* z) {
  constexpr int L = lanes<T>();
  T m = z[0];
  int k = 0;
  if (K >= L) {
    VecT<T> v = *reinterpret_cast<const VecT<T>*>(z);
    for (k = L; k + L <= K; k += L) {
      const VecT<T> u = *reinterpret_cast<const VecT<T>*>(z + k);
      v = u > v ? u : v;
    }
    for (int j = 0; j < L; ++j) m = v[j] > m ? v[j] : m;
  }
  for (; k < K; ++k) m = z[k] > m ? z[k] : m;
  return m;
}

template <typename T>
T row_sum(int K, const T* z) {
  constexpr int L = lanes<T>();
  VecT<T> v{};
  int k = 0;
  for (; k + L <= K; k += L) v += *reinterpret_cast<const VecT<T>*>(z + k);
  T s = T(0);
  for (int j = 0; j < L; ++j) s += v[j];
  for (; k < K; ++k) s += z[k];
  return s;
}

template <typename T>
RNNFAST_ROW_FN T add_bias_exp(int K, T* __restrict z, const T* __restrict b, T* __restrict e, bool bias) {
  if (bias)
    for (int k = 0; k < K; ++k) z[k] += b[k];
  const T m = row_max(K, z);
  for (int k = 0; k < K; ++k) e[k] = act_exp(z[k] - m);
  return m;
}

// One row: z += b; nll = log sum_k exp(z_k - m) - (z_t - m) (m = max_k z_k); with grad, z becomes
// scale * (softmax(z) - onehot(t)). e: [K] scratch.
template <typename T>
double softmax_xent_row(int K, T* __restrict z, const T* __restrict b, int target, T scale, bool grad,
                        T* __restrict e) {
  const T m = add_bias_exp(K, z, b, e, b != nullptr);
  const T s = row_sum(K, e);
  const double nll = std::log(double(s)) - double(z[target] - m);
  if (grad) {
    const T f = scale / s;
    for (int k = 0; k < K; ++k) z[k] = e[k] * f;
    z[target] -= scale;
  }
  return nll;
}

}  // namespace

template <typename T>
double readout_xent_cpu(const ReadoutXentParams<T>& p) {
  const int R = p.rows, H = p.in, K = p.classes;
  const bool grad = p.dw != nullptr;
  gemm_parallel(false, true, R, K, H, T(1), p.x, H, p.w, H, T(0), p.logits, K);
  constexpr int kRows = 64;
  const int tasks = (R + kRows - 1) / kRows;
  parallel_for(tasks, double(R) * K > 2e4, [&](int task) {
    const int r0 = task * kRows, r1 = std::min(R, r0 + kRows);
    vector<T> e(K);
    for (int r = r0; r < r1; ++r)
      p.nll[r] = softmax_xent_row(K, p.logits + index_t(r) * K, p.b, int(p.targets[r]), p.scale, grad, e.data());
  });
  double total = 0.0;
  for (int r = 0; r < R; ++r) total += p.nll[r];
  if (!grad) return total;
  gemm_parallel(true, false, K, H, R, T(1), p.logits, K, p.x, H, T(1), p.dw, H);
  if (p.db)
    for (int r = 0; r < R; ++r) {
      const T* __restrict dz = p.logits + index_t(r) * K;
      for (int k = 0; k < K; ++k) p.db[k] += dz[k];
    }
  if (p.dx) gemm_parallel(false, false, R, H, K, T(1), p.logits, K, p.w, H, T(0), p.dx, H);
  return total;
}

template double readout_xent_cpu<float>(const ReadoutXentParams<float>&);
template double readout_xent_cpu<double>(const ReadoutXentParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
