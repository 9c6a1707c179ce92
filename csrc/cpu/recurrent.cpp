// The CPU engine's time loops for vanilla RNN, LSTM and GRU (both forms), forward and backward.
// Large GEMMs (input projection of all steps; dx, dW_ih, dW_hh) run outside the loop; inside it, one
// GEMM R·h per step and one pass of the shared per-element cell math (rnnfast/cell_math.h).
#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "rnnfast/cell_math.h"
#include "rnnfast/parallel.h"
#include "rnnfast/recurrent.h"

#include "blas.h"
#include "buffer.h"
#include "loop_util.h"
#include "small_gemm.h"
#include "varlen.h"
#include "zoneout_rows.h"
#include "time_loop.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

using namespace loop;

// db[j] += sum over rows of g[r*ld + j]
template <typename T>
void add_column_sums(T* db, const T* g, index_t rows, int cols, index_t ld) {
  for (index_t r = 0; r < rows; ++r) {
    const T* __restrict gr = g + r * ld;
    for (int j = 0; j < cols; ++j) db[j] += gr[j];
  }
}

// One-hot input: table[c, g] = W_ih[g, c] + b_ih[g], so that row c of the table is the input projection
// of a one-hot x with its 1 at c (the GEMM computes b + (0 + ... + 1·W[g,c] + ... + 0): the same number).
template <typename T>
void onehot_table(const T* w_ih, const T* b_ih, int C, int GH, vector<T>& table) {
  table.resize(index_t(C) * GH);
  // blocks of kB gate rows of W_ih (kB lines of it stay in L1 while its columns c are gathered); each
  // table row's piece written in order
  constexpr int kB = 256;
  for (int g0 = 0; g0 < GH; g0 += kB) {
    const int g1 = std::min(GH, g0 + kB);
    for (int c = 0; c < C; ++c) {
      T* __restrict dst = table.data() + index_t(c) * GH;
      const T* __restrict src = w_ih + c;
      if (b_ih)
        for (int g = g0; g < g1; ++g) dst[g] = src[index_t(g) * C] + b_ih[g];
      else
        for (int g = g0; g < g1; ++g) dst[g] = src[index_t(g) * C];
    }
  }
}

// dW_ih[g, c] += sum over rows r with idx[r] == c of dG[r, g]: the one-hot x's dW_ih = dG^T x as a
// scatter-add into [C,GH] tables, then added transposed. The bias gradients come with it: db_ih = sum_r dG[r]
// = sum_c table[c] (C rows instead of T*N), and so db_hh where the W_hh side's gradients are dG's.
//
// Where the batch is large enough for the time loop's by-rows schedule (OnehotGroups::fused), the loop itself
// adds each row of dG into the table of the row's group while the row is still in L1 (reading the [T,N,GH]
// dG again afterwards, far larger than the caches, is a pass through memory). The two
// groups are the batch rows the two threads of that schedule own, fixed by N alone: on one thread the same
// rows go to the same two tables in the same order, and the tables are summed in group order, so the result
// does not depend on the thread count. Smaller batches scatter after the loop (add_onehot_scatter), rows in
// order, each task a block of gate columns.
struct OnehotGroups {
  bool fused = false;
  int cut = 0;  // rows [0, cut) form group 0, [cut, N) group 1
  int of(int n) const { return n < cut ? 0 : 1; }
};

template <typename T>
void add_onehot_scatter(const std::int32_t* idx, index_t rows, int /*C*/, int GH, const T* dG, T* acc) {
  const bool parallel = double(rows) * GH > 1e5;
  const int parts = parallel ? std::max(1, std::min(engine_threads(), GH / 64)) : 1;
  const int cols = ((GH + parts - 1) / parts + 15) / 16 * 16;
  const int tasks = (GH + cols - 1) / cols;
  parallel_for(tasks, parallel, [&](int task) {
    const int j0 = task * cols, w = std::min(cols, GH - j0);
    for (index_t r = 0; r < rows; ++r) {
      T* __restrict a = acc + index_t(idx[r]) * GH + j0;
      const T* __restrict g = dG + r * GH + j0;
      for (int j = 0; j < w; ++j) a[j] += g[j];
    }
  });
}

// acc: `tables` [C,GH] tables, summed in order into the first; then dw_ih [GH,C] += acc^T and the biases
// += the column sums of acc. Each task owns a block of gate columns.
template <typename T>
void add_onehot_tables(T* acc, int tables, int C, int GH, T* dw_ih, T* db_ih, T* db_hh) {
  const int parts = std::max(1, std::min(engine_threads(), GH / 64));
  const int cols = ((GH + parts - 1) / parts + 15) / 16 * 16;
  const int tasks = (GH + cols - 1) / cols;
  const index_t CG = index_t(C) * GH;
  parallel_for(tasks, double(C) * GH > 1e5, [&](int task) {
    const int j0 = task * cols, w = std::min(cols, GH - j0);
    for (int k = 1; k < tables; ++k)
      for (int c = 0; c < C; ++c) {
        T* __restrict a = acc + index_t(c) * GH + j0;
        const T* __restrict b = acc + k * CG + index_t(c) * GH + j0;
        for (int j = 0; j < w; ++j) a[j] += b[j];
      }
    for (int jb = j0; jb < j0 + w; jb += 16)  // the transposed add in 16-column strips
      for (int c = 0; c < C; ++c) {
        const T* __restrict a = acc + index_t(c) * GH;
        for (int j = jb; j < std::min(j0 + w, jb + 16); ++j) dw_ih[index_t(j) * C + c] += a[j];
      }
    if (db_ih || db_hh) {
      vector<T> sum(w, T(0));
      for (int c = 0; c < C; ++c) {
        const T* __restrict a = acc + index_t(c) * GH + j0;
        T* __restrict s = sum.data();
        for (int j = 0; j < w; ++j) s[j] += a[j];
      }
      for (int j = 0; j < w; ++j) {
        if (db_ih) db_ih[j0 + j] += sum[j];
        if (db_hh) db_hh[j0 + j] += sum[j];
      }
    }
  });
}

// ---- one batch row of the per-element step ---------------------------------------------------------
// Separate, never-inlined functions with restrict pointers, one per gate block: inlined into the time
// loop, GCC loses the restrict guarantees and leaves the LSTM/GRU loops scalar.
// Row arrays: xr, hr: [G*H] pre-activation parts; g: [G*H] saved gates; e: [H] GRU extra.
#define RNNFAST_ROW_FN __attribute__((noinline))

