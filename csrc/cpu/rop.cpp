// The CPU engine's R-op time loops for the vanilla RNN and the MRNN (equations in rnnfast/rop.h).
// As in forward (recurrent.cpp, mrnn.cpp): every term that does not depend on R h_{t-1} is a large BLAS
// GEMM over all steps before the loop, accumulated straight into ry; inside the loop, per step, only the
// small GEMMs with the packed recurrent weights and one fused element-wise pass, on the skeleton of
// time_loop.h. The slope act'(a_t) comes from cell_math.h's rnn_unit_backward (the
// backward pass's own formula), the MRNN's R m from mrnn.h's mrnn_factor_rop.
#include <algorithm>
#include <cstring>
#include <vector>

#include "rnnfast/cell_math.h"
#include "rnnfast/mrnn.h"
#include "rnnfast/parallel.h"
#include "rnnfast/rop.h"

#include "blas.h"
#include "buffer.h"
#include "loop_util.h"
#include "small_gemm.h"
#include "time_loop.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

using namespace loop;

// C[rows, M] += A[rows, K] W^T, W: [M,K]; nothing when A or W is null (a zero direction).
template <typename T>
void add_product(index_t rows, int M, int K, const T* A, index_t lda, const T* W, T* C, index_t ldc) {
  if (A && W) gemm_parallel(false, true, int(rows), M, K, T(1), A, lda, W, K, T(1), C, ldc);
}

// C_t (+)= h_{t-1} W^T for every step t, W: [M,H]: h_{t-1} is y of the step processed before t (t-1, or
// t+1 when reverse) and h0 (null: zeros) at the first step. One GEMM over the T-1 shifted steps.
template <typename T>
void add_prev_state_product(int Ts, int N, int H, int M, bool reverse, const T* y, index_t ldy, const T* h0, const T* W,
                            T* C, index_t ldc, bool accumulate) {
  const T beta = accumulate ? T(1) : T(0);
  if (Ts > 1) {
    const T* a = reverse ? y + index_t(N) * ldy : y;
    T* c = reverse ? C : C + index_t(N) * ldc;
    gemm_parallel(false, true, (Ts - 1) * N, M, H, T(1), a, ldy, W, H, beta, c, ldc);
  }
  T* c0 = C + index_t(reverse ? Ts - 1 : 0) * N * ldc;
  if (h0) gemm(false, true, N, M, H, T(1), h0, H, W, H, beta, c0, ldc);
  else if (!accumulate) fill_rows(c0, N, M, ldc, (const T*)nullptr);
}

// ---- one batch row of an element-wise phase (never inlined, restrict pointers: see recurrent.cpp) ----
#define RNNFAST_ROW_FN __attribute__((noinline))

// R h = act'(a) * R a in place, act' from the saved output h
template <typename T, bool Relu>
RNNFAST_ROW_FN void slope_row(int H, T* __restrict ra, const T* __restrict h) {
  for (int j = 0; j < H; ++j) ra[j] = rnn_unit_backward<T, Relu>(ra[j], h[j]);
}

// R m = R f_x * f_h + f_x * R f_h, written over R f_x
template <typename T>
RNNFAST_ROW_FN void factor_rop_row(index_t F, const T* __restrict fx, const T* __restrict fh, T* __restrict rfx,
                                   const T* __restrict rfh) {
  for (index_t j = 0; j < F; ++j) rfx[j] = mrnn_factor_rop(fx[j], fh[j], rfx[j], rfh[j]);
}

template <typename T>
RNNFAST_ROW_FN void factor_row(index_t F, const T* __restrict fx, const T* __restrict fh, T* __restrict m) {
  for (index_t j = 0; j < F; ++j) m[j] = mrnn_factor_forward(fx[j], fh[j]);
}

