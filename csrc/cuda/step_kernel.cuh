// The per-step kernels shared by the CUDA time loops (recurrent.cu, mrnn.cu), and the launch path every
// kernel of the engine takes (checks, the debug mode RNNFAST_CUDA_SYNC, the process-wide kernel choice).
//
//   sums[g] of (n, j) = sum_{k<K} V[n*ldv + k] * M[k*ldm + col0 + g*H + j]     (V == nullptr: zeros)
//
// then Epi::apply(args, n, j, sums) holds the cell's element-wise math of (n, j).
// Args: any struct with value_type and the fields N, H (units), V, ldv, M, ldm, col0, K.
// Epi: GM (the gates summed per unit), name (for error messages) and apply.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
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

// A failed CUDA call. An error of a kernel that ran earlier (an illegal address, say) is sticky and comes
// back from whichever call follows it, so the message says how to find the kernel.
inline void cuda_check(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                             "): " + cudaGetErrorString(err) +
                             " (if a kernel launched earlier failed, RNNFAST_CUDA_SYNC=1 names it and its step)");
}
#define RNNFAST_CUDA_CHECK(expr) cuda_check((expr), #expr, __FILE__, __LINE__)

constexpr int kWarps = 8;   // warps per block, each summing a share of k
constexpr int kUnits = 32;  // lanes of a warp

