// The ridge read-out's sufficient statistics (rnnfast.esn.RidgeAccumulator), accumulated in float64:
//   Xc = X - cx,  Yc = Y - cy       (rows shifted by the first batch's means, for accurate centring)
//   xx += Xc^T Xc  (upper triangle, column-major N x N: a symmetric rank-k update)
//   xy += Xc^T Yc  (row-major N x O),  xs += column sums of Xc,  ys += column sums of Yc
// X's rows are `steps` x `batch` rows of N states (float or double) with strides ld_step and ld_batch, as a
// member's slice of the reservoir engine's [T, P, B, N] states; Y is (steps * batch, O) float64.
//
// Why in the engine: the statistic is most of an ESN search's time (0.73 GFLOP per configuration at N = 500
// and 2900 rows). Through SciPy's BLAS wrapper it held the GIL, so the tasks of a multi-threaded Dask worker
// (or joblib's threading backend) ran it one at a time; here the GIL is released, and on the engine's
// threads the update is split in two equal halves (the two diagonal blocks' rank-k updates, and the
// off-diagonal block's GEMM).
#pragma once

#include "rnnfast/common.h"

namespace rnnfast {

template <typename T>
struct RidgeStatsParams {
  int steps, batch, features, outputs;  // the rows are steps x batch; N; O
  const T* x;                           // row (t, b) at x + t * ld_step + b * ld_batch, N contiguous values
  index_t ld_step, ld_batch;
  const double* y;                      // [steps * batch, O]
  const double* cx;                     // [N]
  const double* cy;                     // [O]
  double* xx;                           // [N, N] column-major, upper triangle updated
  double* xy;                           // [N, O]
  double* xs;                           // [N]
  double* ys;                           // [O]
  double* scratch;                      // [steps * batch, N]: receives Xc
};

template <typename T>
void ridge_stats_add_cpu(const RidgeStatsParams<T>& p);

}  // namespace rnnfast
