// The boundary between Python and the recurrent engines: plain structs of pointers, sizes and row
// strides (as flash-attention's Flash_fwd_params). The caller allocates everything, including the
// workspace (see recurrent_workspace_size); the engines only compute.
//
// One call runs one layer in one direction over the whole sequence. "Time order" means index t of x;
// with reverse=true the layer processes t = T-1 .. 0, but every saved array is still indexed by t.
// Sequence arrays are [T,N,width] with rows of `ld` elements (ld >= width), so a direction of a
// bidirectional output y: [T,N,2H] is addressed in place as (y + d*H, ld = 2H).
//
// One-hot input (a character model's first layer): x_index [T,N] holds the index of the 1 of each x row,
// and x is unused. The input projection x W_ih^T + b_ih is then a row gather of the [C,G*H] table
// W_ih^T + b_ih (bit-identical to the GEMM on the one-hot rows), dW_ih a scatter-add of the gate gradients
// into that table's columns, and dx is not computed (an index has no gradient): C*G*H multiply-adds per
// row saved three times.
#pragma once

#include "rnnfast/common.h"

namespace rnnfast {

template <typename T>
struct RecurrentForwardParams {
  Cell cell;
  int steps, batch, input_size, hidden;  // T, N, C, H
  bool reverse;
  bool training;              // save the cache for backward
  const T* x;
  index_t ldx;    // x: [T,N,C], or nullptr with x_index
  const std::int32_t* x_index;  // [T,N] one-hot input as indices in [0, C), or nullptr
  const T* h0;                // [N,H] or nullptr (zeros)
  const T* c0;                // [N,H] or nullptr (LSTM only)
  const T* w_ih;              // [G*H, C]
  const T* w_hh;              // [G*H, H]
  const T* b_ih;              // [G*H] or nullptr
  const T* b_hh;              // [G*H] or nullptr
  T* y;
  index_t ldy;          // [T,N,H] all hidden states
  T* h_n;                     // [N,H]
  T* c_n;                     // [N,H] (LSTM only)
  // cache, written when training (time order):
  T* h_prev;                  // [T,N,H] the state each step started from
  T* c_prev;                  // [T,N,H] LSTM cell state each step started from
  T* gates;                   // [T,N,G*H] activated gates (LSTM i f g o; GRU r z n); unused for RNN
  T* extra;                   // [T,N,H] GRU: hn = W_hn h + b_hn (reset_after) or r*h (reset_before)
  T* work;                    // workspace, recurrent_workspace_size(..., backward=false) elements
  // [N] steps each row runs, in [1, T], or nullptr (all T): row n runs the steps t < lengths[n] (reverse:
  // from its own last step down); its y rows past its end are zero, h_n/c_n its state after its own last
  // step, and the cache past its end is the held state (see cpu/varlen.h)
  const std::int32_t* lengths = nullptr;
  // zoneout on h (LSTM, GRU; rnnfast/zoneout.h): [T,N,H] keep-new mask (training), or nullptr with
  // zoneout_p > 0 for eval's expectation (m = 1 - zoneout_p); neither: no zoneout
  const T* zoneout = nullptr;
  T zoneout_p = T(0);
};

template <typename T>
struct RecurrentBackwardParams {
  Cell cell;
  int steps, batch, input_size, hidden;
  bool reverse;
  const T* x;
  index_t ldx;    // forward input [T,N,C], or nullptr with x_index
  const std::int32_t* x_index;  // [T,N] the forward's one-hot indices, or nullptr
  const T* w_ih;              // [G*H, C]
  const T* w_hh;              // [G*H, H]
  const T* h_prev;            // the forward cache (see above)
  const T* c_prev;
  const T* gates;
  const T* extra;
  const T* dy;
  index_t lddy;  // [T,N,H] gradient on y, or nullptr
  const T* dh_n;              // [N,H] or nullptr
  const T* dc_n;              // [N,H] or nullptr
  T* dx;
  index_t lddx;        // [T,N,C]; written, or added to when accumulate_dx; nullptr: not computed
  bool accumulate_dx;
  T* dh0;                     // [N,H] written
  T* dc0;                     // [N,H] written (LSTM)
  T* dw_ih;                   // parameter gradients, always accumulated (+=)
  T* dw_hh;
  T* db_ih;                   // or nullptr (no bias)
  T* db_hh;
  T* work;                    // workspace, recurrent_workspace_size(..., backward=true) elements
  const std::int32_t* lengths = nullptr;  // [N] the forward's lengths, or nullptr; dx is zero past a row's end
  const T* zoneout = nullptr;  // [T,N,H] the forward's zoneout mask, or nullptr
};

// Elements of workspace a call needs.
index_t recurrent_workspace_size(Cell cell, int steps, int batch, int hidden, bool backward);

template <typename T>
void recurrent_forward_cpu(const RecurrentForwardParams<T>& p);

template <typename T>
void recurrent_backward_cpu(const RecurrentBackwardParams<T>& p);

}  // namespace rnnfast
