// The CUDA engine's time loops: vanilla RNN (tanh, relu), LSTM and GRU (both forms), forward and BPTT.
//
// Python computes the large GEMMs outside the loop (rnnfast/_cuda.py). Here, one launch per step fuses
// the recurrent product with the cell's element-wise math (rnnfast/cell_math.h, shared with the CPU):
//
//   forward   hp[n, g*H+j] = sum_k h[n,k] W_hh[g*H+j, k]        (all G gates of unit j in one thread)
//             then h, c, gates of (n, j) from xp + hp            (Cho GRU: r,z first; n after r*h)
//   backward  dh[n, j] = sum_k dGh_next[n,k] W_hh[k, j] + carry + dy
//             then the gate gradients dG of (n, j)               (Cho GRU: drh = dn W_hn after)
//
// Block = 32 hidden units (one per lane, so the matrix rows are read coalesced) x 8 warps that each sum
// an eighth of k; partial sums meet in shared memory and each warp finishes one batch row. A block
// owns NB batch rows, so the matrix is read once per NB rows (NB = 8 float, 4 double; 1 for N = 1).
// That is the default shape; step_kernel.cuh has the variants (narrower slices, several units per
// thread, the tiled kernel) and the switch between them.
// The matrix is laid out so one unit's gates are columns H apart: the caller passes W_hh^T [H, G*H]
// for forward and W_hh [G*H, H] for backward.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "rnnfast/cell_math.h"
#include "rnnfast/recurrent_cuda.h"
#include "rnnfast/zoneout.h"
#include "step_kernel.cuh"

namespace rnnfast {
namespace {

using namespace cuda_detail;

// Everything one step's kernel reads and writes, with the per-step slices already offset to step t.
template <typename T>
struct StepArgs {
  using value_type = T;
  int N, H, GH;  // H: the units a launch covers (one per lane) and the distance between a unit's gates
  // the product: out[n][g] = sum_{k<K} V[n*ldv + k] * M[k*ldm + col0 + g*H + j]; V == nullptr gives 0
  const T* V;
  index_t ldv;
  const T* M;
  index_t ldm;
  int col0, K;
  // forward
  const T* xp;                  // [N,GH] this step's input projections
  const T* b;                   // [GH] b_hh or nullptr
  const T* h_cur;               // [N,H] state before the step
  T* h_next;                    // [N,H] state after it
  T* c_run;                     // [N,H] LSTM cell state, updated in place
  T* y;
  index_t ldy;            // this step's output rows
  // the cache (forward writes it when training; backward reads it)
  T* h_prev;                    // [N,H]
  T* c_prev;                    // [N,H]
  T* gates;                     // [N,GH]
  T* extra;                     // [N,H]
  // backward
  const T* dy;
  index_t lddy;    // this step's gradient on y, or nullptr
  T* carry;                     // [N,H] gradient on h not through W_hh (dh_n first; GRU: dh z, Cho: + drh r)
  T* dc_run;                    // [N,H] LSTM gradient on c, updated in place
  T* dG;                        // [N,GH] W_ih-side gate gradients of this step
  T* dGh;                       // [N,GH] W_hh-side gate gradients of this step
  T* dh0;                       // [N,H] the final kernel's output
  // variable lengths (rnnfast/recurrent.h): row n runs step t only when lengths[n] > t (nullptr: all rows)
  const std::int32_t* lengths;
  int t;
  // zoneout (rnnfast/zoneout.h): this step's [N,H] keep-new mask, or (zo_mask == nullptr) the constant zo_m
  bool zoneout;
  const T* zo_mask;
  T zo_m;
};

template <typename T>
__device__ __forceinline__ bool row_active(const StepArgs<T>& a, int n) {
  return a.lengths == nullptr || a.lengths[n] > a.t;
}

template <typename T>
__device__ __forceinline__ T zoneout_weight(const StepArgs<T>& a, index_t nh) {
  return a.zo_mask ? a.zo_mask[nh] : a.zo_m;
}

// A row past its end (forward): its state held, zero output; the cache holds the held state (finite: the
// GEMMs after backward run over all rows, where this row's gate gradients are zero)
template <typename T>
__device__ __forceinline__ void forward_inactive(const StepArgs<T>& a, int n, int j) {
  const index_t nh = index_t(n) * a.H + j;
  const T h = a.h_cur[nh];
  a.h_next[nh] = h;
  a.y[index_t(n) * a.ldy + j] = T(0);
  if (a.h_prev) a.h_prev[nh] = h;
  if (a.c_prev) a.c_prev[nh] = a.c_run[nh];
  if (a.extra) a.extra[nh] = T(0);
}

// A row past its end (backward): the gradient on h carried on whole (its dy ignored), zero gate gradients
template <typename T>
__device__ __forceinline__ void backward_inactive(const StepArgs<T>& a, int n, int j, T rec) {
  const index_t nh = index_t(n) * a.H + j, ng = index_t(n) * a.GH + j;
  a.carry[nh] += rec;
  for (int g = 0; g < a.GH / a.H; ++g) {
    a.dG[ng + g * a.H] = T(0);
    a.dGh[ng + g * a.H] = T(0);
  }
}

// ---- epilogues: the element-wise math of one (n, j), given the finished sums hp[GM] ------------------
template <typename T, bool Relu>
struct RnnForward {
  static constexpr int GM = 1;
  static constexpr const char* name = "RnnForward";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    if (!row_active(a, n)) return forward_inactive(a, n, j);
    const index_t nh = index_t(n) * a.H + j, ng = index_t(n) * a.GH + j;
    const T h = rnn_unit_forward<T, Relu>(a.xp[ng], hp[0] + (a.b ? a.b[j] : T(0)));
    if (a.h_prev) a.h_prev[nh] = a.h_cur[nh];
    if (a.gates) a.gates[ng] = h;
    a.h_next[nh] = h;
    a.y[index_t(n) * a.ldy + j] = h;
  }
};

template <typename T>
struct LstmForward {
  static constexpr int GM = 4;
  static constexpr const char* name = "LstmForward";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    if (!row_active(a, n)) return forward_inactive(a, n, j);
    const int H = a.H;
    const index_t nh = index_t(n) * H + j, ng = index_t(n) * a.GH + j;
    T pre[4];
#pragma unroll
    for (int g = 0; g < 4; ++g) pre[g] = a.xp[ng + g * H] + hp[g] + (a.b ? a.b[g * H + j] : T(0));
    const T c_prev = a.c_run[nh];
    T i, f, gg, o, c, h;
    lstm_unit_forward(pre[0], pre[1], pre[2], pre[3], c_prev, i, f, gg, o, c, h);
    if (a.zoneout) h = zoneout_forward(a.h_cur[nh], h, zoneout_weight(a, nh));
    if (a.gates) {
      a.gates[ng] = i;
      a.gates[ng + H] = f;
      a.gates[ng + 2 * H] = gg;
      a.gates[ng + 3 * H] = o;
      a.h_prev[nh] = a.h_cur[nh];
      a.c_prev[nh] = c_prev;
    }
    a.c_run[nh] = c;
    a.h_next[nh] = h;
    a.y[index_t(n) * a.ldy + j] = h;
  }
};