template <typename T, bool Relu>
RNNFAST_ROW_FN void rnn_row_forward(int H, const T* __restrict xr, const T* __restrict hr, T* __restrict g,
                                    T* __restrict hrun, T* __restrict y) {
  for (int j = 0; j < H; ++j) {
    const T h = rnn_unit_forward<T, Relu>(xr[j], hr[j]);
    g[j] = h;
    hrun[j] = h;
    y[j] = h;
  }
}

template <typename T>
RNNFAST_ROW_FN void lstm_gates_forward(int H, const T* __restrict xi, const T* __restrict xf, const T* __restrict xg,
                                       const T* __restrict xo, const T* __restrict hi, const T* __restrict hf,
                                       const T* __restrict hg, const T* __restrict ho, T* __restrict gi,
                                       T* __restrict gf, T* __restrict gg, T* __restrict go, T* __restrict crun,
                                       T* __restrict hrun, T* __restrict y) {
  for (int j = 0; j < H; ++j) {
    T c, h;
    lstm_unit_forward(xi[j] + hi[j], xf[j] + hf[j], xg[j] + hg[j], xo[j] + ho[j], crun[j], gi[j], gf[j], gg[j], go[j],
                      c, h);
    crun[j] = c;
    hrun[j] = h;
    y[j] = h;
  }
}

template <typename T>
RNNFAST_ROW_FN void gru_gates_forward(int H, const T* __restrict xr_, const T* __restrict xz, const T* __restrict xn,
                                      const T* __restrict hr_, const T* __restrict hz, const T* __restrict hn,
                                      T* __restrict gr, T* __restrict gz, T* __restrict gn, T* __restrict e,
                                      T* __restrict hrun, T* __restrict y) {
  for (int j = 0; j < H; ++j) {
    T r, z, nn, h;
    gru_unit_forward(xr_[j], xz[j], xn[j], hr_[j], hz[j], hn[j], hrun[j], r, z, nn, h);
    gr[j] = r;
    gz[j] = z;
    gn[j] = nn;
    e[j] = hn[j];
    hrun[j] = h;
    y[j] = h;
  }
}

// Cho GRU, stage 1: r, z and r*h (the input of the n rows' GEMM)
template <typename T>
RNNFAST_ROW_FN void gru_cho_rz_forward(int H, const T* __restrict xr_, const T* __restrict xz, const T* __restrict hr_,
                                       const T* __restrict hz, const T* __restrict hrun, T* __restrict gr,
                                       T* __restrict gz, T* __restrict e) {
  for (int j = 0; j < H; ++j) {
    const T r = gru_unit_gate(xr_[j], hr_[j]);
    gr[j] = r;
    gz[j] = gru_unit_gate(xz[j], hz[j]);
    e[j] = r * hrun[j];
  }
}

// Cho GRU, stage 2: n from hn' = W_hn (r*h) + b_hn, then h
template <typename T>
RNNFAST_ROW_FN void gru_cho_n_forward(int H, const T* __restrict xn, const T* __restrict hn, const T* __restrict gz,
                                      T* __restrict gn, T* __restrict hrun, T* __restrict y) {
  for (int j = 0; j < H; ++j) {
    const T nn = gru_unit_n_before(xn[j], hn[j]);
    const T h = gru_unit_output(gz[j], nn, hrun[j]);
    gn[j] = nn;
    hrun[j] = h;
    y[j] = h;
  }
}

template <typename T>
RNNFAST_ROW_FN void add_into(int H, T* __restrict a, const T* __restrict b) {
  for (int j = 0; j < H; ++j) a[j] += b[j];
}

template <typename T, bool Relu>
RNNFAST_ROW_FN void rnn_row_backward(int H, const T* __restrict dh, const T* __restrict g, T* __restrict d) {
  for (int j = 0; j < H; ++j) d[j] = rnn_unit_backward<T, Relu>(dh[j], g[j]);
}

template <typename T>
RNNFAST_ROW_FN void lstm_gates_backward(int H, const T* __restrict dh, T* __restrict dc, const T* __restrict gi,
                                        const T* __restrict gf, const T* __restrict gg, const T* __restrict go,
                                        const T* __restrict cprev, T* __restrict di, T* __restrict df, T* __restrict dg,
                                        T* __restrict dout) {
  for (int j = 0; j < H; ++j)
    dc[j] = lstm_unit_backward(dh[j], dc[j], gi[j], gf[j], gg[j], go[j], cprev[j], di[j], df[j], dg[j], dout[j]);
}

// GRU (both forms): the z and n gradients and the direct share of dh_prev (dh z)
template <typename T>
RNNFAST_ROW_FN void gru_zn_backward(int H, const T* __restrict dh, const T* __restrict gz, const T* __restrict gn,
                                    const T* __restrict hprev, T* __restrict dz, T* __restrict dn,
                                    T* __restrict dnext) {
  for (int j = 0; j < H; ++j) {
    T dzj, direct;
    dn[j] = gru_unit_backward_n(dh[j], gz[j], gn[j], hprev[j], dzj, direct);
    dz[j] = dzj;
    dnext[j] = direct;
  }
}

// reset_after=True: r's gradient from the saved hn, and the W_hh-side gradients (n's scaled by r)
template <typename T>
RNNFAST_ROW_FN void gru_r_after_backward(int H, const T* __restrict gr, const T* __restrict e, T* __restrict dr,
                                         const T* __restrict dz, const T* __restrict dn, T* __restrict sr,
                                         T* __restrict sz, T* __restrict sn) {
  for (int j = 0; j < H; ++j) {
    const T d = gru_unit_backward_r_after(dn[j], gr[j], e[j]);
    dr[j] = d;
    sr[j] = d;
    sz[j] = dz[j];
    sn[j] = dn[j] * gr[j];
  }
}

// reset_after=False: r's gradient from drh = dn_pre · W_hn, and r*h's share of dh_prev
template <typename T>
RNNFAST_ROW_FN void gru_r_before_backward(int H, const T* __restrict drh, const T* __restrict gr,
                                          const T* __restrict hprev, T* __restrict dr, T* __restrict dnext) {
  for (int j = 0; j < H; ++j) {
    dr[j] = gru_unit_backward_r_before(drh[j], gr[j], hprev[j]);
    dnext[j] += drh[j] * gr[j];
  }
}

