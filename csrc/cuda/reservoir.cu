// Echo state network reservoirs on the GPU: the leaky-integrator update of rnnfast/cell_math.h
// (leaky_unit, the same function the CPU loop calls) over a population of reservoirs and a batch of
// sequences, one launch per step on the caller's stream.
//
// A warp owns one row (member p, sequence b, unit i): its lanes stride the row of W (CSR nonzeros, or
// the dense row, read coalesced), gather x_prev, and reduce with shuffles; lane 0 applies the update.
// The input projection W_in u of all steps is one GEMM done by the caller (CuPy).
#include <cuda_runtime.h>

#include "rnnfast/cell_math.h"
#include "rnnfast/recurrent_cuda.h"
#include "step_kernel.cuh"

namespace rnnfast {
namespace {

using namespace cuda_detail;

constexpr int kThreads = 256;

template <typename T, bool Dense>
__global__ void __launch_bounds__(kThreads) reservoir_step(const CudaReservoirParams<T> a, const T* __restrict__ x_prev,
                                                           const T* __restrict__ uproj_t, T* __restrict__ x_next) {
  const index_t row = (index_t(blockIdx.x) * kThreads + threadIdx.x) >> 5;  // the same for the whole warp
  const int lane = threadIdx.x & 31;
  const index_t N = a.units, rows = index_t(a.population) * a.batch * N;
  if (row >= rows) return;
  const int i = int(row % N);
  const index_t pb = row / N;  // member * B + sequence
  const int b = int(pb % a.batch), p = int(pb / a.batch);
  const T* x = x_prev ? x_prev + pb * N : nullptr;
  T s = T(0);
  if (x) {
    if (Dense) {
      const T* w = a.w_dense + index_t(i) * N;
      for (index_t k = lane; k < N; k += 32) s += w[k] * x[k];
    } else {
      const int q1 = a.indptr[i + 1];
      for (int q = a.indptr[i] + lane; q < q1; q += 32) s += a.values[q] * x[a.indices[q]];
    }
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
  if (lane == 0) {
    const T pre = a.sr_scale[p] * s + a.in_scale[p] * uproj_t[index_t(b) * N + i] + (a.bias ? a.bias[i] : T(0));
    x_next[pb * N + i] = leaky_unit(x ? x[i] : T(0), pre, a.leak[index_t(p) * N + i]);
  }
}

}  // namespace

template <typename T>
void reservoir_run_cuda(const CudaReservoirParams<T>& a) {
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  const index_t N = a.units, BN = index_t(a.batch) * N, PBN = index_t(a.population) * BN;
  const index_t blocks = (PBN * 32 + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) throw std::invalid_argument("reservoir CUDA engine: population * batch * units too large");
  const KernelInfo info{"reservoir_step", a.w_dense ? "dense" : "csr", 0, 0, 0};
  LaunchSite site{"esn reservoir", "forward", false, 0, a.steps};
  for (int t = 0; t < a.steps; ++t) {
    const T* x_prev = t == 0 ? a.x0 : a.states + (t - 1) * PBN;
    auto* kernel = a.w_dense ? &reservoir_step<T, true> : &reservoir_step<T, false>;
    site.step = t;
    const T* uproj_t = a.uproj + t * BN;
    T* x_next = a.states + t * PBN;
    launch_checked(kernel, dim3(unsigned(blocks)), kThreads, info, site, stream, a, x_prev, uproj_t, x_next);
  }
}

template void reservoir_run_cuda<float>(const CudaReservoirParams<float>&);
template void reservoir_run_cuda<double>(const CudaReservoirParams<double>&);

}  // namespace rnnfast