template <typename T>
struct GruForward {  // reset_after: n = tanh(xn + r * (W_hn h + b_hn))
  static constexpr int GM = 3;
  static constexpr const char* name = "GruForward";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    if (!row_active(a, n)) return forward_inactive(a, n, j);
    const int H = a.H;
    const index_t nh = index_t(n) * H + j, ng = index_t(n) * a.GH + j;
    const T hr = hp[0] + (a.b ? a.b[j] : T(0));
    const T hz = hp[1] + (a.b ? a.b[H + j] : T(0));
    const T hn = hp[2] + (a.b ? a.b[2 * H + j] : T(0));
    const T h_prev = a.h_cur[nh];
    T r, z, nn, h;
    gru_unit_forward(a.xp[ng], a.xp[ng + H], a.xp[ng + 2 * H], hr, hz, hn, h_prev, r, z, nn, h);
    if (a.zoneout) h = zoneout_forward(h_prev, h, zoneout_weight(a, nh));
    if (a.gates) {
      a.gates[ng] = r;
      a.gates[ng + H] = z;
      a.gates[ng + 2 * H] = nn;
      a.extra[nh] = hn;
      a.h_prev[nh] = h_prev;
    }
    a.h_next[nh] = h;
    a.y[index_t(n) * a.ldy + j] = h;
  }
};