// How the threads of a time loop share each step (decided once per call, by the shapes):
//  - by batch rows (N >= 32): the rows of a batch are independent sequences, so each thread runs its own
//    rows through every step (the recurrent GEMM for its rows, then their cell update) with no barrier and
//    no data crossing cores; each thread reads all of W_hh every step (it stays in L2 or streams from L3).
//    Row blocks start at multiples of small_gemm's row tile (kGemmRowAlign), so every product is summed
//    exactly as on one thread: the results do not depend on the thread count.
//  - by hidden units (smaller batches, where a thread's rows would be too few for the register tiles):
//    each thread owns blocks of units (one GEMM panel wide) and computes, for every row, the recurrent
//    GEMM's columns of its units' gates (W_hh^T packed with the gates of a block together,
//    pack_bt_unit_blocks) and then their cell update. The gates stay on their core; only h crosses, once a
//    step, so a step has one barrier (h is double-buffered: the next step's GEMM reads all of it while
//    its owners write the step after). Every product is again the one-thread sum. (Splitting the GEMM's
//    columns and then the cell's rows instead passes the whole recurrent projection between the cores and
//    meets twice a step, which gained nothing.)
inline bool rows_schedule(int N) { return N >= 32; }

// Whether a time loop shares its steps between threads (decided by the shapes alone, so the results never
// depend on the machine): when a step multiplies at least 1M weights (or has 32k elements), or, by units,
// 200k with H >= 128. Below that, or with fewer units, a second thread gained nothing (the measurements:
// benchmarks/RESULTS.md, "Measurements behind the engine's rules"), and a barrier per step costs most when
// another process takes a core. The thresholds were measured with two threads; more threads each get a
// smaller share of the same step (recurrent_threads).
inline bool parallel_loop(int N, int GR, int H) {
  const double macs = double(N) * GR * H * H;
  return macs > 1e6 || double(N) * GR * H >= kParallelElements || (!rows_schedule(N) && H >= 128 && macs >= 2e5);
}

struct StepSplit {
  bool by_rows;
  int n0, n1;  // this thread's batch rows (by units: all)
  int b0, b1;  // this thread's unit blocks (by rows: all)
};

inline StepSplit step_split(int N, int blocks, int tid, int nt) {
  if (rows_schedule(N)) {
    const auto cut = [&](int i) { return i == nt ? N : int(index_t(N) * i / nt) / kGemmRowAlign * kGemmRowAlign; };
    return {true, cut(tid), cut(tid + 1), 0, blocks};
  }
  return {false, 0, N, int(index_t(blocks) * tid / nt), int(index_t(blocks) * (tid + 1) / nt)};
}

// C (+)= A · B (+ bias) of one step inside a time loop's region: this thread's rows (by rows), or the
// panels of its unit blocks (by units; B's panels come `per_block` to a block of units).
template <typename T>
void step_gemm(const StepSplit& s, int N, int per_block, const T* A, index_t lda, const PackedB<T>& B, T* C,
               index_t ldc, bool accumulate, const T* bias) {
  if (s.by_rows) {
    const int rows = s.n1 - s.n0;
    const int tasks = rows > 0 ? small_gemm_tasks(rows, B) : 0;
    for (int task = 0; task < tasks; ++task)
      small_gemm_task(task, rows, A + index_t(s.n0) * lda, lda, B, C + index_t(s.n0) * ldc, ldc, accumulate, bias);
  } else {
    small_gemm_panels(s.b0 * per_block, s.b1 * per_block, N, A, lda, B, C, ldc, accumulate, bias);
  }
}

// step_gemm over the runs of rows active at step t (variable lengths, varlen.h): this thread's rows (by
// rows) or all rows (by units); the rows past their end are not touched. Without lengths: step_gemm.
template <typename T>
void step_gemm_active(const std::int32_t* len, int t, const StepSplit& s, int N, int per_block, const T* A, index_t lda,
                      const PackedB<T>& B, T* C, index_t ldc, bool accumulate, const T* bias) {
  if (!len) return step_gemm(s, N, per_block, A, lda, B, C, ldc, accumulate, bias);
  varlen::for_active_runs(len, t, s.n0, s.n1, [&](int r0, int r1) {
    StepSplit run = s;
    run.n0 = r0;
    run.n1 = r1;
    if (s.by_rows) step_gemm(run, N, per_block, A, lda, B, C, ldc, accumulate, bias);
    else
      step_gemm(run, r1 - r0, per_block, A + index_t(r0) * lda, lda, B, C + index_t(r0) * ldc, ldc, accumulate, bias);
  });
}

// The units [j0, j0 + w) of unit block b (UB units a block).
template <typename T>
constexpr int unit_block() {
  return panel_width<T>();
}
inline int block_width(int b, int UB, int H) { return std::min(UB, H - b * UB); }

// The recurrent projection's row width: by rows, the G*H gates in PyTorch order; by units, the blocks'
// gates (panel b*G + g: gate g of block b), padded to whole blocks.
template <typename T>
int rec_width(int G, int H, bool by_rows) {
  constexpr int UB = unit_block<T>();
  return by_rows ? G * H : (H + UB - 1) / UB * G * UB;
}

template <typename T>
struct ForwardWork {
  // xp [T,N,GH] | hp [N, rec_width] | gate scratch [N,GH] | h, h2, c, extra [N,H] each
  static index_t size(int G, int T_, int N, int H) {
    const index_t hp = index_t(N) * std::max(rec_width<T>(G, H, true), rec_width<T>(G, H, false));
    return index_t(T_) * N * G * H + hp + index_t(N) * G * H + 4 * index_t(N) * H;
  }
};

// The cell update of row n over the units [j0, j0 + w): xr the row's input projection [GH] (PyTorch gate
// order), hg[g] gate g's recurrent projection at unit j0, g_row the saved gates [GH], e_row [H].
template <typename T, Cell K>
void cell_forward(int w, int j0, int H, const T* xr, const T* const* hg, T* g, T* e, T* crun, T* hrun, T* y) {
  if constexpr (K == Cell::RnnTanh || K == Cell::RnnRelu) {
    rnn_row_forward<T, K == Cell::RnnRelu>(w, xr + j0, hg[0], g + j0, hrun + j0, y + j0);
  } else if constexpr (K == Cell::Lstm) {
    lstm_gates_forward(w, xr + j0, xr + H + j0, xr + 2 * H + j0, xr + 3 * H + j0, hg[0], hg[1], hg[2], hg[3], g + j0,
                       g + H + j0, g + 2 * H + j0, g + 3 * H + j0, crun + j0, hrun + j0, y + j0);
  } else if constexpr (K == Cell::Gru) {
    gru_gates_forward(w, xr + j0, xr + H + j0, xr + 2 * H + j0, hg[0], hg[1], hg[2], g + j0, g + H + j0, g + 2 * H + j0,
                      e + j0, hrun + j0, y + j0);
  } else {  // Cho GRU stage 1: r, z and r*h
    gru_cho_rz_forward(w, xr + j0, xr + H + j0, hg[0], hg[1], hrun + j0, g + j0, g + H + j0, e + j0);
  }
}

