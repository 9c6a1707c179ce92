// The ridge read-out's statistics (see rnnfast/ridge_stats.h).
#include "rnnfast/ridge_stats.h"

#include <algorithm>
#include <vector>

#include "rnnfast/parallel.h"

#include "blas.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

template <typename T>
void centre_rows(const RidgeStatsParams<T>& p) {
  const int N = p.features;
  const double* __restrict cx = p.cx;
  double* __restrict xs = p.xs;
  for (int t = 0; t < p.steps; ++t)
    for (int b = 0; b < p.batch; ++b) {
      const T* __restrict src = p.x + t * p.ld_step + b * p.ld_batch;
      double* __restrict dst = p.scratch + (index_t(t) * p.batch + b) * N;
      for (int i = 0; i < N; ++i) {
        const double v = double(src[i]) - cx[i];
        dst[i] = v;
        xs[i] += v;
      }
    }
}

}  // namespace

template <typename T>
void ridge_stats_add_cpu(const RidgeStatsParams<T>& p) {
  const int S = p.steps * p.batch, N = p.features, O = p.outputs;
  if (S == 0) return;
  centre_rows(p);
  std::vector<double> yc(index_t(S) * O);
  for (int r = 0; r < S; ++r)
    for (int o = 0; o < O; ++o) {
      const double v = p.y[index_t(r) * O + o] - p.cy[o];
      yc[index_t(r) * O + o] = v;
      p.ys[o] += v;
    }
  const double* A = p.scratch;  // Xc^T as a column-major N x S matrix (lda N)
  // xy (row-major N x O) += Xc^T Yc
  gemm(true, false, N, O, S, 1.0, A, N, yc.data(), O, 1.0, p.xy, O);
  // xx (column-major, upper) += A A^T as three BLAS calls: the two diagonal blocks' rank-k updates | the
  // off-diagonal block's GEMM (equal halves of the work). The same calls on one thread or two, so the sums
  // (and a search's scores) do not depend on the thread count or on where a task ran.
  const int n1 = N / 2;
  const auto syrk = [&](int i0, int n) {
    scipy_cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, n, S, 1.0, A + i0, N, 1.0, p.xx + i0 + index_t(i0) * N,
                      N);
  };
  if (n1 < 16) {
    syrk(0, N);
    return;
  }
  parallel_for(2, double(S) * N * N > 8e6, [&](int part) {
    if (part == 0) {
      syrk(0, n1);
      syrk(n1, N - n1);
    } else {
      scipy_cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, n1, N - n1, S, 1.0, A, N, A + n1, N, 1.0,
                        p.xx + index_t(n1) * N, N);
    }
  });
}

template void ridge_stats_add_cpu<float>(const RidgeStatsParams<float>&);
template void ridge_stats_add_cpu<double>(const RidgeStatsParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
