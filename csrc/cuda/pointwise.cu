// Per-step pointwise kernels built from the shared cell math (rnnfast/cell_math.h): the first CUDA
// users of that header, compiled in every build with nvcc so a host-only construct in the header fails
// CI at once. The fused recurrent kernels and their bindings (issue: CUDA engine) build on these.
//
// Layout as the CPU engine: pre-activations xp, hp: [N, G*H] (gate blocks of H), states [N, H].
#include <cuda_runtime.h>

#include "rnnfast/cell_math.h"

namespace rnnfast {

template <typename T>
__global__ void lstm_pointwise_forward(int N, int H, const T* __restrict__ xp, const T* __restrict__ hp,
                                       T* __restrict__ c, T* __restrict__ h, T* __restrict__ gates) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= N * H) return;
  const int n = idx / H, j = idx % H;
  const T* xr = xp + n * 4 * H;
  const T* hr = hp + n * 4 * H;
  T* g = gates + n * 4 * H;
  T cn, hn;
  lstm_unit_forward(xr[j] + hr[j], xr[H + j] + hr[H + j], xr[2 * H + j] + hr[2 * H + j], xr[3 * H + j] + hr[3 * H + j],
                    c[idx], g[j], g[H + j], g[2 * H + j], g[3 * H + j], cn, hn);
  c[idx] = cn;
  h[idx] = hn;
}

template <typename T>
__global__ void gru_pointwise_forward(int N, int H, const T* __restrict__ xp, const T* __restrict__ hp,
                                      T* __restrict__ h) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= N * H) return;
  const int n = idx / H, j = idx % H;
  const T* xr = xp + n * 3 * H;
  const T* hr = hp + n * 3 * H;
  const T r = act_sigmoid(xr[j] + hr[j]);
  const T z = act_sigmoid(xr[H + j] + hr[H + j]);
  const T nn = act_tanh(xr[2 * H + j] + r * hr[2 * H + j]);
  h[idx] = gru_unit_output(z, nn, h[idx]);
}

template <typename T, bool Relu>
__global__ void rnn_pointwise_forward(int N, int H, const T* __restrict__ xp, const T* __restrict__ hp,
                                      T* __restrict__ h) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= N * H) return;
  h[idx] = rnn_unit_forward<T, Relu>(xp[idx], hp[idx]);
}

template __global__ void lstm_pointwise_forward<float>(int, int, const float*, const float*, float*, float*, float*);
template __global__ void lstm_pointwise_forward<double>(int, int, const double*, const double*, double*, double*,
                                                        double*);
template __global__ void gru_pointwise_forward<float>(int, int, const float*, const float*, float*);
template __global__ void gru_pointwise_forward<double>(int, int, const double*, const double*, double*);
template __global__ void rnn_pointwise_forward<float, false>(int, int, const float*, const float*, float*);
template __global__ void rnn_pointwise_forward<float, true>(int, int, const float*, const float*, float*);
template __global__ void rnn_pointwise_forward<double, false>(int, int, const double*, const double*, double*);
template __global__ void rnn_pointwise_forward<double, true>(int, int, const double*, const double*, double*);

}  // namespace rnnfast