// The forward's workspace, cut from p.work (ForwardWork::size elements).
template <typename T>
struct ForwardBuffers {
  T* xp;             // [T,N,GH] input projections
  T* hp;             // [N,ldh]  recurrent projection of this step
  T* gate_scratch;   // [N,GH]   the gates when not training
  T* h_run;          // [N,H]    running hidden state
  T* h_alt;          // [N,H]    its second buffer (by units)
  T* c_run;          // [N,H]    running cell state (LSTM)
  T* extra_scratch;  // [N,H]    GRU hn or r*h when not training
  ForwardBuffers(T* work, int G, int Ts, int N, int H) {
    const index_t NH = index_t(N) * H, NGH = NH * G;
    xp = work;
    hp = xp + index_t(Ts) * NGH;
    gate_scratch = hp + index_t(N) * std::max(rec_width<T>(G, H, true), rec_width<T>(G, H, false));
    h_run = gate_scratch + NGH;
    h_alt = h_run + NH;
    c_run = h_alt + NH;
    extra_scratch = c_run + NH;
  }
};

// W_hh^T packed once for the per-step GEMM (the Cho GRU: its r, z rows in w_rec, its n rows in w_n); by
// units, with the gates of each block of units together, and b_hh likewise.
template <typename T>
struct RecurrentWeights {
  PackedB<T> w_rec, w_n;
  vector<T> b_units;
  const T* b_rec = nullptr;  // the bias of w_rec's columns
  const T* b_n = nullptr;    // the Cho GRU's n rows' bias
};

template <typename T, Cell K>
void pack_recurrent(const RecurrentForwardParams<T>& p, bool by_rows, RecurrentWeights<T>& w) {
  constexpr int GR = K == Cell::GruCho ? 2 : gates_of(K);  // gates in the first recurrent GEMM
  constexpr int UB = unit_block<T>();
  const int H = p.hidden, blocks = (H + UB - 1) / UB;
  if (by_rows) {
    pack_b(w.w_rec, p.w_hh, H, H, GR * H, true);
    w.b_rec = p.b_hh;
  } else {
    pack_bt_unit_blocks(w.w_rec, p.w_hh, H, H, GR, H);
    if (p.b_hh) {
      w.b_units.assign(rec_width<T>(gates_of(K), H, false), T(0));
      for (int b = 0; b < blocks; ++b)
        for (int g = 0; g < GR; ++g)
          std::memcpy(w.b_units.data() + (index_t(b) * GR + g) * UB, p.b_hh + index_t(g) * H + b * UB,
                      sizeof(T) * block_width(b, UB, H));
      w.b_rec = w.b_units.data();
    }
  }
  if (K == Cell::GruCho) {
    pack_b(w.w_n, p.w_hh + index_t(2) * H * H, H, H, H, true);  // panel b: the units of block b
    w.b_n = p.b_hh ? p.b_hh + 2 * H : nullptr;
  }
}

// The input projection of all steps, xp = x W_ih^T + b_ih, by the same kernel as the per-step GEMM; for
// one-hot input, the table W_ih^T + b_ih whose rows the loop reads directly (xp stays unused).
template <typename T>
void input_projection(const RecurrentForwardParams<T>& p, int GH, T* xp, vector<T>& table) {
  const int Ts = p.steps, N = p.batch, C = p.input_size;
  if (p.x_index) {
    onehot_table(p.w_ih, p.b_ih, C, GH, table);
  } else if (p.lengths) {  // only the active rows (varlen.h)
    PackedB<T> w_in;
    pack_b(w_in, p.w_ih, C, C, GH, true);
    varlen::segments_gemm(varlen::active_segments(p.lengths, Ts, N), p.x, p.ldx, w_in, xp, GH, false, p.b_ih);
  } else {
    fill_rows(xp, index_t(Ts) * N, GH, GH, p.b_ih);
    PackedB<T> w_in;
    pack_b(w_in, p.w_ih, C, C, GH, true);
    small_gemm(Ts * N, p.x, p.ldx, w_in, xp, GH, p.b_ih != nullptr);
  }
}

// Threads of a recurrent time loop: its split gives work to N / kGemmRowAlign threads by rows, to one
// thread per block of units by units.
inline int recurrent_threads(int N, int G, int H, int blocks) {
  return loop_threads(parallel_loop(N, G, H), rows_schedule(N) ? std::max(1, N / kGemmRowAlign) : blocks);
}

// A time loop thread's share: step_split's rows or unit blocks, its units [j0, j1), and its copies of the
// double-buffered state's pointers (swapped identically by every thread).
template <typename T>
struct ThreadShare {
  StepSplit split;
  int j0, j1;
  T* cur;
  T* nxt;
};

template <typename T>
ThreadShare<T> thread_share(const LoopThread& th, int N, int H, int blocks, T* cur, T* nxt) {
  constexpr int UB = unit_block<T>();
  const StepSplit split = step_split(N, blocks, th.tid, th.nt);
  return {split, split.b0 * UB, std::min(H, split.b1 * UB), cur, nxt};
}