template <typename T>
struct GruChoForwardRZ {  // stage 1: r, z and r*h (the n rows' input); gates/extra are never null here
  static constexpr int GM = 2;
  static constexpr const char* name = "GruChoForwardRZ";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    if (!row_active(a, n)) return forward_inactive(a, n, j);
    const int H = a.H;
    const index_t nh = index_t(n) * H + j, ng = index_t(n) * a.GH + j;
    const T r = gru_unit_gate(a.xp[ng], hp[0] + (a.b ? a.b[j] : T(0)));
    const T z = gru_unit_gate(a.xp[ng + H], hp[1] + (a.b ? a.b[H + j] : T(0)));
    const T h_prev = a.h_cur[nh];
    a.gates[ng] = r;
    a.gates[ng + H] = z;
    a.extra[nh] = r * h_prev;
    if (a.h_prev) a.h_prev[nh] = h_prev;
  }
};

template <typename T>
struct GruChoForwardN {  // stage 2: n = tanh(xn + W_hn (r*h) + b_hn), then h
  static constexpr int GM = 1;
  static constexpr const char* name = "GruChoForwardN";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    if (!row_active(a, n)) return forward_inactive(a, n, j);
    const int H = a.H;
    const index_t nh = index_t(n) * H + j, ng = index_t(n) * a.GH + j;
    const T nn = gru_unit_n_before(a.xp[ng + 2 * H], hp[0] + (a.b ? a.b[2 * H + j] : T(0)));
    T h = gru_unit_output(a.gates[ng + H], nn, a.h_cur[nh]);
    if (a.zoneout) h = zoneout_forward(a.h_cur[nh], h, zoneout_weight(a, nh));
    a.gates[ng + 2 * H] = nn;
    a.h_next[nh] = h;
    a.y[index_t(n) * a.ldy + j] = h;
  }
};

// Backward: the total gradient on this step's output h; with zoneout, the share that reaches the cell's
// new value (the rest, zo_carry, goes straight to h_{t-1})
template <typename T>
__device__ __forceinline__ T total_dh(const StepArgs<T>& a, int n, index_t nh, int j, T rec, T& zo_carry) {
  const T dh = rec + a.carry[nh] + (a.dy ? a.dy[index_t(n) * a.lddy + j] : T(0));
  zo_carry = T(0);
  return a.zoneout ? zoneout_backward(dh, zoneout_weight(a, nh), zo_carry) : dh;
}

template <typename T, bool Relu>
struct RnnBackward {
  static constexpr int GM = 1;
  static constexpr const char* name = "RnnBackward";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    if (!row_active(a, n)) return backward_inactive(a, n, j, hp[0]);
    const index_t nh = index_t(n) * a.H + j, ng = index_t(n) * a.GH + j;
    T zo_carry;
    const T dh = total_dh(a, n, nh, j, hp[0], zo_carry);
    a.dG[ng] = rnn_unit_backward<T, Relu>(dh, a.gates[ng]);
    a.carry[nh] = zo_carry;
  }
};

template <typename T>
struct LstmBackward {
  static constexpr int GM = 1;
  static constexpr const char* name = "LstmBackward";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    if (!row_active(a, n)) return backward_inactive(a, n, j, hp[0]);
    const int H = a.H;
    const index_t nh = index_t(n) * H + j, ng = index_t(n) * a.GH + j;
    T zo_carry;
    const T dh = total_dh(a, n, nh, j, hp[0], zo_carry);
    T di, df, dg, d_o;
    const T dc_prev = lstm_unit_backward(dh, a.dc_run[nh], a.gates[ng], a.gates[ng + H], a.gates[ng + 2 * H],
                                         a.gates[ng + 3 * H], a.c_prev[nh], di, df, dg, d_o);
    a.dG[ng] = di;
    a.dG[ng + H] = df;
    a.dG[ng + 2 * H] = dg;
    a.dG[ng + 3 * H] = d_o;
    a.dc_run[nh] = dc_prev;
    a.carry[nh] = zo_carry;
  }
};

template <typename T>
struct GruBackward {  // reset_after; dGh's n block is dn * r (it multiplies W_hn h + b_hn)
  static constexpr int GM = 1;
  static constexpr const char* name = "GruBackward";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    if (!row_active(a, n)) return backward_inactive(a, n, j, hp[0]);
    const int H = a.H;
    const index_t nh = index_t(n) * H + j, ng = index_t(n) * a.GH + j;
    T zo_carry;
    const T dh = total_dh(a, n, nh, j, hp[0], zo_carry);
    const T r = a.gates[ng], z = a.gates[ng + H], nn = a.gates[ng + 2 * H];
    T dz, direct;
    const T dn = gru_unit_backward_n(dh, z, nn, a.h_prev[nh], dz, direct);
    const T dr = gru_unit_backward_r_after(dn, r, a.extra[nh]);
    a.dG[ng] = dr;
    a.dG[ng + H] = dz;
    a.dG[ng + 2 * H] = dn;
    a.dGh[ng] = dr;
    a.dGh[ng + H] = dz;
    a.dGh[ng + 2 * H] = dn * r;
    a.carry[nh] = direct + zo_carry;
  }
};

