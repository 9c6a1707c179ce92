// The read-out of a character model fused with its loss: logits = x W^T + b, softmax cross-entropy
// against integer targets, and the backward of both, in one call (one pass over the logits).
//
//   z = x W^T + b                                  [R,K]  R = rows (T*N), K = classes, H = input size
//   nll_r = log sum_k exp(z_rk) - z_r,target_r     summed in double -> *nll_sum
//   dz = scale * (softmax(z) - onehot(target))     (scale = 1/R for the mean loss's gradient)
//   dW += dz^T x,  db += sum_r dz_r,  dx = dz W    (dW, db accumulated; dx written)
//
// The caller allocates everything: logits is a [R,K] workspace (it holds dz afterwards) and nll [R] the
// per-row losses (double), summed in row order so the total does not depend on the thread count.
#pragma once

#include <cstdint>

#include "rnnfast/common.h"

namespace rnnfast {

template <typename T>
struct ReadoutXentParams {
  int rows, in, classes;           // R, H, K
  const T* x;                      // [R,H]
  const T* w;                      // [K,H]
  const T* b;                      // [K] or nullptr
  const std::int32_t* targets;     // [R] in [0, K)
  T scale;                         // dz = scale * (softmax - onehot)
  T* logits;                       // [R,K] workspace: z, then dz
  double* nll;                     // [R] per-row -log softmax[target]
  T* dw;                           // [K,H] += dz^T x (nullptr: no parameter gradients, no dx: evaluation)
  T* db;                           // [K] += column sums of dz, or nullptr
  T* dx;                           // [R,H] = dz W, or nullptr
};

// Returns the sum of nll over the rows (double).
template <typename T>
double readout_xent_cpu(const ReadoutXentParams<T>& p);

}  // namespace rnnfast
