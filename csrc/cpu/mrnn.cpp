// The CPU engine's time loops for the factored multiplicative RNN (equations in rnnfast/mrnn.h).
// Outside the loop: the input side f_x = x W_fx^T and x W_hx^T + b of all steps (two large GEMMs) and,
// in backward, dx and the four weight gradients. Inside, per step: f_h = h W_fh^T, m = f_x * f_h,
// a += m W_hf^T, h = tanh(a) (forward); da, dm = da W_hf, df_x / df_h, dh_prev = df_h W_fh (backward).
// The loops run on the skeleton of time_loop.h, the threads meeting between the phases of a step.
#include <algorithm>
#include <cstring>
#include <utility>

#include "rnnfast/cell_math.h"
#include "rnnfast/mrnn.h"
#include "rnnfast/parallel.h"

#include "blas.h"
#include "loop_util.h"
#include "small_gemm.h"
#include "time_loop.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

using namespace loop;

// ---- one batch row of an element-wise phase (never inlined, restrict pointers: see recurrent.cpp) ----
#define RNNFAST_ROW_FN __attribute__((noinline))

// m = f_x * f_h (also used after backward's loop over all T*N rows at once)
template <typename T>
RNNFAST_ROW_FN void factor_row(index_t F, const T* __restrict fx, const T* __restrict fh, T* __restrict m) {
  for (index_t j = 0; j < F; ++j) m[j] = mrnn_factor_forward(fx[j], fh[j]);
}

// h = tanh(a) into the running state, y and (Save) the cache
template <typename T, bool Save>
RNNFAST_ROW_FN void tanh_row(int H, const T* __restrict a, T* __restrict hrun, T* __restrict y, T* __restrict hc) {
  for (int j = 0; j < H; ++j) {
    const T h = rnn_unit_forward<T, false>(a[j], T(0));
    hrun[j] = h;
    y[j] = h;
    if constexpr (Save) hc[j] = h;
  }
}

// dh += dy (when given); da = dh * (1 - h^2)
template <typename T>
RNNFAST_ROW_FN void tanh_backward_row(int H, T* __restrict dh, const T* __restrict dy, const T* __restrict h,
                                      T* __restrict da) {
  if (dy)
    for (int j = 0; j < H; ++j) dh[j] += dy[j];
  for (int j = 0; j < H; ++j) da[j] = rnn_unit_backward<T, false>(dh[j], h[j]);
}

template <typename T>
RNNFAST_ROW_FN void factor_backward_row(int F, const T* __restrict dm, const T* __restrict fx, const T* __restrict fh,
                                        T* __restrict dfx, T* __restrict dfh) {
  for (int j = 0; j < F; ++j) {
    T a, b;
    mrnn_factor_backward(dm[j], fx[j], fh[j], a, b);
    dfx[j] = a;
    dfh[j] = b;
  }
}