template <typename T, Cell K>
void forward_impl(const RecurrentForwardParams<T>& p) {
  constexpr int G = gates_of(K);
  constexpr int GR = K == Cell::GruCho ? 2 : G;  // gates in the first recurrent GEMM (the Cho GRU's r, z)
  constexpr int UB = unit_block<T>();
  const int Ts = p.steps, N = p.batch, H = p.hidden, GH = G * H;
  const index_t NH = index_t(N) * H, NGH = index_t(N) * GH;
  const bool by_rows = rows_schedule(N);
  const int blocks = (H + UB - 1) / UB;
  const int ldh = rec_width<T>(G, H, by_rows);  // row width of hp
  const ForwardBuffers<T> buf(p.work, G, Ts, N, H);

  vector<T> table;
  input_projection(p, GH, buf.xp, table);
  // the input projection row of (t, n): [GH]
  const auto x_row = [&](int t, int n) -> const T* {
    return p.x_index ? table.data() + index_t(p.x_index[index_t(t) * N + n]) * GH : buf.xp + t * NGH + index_t(n) * GH;
  };
  RecurrentWeights<T> w;
  pack_recurrent<T, K>(p, by_rows, w);
  copy_or_zero(buf.h_run, p.h0, NH);
  if (K == Cell::Lstm) copy_or_zero(buf.c_run, p.c0, NH);

  T* hp = buf.hp;
  T* hp_n = hp + (by_rows ? 2 * H : blocks * 2 * UB);  // the Cho GRU's n projection: [N, H] at row width ldh
  T* c_run = buf.c_run;
  const index_t ldy = p.ldy;
  // variable lengths (varlen.h): the recurrent GEMMs over the runs of active rows; a row past its end gets
  // zero output (and GRU extra: the Cho GRU's dW_hh product reads it) over this thread's units
  const std::int32_t* len = p.lengths;
  // zoneout (zoneout.h): each row blended with the state it started from once its cell is done; by rows
  // the cell updates the state in place, so in eval (no h_prev cache) that state is copied first
  const bool zo = p.zoneout || p.zoneout_p != T(0);
  vector<T> zo_prev(zo && by_rows && !p.training ? NH : 0);
  // each step shared as step_split says; by units, h is double-buffered (h_run, h_alt)
  time_loop(
      TimeLoop{Ts, p.reverse, Walk::Forward, recurrent_threads(N, G, H, blocks)},
      [&](const LoopThread& th) { return thread_share(th, N, H, blocks, buf.h_run, by_rows ? buf.h_run : buf.h_alt); },
      [&](const LoopThread& th, ThreadShare<T>& s, int t, int) {
        const StepSplit& split = s.split;
        const int n0 = split.n0, n1 = split.n1, j0 = s.j0, j1 = s.j1;
        T* gt = p.training ? p.gates + t * NGH : buf.gate_scratch;
        T* et = p.training ? p.extra + t * NH : buf.extra_scratch;
        T* yt = p.y + index_t(t) * N * ldy;
        const auto inactive_row = [&](int n) {  // past its end: zero output (and extra), the state held
          if (j1 <= j0) return;
          std::fill(yt + index_t(n) * ldy + j0, yt + index_t(n) * ldy + j1, T(0));
          if (p.training && G == 3) std::fill(et + index_t(n) * H + j0, et + index_t(n) * H + j1, T(0));
        };
        const auto zoneout_row = [&](int n) {
          const T* prev =
              !by_rows ? s.cur + index_t(n) * H : (p.training ? p.h_prev + t * NH : zo_prev.data()) + index_t(n) * H;
          const T* m = p.zoneout ? p.zoneout + t * NH + index_t(n) * H + j0 : nullptr;
          zoneout_row_forward(j1 - j0, prev + j0, m, T(1) - p.zoneout_p, s.nxt + index_t(n) * H + j0,
                              yt + index_t(n) * ldy + j0);
        };
        // the cache: the state step t starts from, each thread its own rows or units (written by this thread
        // alone, in the previous step)
        if (p.training && n1 > n0 && j1 > j0)
          for (int n = n0; n < n1; ++n) {
            std::memcpy(p.h_prev + t * NH + index_t(n) * H + j0, s.cur + index_t(n) * H + j0, sizeof(T) * (j1 - j0));
            if (K == Cell::Lstm)
              std::memcpy(p.c_prev + t * NH + index_t(n) * H + j0, c_run + index_t(n) * H + j0, sizeof(T) * (j1 - j0));
          }
        // recurrent projection hp = h W_hh^T + b_hh (for the Cho GRU only the r, z rows: its n rows need r)
        step_gemm_active(len, t, split, N, GR, (const T*)s.cur, H, w.w_rec, hp, ldh, false, w.b_rec);
        if (!by_rows)
          for (int n = 0; n < N && j1 > j0; ++n)  // the cell updates h_nxt in place
            std::memcpy(s.nxt + index_t(n) * H + j0, s.cur + index_t(n) * H + j0, sizeof(T) * (j1 - j0));
        for (int n = n0; n < n1; ++n) {
          if (!varlen::active(len, t, n)) {
            inactive_row(n);
            continue;
          }
          if (zo && by_rows && !p.training)
            std::memcpy(zo_prev.data() + index_t(n) * H, s.cur + index_t(n) * H, sizeof(T) * H);
          const T* hr = hp + index_t(n) * ldh;
          const auto cell = [&](int width, int u0, const T* const* hg) {
            cell_forward<T, K>(width, u0, H, x_row(t, n), hg, gt + index_t(n) * GH, et + index_t(n) * H,
                               c_run + index_t(n) * H, s.nxt + index_t(n) * H, yt + index_t(n) * ldy);
          };
          const T* hg[G];
          if (by_rows) {  // the whole row at once
            for (int g = 0; g < G; ++g) hg[g] = hr + g * H;
            cell(H, 0, hg);
          } else {
            for (int b = split.b0; b < split.b1; ++b) {
              for (int g = 0; g < GR; ++g) hg[g] = hr + (b * GR + g) * UB;
              cell(block_width(b, UB, H), b * UB, hg);
            }
          }
          if (K != Cell::GruCho && zo) zoneout_row(n);
        }
        if constexpr (K == Cell::GruCho) {  // stage 2: hn' = W_hn (r*h) + b_hn, then n and h
          if (!by_rows) th.sync();          // all of r*h
          step_gemm_active(len, t, split, N, 1, (const T*)et, H, w.w_n, hp_n, ldh, false, w.b_n);
          for (int n = n0; n < n1; ++n) {
            if (!varlen::active(len, t, n)) continue;
            T* g = gt + index_t(n) * GH;
            const T* xr = x_row(t, n);
            const T* hn = hp_n + index_t(n) * ldh;
            gru_cho_n_forward(j1 - j0, xr + 2 * H + j0, hn + j0, g + H + j0, g + 2 * H + j0,
                              s.nxt + index_t(n) * H + j0, yt + index_t(n) * ldy + j0);
            if (zo) zoneout_row(n);
          }
        }
        if (!by_rows) {
          th.sync();  // h_nxt is complete before the next step reads it
          std::swap(s.cur, s.nxt);
        }
      });
  // by units, the last step's state is in h_alt after an odd number of steps
  std::memcpy(p.h_n, !by_rows && Ts % 2 == 1 ? buf.h_alt : buf.h_run, sizeof(T) * NH);
  if (K == Cell::Lstm) std::memcpy(p.c_n, buf.c_run, sizeof(T) * NH);
}

