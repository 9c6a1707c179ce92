// The factored multiplicative RNN (Sutskever, Martens & Hinton 2011): params structs of the CPU engine
// (csrc/cpu/mrnn.cpp) and its per-element math, shared with any future GPU kernel.
//
// F = number of factors (besides T, N, C, H of common.h). One step, x_t: [N,C], h: [N,H]:
//   f_x = x_t W_fx^T                  [N,F]   for all steps at once, before the time loop
//   f_h = h_{t-1} W_fh^T              [N,F]   per step (small GEMM)
//   m   = f_x * f_h                   [N,F]   element-wise
//   a   = m W_hf^T + x_t W_hx^T + b   [N,H]   per step m W_hf^T (small GEMM); x W_hx^T + b before the loop
//   h_t = tanh(a)
// Layout and conventions as in rnnfast/recurrent.h: the caller allocates everything, sequence arrays
// are [T,N,width] with row stride ld, saved arrays are indexed by time t also when reverse=true.
#pragma once

#include "rnnfast/common.h"
#include "rnnfast/tier.h"

namespace rnnfast {

template <typename T>
struct MrnnForwardParams {
  int steps, batch, input_size, hidden, factors;  // T, N, C, H, F
  bool reverse;
  bool training;              // save the cache for backward
  const T* x;
  index_t ldx;    // [T,N,C]
  const T* h0;                // [N,H] or nullptr (zeros)
  const T* w_fx;              // [F,C]
  const T* w_fh;              // [F,H]
  const T* w_hf;              // [H,F]
  const T* w_hx;              // [H,C]
  const T* b;                 // [H] or nullptr
  T* y;
  index_t ldy;          // [T,N,H] all hidden states
  T* h_n;                     // [N,H]
  // cache, written when training (time order):
  T* h_prev;                  // [T,N,H] the state each step started from
  T* h;                       // [T,N,H] the state each step produced (tanh(a), for tanh')
  T* fx;                      // [T,N,F] f_x
  T* fh;                      // [T,N,F] f_h
  T* work;                    // mrnn_workspace_size(..., training, backward=false) elements
};

template <typename T>
struct MrnnBackwardParams {
  int steps, batch, input_size, hidden, factors;
  bool reverse;
  const T* x;
  index_t ldx;    // forward input [T,N,C]
  const T* w_fx;              // [F,C]
  const T* w_fh;              // [F,H]
  const T* w_hf;              // [H,F]
  const T* w_hx;              // [H,C]
  const T* h_prev;            // the forward cache (see above)
  const T* h;
  const T* fx;
  const T* fh;
  const T* dy;
  index_t lddy;  // [T,N,H] gradient on y, or nullptr
  const T* dh_n;              // [N,H] or nullptr
  T* dx;
  index_t lddx;        // [T,N,C]; written, or added to when accumulate_dx
  bool accumulate_dx;
  T* dh0;                     // [N,H] written
  T* dw_fx;                   // parameter gradients, always accumulated (+=), shaped as the weights
  T* dw_fh;
  T* dw_hf;
  T* dw_hx;
  T* db;                      // [H] or nullptr (no bias)
  T* work;                    // mrnn_workspace_size(..., backward=true) elements
};

// Elements of workspace a call needs (forward: `training` decides whether f_x goes to the cache or here).
index_t mrnn_workspace_size(int steps, int batch, int hidden, int factors, bool training, bool backward);

template <typename T>
void mrnn_forward_cpu(const MrnnForwardParams<T>& p);

template <typename T>
void mrnn_backward_cpu(const MrnnBackwardParams<T>& p);

// ---- per-element math (the tanh and its derivative are rnn_unit_* of rnnfast/cell_math.h) ----------
RNNFAST_TIER_BEGIN
template <typename T>
RNNFAST_HD T mrnn_factor_forward(T fx, T fh) {
  return fx * fh;
}

// dm: gradient on m = fx * fh; gives the gradients on fx and fh.
template <typename T>
RNNFAST_HD void mrnn_factor_backward(T dm, T fx, T fh, T& dfx, T& dfh) {
  dfx = dm * fh;
  dfh = dm * fx;
}

// Forward-mode derivative (R-op) of m = fx * fh: R m from the directions rfx, rfh (rnnfast/rop.h).
template <typename T>
RNNFAST_HD T mrnn_factor_rop(T fx, T fh, T rfx, T rfh) {
  return rfx * fh + fx * rfh;
}
RNNFAST_TIER_END

}  // namespace rnnfast