template <typename T>
struct GruChoBackwardZN {  // stage 1: z, n gradients and the direct share dh z
  static constexpr int GM = 1;
  static constexpr const char* name = "GruChoBackwardZN";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    if (!row_active(a, n)) return backward_inactive(a, n, j, hp[0]);
    const int H = a.H;
    const index_t nh = index_t(n) * H + j, ng = index_t(n) * a.GH + j;
    T zo_carry;
    const T dh = total_dh(a, n, nh, j, hp[0], zo_carry);
    T dz, direct;
    a.dG[ng + 2 * H] = gru_unit_backward_n(dh, a.gates[ng + H], a.gates[ng + 2 * H], a.h_prev[nh], dz, direct);
    a.dG[ng + H] = dz;
    a.carry[nh] = direct + zo_carry;
  }
};

template <typename T>
struct GruChoBackwardR {  // stage 2: drh = dn W_hn, then r's gradient and r*h's share of dh_prev
  static constexpr int GM = 1;
  static constexpr const char* name = "GruChoBackwardR";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    const index_t nh = index_t(n) * a.H + j, ng = index_t(n) * a.GH + j;
    if (!row_active(a, n)) {  // stage 1 carried dh on whole and zeroed the other gates
      a.dG[ng] = T(0);
      return;
    }
    const T r = a.gates[ng];
    a.dG[ng] = gru_unit_backward_r_before(hp[0], r, a.h_prev[nh]);
    a.carry[nh] += hp[0] * r;
  }
};

template <typename T>
struct InitialStateGradient {  // after the last step: dh0 = dGh_first W_hh + carry
  static constexpr int GM = 1;
  static constexpr const char* name = "InitialStateGradient";
  __device__ static void apply(const StepArgs<T>& a, int n, int j, const T* hp) {
    const index_t nh = index_t(n) * a.H + j;
    a.dh0[nh] = hp[0] + a.carry[nh];
  }
};

constexpr const char* cell_name(Cell K) { return kCellNames[int(K)]; }

template <typename T, Cell K>
void forward_loop(const CudaForwardParams<T>& p) {
  cudaStream_t stream = static_cast<cudaStream_t>(p.stream);
  const int Ts = p.steps, N = p.batch, H = p.hidden, G = gates_of(K), GH = G * H;
  const index_t NH = index_t(N) * H, NGH = index_t(N) * GH;
  T* h_a = p.work;                  // [N,H] ping
  T* h_b = h_a + NH;                // [N,H] pong
  T* c_run = h_b + NH;              // [N,H]
  T* gate_scratch = c_run + NH;     // [N,GH] Cho GRU gates when not training
  T* extra_scratch = gate_scratch + NGH;  // [N,H] Cho GRU r*h when not training
  copy_or_zero(h_a, p.h0, NH, stream);
  if (K == Cell::Lstm) copy_or_zero(c_run, p.c0, NH, stream);

  StepArgs<T> a{};
  a.N = N;
  a.H = H;
  a.GH = GH;
  a.M = p.w_hh_t;
  a.ldm = GH;
  a.col0 = 0;
  a.ldv = H;
  a.K = H;
  a.b = p.b_hh;
  a.ldy = p.ldy;
  a.c_run = c_run;
  a.lengths = p.lengths;
  a.zoneout = p.zoneout != nullptr || p.zoneout_p != T(0);
  a.zo_m = T(1) - p.zoneout_p;
  T* cur = h_a;
  T* nxt = h_b;
  LaunchSite site{cell_name(K), "forward", p.reverse, 0, Ts};
  for (int s = 0; s < Ts; ++s) {
    const int t = p.reverse ? Ts - 1 - s : s;
    site.step = t;
    a.t = t;
    a.zo_mask = p.zoneout ? p.zoneout + t * NH : nullptr;
    a.xp = p.xp + t * NGH;
    a.V = cur;
    a.h_cur = cur;
    a.h_next = nxt;
    a.y = p.y + index_t(t) * N * p.ldy;
    a.h_prev = p.training ? p.h_prev + t * NH : nullptr;
    a.c_prev = p.training && K == Cell::Lstm ? p.c_prev + t * NH : nullptr;
    a.gates = p.training ? p.gates + t * NGH : (K == Cell::GruCho ? gate_scratch : nullptr);
    a.extra = p.training && G == 3 ? p.extra + t * NH : (K == Cell::GruCho ? extra_scratch : nullptr);
    if constexpr (K == Cell::RnnTanh) launch<T, RnnForward<T, false>>(a, site, stream);
    else if constexpr (K == Cell::RnnRelu) launch<T, RnnForward<T, true>>(a, site, stream);
    else if constexpr (K == Cell::Lstm) launch<T, LstmForward<T>>(a, site, stream);
    else if constexpr (K == Cell::Gru) launch<T, GruForward<T>>(a, site, stream);
    else {
      launch<T, GruChoForwardRZ<T>>(a, site, stream);
      StepArgs<T> b = a;  // hn' = W_hn (r*h): the n columns of W_hh^T against r*h
      b.V = a.extra;
      b.col0 = 2 * H;
      launch<T, GruChoForwardN<T>>(b, site, stream);
    }
    std::swap(cur, nxt);
  }
  RNNFAST_CUDA_CHECK(cudaMemcpyAsync(p.h_n, cur, sizeof(T) * NH, cudaMemcpyDeviceToDevice, stream));
  if (K == Cell::Lstm)
    RNNFAST_CUDA_CHECK(cudaMemcpyAsync(p.c_n, c_run, sizeof(T) * NH, cudaMemcpyDeviceToDevice, stream));
}