// The cell backward of row n over the units [j0, j0 + w) (see backward_impl for the arrays).
template <typename T, Cell K>
void cell_backward(int w, int j0, int H, T* dh, const T* g, const T* hprev, const T* cprev, const T* extra, T* dc, T* d,
                   T* side, T* dnext) {
  if constexpr (K == Cell::RnnTanh || K == Cell::RnnRelu) {
    rnn_row_backward<T, K == Cell::RnnRelu>(w, dh + j0, g + j0, d + j0);
  } else if constexpr (K == Cell::Lstm) {
    lstm_gates_backward(w, dh + j0, dc + j0, g + j0, g + H + j0, g + 2 * H + j0, g + 3 * H + j0, cprev + j0, d + j0,
                        d + H + j0, d + 2 * H + j0, d + 3 * H + j0);
  } else {
    gru_zn_backward(w, dh + j0, g + H + j0, g + 2 * H + j0, hprev + j0, d + H + j0, d + 2 * H + j0, dnext + j0);
    if constexpr (K == Cell::Gru)
      gru_r_after_backward(w, g + j0, extra + j0, d + j0, d + H + j0, d + 2 * H + j0, side + j0, side + H + j0,
                           side + 2 * H + j0);
  }
}

// The backward's workspace, cut from p.work (recurrent_workspace_size(..., backward=true) elements).
template <typename T>
struct BackwardBuffers {
  T* dG;       // [T,N,GH] gradients on the W_ih side
  T* dGh;      // [T,N,GH] on the W_hh side (the GRU's differ; else dG itself)
  T* dh_run;   // [N,H]
  T* dh_next;  // [N,H]
  T* dc_run;   // [N,H]
  T* drh;       // [N,H] Cho GRU: gradient on r*h
  T* zo_carry;  // [N,H] zoneout: dh_t's direct share of dh_{t-1}
  BackwardBuffers(T* work, Cell cell, int Ts, int N, int H) {
    const index_t NH = index_t(N) * H, TNGH = index_t(Ts) * N * gates_of(cell) * H;
    dG = work;
    dGh = cell == Cell::Gru ? dG + TNGH : dG;
    dh_run = dG + (cell == Cell::Gru ? 2 : 1) * TNGH;
    dh_next = dh_run + NH;
    dc_run = dh_next + NH;
    drh = dc_run + NH;
    zo_carry = drh + NH;
  }
};

// One-hot input: the tables of the scatter of dG into dW_ih (see OnehotGroups), filled inside the loop where
// the batch takes the by-rows schedule, else after it.
template <typename T>
struct OnehotScatter {
  OnehotGroups groups;
  std::unique_ptr<T[]> acc;  // [groups][C,GH] tables
};

template <typename T>
void onehot_scatter_setup(const RecurrentBackwardParams<T>& p, int GH, int blocks, OnehotScatter<T>& o) {
  if (!p.x_index) return;
  const index_t CG = index_t(p.input_size) * GH;
  const StepSplit two = step_split(p.batch, blocks, 0, 2);
  o.groups.fused = two.by_rows;
  o.groups.cut = two.n1;
  o.acc.reset(new T[(o.groups.fused ? 2 : 1) * CG]);
  if (!o.groups.fused) std::fill(o.acc.get(), o.acc.get() + CG, T(0));  // fused: each thread clears its own
}

// dW_hh += dGh^T h_prev in chunks of `steps` steps inside the time loop, each chunk as soon as its steps are
// done, while its rows of dGh (and h_prev) are still in the caches (one GEMM after the loop reads all of dGh
// back from memory). The chunks depend on T and N only, and dW_hh's rows are always cut in the same two
// parts (part q on thread q, or both on one thread), so the sums do not depend on the thread count. Only
// where the loop runs on several threads (decided by the shapes alone): on one, a single product after the
// loop is split over the threads instead. (The Cho GRU's two dW_hh products always follow the loop.) About
// 256 rows a chunk: RESULTS.md has the measurements behind both rules.
template <typename T>
struct ChunkedDwHh {
  bool on = false;
  int steps = 1, half = 0;

  ChunkedDwHh(Cell cell, bool parallel, int Ts, int N, int GH) {
    on = cell != Cell::GruCho && parallel;
    steps = std::max(1, std::min(Ts, (256 + N - 1) / N));
    half = ((GH + 1) / 2 + 7) / 8 * 8;
  }
  // After the loop step at recurrence position i (walking T-1..0): whether a chunk ends here
  bool ends_at(int i, int Ts) const { return on && (i == 0 || (Ts - i) % steps == 0); }

  // The chunk ending at i: dW_hh part q += dGh^T h_prev over its steps, this thread's parts.
  void add(const RecurrentBackwardParams<T>& p, const T* dGh, int GH, int i, const LoopThread& th) const {
    const int Ts = p.steps, N = p.batch, H = p.hidden;
    const int done_hi = Ts - 1 - (Ts - 1 - i) / steps * steps;  // the chunk's positions: i..done_hi
    const int ta = p.reverse ? Ts - 1 - done_hi : i, tb = p.reverse ? Ts - 1 - i : done_hi;  // t in [ta, tb]
    const index_t row0 = index_t(ta) * N, rows = index_t(tb - ta + 1) * N;
    for (int q = th.tid; q < 2; q += th.nt) {
      const int m0 = std::min(GH, q * half), m1 = std::min(GH, m0 + half);
      if (m1 > m0)
        gemm(true, false, m1 - m0, H, int(rows), T(1), dGh + row0 * GH + m0, GH, p.h_prev + row0 * H, H, T(1),
             p.dw_hh + index_t(m0) * H, H);
    }
  }
};

