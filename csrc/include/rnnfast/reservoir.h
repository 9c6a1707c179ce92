// Echo state network reservoirs: the boundary struct of the reservoir engine.
//
// Letters: T steps, B sequences in the batch, I inputs, N reservoir units, P population members.
// A population shares one base matrix W (and W_in, b) and differs per member p in the scale of W
// (spectral radius), of W_in u (input scaling) and in the leak rate (per member and unit):
//   pre = sr_scale[p] * (W x_prev) + in_scale[p] * (W_in u_t) + b
//   x   = (1 - leak[p,i]) x_prev + leak[p,i] tanh(pre)
// P = 1 with sr_scale = in_scale = 1 is a single reservoir.
#pragma once

#include <cstdint>

#include "rnnfast/common.h"

namespace rnnfast {

template <typename T>
struct ReservoirParams {
  int steps, batch, inputs, units, population;  // T, B, I, N, P
  const T* u;                 // [T,B,I]
  // W: either dense [N,N] (row-major), or CSR with int32 indptr [N+1], indices [nnz], values [nnz]
  const T* w_dense;
  const std::int32_t* indptr;
  const std::int32_t* indices;
  const T* values;
  const T* w_in;              // [N,I]
  const T* bias;              // [N] or nullptr
  const T* sr_scale;          // [P]
  const T* in_scale;          // [P]
  const T* leak;              // [P,N]
  const T* x0;                // [P,B,N] or nullptr (zeros)
  T* states;                  // [T,P,B,N] every state
  T* x_last;                  // [P,B,N]
};

template <typename T>
void reservoir_run_cpu(const ReservoirParams<T>& p);

}  // namespace rnnfast
