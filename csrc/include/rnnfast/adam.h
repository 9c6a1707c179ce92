// Optimizer updates over one parameter array, in place, for rnnfast.optim on the CPU.
//
// Adam (torch.optim.Adam's rule, in the operation order of optim.Adam's NumPy code, so the two give the
// same numbers: the file is compiled without FMA contraction, and the scalars arrive rounded to T as NumPy
// rounds Python floats):
//   g' = g + wd p                      (only when wd != 0)
//   m  = b1 m + omb1 g'                (omb1 = 1 - b1, computed in double, then rounded)
//   v  = b2 v + (omb2 g') g'
//   p -= step_size (m / (sqrt(v) / bias2_sqrt + eps))
//        step_size = lr / (1 - b1^t), bias2_sqrt = sqrt(1 - b2^t)
// Sum of squares: sum g^2 in double, for the global norm of gradient clipping.
// All finite: whether no element is NaN or infinite (the optimizers' check before a step).
#pragma once

#include "rnnfast/common.h"

namespace rnnfast {

template <typename T>
struct AdamParams {
  index_t n;
  T* p;                       // [n] parameter, updated
  const T* g;                 // [n] gradient
  T* m;                       // [n] exp_avg, updated
  T* v;                       // [n] exp_avg_sq, updated
  T b1, omb1, b2, omb2, eps, wd, step_size, bias2_sqrt;
};

template <typename T>
void adam_update_cpu(const AdamParams<T>& a);

template <typename T>
double sum_squares_cpu(const T* g, index_t n);

template <typename T>
bool all_finite_cpu(const T* g, index_t n);

}  // namespace rnnfast