// After the loop: the large GEMMs over all steps. dx = dG W_ih; dW_ih += dG^T x (one-hot input: the sum of
// dG's rows whose index is c into column c, with the bias gradients where they are sums of dG: see
// OnehotGroups); the Cho GRU's dW_hh += dG^T h_prev (its n rows use r*h); dW_hh unless chunked; the biases.
template <typename T, Cell K>
void backward_weight_gradients(const RecurrentBackwardParams<T>& p, const BackwardBuffers<T>& buf,
                               OnehotScatter<T>& onehot, bool chunked_dw) {
  constexpr int G = gates_of(K);
  const int Ts = p.steps, N = p.batch, C = p.input_size, H = p.hidden, GH = G * H;
  const index_t TN = index_t(Ts) * N;
  const T* dG = buf.dG;
  const T* dGh = buf.dGh;
  const std::int32_t* len = p.lengths;  // variable lengths: the active rows only (the padding's dG rows are zero)
  if (p.dx && len) {  // the other rows of dx zero (or left as they are when accumulating)
    PackedB<T> w_in;
    pack_b(w_in, p.w_ih, C, GH, C, false);
    varlen::segments_gemm(varlen::active_segments(len, Ts, N), dG, GH, w_in, p.dx, p.lddx, p.accumulate_dx,
                          (const T*)nullptr);
    if (!p.accumulate_dx) varlen::zero_inactive_rows(len, Ts, N, p.dx, C, p.lddx);
  } else if (p.dx) {
    PackedB<T> w_in;
    pack_b(w_in, p.w_ih, C, GH, C, false);
    small_gemm(Ts * N, dG, GH, w_in, p.dx, p.lddx, p.accumulate_dx);
  }
  T* db_ih = p.db_ih;
  T* db_hh = p.db_hh;
  if (p.x_index) {
    const bool fused = onehot.groups.fused;
    if (!fused) add_onehot_scatter(p.x_index, TN, C, GH, dG, onehot.acc.get());
    add_onehot_tables(onehot.acc.get(), fused ? 2 : 1, C, GH, p.dw_ih, db_ih, dGh == dG ? db_hh : nullptr);
    db_ih = nullptr;
    if (dGh == dG) db_hh = nullptr;
  } else if (len) {
    varlen::gemm_tn_active(varlen::active_segments(len, Ts, N), GH, C, dG, GH, p.x, p.ldx, p.dw_ih, C);
  } else {
    gemm_parallel(true, false, GH, C, Ts * N, T(1), dG, GH, p.x, p.ldx, T(1), p.dw_ih, C);
  }
  if (len && K != Cell::GruCho) {
    varlen::gemm_tn_active(varlen::active_segments(len, Ts, N), GH, H, dGh, GH, (const T*)p.h_prev, H, p.dw_hh, H);
  } else if constexpr (K == Cell::GruCho) {
    gemm_parallel(true, false, 2 * H, H, Ts * N, T(1), dG, GH, p.h_prev, H, T(1), p.dw_hh, H);
    gemm_parallel(true, false, H, H, Ts * N, T(1), dG + 2 * H, GH, p.extra, H, T(1), p.dw_hh + index_t(2) * H * H, H);
  } else if (!chunked_dw) {
    gemm_parallel(true, false, GH, H, Ts * N, T(1), dGh, GH, p.h_prev, H, T(1), p.dw_hh, H);
  }
  if (db_ih) add_column_sums(db_ih, dG, TN, GH, GH);
  if (db_hh) add_column_sums(db_hh, dGh, TN, GH, GH);
}

