// The CUDA engine's boundary: plain structs of device pointers and sizes (no CUDA types, so the
// bindings compile without CUDA headers). Python (CuPy) owns every array, computes the large GEMMs
// outside the time loop (input projections; dx, dW_ih, dW_hh, biases after backward) and passes its
// current stream; the engine only launches the per-step kernels on that stream. Nothing here
// allocates, synchronises the device or the host, or creates streams: a forward and a backward can be
// captured in a CUDA graph.
//
// Shapes as in recurrent.h (T steps, N batch, H hidden, G gates). "Time order" means index t;
// with reverse=true the layer processes t = T-1 .. 0 and every saved array is still indexed by t.
#pragma once

#include <cstdint>

#include "rnnfast/common.h"

namespace rnnfast {

template <typename T>
struct CudaForwardParams {
  Cell cell;
  int steps, batch, hidden;   // T, N, H
  bool reverse;
  bool training;              // write the cache below
  const T* xp;                // [T,N,G*H] input projections x W_ih^T + b_ih (the caller's GEMM)
  const T* w_hh_t;            // [H,G*H] W_hh transposed (columns of one unit's gates lie H apart)
  const T* b_hh;              // [G*H] or nullptr
  const T* h0;                // [N,H] or nullptr (zeros)
  const T* c0;                // [N,H] or nullptr (LSTM)
  T* y;
  index_t ldy;          // [T,N,H] with rows of ldy elements
  T* h_n;                     // [N,H]
  T* c_n;                     // [N,H] (LSTM)
  T* h_prev;                  // [T,N,H] cache: the state each step started from (training)
  T* c_prev;                  // [T,N,H] LSTM cell state each step started from (training)
  T* gates;                   // [T,N,G*H] activated gates (training; RNN: h itself)
  T* extra;                   // [T,N,H] GRU: hn = W_hn h + b_hn (reset_after) or r*h (Cho) (training)
  T* work;                    // cuda_forward_workspace_size elements
  void* stream;               // cudaStream_t of the caller (CuPy's current stream)
  const std::int32_t* lengths = nullptr;  // [N] (device) variable lengths as in recurrent.h, or nullptr
  const T* zoneout = nullptr;  // [T,N,H] zoneout mask (training), or nullptr (rnnfast/zoneout.h)
  T zoneout_p = T(0);          // without a mask: eval's expectation m = 1 - zoneout_p (0: no zoneout)
};

template <typename T>
struct CudaBackwardParams {
  Cell cell;
  int steps, batch, hidden;
  bool reverse;
  const T* w_hh;              // [G*H,H]
  const T* h_prev;            // the forward cache (see above)
  const T* c_prev;
  const T* gates;
  const T* extra;
  const T* dy;
  index_t lddy;  // [T,N,H] gradient on y, or nullptr
  const T* dh_n;              // [N,H] or nullptr
  const T* dc_n;              // [N,H] or nullptr (LSTM)
  T* dG;                      // [T,N,G*H] out: gradients on the pre-activations, W_ih side
  T* dGh;                     // [T,N,G*H] out: W_hh side; differs from dG only for the GRU
                              //   (reset_after: the n block is dn * r); may equal dG otherwise
  T* dh0;                     // [N,H] out
  T* dc0;                     // [N,H] out (LSTM)
  T* work;                    // cuda_backward_workspace_size elements
  void* stream;
  const std::int32_t* lengths = nullptr;  // [N] (device) the forward's lengths, or nullptr
  const T* zoneout = nullptr;  // [T,N,H] the forward's zoneout mask, or nullptr
};

// Elements of workspace a call needs (the same for float and double).
index_t cuda_forward_workspace_size(Cell cell, int batch, int hidden);
index_t cuda_backward_workspace_size(Cell cell, int batch, int hidden);

// Which step kernel the CUDA time loops use (recurrent and MRNN, process-wide): batches of at least
// min_batch rows run the tiled kernel with `rows` (32 or 64) batch rows per block, the others the row
// kernel; rows = 0 keeps the row kernel everywhere. Throws std::invalid_argument for other values.
void cuda_set_tiling(int rows, int min_batch);
int cuda_tiling_rows();
int cuda_tiling_min_batch();

// The row kernel's shape (process-wide; see csrc/cuda/step_kernel.cuh): `width` units per slice of a warp
// (32, 16 or 8: 1, 2 or 4 times the blocks, for small batches) and `units` per thread in single-gate
// launches such as every backward step (1, 2 or 4; above 1 the batch rows are staged in shared memory).
// Throws std::invalid_argument for other values. Defaults: 32 and 1.
void cuda_set_row_kernel(int width, int units);
int cuda_row_kernel_width();
int cuda_row_kernel_units();

// Debug mode (process-wide; initially on when the environment has RNNFAST_CUDA_SYNC=1): synchronise the
// stream after every launch, so that a kernel's own error is thrown by its launch, naming the kernel, the
// cell, pass, direction and step. Off by default (a host round trip per launch).
void cuda_set_sync_checks(bool on);
bool cuda_sync_checks();

// `count` launches of an empty kernel on `stream` through the engine's launch path: the launch floor
// that benchmarks/bench_gpu.py times.
void cuda_launch_empty(int count, void* stream);

// Launch the time loop on p.stream; returns without waiting. Throws std::runtime_error (file:line and
// the CUDA error string) when a launch or a CUDA call fails.
template <typename T>
void recurrent_forward_cuda(const CudaForwardParams<T>& p);

template <typename T>
void recurrent_backward_cuda(const CudaBackwardParams<T>& p);

}  // namespace rnnfast