template <typename T, bool Relu>
void rnn_rop_impl(const RnnRopParams<T>& p) {
  const int Ts = p.steps, N = p.batch, C = p.input_size, H = p.hidden;
  const index_t TN = index_t(Ts) * N;

  // R a of all steps but the R h_{t-1} W_hh^T term: V_b + x V_ih^T + Rx W_ih^T + h_{t-1} V_hh^T
  vector<T> vb;
  if (p.v_b_ih || p.v_b_hh) {
    vb.assign(H, T(0));
    for (int j = 0; j < H; ++j) vb[j] = (p.v_b_ih ? p.v_b_ih[j] : T(0)) + (p.v_b_hh ? p.v_b_hh[j] : T(0));
  }
  fill_rows(p.ry, TN, H, p.ldry, vb.empty() ? (const T*)nullptr : vb.data());
  add_product(TN, H, C, p.x, p.ldx, p.v_ih, p.ry, p.ldry);
  add_product(TN, H, C, p.rx, p.ldrx, p.w_ih, p.ry, p.ldry);
  if (p.v_hh) add_prev_state_product(Ts, N, H, H, p.reverse, p.y, p.ldy, p.h0, p.v_hh, p.ry, p.ldry, true);

  PackedB<T> w_rec;
  pack_b(w_rec, p.w_hh, H, H, H, true);  // W_hh^T [H,H]
  const int tasks = small_gemm_tasks(N, w_rec);
  const bool parallel = double(N) * H * H > 1e6 || index_t(N) * H >= kParallelElements;
  const index_t ldy = p.ldy, ldry = p.ldry;
  time_loop(
      TimeLoop{Ts, p.reverse, Walk::Forward, loop_threads(parallel, N)},
      [&](const LoopThread& th) { return RowShare{th.begin(N), th.end(N)}; },
      [&](const LoopThread& th, const RowShare& rows, int t, int i) {
        T* rat = p.ry + index_t(t) * N * ldry;
        // R a_t += R h_{t-1} W_hh^T (R h_{-1} = Rh0, skipped when zero)
        const T* rprev = i > 0 ? p.ry + index_t(p.reverse ? t + 1 : t - 1) * N * ldry : p.rh0;
        const index_t ldprev = i > 0 ? ldry : H;
        if (rprev) {
          for (int task = th.tid; task < tasks; task += th.nt)
            small_gemm_task(task, N, rprev, ldprev, w_rec, rat, ldry, true, (const T*)nullptr);
          th.sync();
        }
        const T* yt = p.y + index_t(t) * N * ldy;
        for (int n = rows.n0; n < rows.n1; ++n) slope_row<T, Relu>(H, rat + index_t(n) * ldry, yt + index_t(n) * ldy);
        th.sync();  // R h_t is complete before the next step reads it
      });
}