template <typename T, Cell K>
void backward_impl(const RecurrentBackwardParams<T>& p) {
  constexpr int G = gates_of(K);
  constexpr bool kGru = K == Cell::Gru || K == Cell::GruCho;
  constexpr int UB = unit_block<T>();
  const int Ts = p.steps, N = p.batch, C = p.input_size, H = p.hidden, GH = G * H;
  const index_t NH = index_t(N) * H, NGH = index_t(N) * GH;
  const bool by_rows = rows_schedule(N);
  const int blocks = (H + UB - 1) / UB;
  const BackwardBuffers<T> buf(p.work, K, Ts, N, H);
  T* dG = buf.dG;
  T* dGh = buf.dGh;

  copy_or_zero(buf.dh_run, p.dh_n, NH);
  if (K == Cell::Lstm) copy_or_zero(buf.dc_run, p.dc_n, NH);
  // W_hh packed once: dh_prev = dGh · W_hh (the Cho GRU: r, z rows; its n rows give drh); its panels are
  // blocks of units, as the by-units schedule owns them
  PackedB<T> w_rec, w_n;
  pack_b(w_rec, p.w_hh, H, K == Cell::GruCho ? 2 * H : GH, H, false);
  if (K == Cell::GruCho) pack_b(w_n, p.w_hh + index_t(2) * H * H, H, H, H, false);
  OnehotScatter<T> onehot;
  onehot_scatter_setup(p, GH, blocks, onehot);
  const OnehotGroups& groups = onehot.groups;
  // (variable lengths: dW_hh after the loop, over the active rows only; varlen::gemm_tn_active)
  const ChunkedDwHh<T> chunks(K, parallel_loop(N, G, H) && !p.lengths, Ts, N, GH);
  const std::int32_t* len = p.lengths;  // variable lengths (varlen.h)
  // The one-hot scatter's two tables are the two rows groups of a two-thread split: no more threads.
  const int threads =
      groups.fused ? std::min(2, recurrent_threads(N, G, H, blocks)) : recurrent_threads(N, G, H, blocks);

  // Each step shared as step_split says. By units, a step's only barrier comes before its GEMM (which reads
  // every unit's dGh); each thread's next cell update reads only its own units of the dh the GEMM wrote.
  time_loop(
      TimeLoop{Ts, p.reverse, Walk::Backward, threads},
      [&](const LoopThread& th) {
        ThreadShare<T> s = thread_share(th, N, H, blocks, buf.dh_run, buf.dh_next);
        if (groups.fused && s.split.n1 > s.split.n0)  // each thread clears the tables of its own rows
          for (int g = groups.of(s.split.n0); g <= groups.of(s.split.n1 - 1); ++g)
            std::fill(onehot.acc.get() + g * index_t(C) * GH, onehot.acc.get() + (g + 1) * index_t(C) * GH, T(0));
        return s;
      },
      [&](const LoopThread& th, ThreadShare<T>& s, int t, int i) {
        const StepSplit& split = s.split;
        const int n0 = split.n0, n1 = split.n1, j0 = s.j0, j1 = s.j1;
        // row n of dG_t, once complete, into its group's table (the Cho GRU's r columns come after its second
        // GEMM)
        const auto scatter_row = [&](int n) {
          add_into(GH, onehot.acc.get() + (groups.of(n) * index_t(C) + p.x_index[index_t(t) * N + n]) * GH,
                   (const T*)dG + t * NGH + index_t(n) * GH);
        };
        // a row past its end (variable lengths): its state gradient carried over, zero gate gradients (the
        // products after the loop run over all rows), over this thread's units
        const auto inactive_row = [&](int n) {
          if (j1 <= j0) return;
          std::memcpy(s.nxt + index_t(n) * H + j0, s.cur + index_t(n) * H + j0, sizeof(T) * (j1 - j0));
          for (int g = 0; g < G; ++g) {
            T* d = dG + t * NGH + index_t(n) * GH + index_t(g) * H;
            std::fill(d + j0, d + j1, T(0));
            if (dGh != dG) std::fill(d - dG + dGh + j0, d - dG + dGh + j1, T(0));
          }
        };
        const T* dyt = p.dy ? p.dy + index_t(t) * N * p.lddy : nullptr;
        for (int n = n0; n < n1; ++n) {
          T* dh = s.cur + index_t(n) * H;
          if (!varlen::active(len, t, n)) {
            inactive_row(n);
            continue;
          }
          if (dyt && j1 > j0) add_into(j1 - j0, dh + j0, dyt + index_t(n) * p.lddy + j0);
          if (p.zoneout)
            zoneout_row_backward(j1 - j0, p.zoneout + t * NH + index_t(n) * H + j0, dh + j0,
                                 buf.zo_carry + index_t(n) * H + j0);
          const T* g = p.gates + t * NGH + index_t(n) * GH;
          const T* hprev = p.h_prev + t * NH + index_t(n) * H;
          const T* cprev = K == Cell::Lstm ? p.c_prev + t * NH + index_t(n) * H : nullptr;
          const T* extra = K == Cell::Gru ? p.extra + t * NH + index_t(n) * H : nullptr;
          T* d = dG + t * NGH + index_t(n) * GH;
          T* side = dGh + t * NGH + index_t(n) * GH;
          // by rows the whole row at once, by units block by block
          for (int b = split.b0; b < split.b1; b += by_rows ? blocks : 1)
            cell_backward<T, K>(by_rows ? H : block_width(b, UB, H), b * UB, H, dh, g, hprev, cprev, extra,
                                buf.dc_run + index_t(n) * H, d, side, s.nxt + index_t(n) * H);
          if (K != Cell::GruCho && groups.fused) scatter_row(n);
        }
        if constexpr (K == Cell::GruCho) {
          // drh = dn_pre · W_hn  ([N,H] x [H,H]); then r's gradient and r*h's share of dh_prev
          T* dGt = dG + t * NGH;
          if (!by_rows) th.sync();  // every unit's dn_pre
          step_gemm_active(len, t, split, N, 1, (const T*)dGt + 2 * H, GH, w_n, buf.drh, H, false, (const T*)nullptr);
          for (int n = n0; n < n1; ++n) {
            if (!varlen::active(len, t, n)) continue;
            gru_r_before_backward(j1 - j0, buf.drh + index_t(n) * H + j0, p.gates + t * NGH + index_t(n) * GH + j0,
                                  p.h_prev + t * NH + index_t(n) * H + j0, dGt + index_t(n) * GH + j0,
                                  s.nxt + index_t(n) * H + j0);
            if (groups.fused) scatter_row(n);
          }
        }
        if (!by_rows) th.sync();  // every unit's dGh_t before the GEMM reads it
        // dh_prev (+)= dGh_t · W_hh   ([N,GH] x [GH,H]; the Cho GRU's n rows were handled above)
        step_gemm_active(len, t, split, N, 1, (const T*)dGh + t * NGH, GH, w_rec, s.nxt, H, kGru, (const T*)nullptr);
        if (p.zoneout)  // the direct share, after the product that wrote (or added into) dh_{t-1}
          for (int n = n0; n < n1; ++n)
            if (varlen::active(len, t, n) && j1 > j0)
              add_into(j1 - j0, s.nxt + index_t(n) * H + j0, buf.zo_carry + index_t(n) * H + j0);
        std::swap(s.cur, s.nxt);
        if (chunks.ends_at(i, Ts)) {
          th.sync();  // every thread's rows of the chunk's steps are done
          chunks.add(p, dGh, GH, i, th);
        }
      });
  // where the last step's result lies
  std::memcpy(p.dh0, Ts % 2 == 1 ? buf.dh_next : buf.dh_run, sizeof(T) * NH);
  if (K == Cell::Lstm) std::memcpy(p.dc0, buf.dc_run, sizeof(T) * NH);
  backward_weight_gradients<T, K>(p, buf, onehot, chunks.on);
}

}  // namespace

index_t recurrent_workspace_size(Cell cell, int steps, int batch, int hidden, bool backward) {
  const int G = gates_of(cell);
  if (!backward) return ForwardWork<float>::size(G, steps, batch, hidden);  // the float blocks are the wider
  const index_t tngh = index_t(steps) * batch * G * hidden;
  return (cell == Cell::Gru ? 2 : 1) * tngh + 5 * index_t(batch) * hidden;
}

template <typename T>
void recurrent_forward_cpu(const RecurrentForwardParams<T>& p) {
  const EngineCall in_flight;
  switch (p.cell) {
    case Cell::RnnTanh: return forward_impl<T, Cell::RnnTanh>(p);
    case Cell::RnnRelu: return forward_impl<T, Cell::RnnRelu>(p);
    case Cell::Lstm: return forward_impl<T, Cell::Lstm>(p);
    case Cell::Gru: return forward_impl<T, Cell::Gru>(p);
    case Cell::GruCho: return forward_impl<T, Cell::GruCho>(p);
  }
  throw std::invalid_argument("recurrent_forward_cpu: unknown cell");
}

template <typename T>
void recurrent_backward_cpu(const RecurrentBackwardParams<T>& p) {
  const EngineCall in_flight;
  switch (p.cell) {
    case Cell::RnnTanh: return backward_impl<T, Cell::RnnTanh>(p);
    case Cell::RnnRelu: return backward_impl<T, Cell::RnnRelu>(p);
    case Cell::Lstm: return backward_impl<T, Cell::Lstm>(p);
    case Cell::Gru: return backward_impl<T, Cell::Gru>(p);
    case Cell::GruCho: return backward_impl<T, Cell::GruCho>(p);
  }
  throw std::invalid_argument("recurrent_backward_cpu: unknown cell");
}

template void recurrent_forward_cpu<float>(const RecurrentForwardParams<float>&);
template void recurrent_forward_cpu<double>(const RecurrentForwardParams<double>&);
template void recurrent_backward_cpu<float>(const RecurrentBackwardParams<float>&);
template void recurrent_backward_cpu<double>(const RecurrentBackwardParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