template <typename T, Cell K>
void backward_loop(const CudaBackwardParams<T>& p) {
  cudaStream_t stream = static_cast<cudaStream_t>(p.stream);
  const int Ts = p.steps, N = p.batch, H = p.hidden, G = gates_of(K), GH = G * H;
  const index_t NH = index_t(N) * H, NGH = index_t(N) * GH;
  T* carry = p.work;        // [N,H]
  T* dc_run = carry + NH;   // [N,H]
  copy_or_zero(carry, p.dh_n, NH, stream);
  if (K == Cell::Lstm) copy_or_zero(dc_run, p.dc_n, NH, stream);

  StepArgs<T> a{};
  a.N = N;
  a.H = H;
  a.GH = GH;
  a.M = p.w_hh;
  a.ldm = H;
  a.col0 = 0;
  a.ldv = GH;
  a.K = K == Cell::GruCho ? 2 * H : GH;  // the Cho GRU's n rows act on r*h: handled by stage 2
  a.lddy = p.lddy;
  a.carry = carry;
  a.dc_run = dc_run;
  a.lengths = p.lengths;
  a.zoneout = p.zoneout != nullptr;
  const T* v_next = nullptr;  // dGh of the step processed before this one (later in the direction)
  LaunchSite site{cell_name(K), "backward", p.reverse, 0, Ts};
  for (int s = Ts - 1; s >= 0; --s) {
    const int t = p.reverse ? Ts - 1 - s : s;
    site.step = t;
    a.t = t;
    a.zo_mask = p.zoneout ? p.zoneout + t * NH : nullptr;
    a.V = v_next;
    a.gates = const_cast<T*>(p.gates + t * NGH);
    a.h_prev = const_cast<T*>(p.h_prev + t * NH);
    a.c_prev = K == Cell::Lstm ? const_cast<T*>(p.c_prev + t * NH) : nullptr;
    a.extra = G == 3 ? const_cast<T*>(p.extra + t * NH) : nullptr;
    a.dy = p.dy ? p.dy + index_t(t) * N * p.lddy : nullptr;
    a.dG = p.dG + t * NGH;
    a.dGh = p.dGh + t * NGH;
    if constexpr (K == Cell::RnnTanh) launch<T, RnnBackward<T, false>>(a, site, stream);
    else if constexpr (K == Cell::RnnRelu) launch<T, RnnBackward<T, true>>(a, site, stream);
    else if constexpr (K == Cell::Lstm) launch<T, LstmBackward<T>>(a, site, stream);
    else if constexpr (K == Cell::Gru) launch<T, GruBackward<T>>(a, site, stream);
    else {
      launch<T, GruChoBackwardZN<T>>(a, site, stream);
      StepArgs<T> b = a;  // drh = dn W_hn: the n block of this step's dG against W_hh's n rows
      b.V = a.dG + 2 * H;
      b.M = p.w_hh + index_t(2) * H * H;
      b.K = H;
      launch<T, GruChoBackwardR<T>>(b, site, stream);
    }
    v_next = K == Cell::Gru ? a.dGh : a.dG;
  }
  a.V = v_next;
  a.dh0 = p.dh0;
  site.step = -1;
  launch<T, InitialStateGradient<T>>(a, site, stream);
  if (K == Cell::Lstm)
    RNNFAST_CUDA_CHECK(cudaMemcpyAsync(p.dc0, dc_run, sizeof(T) * NH, cudaMemcpyDeviceToDevice, stream));
}

}  // namespace