template <typename T>
void mrnn_rop_impl(const MrnnRopParams<T>& p) {
  const int Ts = p.steps, N = p.batch, C = p.input_size, H = p.hidden, F = p.factors;
  const index_t NF = index_t(N) * F, TN = index_t(Ts) * N, TNF = TN * F;
  T* rfx = p.work;              // [T,N,F] R f_x; each step's R m is written over it
  T* rfh = rfx + TNF;           // [T,N,F] R f_h (first used for m of all steps)
  const T* fx = p.fx;
  const T* fh = p.fh;
  if (!fx || !fh) {             // the forward's f_x = x W_fx^T and f_h = h_{t-1} W_fh^T, recomputed
    T* fxw = rfh + TNF;
    T* fhw = fxw + TNF;
    gemm_parallel(false, true, int(TN), F, C, T(1), p.x, p.ldx, p.w_fx, C, T(0), fxw, F);
    add_prev_state_product(Ts, N, H, F, p.reverse, p.y, p.ldy, p.h0, p.w_fh, fhw, F, false);
    fx = fxw;
    fh = fhw;
  }

  // R a of all steps but the R m W_hf^T term: V_b + m V_hf^T + x V_hx^T + Rx W_hx^T
  fill_rows(p.ry, TN, H, p.ldry, p.v_b);
  if (p.v_hf) {
    factor_row<T>(TNF, fx, fh, rfh);
    add_product(TN, H, F, (const T*)rfh, F, p.v_hf, p.ry, p.ldry);
  }
  add_product(TN, H, C, p.x, p.ldx, p.v_hx, p.ry, p.ldry);
  add_product(TN, H, C, p.rx, p.ldrx, p.w_hx, p.ry, p.ldry);
  // R f_x = x V_fx^T + Rx W_fx^T;  R f_h without its R h_{t-1} W_fh^T term: h_{t-1} V_fh^T
  std::fill(rfx, rfx + TNF, T(0));
  add_product(TN, F, C, p.x, p.ldx, p.v_fx, rfx, F);
  add_product(TN, F, C, p.rx, p.ldrx, p.w_fx, rfx, F);
  if (p.v_fh) add_prev_state_product(Ts, N, H, F, p.reverse, p.y, p.ldy, p.h0, p.v_fh, rfh, F, false);
  else std::fill(rfh, rfh + TNF, T(0));

  PackedB<T> w_fh, w_hf;
  pack_b(w_fh, p.w_fh, H, H, F, true);  // W_fh^T [H,F]
  pack_b(w_hf, p.w_hf, F, F, H, true);  // W_hf^T [F,H]
  const int fh_tasks = small_gemm_tasks(N, w_fh), hf_tasks = small_gemm_tasks(N, w_hf);
  const index_t ldy = p.ldy, ldry = p.ldry;
  time_loop(
      TimeLoop{Ts, p.reverse, Walk::Forward, loop_threads(mrnn_step_is_long(N, H, F), N)},
      [&](const LoopThread& th) { return RowShare{th.begin(N), th.end(N)}; },
      [&](const LoopThread& th, const RowShare& rows, int t, int i) {
        const int n0 = rows.n0, n1 = rows.n1;
        T* rat = p.ry + index_t(t) * N * ldry;
        T* rfxt = rfx + t * NF;
        T* rfht = rfh + t * NF;
        const T* rprev = i > 0 ? p.ry + index_t(p.reverse ? t + 1 : t - 1) * N * ldry : p.rh0;
        const index_t ldprev = i > 0 ? ldry : H;
        if (rprev) {  // R f_h += R h_{t-1} W_fh^T
          for (int task = th.tid; task < fh_tasks; task += th.nt)
            small_gemm_task(task, N, rprev, ldprev, w_fh, rfht, F, true, (const T*)nullptr);
          th.sync();
        }
        for (int n = n0; n < n1; ++n) {
          const index_t o = t * NF + index_t(n) * F;
          factor_rop_row<T>(F, fx + o, fh + o, rfx + o, rfh + o);
        }
        th.sync();
        for (int task = th.tid; task < hf_tasks; task += th.nt)  // R a_t += R m W_hf^T
          small_gemm_task(task, N, (const T*)rfxt, F, w_hf, rat, ldry, true, (const T*)nullptr);
        th.sync();
        const T* yt = p.y + index_t(t) * N * ldy;
        for (int n = n0; n < n1; ++n) slope_row<T, false>(H, rat + index_t(n) * ldry, yt + index_t(n) * ldy);
        th.sync();  // R h_t is complete before the next step reads it
      });
}

}  // namespace

index_t mrnn_rop_workspace_size(int steps, int batch, int factors, bool have_factors) {
  const index_t TNF = index_t(steps) * batch * factors;
  return (have_factors ? 2 : 4) * TNF;
}

template <typename T>
void rnn_rop_cpu(const RnnRopParams<T>& p) {
  const EngineCall in_flight;
  if (p.relu) rnn_rop_impl<T, true>(p);
  else rnn_rop_impl<T, false>(p);
}

template <typename T>
void mrnn_rop_cpu(const MrnnRopParams<T>& p) {
  const EngineCall in_flight;
  mrnn_rop_impl(p);
}

template void rnn_rop_cpu<float>(const RnnRopParams<float>&);
template void rnn_rop_cpu<double>(const RnnRopParams<double>&);
template void mrnn_rop_cpu<float>(const MrnnRopParams<float>&);
template void mrnn_rop_cpu<double>(const MrnnRopParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
