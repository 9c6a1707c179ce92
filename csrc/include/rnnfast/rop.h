// Forward-mode R-ops (Pearlmutter 1994) of the vanilla RNN and the MRNN on the CPU engine: the
// Jacobian-vector products R{y} = d/de y(theta + e v) at e = 0 that Hessian-free training needs for its
// Gauss-Newton products G v = J^T H_L J v (Martens & Sutskever 2011). One sweep of the linearised
// recurrence over the forward's saved states; no second derivatives.
//
// Directions: V_* on the weights (same shapes as the weights), Rx on the input and Rh0 on the initial
// state; any of them may be nullptr (zero). Shape letters as in rnnfast/common.h, F = factors (mrnn.h).
// Layout as in rnnfast/recurrent.h: sequence arrays [T,N,width] with row stride ld, indexed by time t
// also when reverse=true (then the recurrence runs t = T-1 .. 0 and h_{t-1} means the state of t+1).
//
// Vanilla RNN (act = tanh or relu; act' from the saved h_t: tanh 1 - h^2, relu [h > 0]):
//   R a_t = x_t V_ih^T + Rx_t W_ih^T + h_{t-1} V_hh^T + V_bih + V_bhh   all t: big GEMMs, into ry
//         + R h_{t-1} W_hh^T                                             per step: small GEMM
//   R h_t = act'(a_t) * R a_t
// MRNN (f_x, f_h, m = f_x * f_h as in mrnn.h):
//   R f_x = x V_fx^T + Rx W_fx^T                                         all t: big GEMMs
//   R f_h = h_{t-1} V_fh^T                                               all t: big GEMM
//         + R h_{t-1} W_fh^T                                             per step: small GEMM
//   R m   = R f_x * f_h + f_x * R f_h                                    per step: element-wise
//   R a_t = m V_hf^T + x V_hx^T + Rx W_hx^T + V_b                        all t: big GEMMs, into ry
//         + R m W_hf^T                                                   per step: small GEMM
//   R h_t = (1 - h_t^2) * R a_t
// The caller allocates everything; ry is the running accumulator of R a_t and ends as R h_t.
#pragma once

#include "rnnfast/common.h"

namespace rnnfast {

template <typename T>
struct RnnRopParams {
  bool relu;                            // the forward's nonlinearity: relu (true) or tanh (false)
  int steps, batch, input_size, hidden; // T, N, C, H
  bool reverse;
  const T* x;
  index_t ldx;              // [T,N,C] the forward's input
  const T* h0;                          // [N,H] the forward's initial state, or nullptr (zeros)
  const T* y;
  index_t ldy;              // [T,N,H] the forward's outputs h_t
  const T* w_ih;                        // [H,C]
  const T* w_hh;                        // [H,H]
  const T* v_ih;                        // [H,C] or nullptr: the directions
  const T* v_hh;                        // [H,H] or nullptr
  const T* v_b_ih;                      // [H] or nullptr
  const T* v_b_hh;                      // [H] or nullptr
  const T* rx;
  index_t ldrx;            // [T,N,C] or nullptr: direction on x
  const T* rh0;                         // [N,H] or nullptr: direction on h0
  T* ry;
  index_t ldry;                  // [T,N,H] written: R{y}
};

template <typename T>
struct MrnnRopParams {
  int steps, batch, input_size, hidden, factors;  // T, N, C, H, F
  bool reverse;
  const T* x;
  index_t ldx;              // [T,N,C] the forward's input
  const T* h0;                          // [N,H] or nullptr (zeros)
  const T* y;
  index_t ldy;              // [T,N,H] the forward's outputs h_t
  const T* fx;                          // [T,N,F] the forward's f_x, or nullptr: computed into work
  const T* fh;                          // [T,N,F] the forward's f_h, or nullptr: computed into work
  const T* w_fx;                        // [F,C]
  const T* w_fh;                        // [F,H]
  const T* w_hf;                        // [H,F]
  const T* w_hx;                        // [H,C]
  const T* v_fx;                        // directions, shaped as the weights, each nullptr or given
  const T* v_fh;
  const T* v_hf;
  const T* v_hx;
  const T* v_b;                         // [H] or nullptr
  const T* rx;
  index_t ldrx;            // [T,N,C] or nullptr
  const T* rh0;                         // [N,H] or nullptr
  T* ry;
  index_t ldry;                  // [T,N,H] written: R{y}
  T* work;                              // mrnn_rop_workspace_size(...) elements
};

// Elements of workspace mrnn_rop_cpu needs: R f_x and R f_h of all steps, plus f_x and f_h when the
// caller does not pass them (have_factors=false). The vanilla RNN's R-op needs none.
index_t mrnn_rop_workspace_size(int steps, int batch, int factors, bool have_factors);

template <typename T>
void rnn_rop_cpu(const RnnRopParams<T>& p);

template <typename T>
void mrnn_rop_cpu(const MrnnRopParams<T>& p);

}  // namespace rnnfast