template <typename T>
void forward_impl(const MrnnForwardParams<T>& p) {
  const int Ts = p.steps, N = p.batch, C = p.input_size, H = p.hidden, F = p.factors;
  const index_t NH = index_t(N) * H, NF = index_t(N) * F, TN = index_t(Ts) * N;
  T* xh = p.work;                                   // [T,N,H] x W_hx^T + b; a = xh + m W_hf^T in place
  T* m = xh + TN * H;                               // [N,F]   the factor products of this step
  T* h_run = m + NF;                                // [N,H]   running hidden state
  T* fx = p.training ? p.fx : h_run + NH;           // [T,N,F] f_x: the cache, or workspace in eval mode
  T* fh_scratch = p.training ? nullptr : fx + TN * F;  // [N,F] f_h in eval mode

  // the input side of all steps: xh = x W_hx^T + b, f_x = x W_fx^T
  for (index_t r = 0; r < TN; ++r) copy_or_zero(xh + r * H, p.b, H);
  {
    PackedB<T> w;
    pack_b(w, p.w_hx, C, C, H, true);
    small_gemm(int(TN), p.x, p.ldx, w, xh, H, true);
    pack_b(w, p.w_fx, C, C, F, true);
    small_gemm(int(TN), p.x, p.ldx, w, fx, F, false);
  }
  PackedB<T> w_fh, w_hf;
  pack_b(w_fh, p.w_fh, H, H, F, true);  // W_fh^T [H,F]
  pack_b(w_hf, p.w_hf, F, F, H, true);  // W_hf^T [F,H]
  copy_or_zero(h_run, p.h0, NH);

  const int fh_tasks = small_gemm_tasks(N, w_fh), hf_tasks = small_gemm_tasks(N, w_hf);
  const index_t ldy = p.ldy;
  const TimeLoop loop{Ts, p.reverse, Walk::Forward, loop_threads(mrnn_step_is_long(N, H, F), N)};
  time_loop(
      loop, [&](const LoopThread& th) { return RowShare{th.begin(N), th.end(N)}; },
      [&](const LoopThread& th, const RowShare& rows, int t, int) {
        const int n0 = rows.n0, n1 = rows.n1;
        const T* fxt = fx + t * NF;
        T* fht = p.training ? p.fh + t * NF : fh_scratch;
        T* at = xh + t * NH;
        T* yt = p.y + index_t(t) * N * ldy;
        if (p.training && th.tid == 0) std::memcpy(p.h_prev + t * NH, h_run, sizeof(T) * NH);
        for (int task = th.tid; task < fh_tasks; task += th.nt)  // f_h = h W_fh^T
          small_gemm_task(task, N, h_run, H, w_fh, fht, F, false, (const T*)nullptr);
        th.sync();
        for (int n = n0; n < n1; ++n) factor_row<T>(F, fxt + index_t(n) * F, fht + index_t(n) * F, m + index_t(n) * F);
        th.sync();
        for (int task = th.tid; task < hf_tasks; task += th.nt)  // a = xh + m W_hf^T
          small_gemm_task(task, N, m, F, w_hf, at, H, true, (const T*)nullptr);
        th.sync();
        for (int n = n0; n < n1; ++n) {
          if (p.training)
            tanh_row<T, true>(H, at + index_t(n) * H, h_run + index_t(n) * H, yt + index_t(n) * ldy,
                              p.h + t * NH + index_t(n) * H);
          else tanh_row<T, false>(H, at + index_t(n) * H, h_run + index_t(n) * H, yt + index_t(n) * ldy, nullptr);
        }
        th.sync();  // h_run is complete before the next step reads it
      });
  std::memcpy(p.h_n, h_run, sizeof(T) * NH);
}