namespace rnnfast {

// Echo state network reservoirs on the GPU (letters and equations as rnnfast/reservoir.h):
//   pre = sr_scale[p] * (W x_prev) + in_scale[p] * uproj_t + b,  x = (1 - leak) x_prev + leak tanh(pre)
// The caller computes uproj = u W_in^T for all steps (one GEMM); one launch per step, a warp per
// (member, sequence, unit) row of W.
template <typename T>
struct CudaReservoirParams {
  int steps, batch, units, population;  // T, B, N, P
  const T* w_dense;                     // [N,N] or nullptr (then CSR)
  const std::int32_t* indptr;           // [N+1]
  const std::int32_t* indices;          // [nnz]
  const T* values;                      // [nnz]
  const T* uproj;                       // [T,B,N] W_in u_t (unscaled)
  const T* bias;                        // [N] or nullptr
  const T* sr_scale;                    // [P]
  const T* in_scale;                    // [P]
  const T* leak;                        // [P,N]
  const T* x0;                          // [P,B,N] or nullptr (zeros)
  T* states;                            // [T,P,B,N]
  void* stream;
};

template <typename T>
void reservoir_run_cuda(const CudaReservoirParams<T>& p);

}  // namespace rnnfast

namespace rnnfast {

// The factored multiplicative RNN (rnnfast/mrnn.h) on the GPU. The caller computes, for all steps,
// fx = x W_fx^T [T,N,F] and xh = x W_hx^T + b [T,N,H]; each step runs two fused launches:
//   f_h = h W_fh^T, m = fx * f_h           (units: the F factors)
//   h   = tanh(m W_hf^T + xh)              (units: the H hidden units)
// Backward per step: da = (dy + dFH_next W_fh + carry) * (1 - h^2); dm = da W_hf; dFX = dm fh; dFH = dm fx;
// the caller finishes with the weight GEMMs over all steps (dA: W_hf, W_hx, b; dFX: W_fx; dFH: W_fh).
template <typename T>
struct CudaMrnnForwardParams {
  int steps, batch, hidden, factors;  // T, N, H, F
  bool reverse, training;
  const T* fx;                // [T,N,F]
  const T* xh;                // [T,N,H]
  const T* w_fh_t;            // [H,F]  W_fh transposed
  const T* w_hf_t;            // [F,H]  W_hf transposed
  const T* h0;                // [N,H] or nullptr
  T* y;
  index_t ldy;          // [T,N,H] rows of ldy
  T* h_n;                     // [N,H]
  T* h_prev;                  // [T,N,H] cache (training)
  T* h;                       // [T,N,H] cache (training)
  T* fh;                      // [T,N,F] cache (training)
  T* work;                    // cuda_mrnn_workspace_size(..., false)
  void* stream;
};

template <typename T>
struct CudaMrnnBackwardParams {
  int steps, batch, hidden, factors;
  bool reverse;
  const T* w_fh;              // [F,H]
  const T* w_hf;              // [H,F]
  const T* h;                 // [T,N,H] forward cache
  const T* fx;                // [T,N,F]
  const T* fh;                // [T,N,F]
  const T* dy;
  index_t lddy;  // [T,N,H] or nullptr
  const T* dh_n;              // [N,H] or nullptr
  T* dA;                      // [T,N,H] out: gradient on the pre-activation a
  T* dFX;                     // [T,N,F] out
  T* dFH;                     // [T,N,F] out
  T* dh0;                     // [N,H] out
  T* work;                    // cuda_mrnn_workspace_size(..., true)
  void* stream;
};

index_t cuda_mrnn_workspace_size(int batch, int hidden, int factors, bool backward);

template <typename T>
void mrnn_forward_cuda(const CudaMrnnForwardParams<T>& p);

template <typename T>
void mrnn_backward_cuda(const CudaMrnnBackwardParams<T>& p);

}  // namespace rnnfast
