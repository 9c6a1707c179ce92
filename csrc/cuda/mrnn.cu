// The factored multiplicative RNN's time loops on the GPU (equations in rnnfast/recurrent_cuda.h and
// rnnfast/mrnn.h): two launches of the shared step kernel (step_kernel.cuh) per step, forward and
// backward; tanh and its derivative are rnn_unit_* of the shared cell math.
#include <cuda_runtime.h>

#include <utility>

#include "rnnfast/cell_math.h"
#include "rnnfast/recurrent_cuda.h"
#include "step_kernel.cuh"

namespace rnnfast {
namespace {

using namespace cuda_detail;

template <typename T>
struct MrnnArgs {
  using value_type = T;
  int N, H;                   // H: the units of this launch (F or the hidden size)
  int hidden, factors;
  const T* V;
  index_t ldv;
  const T* M;
  index_t ldm;
  int col0, K;
  // forward
  const T* fx;
  const T* xh;
  const T* h_cur;
  T* h_next;
  T* y;
  index_t ldy;
  T* m;                       // [N,F] the factor product of this step
  T* h_prev;
  T* h;
  T* fh;     // cache slices of step t (training) or nullptr
  // backward
  const T* h_t;
  const T* fx_t;
  const T* fh_t;
  const T* dy;
  index_t lddy;
  T* carry;
  T* dA;
  T* dFX;
  T* dFH;
  T* dh0;
};

template <typename T>
struct FactorsForward {  // units = factors: m = fx * (h W_fh^T)
  static constexpr int GM = 1;
  static constexpr const char* name = "FactorsForward";
  __device__ static void apply(const MrnnArgs<T>& a, int n, int f, const T* s) {
    const index_t nf = index_t(n) * a.factors + f;
    a.m[nf] = a.fx[nf] * s[0];
    if (a.fh) a.fh[nf] = s[0];
  }
};

template <typename T>
struct HiddenForward {  // units = hidden: h = tanh(m W_hf^T + xh)
  static constexpr int GM = 1;
  static constexpr const char* name = "HiddenForward";
  __device__ static void apply(const MrnnArgs<T>& a, int n, int j, const T* s) {
    const index_t nh = index_t(n) * a.hidden + j;
    const T h = rnn_unit_forward<T, false>(a.xh[nh], s[0]);
    if (a.h) {
      a.h[nh] = h;
      a.h_prev[nh] = a.h_cur[nh];
    }
    a.h_next[nh] = h;
    a.y[index_t(n) * a.ldy + j] = h;
  }
};

template <typename T>
struct HiddenBackward {  // units = hidden: da = (dFH_next W_fh + carry + dy) tanh'
  static constexpr int GM = 1;
  static constexpr const char* name = "HiddenBackward";
  __device__ static void apply(const MrnnArgs<T>& a, int n, int j, const T* s) {
    const index_t nh = index_t(n) * a.hidden + j;
    const T dh = s[0] + a.carry[nh] + (a.dy ? a.dy[index_t(n) * a.lddy + j] : T(0));
    a.dA[nh] = rnn_unit_backward<T, false>(dh, a.h_t[nh]);
    a.carry[nh] = T(0);
  }
};

template <typename T>
struct FactorsBackward {  // units = factors: dm = da W_hf; dFX = dm fh; dFH = dm fx
  static constexpr int GM = 1;
  static constexpr const char* name = "FactorsBackward";
  __device__ static void apply(const MrnnArgs<T>& a, int n, int f, const T* s) {
    const index_t nf = index_t(n) * a.factors + f;
    a.dFX[nf] = s[0] * a.fh_t[nf];
    a.dFH[nf] = s[0] * a.fx_t[nf];
  }
};

template <typename T>
struct MrnnInitialStateGradient {
  static constexpr int GM = 1;
  static constexpr const char* name = "MrnnInitialStateGradient";
  __device__ static void apply(const MrnnArgs<T>& a, int n, int j, const T* s) {
    const index_t nh = index_t(n) * a.hidden + j;
    a.dh0[nh] = s[0] + a.carry[nh];
  }
};

}  // namespace

index_t cuda_mrnn_workspace_size(int batch, int hidden, int factors, bool backward) {
  const index_t NH = index_t(batch) * hidden, NF = index_t(batch) * factors;
  return backward ? NH : 2 * NH + NF;
}

template <typename T>
void mrnn_forward_cuda(const CudaMrnnForwardParams<T>& p) {
  cudaStream_t stream = static_cast<cudaStream_t>(p.stream);
  const int N = p.batch, H = p.hidden, F = p.factors;
  const index_t NH = index_t(N) * H, NF = index_t(N) * F;
  T* h_a = p.work;
  T* h_b = h_a + NH;
  T* m = h_b + NH;
  copy_or_zero(h_a, p.h0, NH, stream);
  MrnnArgs<T> a{};
  a.N = N;
  a.hidden = H;
  a.factors = F;
  a.col0 = 0;
  a.ldy = p.ldy;
  a.m = m;
  T* cur = h_a;
  T* nxt = h_b;
  LaunchSite site{"mrnn", "forward", p.reverse, 0, p.steps};
  for (int s = 0; s < p.steps; ++s) {
    const int t = p.reverse ? p.steps - 1 - s : s;
    site.step = t;
    a.fx = p.fx + t * NF;
    a.xh = p.xh + t * NH;
    a.h_cur = cur;
    a.h_next = nxt;
    a.y = p.y + index_t(t) * N * p.ldy;
    a.h_prev = p.training ? p.h_prev + t * NH : nullptr;
    a.h = p.training ? p.h + t * NH : nullptr;
    a.fh = p.training ? p.fh + t * NF : nullptr;
    MrnnArgs<T> f = a;  // f_h = h W_fh^T over the F factors
    f.H = F;
    f.V = cur;
    f.ldv = H;
    f.M = p.w_fh_t;
    f.ldm = F;
    f.K = H;
    launch<T, FactorsForward<T>>(f, site, stream);
    MrnnArgs<T> g = a;  // m W_hf^T over the H units
    g.H = H;
    g.V = m;
    g.ldv = F;
    g.M = p.w_hf_t;
    g.ldm = H;
    g.K = F;
    launch<T, HiddenForward<T>>(g, site, stream);
    std::swap(cur, nxt);
  }
  RNNFAST_CUDA_CHECK(cudaMemcpyAsync(p.h_n, cur, sizeof(T) * NH, cudaMemcpyDeviceToDevice, stream));
}

template <typename T>
void mrnn_backward_cuda(const CudaMrnnBackwardParams<T>& p) {
  cudaStream_t stream = static_cast<cudaStream_t>(p.stream);
  const int N = p.batch, H = p.hidden, F = p.factors;
  const index_t NH = index_t(N) * H, NF = index_t(N) * F;
  T* carry = p.work;
  copy_or_zero(carry, p.dh_n, NH, stream);
  MrnnArgs<T> a{};
  a.N = N;
  a.hidden = H;
  a.factors = F;
  a.col0 = 0;
  a.lddy = p.lddy;
  a.carry = carry;
  const T* dfh_next = nullptr;
  LaunchSite site{"mrnn", "backward", p.reverse, 0, p.steps};
  for (int s = p.steps - 1; s >= 0; --s) {
    const int t = p.reverse ? p.steps - 1 - s : s;
    site.step = t;
    a.h_t = p.h + t * NH;
    a.fx_t = p.fx + t * NF;
    a.fh_t = p.fh + t * NF;
    a.dy = p.dy ? p.dy + index_t(t) * N * p.lddy : nullptr;
    a.dA = p.dA + t * NH;
    a.dFX = p.dFX + t * NF;
    a.dFH = p.dFH + t * NF;
    MrnnArgs<T> h = a;  // dh = dFH_next W_fh (+ carry + dy), over the H units
    h.H = H;
    h.V = dfh_next;
    h.ldv = F;
    h.M = p.w_fh;
    h.ldm = H;
    h.K = F;
    launch<T, HiddenBackward<T>>(h, site, stream);
    MrnnArgs<T> f = a;  // dm = da W_hf, over the F factors
    f.H = F;
    f.V = a.dA;
    f.ldv = H;
    f.M = p.w_hf;
    f.ldm = F;
    f.K = H;
    launch<T, FactorsBackward<T>>(f, site, stream);
    dfh_next = a.dFH;
  }
  MrnnArgs<T> h = a;
  h.H = H;
  h.V = dfh_next;
  h.ldv = F;
  h.M = p.w_fh;
  h.ldm = H;
  h.K = F;
  h.dh0 = p.dh0;
  site.step = -1;
  launch<T, MrnnInitialStateGradient<T>>(h, site, stream);
}

template void mrnn_forward_cuda<float>(const CudaMrnnForwardParams<float>&);
template void mrnn_forward_cuda<double>(const CudaMrnnForwardParams<double>&);
template void mrnn_backward_cuda<float>(const CudaMrnnBackwardParams<float>&);
template void mrnn_backward_cuda<double>(const CudaMrnnBackwardParams<double>&);

}  // namespace rnnfast