template <typename T>
void backward_impl(const MrnnBackwardParams<T>& p) {
  const int Ts = p.steps, N = p.batch, C = p.input_size, H = p.hidden, F = p.factors;
  const index_t NH = index_t(N) * H, NF = index_t(N) * F, TN = index_t(Ts) * N;
  T* dA = p.work;                // [T,N,H] gradient on a
  T* dFX = dA + TN * H;          // [T,N,F] gradient on f_x
  T* dFH = dFX + TN * F;         // [T,N,F] gradient on f_h; after the loop m = f_x * f_h (for dW_hf)
  T* dm = dFH + TN * F;          // [N,F]   gradient on m of this step
  T* dh_run = dm + NF;           // [N,H]
  T* dh_next = dh_run + NH;      // [N,H]

  copy_or_zero(dh_run, p.dh_n, NH);
  PackedB<T> w_hf, w_fh;
  pack_b(w_hf, p.w_hf, F, H, F, false);  // W_hf [H,F]: dm = da W_hf
  pack_b(w_fh, p.w_fh, H, F, H, false);  // W_fh [F,H]: dh_prev = df_h W_fh
  const int hf_tasks = small_gemm_tasks(N, w_hf), fh_tasks = small_gemm_tasks(N, w_fh);
  struct Buffers {
    int n0, n1;  // this thread's batch rows
    T* dh_cur;   // each thread swaps its own copies of the two pointers, identically
    T* dh_nxt;
  };
  const TimeLoop loop{Ts, p.reverse, Walk::Backward, loop_threads(mrnn_step_is_long(N, H, F), N)};
  time_loop(
      loop, [&](const LoopThread& th) { return Buffers{th.begin(N), th.end(N), dh_run, dh_next}; },
      [&](const LoopThread& th, Buffers& b, int t, int) {
        const int n0 = b.n0, n1 = b.n1;
        const T* dyt = p.dy ? p.dy + index_t(t) * N * p.lddy : nullptr;
        T* dat = dA + t * NH;
        for (int n = n0; n < n1; ++n)
          tanh_backward_row<T>(H, b.dh_cur + index_t(n) * H, dyt ? dyt + index_t(n) * p.lddy : nullptr,
                               p.h + t * NH + index_t(n) * H, dat + index_t(n) * H);
        th.sync();
        for (int task = th.tid; task < hf_tasks; task += th.nt)  // dm = da W_hf
          small_gemm_task(task, N, dat, H, w_hf, dm, F, false, (const T*)nullptr);
        th.sync();
        for (int n = n0; n < n1; ++n) {
          const index_t o = t * NF + index_t(n) * F;
          factor_backward_row<T>(F, dm + index_t(n) * F, p.fx + o, p.fh + o, dFX + o, dFH + o);
        }
        th.sync();
        for (int task = th.tid; task < fh_tasks; task += th.nt)  // dh_prev = df_h W_fh
          small_gemm_task(task, N, dFH + t * NF, F, w_fh, b.dh_nxt, H, false, (const T*)nullptr);
        th.sync();
        std::swap(b.dh_cur, b.dh_nxt);
      });
  if (Ts % 2 == 1) std::swap(dh_run, dh_next);  // where the last step's result lies
  std::memcpy(p.dh0, dh_run, sizeof(T) * NH);

  // the large GEMMs over all steps: dx = df_x W_fx + da W_hx
  {
    PackedB<T> w;
    pack_b(w, p.w_fx, C, F, C, false);
    small_gemm(int(TN), dFX, F, w, p.dx, p.lddx, p.accumulate_dx);
    pack_b(w, p.w_hx, C, H, C, false);
    small_gemm(int(TN), dA, H, w, p.dx, p.lddx, true);
  }
  // dW_fx += df_x^T x, dW_hx += da^T x, dW_fh += df_h^T h_prev, db += sum da, dW_hf += da^T m
  gemm_parallel(true, false, F, C, int(TN), T(1), dFX, F, p.x, p.ldx, T(1), p.dw_fx, C);
  gemm_parallel(true, false, H, C, int(TN), T(1), dA, H, p.x, p.ldx, T(1), p.dw_hx, C);
  gemm_parallel(true, false, F, H, int(TN), T(1), dFH, F, p.h_prev, H, T(1), p.dw_fh, H);
  if (p.db)
    for (index_t r = 0; r < TN; ++r)
      for (int j = 0; j < H; ++j) p.db[j] += dA[r * H + j];
  factor_row<T>(TN * F, p.fx, p.fh, dFH);  // m of every step, over df_h (no longer needed)
  gemm_parallel(true, false, H, F, int(TN), T(1), dA, H, dFH, F, T(1), p.dw_hf, F);
}

}  // namespace

index_t mrnn_workspace_size(int steps, int batch, int hidden, int factors, bool training, bool backward) {
  const index_t TN = index_t(steps) * batch, N = batch, H = hidden, F = factors;
  if (backward) return TN * (H + 2 * F) + N * (F + 2 * H);
  return TN * H + N * (F + H) + (training ? 0 : TN * F + N * F);
}

template <typename T>
void mrnn_forward_cpu(const MrnnForwardParams<T>& p) {
  const EngineCall in_flight;
  forward_impl(p);
}

template <typename T>
void mrnn_backward_cpu(const MrnnBackwardParams<T>& p) {
  const EngineCall in_flight;
  backward_impl(p);
}

template void mrnn_forward_cpu<float>(const MrnnForwardParams<float>&);
template void mrnn_forward_cpu<double>(const MrnnForwardParams<double>&);
template void mrnn_backward_cpu<float>(const MrnnBackwardParams<float>&);
template void mrnn_backward_cpu<double>(const MrnnBackwardParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
