// The per-step kernel shared by the CUDA time loops (recurrent.cu, mrnn.cu): a block of 32 output
// units (one per lane, so matrix rows are read coalesced) x 8 warps that each sum an eighth of k, for
// NB batch rows; the partial sums meet in shared memory and each warp finishes one row through an
// epilogue (Epi::apply(args, n, j, sums[GM])) that holds the cell's element-wise math.
//
//   sums[g] of (n, j) = sum_{k<K} V[n*ldv + k] * M[k*ldm + col0 + g*H + j]     (V == nullptr: zeros)
//
// Args: any struct with value_type and the fields N, H (units), V, ldv, M, ldm, col0, K.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "rnnfast/common.h"

// Kernel launches go through this macro so that tests/cuda_emulation can run the kernels on the CPU
// (its cuda_runtime.h defines RNNFAST_LAUNCH to an emulated launch).
#ifndef RNNFAST_LAUNCH
#define RNNFAST_LAUNCH(kernel, grid, block, stream, ...) kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
#endif

namespace rnnfast {
namespace cuda_detail {

inline void cuda_check(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                             "): " + cudaGetErrorString(err));
}
#define RNNFAST_CUDA_CHECK(expr) cuda_check((expr), #expr, __FILE__, __LINE__)

constexpr int kWarps = 8;   // warps per block, each summing a share of k
constexpr int kUnits = 32;  // hidden units per block, one per lane

// ---- the step kernel --------------------------------------------------------------------------------
// Shared memory: kWarps * GM * NB * 32 values (32 KB for float LSTM with NB = 8 and double with NB = 4).
template <typename Args, typename Epi, int NB>
__global__ void __launch_bounds__(kWarps * 32) step_kernel(const Args a) {
  using T = typename Args::value_type;
  constexpr int GM = Epi::GM;
  __shared__ T partial[kWarps][GM * NB][kUnits];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int j = blockIdx.x * kUnits + lane;
  const int n0 = blockIdx.y * NB;
  const bool unit = j < a.H;

  T acc[GM][NB];
#pragma unroll
  for (int g = 0; g < GM; ++g)
#pragma unroll
    for (int i = 0; i < NB; ++i) acc[g][i] = T(0);

  if (a.V != nullptr && unit) {
    const int k0 = int(index_t(a.K) * warp / kWarps), k1 = int(index_t(a.K) * (warp + 1) / kWarps);
    const T* v[NB];
#pragma unroll
    for (int i = 0; i < NB; ++i) v[i] = a.V + index_t(min(n0 + i, a.N - 1)) * a.ldv;  // rows past N: discarded
    const T* m = a.M + a.col0 + j;
#pragma unroll 4
    for (int k = k0; k < k1; ++k) {
      T w[GM];
#pragma unroll
      for (int g = 0; g < GM; ++g) w[g] = m[index_t(k) * a.ldm + index_t(g) * a.H];
#pragma unroll
      for (int i = 0; i < NB; ++i) {
        const T x = v[i][k];  // the same address across the warp: one broadcast load
#pragma unroll
        for (int g = 0; g < GM; ++g) acc[g][i] += w[g] * x;
      }
    }
  }
#pragma unroll
  for (int g = 0; g < GM; ++g)
#pragma unroll
    for (int i = 0; i < NB; ++i) partial[warp][g * NB + i][lane] = acc[g][i];
  __syncthreads();

  for (int i = warp; i < NB; i += kWarps) {
    const int n = n0 + i;
    if (n >= a.N || !unit) continue;
    T hp[GM];
#pragma unroll
    for (int g = 0; g < GM; ++g) {
      T s = T(0);
#pragma unroll
      for (int q = 0; q < kWarps; ++q) s += partial[q][g * NB + i][lane];
      hp[g] = s;
    }
    Epi::apply(a, n, j, hp);
  }
}

// ---- the tiled step kernel (large batches) -------------------------------------------------------
// Same contract and epilogues, another split of the work: a block covers 32 units (one per lane) x all
// GM gates x BR = kWarps * NB batch rows; warp w owns rows n0 + w*NB .. n0 + w*NB + NB - 1 and sums all
// of k itself (no partial sums to meet). kTileK values of k at a time, the block's matrix columns
// (kTileK x GM x 32) and its V rows (BR x kTileK) are staged in shared memory by all threads, so the
// matrix is read from L2 once per BR rows instead of once per NB (the row kernel above) and V once per
// block. Fewer, larger blocks: for batches of 64 and more (see tiled_rows()).
constexpr int kTileK = 32;

template <typename Args, typename Epi, int NB>
__global__ void __launch_bounds__(kWarps * 32) step_kernel_tiled(const Args a) {
  using T = typename Args::value_type;
  constexpr int GM = Epi::GM, BR = kWarps * NB, KC = kTileK;
  __shared__ T ms[KC][GM][kUnits];
  __shared__ T vs[BR][KC];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int j = blockIdx.x * kUnits + lane;
  const int n0 = blockIdx.y * BR;

  T acc[GM][NB];
#pragma unroll
  for (int g = 0; g < GM; ++g)
#pragma unroll
    for (int i = 0; i < NB; ++i) acc[g][i] = T(0);

  if (a.V != nullptr) {  // the same for the whole block: every thread meets every barrier
    for (int kb = 0; kb < a.K; kb += KC) {
      for (int r = warp; r < KC * GM; r += kWarps) {  // a warp stages one (k, gate) row of 32 units
        const int kk = r / GM, g = r % GM, k = kb + kk;
        ms[kk][g][lane] = (k < a.K && j < a.H) ? a.M[index_t(k) * a.ldm + a.col0 + index_t(g) * a.H + j] : T(0);
      }
      for (int r = warp; r < BR; r += kWarps) {  // and V rows, lanes along k
        const int n = n0 + r;
        for (int c = lane; c < KC; c += 32)
          vs[r][c] = (n < a.N && kb + c < a.K) ? a.V[index_t(n) * a.ldv + kb + c] : T(0);
      }
      __syncthreads();
#pragma unroll 8
      for (int kk = 0; kk < KC; ++kk) {  // past K both tiles hold zeros
        T w[GM];
#pragma unroll
        for (int g = 0; g < GM; ++g) w[g] = ms[kk][g][lane];
#pragma unroll
        for (int i = 0; i < NB; ++i) {
          const T x = vs[warp * NB + i][kk];  // one address across the warp: a broadcast
#pragma unroll
          for (int g = 0; g < GM; ++g) acc[g][i] += w[g] * x;
        }
      }
      __syncthreads();
    }
  }
  if (j >= a.H) return;
#pragma unroll
  for (int i = 0; i < NB; ++i) {
    const int n = n0 + warp * NB + i;
    if (n >= a.N) break;
    T hp[GM];
#pragma unroll
    for (int g = 0; g < GM; ++g) hp[g] = acc[g][i];
    Epi::apply(a, n, j, hp);
  }
}

// Which kernel a step uses, for every engine in the process: batches of at least tiled_min_batch() rows
// run the tiled kernel with tiled_rows() rows per block (32 or 64; 0 turns it off). Set through
// rnnfast._core.cuda_set_tiling (benchmarks time both kernels in one process).
inline int& tiled_min_batch() {
  static int value = 64;
  return value;
}
inline int& tiled_rows() {
  static int value = 0;  // off until timed on a GPU (benchmarks/bench_gpu.py --tiling)
  return value;
}

template <typename T>
constexpr int max_rows() {
  return sizeof(T) == 4 ? 8 : 4;
}

// One launch of a step kernel over (units / 32) x (batch / rows) blocks, checked.
template <typename Args>
void launch_blocks(void (*kernel)(Args), const Args& a, int rows, cudaStream_t stream) {
  const dim3 grid((a.H + kUnits - 1) / kUnits, (a.N + rows - 1) / rows);
  if (grid.y > 65535u) throw std::invalid_argument("recurrent CUDA engine: batch too large for one launch");
  RNNFAST_LAUNCH(kernel, grid, kWarps * 32, stream, a);
  RNNFAST_CUDA_CHECK(cudaGetLastError());
}

template <typename T, typename Epi, typename Args>
void launch(const Args& a, cudaStream_t stream) {
  const int rows = tiled_rows();
  if (rows != 0 && a.N >= tiled_min_batch()) {
    // float64 keeps 4 rows per warp (its shared tiles would pass 48 KB at 8)
    if constexpr (sizeof(T) == 4) {
      if (rows == 64) return launch_blocks(&step_kernel_tiled<Args, Epi, 8>, a, kWarps * 8, stream);
    }
    launch_blocks(&step_kernel_tiled<Args, Epi, 4>, a, kWarps * 4, stream);
  } else if (a.N >= max_rows<T>()) {
    launch_blocks(&step_kernel<Args, Epi, max_rows<T>()>, a, max_rows<T>(), stream);
  } else if (a.N > 1) {
    launch_blocks(&step_kernel<Args, Epi, 4>, a, 4, stream);
  } else {
    launch_blocks(&step_kernel<Args, Epi, 1>, a, 1, stream);
  }
}

template <typename T>
inline void copy_or_zero(T* dst, const T* src, index_t n, cudaStream_t stream) {
  if (src) RNNFAST_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(T) * n, cudaMemcpyDeviceToDevice, stream));
  else RNNFAST_CUDA_CHECK(cudaMemsetAsync(dst, 0, sizeof(T) * n, stream));  // all-zero bits are 0.0
}

}  // namespace cuda_detail
}  // namespace rnnfast
