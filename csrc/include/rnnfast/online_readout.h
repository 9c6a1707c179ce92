// Online read-outs of an echo state network: LMS and RLS (FORCE learning, Sussillo & Abbott 2009), trained
// step by step together with the reservoir, with the read-out's output fed back (reservoirpy's
// `reservoir >> readout` with `reservoir << readout` and Model.partial_fit).
//
// Letters: T steps, I inputs, N reservoir units, O outputs. One sequence (online learning is sequential).
// Each step t:
//   v_t   = [u_t, y_{t-1}]  (feedback)  or  u_t                      W_in: [N, I+O] or [N, I]
//   x_t   = (1 - leak) x_{t-1} + leak tanh(W x_{t-1} + W_in v_t + bias)
//   train = false:  y_t = x_t W_out + b
//   LMS:   e = x_t W_out + b - target_t;  W_out -= lr x_t e^T;  b' = b - lr e
//   RLS:   k = P x_t;  c = lambda + x_t . k;  P = (P - k k^T / c) / lambda;  S = lambda S + 1
//          e = x_t W_out + b - target_t;  W_out -= (P x_t) e^T;  b' = (S b - e) / S
//   both:  y_t = x_t W_out(updated) + b(not yet updated)  (reservoirpy's prediction), then b = b'
//          (b is learned only with fit_bias).
// RLS's gain P_new x_t is computed as k / c (the same value: P_new x = (k - k (x.k)/c)/lambda = k/c), which
// lets one pass over P per step both apply step t's rank-one update and compute step t+1's P x.
#pragma once

#include <cstdint>

#include "rnnfast/common.h"

namespace rnnfast {

enum class OnlineRule : int { Lms = 0, Rls = 1 };

template <typename T>
struct OnlineReadoutParams {
  int steps, inputs, units, n_outputs;  // T, I, N, O (I may be 0 with feedback)
  bool feedback;                      // W_in's last O columns take the previous output
  bool train;                         // learn from `targets` (else run with the read-out as it is)
  OnlineRule rule;
  bool fit_bias;
  T learning_rate;                    // LMS
  T forgetting;                       // RLS lambda in (0, 1]
  const T* u;                         // [T,I] (nullptr when I == 0)
  // W: either dense [N,N] (row-major), or CSR with int32 indptr [N+1], indices [nnz], values [nnz]
  const T* w_dense;
  const std::int32_t* indptr;
  const std::int32_t* indices;
  const T* values;
  const T* w_in;                      // [N, I+O] with feedback, else [N, I]
  const T* bias;                      // [N] or nullptr
  const T* leak;                      // [N]
  const T* targets;                   // [T,O] (train)
  T* x;                               // [N] state: x_{-1} in, x_{T-1} out
  T* y;                               // [O] fed-back output: y_{-1} in, y_{T-1} out
  T* w_out;                           // [N,O] read-out, updated in place when training
  T* b_out;                           // [O]
  T* p;                               // [N,N] RLS inverse correlation matrix (symmetric), updated in place
  double* s;                          // RLS: sample count S, updated in place
  T* states;                          // [T,N] every x_t, or nullptr
  T* outputs;                         // [T,O] every y_t
};

template <typename T>
void online_readout_cpu(const OnlineReadoutParams<T>& p);

}  // namespace rnnfast