// ---- the row step kernel ----------------------------------------------------------------------------
// A block of 8 warps covers U * width units x NB batch rows. In a warp, `width` lanes (32, 16 or 8: a
// launch argument) take consecutive units and the 32 / width groups of them ("slices") take shares of k;
// a thread sums U units (width apart, so each load of a slice reads `width` consecutive units,
// coalesced) x GM gates x NB rows. The block's k range is split between the warps, a warp's between its
// slices; the slices meet by shuffles, the warps in shared memory, and then the block's threads finish
// its (unit, row) pairs through the epilogue.
//
// Narrower slices (width 16 or 8) give 2 or 4 times the blocks: for small batches, whose grids have
// fewer blocks than the device has multiprocessors. U > 1 (2 or 4; single-gate launches of several
// batch rows only, e.g. every backward step) stages each slice's V values in shared memory as [k][row],
// so that a thread reads the NB rows of one k as consecutive broadcast loads: per k, U matrix loads and
// NB shared loads for U * NB FMAs, against 1 + NB loads for NB FMAs with U = 1.
//
// Shared memory: kWarps * GM * NB * U * 32 partial sums (32 KB for float LSTM, NB = 8; for double with
// NB = 4; for U = 4 at GM = 1) plus kWarps * 32 * NB staged values when U > 1 (8 KB).
template <typename Args, typename Epi, int NB, int U>
__global__ void __launch_bounds__(kWarps * 32) step_kernel(const Args a, const int width) {
  using T = typename Args::value_type;
  constexpr int GM = Epi::GM;
  constexpr bool kStaged = U > 1;
  static_assert(U == 1 || GM == 1, "several units per thread only for single-gate launches (shared memory)");
  __shared__ T partial[kWarps][GM * NB][U * kUnits];
  __shared__ __align__(16) T staged[kWarps][kStaged ? kUnits * NB : 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int slices = kUnits / width, slice = lane / width, col = lane % width;
  const int units = U * width;                      // of the block
  const int j0 = blockIdx.x * units + col;          // this thread's unit u is j0 + u * width
  const int n0 = blockIdx.y * NB;

  T acc[GM][U][NB];
#pragma unroll
  for (int g = 0; g < GM; ++g)
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int i = 0; i < NB; ++i) acc[g][u][i] = T(0);

  if (a.V != nullptr) {  // the same for the whole grid
    // this warp's share of k, then this slice's: all of length L but the last, so that every lane of a
    // warp runs the same number of staged chunks below
    const int kw0 = int(index_t(a.K) * warp / kWarps), kw1 = int(index_t(a.K) * (warp + 1) / kWarps);
    const int L = (kw1 - kw0 + slices - 1) / slices;
    const int k0 = min(kw0 + slice * L, kw1), k1 = min(k0 + L, kw1);
    const T* v[NB];
#pragma unroll
    for (int i = 0; i < NB; ++i) v[i] = a.V + index_t(min(n0 + i, a.N - 1)) * a.ldv;  // rows past N: discarded
    const T* m = a.M + a.col0 + j0;
    if constexpr (!kStaged) {
      if (j0 < a.H) {
#pragma unroll 4
        for (int k = k0; k < k1; ++k) {
          T w[GM];
#pragma unroll
          for (int g = 0; g < GM; ++g) w[g] = m[index_t(k) * a.ldm + index_t(g) * a.H];
#pragma unroll
          for (int i = 0; i < NB; ++i) {
            const T x = v[i][k];  // the same address across the slice: one broadcast load
#pragma unroll
            for (int g = 0; g < GM; ++g) acc[g][0][i] += w[g] * x;
          }
        }
      }
    } else {
      T* st = staged[warp] + slice * width * NB;  // this slice's [width values of k][NB rows]
      for (int base = 0; base < L; base += width) {
        const int k = k0 + base + col;
#pragma unroll
        for (int i = 0; i < NB; ++i) st[col * NB + i] = k < k1 ? v[i][k] : T(0);  // coalesced along k
        __syncwarp();
        const int kn = min(width, k1 - k0 - base);
        for (int c = 0; c < kn; ++c) {
          const index_t row = index_t(k0 + base + c) * a.ldm;
          T w[U];
#pragma unroll
          for (int u = 0; u < U; ++u) w[u] = j0 + u * width < a.H ? m[row + u * width] : T(0);
#pragma unroll
          for (int i = 0; i < NB; ++i) {
            const T x = st[c * NB + i];  // one address across the slice: a broadcast
#pragma unroll
            for (int u = 0; u < U; ++u) acc[0][u][i] += w[u] * x;
          }
        }
        __syncwarp();  // every lane has read the chunk before the next one overwrites it
      }
    }
  }
  // a unit's slices meet: lanes col, col + width, ... hold its parts (no shuffle at width 32)
  for (int off = kUnits / 2; off >= width; off >>= 1)
#pragma unroll
    for (int g = 0; g < GM; ++g)
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int i = 0; i < NB; ++i) acc[g][u][i] += __shfl_down_sync(0xffffffffu, acc[g][u][i], off);
  if (slice == 0) {
#pragma unroll
    for (int g = 0; g < GM; ++g)
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int i = 0; i < NB; ++i) partial[warp][g * NB + i][u * width + col] = acc[g][u][i];
  }
  __syncthreads();

  for (int o = threadIdx.x; o < units * NB; o += kWarps * 32) {  // (unit, row) pairs, units fastest
    const int uu = o % units, i = o / units;
    const int n = n0 + i, j = blockIdx.x * units + uu;
    if (n >= a.N || j >= a.H) continue;
    T hp[GM];
#pragma unroll
    for (int g = 0; g < GM; ++g) {
      T s = T(0);
#pragma unroll
      for (int q = 0; q < kWarps; ++q) s += partial[q][g * NB + i][uu];
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
// block. Fewer, larger blocks: for large batches (StepConfig below).
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

// ---- which kernel a launch uses: process-wide, set through rnnfast._core (benchmarks time the variants
// in one process; tests run every one) ----------------------------------------------------------------
struct StepConfig {
  int tiled_rows = 0;         // 32 or 64: batches of >= tiled_min_batch rows take the tiled kernel; 0: never
  int tiled_min_batch = 64;
  int width = 32;             // the row kernel's units per slice: 32, 16 or 8 (more blocks)
  int units = 1;              // the row kernel's units per thread in single-gate launches: 1, 2 or 4
};
inline StepConfig& step_config() {  // defaults: the row kernel as first written, until timed on a GPU
  static StepConfig config;
  return config;
}

// Checks after every launch. Off: the launch's own errors (its configuration), at once, which costs
// nothing. On (RNNFAST_CUDA_SYNC=1 in the environment, or rnnfast._core.cuda_set_sync_checks): the stream
// is also synchronised, so an error of the kernel itself (an illegal address, say) is reported by the
// launch that caused it, naming kernel, cell, pass, direction and step, instead of by a later call that
// knows none of them. Slow (a host round trip per launch): for debugging. Skipped while the stream is
// being captured into a CUDA graph (synchronising would end the capture).
inline bool& sync_checks() {
  static bool on = [] {
    const char* e = std::getenv("RNNFAST_CUDA_SYNC");
    return e != nullptr && *e != '\0' && std::string(e) != "0";
  }();
  return on;
}

// What a launch computes, for error messages: "lstm backward, reverse direction, step t=3 of T=5".
struct LaunchSite {
  const char* cell;   // "lstm", "mrnn", "esn reservoir", ...
  const char* pass;   // "forward" or "backward"
  bool reverse;
  int step;           // the time index t; -1: after the last step (the initial-state gradient)
  int steps;
};

struct KernelInfo {   // "step_kernel<LstmBackward>, 8 rows x 1 unit x 32 wide"
  const char* kernel;
  const char* stage;  // the epilogue
  int rows, units, width;
};

// The stream's state with the debug mode on: everything queued on it so far has run without error (a wait
// for it), or the first error; cudaSuccess without the debug mode or while the stream is being captured.
inline cudaError_t synced_error(cudaStream_t stream) {
  if (!sync_checks()) return cudaSuccess;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  const cudaError_t err = cudaStreamIsCapturing(stream, &capture);
  if (err != cudaSuccess || capture != cudaStreamCaptureStatusNone) return err;
  return cudaStreamSynchronize(stream);
}

[[noreturn]] inline void launch_error(const char* when, const KernelInfo& k, dim3 grid, const LaunchSite& s,
                                      cudaError_t err, const char* why) {
  std::string msg = std::string("CUDA error ") + when + " " + k.kernel + "<" + k.stage + "> (grid " +
                    std::to_string(grid.x) + "x" + std::to_string(grid.y);
  if (k.rows > 0)
    msg += "; " + std::to_string(k.rows) + " rows x " + std::to_string(k.units) + " units x " +
           std::to_string(k.width) + " wide per block";
  msg += std::string(") of ") + s.cell + " " + s.pass + ", " + (s.reverse ? "reverse" : "forward") + " direction, " +
         (s.step >= 0 ? "step t=" + std::to_string(s.step) : std::string("after the last step")) +
         " of T=" + std::to_string(s.steps) + ": " + cudaGetErrorString(err) + " (" + why + ")";
  throw std::runtime_error(msg);
}

// One checked launch of `block` threads per block. With the debug mode the stream is drained before the
// launch too, so that an error found after it is this kernel's (an earlier one's is reported as such).
template <typename Kernel, typename... A>
void launch_checked(Kernel kernel, dim3 grid, int block, const KernelInfo& info, const LaunchSite& site,
                    cudaStream_t stream, const A&... args) {
  if (grid.y > 65535u) throw std::invalid_argument("CUDA engine: batch too large for one launch");
  cudaError_t err = synced_error(stream);
  if (err != cudaSuccess)
    launch_error("before", info, grid, site, err, "RNNFAST_CUDA_SYNC: an earlier kernel or call failed, not this one");
  RNNFAST_LAUNCH(kernel, grid, block, stream, args...);
  err = cudaGetLastError();
  if (err != cudaSuccess)
    launch_error("in", info, grid, site, err,
                 sync_checks()
                     ? "RNNFAST_CUDA_SYNC: its launch failed"
                     : "reported at launch; it may come from an earlier kernel: RNNFAST_CUDA_SYNC=1 checks each one");
  err = synced_error(stream);
  if (err != cudaSuccess) launch_error("in", info, grid, site, err, "RNNFAST_CUDA_SYNC: checked after this launch");
}

template <typename T>
constexpr int max_rows() {
  return sizeof(T) == 4 ? 8 : 4;
}

// The row kernel with NB batch rows per block, in the configured width and units per thread.
template <typename T, typename Epi, int NB, typename Args>
void launch_rows(const Args& a, const StepConfig& c, const LaunchSite& site, cudaStream_t stream) {
  const auto go = [&](auto kernel, int units) {
    const dim3 grid((a.H + units * c.width - 1) / (units * c.width), (a.N + NB - 1) / NB);
    launch_checked(kernel, grid, kWarps * 32, KernelInfo{"step_kernel", Epi::name, NB, units, c.width}, site, stream, a,
                   c.width);
  };
  if constexpr (Epi::GM == 1 && NB > 1) {  // one batch row: U > 1 would only mean fewer blocks
    if (c.units == 4) return go(&step_kernel<Args, Epi, NB, 4>, 4);
    if (c.units == 2) return go(&step_kernel<Args, Epi, NB, 2>, 2);
  }
  go(&step_kernel<Args, Epi, NB, 1>, 1);
}

template <typename T, typename Epi, int NB, typename Args>
void launch_tiled(const Args& a, const LaunchSite& site, cudaStream_t stream) {
  const dim3 grid((a.H + kUnits - 1) / kUnits, (a.N + kWarps * NB - 1) / (kWarps * NB));
  launch_checked(&step_kernel_tiled<Args, Epi, NB>, grid, kWarps * 32,
                 KernelInfo{"step_kernel_tiled", Epi::name, kWarps * NB, 1, kUnits}, site, stream, a);
}

// One step's launch for the epilogue Epi, in the kernel the configuration picks for this batch size.
template <typename T, typename Epi, typename Args>
void launch(const Args& a, const LaunchSite& site, cudaStream_t stream) {
  const StepConfig& c = step_config();
  if (c.tiled_rows != 0 && a.N >= c.tiled_min_batch) {
    // float64 keeps 4 rows per warp (its shared tiles would pass 48 KB at 8)
    if constexpr (sizeof(T) == 4) {
      if (c.tiled_rows == 64) return launch_tiled<T, Epi, 8>(a, site, stream);
    }
    return launch_tiled<T, Epi, 4>(a, site, stream);
  }
  if (a.N >= max_rows<T>()) return launch_rows<T, Epi, max_rows<T>()>(a, c, site, stream);
  if (a.N > 1) return launch_rows<T, Epi, 4>(a, c, site, stream);
  launch_rows<T, Epi, 1>(a, c, site, stream);
}

template <typename T>
inline void copy_or_zero(T* dst, const T* src, index_t n, cudaStream_t stream) {
  if (src) RNNFAST_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(T) * n, cudaMemcpyDeviceToDevice, stream));
  else RNNFAST_CUDA_CHECK(cudaMemsetAsync(dst, 0, sizeof(T) * n, stream));  // all-zero bits are 0.0
}

}  // namespace cuda_detail
}  // namespace rnnfast