using cuda_detail::KernelInfo;
using cuda_detail::kUnits;
using cuda_detail::launch_checked;
using cuda_detail::LaunchSite;
using cuda_detail::step_config;
using cuda_detail::sync_checks;

void cuda_set_tiling(int rows, int min_batch) {
  if (rows != 0 && rows != 32 && rows != 64) throw std::invalid_argument("cuda tiling: rows must be 0, 32 or 64");
  if (min_batch < 1) throw std::invalid_argument("cuda tiling: min_batch must be >= 1");
  step_config().tiled_rows = rows;
  step_config().tiled_min_batch = min_batch;
}

int cuda_tiling_rows() { return step_config().tiled_rows; }
int cuda_tiling_min_batch() { return step_config().tiled_min_batch; }

void cuda_set_row_kernel(int width, int units) {
  if (width != 32 && width != 16 && width != 8)
    throw std::invalid_argument("cuda row kernel: width must be 32, 16 or 8");
  if (units != 1 && units != 2 && units != 4) throw std::invalid_argument("cuda row kernel: units must be 1, 2 or 4");
  step_config().width = width;
  step_config().units = units;
}

int cuda_row_kernel_width() { return step_config().width; }
int cuda_row_kernel_units() { return step_config().units; }

void cuda_set_sync_checks(bool on) { sync_checks() = on; }
bool cuda_sync_checks() { return sync_checks(); }

// The launch floor: `count` launches of an empty kernel through the engine's launch path (checked, on the
// caller's stream), for benchmarks/bench_gpu.py to time against a step.
namespace {
__global__ void empty_kernel(int) {}
}  // namespace

void cuda_launch_empty(int count, void* stream) {
  const LaunchSite site{"empty", "forward", false, 0, count};
  for (int i = 0; i < count; ++i)
    launch_checked(&empty_kernel, dim3(1), kUnits, KernelInfo{"empty_kernel", "none", 0, 0, 0}, site,
                   static_cast<cudaStream_t>(stream), i);
}

index_t cuda_forward_workspace_size(Cell cell, int batch, int hidden) {
  const index_t NH = index_t(batch) * hidden;
  return 4 * NH + NH * gates_of(cell);
}

index_t cuda_backward_workspace_size(Cell, int batch, int hidden) { return 2 * index_t(batch) * hidden; }

template <typename T>
void recurrent_forward_cuda(const CudaForwardParams<T>& p) {
  switch (p.cell) {
    case Cell::RnnTanh: return forward_loop<T, Cell::RnnTanh>(p);
    case Cell::RnnRelu: return forward_loop<T, Cell::RnnRelu>(p);
    case Cell::Lstm: return forward_loop<T, Cell::Lstm>(p);
    case Cell::Gru: return forward_loop<T, Cell::Gru>(p);
    case Cell::GruCho: return forward_loop<T, Cell::GruCho>(p);
  }
  throw std::invalid_argument("recurrent_forward_cuda: unknown cell");
}

template <typename T>
void recurrent_backward_cuda(const CudaBackwardParams<T>& p) {
  switch (p.cell) {
    case Cell::RnnTanh: return backward_loop<T, Cell::RnnTanh>(p);
    case Cell::RnnRelu: return backward_loop<T, Cell::RnnRelu>(p);
    case Cell::Lstm: return backward_loop<T, Cell::Lstm>(p);
    case Cell::Gru: return backward_loop<T, Cell::Gru>(p);
    case Cell::GruCho: return backward_loop<T, Cell::GruCho>(p);
  }
  throw std::invalid_argument("recurrent_backward_cuda: unknown cell");
}

template void recurrent_forward_cuda<float>(const CudaForwardParams<float>&);
template void recurrent_forward_cuda<double>(const CudaForwardParams<double>&);
template void recurrent_backward_cuda<float>(const CudaBackwardParams<float>&);
template void recurrent_backward_cuda<double>(const CudaBackwardParams<double>&);

}  // namespace rnnfast
