// The CPU reservoir engine: the whole sequence in one call, for a batch of sequences and a population of
// reservoirs sharing one W (see rnnfast/reservoir.h). Inside the loop, one W·x per step (dense: the packed
// kernel; CSR: a row-parallel SpMV or SpMM, or for one long sequence the SELL layout below) fused with the
// leaky-integrator update from the shared cell math.
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "rnnfast/cell_math.h"
#include "rnnfast/parallel.h"
#include "rnnfast/reservoir.h"

#include "buffer.h"
#include "simd/sell.h"
#include "simd/transpose.h"
#include "simd/vec.h"
#include "small_gemm.h"
#include "time_loop.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

using loop::loop_threads;
using loop::LoopThread;
using loop::time_loop;
using loop::TimeLoop;
using loop::Walk;

// ---- the input term ------------------------------------------------------------------------------
// W_in u_t of one step. With few inputs (I <= kInlineInputs, the usual ESN) it is computed inside the row
// loop from W_in^T (I multiply-adds per unit and sequence), so the [T*B, N] buffer of all steps is never
// allocated nor written (for T*B*N = 32M floats that buffer's page faults and writes alone cost as much
// as the reservoir loop). With many inputs it is one GEMM before the loop, as for dense W.
constexpr int kInlineInputs = 32;

template <typename T>
struct InputTerm {
  const T* up = nullptr;  // [T*B, N] = u · W_in^T, or nullptr: computed from w_in_t and u
  vector<T> w_in_t;  // [I, N]
  const T* u = nullptr;   // [T, B, I]
  int B = 0, I = 0, N = 0;

  // out[i - i0] = (W_in u_{t,0})_i for the rows [i0, i1) of sequence 0
  void rows(int t, int i0, int i1, T* __restrict out) const {
    const int n = i1 - i0;
    if (up) {
      std::memcpy(out, up + index_t(t) * B * N + i0, sizeof(T) * n);
      return;
    }
    const T* ut = u + index_t(t) * B * I;
    const T* __restrict w = w_in_t.data() + i0;
    for (int i = 0; i < n; ++i) out[i] = ut[0] * w[i];
    for (int k = 1; k < I; ++k)
      for (int i = 0; i < n; ++i) out[i] += ut[k] * w[index_t(k) * N + i];
  }
  // out[b] = (W_in u_{t,b})_i for every sequence b; uT: [I, B], this step's inputs transposed
  void column(int t, int i, const T* __restrict uT, T* __restrict out) const {
    if (up) {
      for (int b = 0; b < B; ++b) out[b] = up[(index_t(t) * B + b) * N + i];
      return;
    }
    const T w0 = w_in_t[i];
    for (int b = 0; b < B; ++b) out[b] = w0 * uT[b];
    for (int k = 1; k < I; ++k) {
      const T wk = w_in_t[index_t(k) * N + i];
      for (int b = 0; b < B; ++b) out[b] += wk * uT[index_t(k) * B + b];
    }
  }
};

// ---- CSR kernels ---------------------------------------------------------------------------------
// The sparse dot product of one row with x. Kept scalar with four accumulators: vectorised, it becomes
// AVX-512 gathers, which are slower than scalar loads on AMD Zen (benchmarks/RESULTS.md, "Measurements
// behind the engine's rules").
template <typename T>
__attribute__((optimize("no-tree-vectorize"), noinline)) T csr_row_dot(index_t k, index_t end,
                                                                       const std::int32_t* __restrict indices,
                                                                       const T* __restrict values,
                                                                       const T* __restrict x) {
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (; k + 4 <= end; k += 4) {
    s0 += values[k] * x[indices[k]];
    s1 += values[k + 1] * x[indices[k + 1]];
    s2 += values[k + 2] * x[indices[k + 2]];
    s3 += values[k + 3] * x[indices[k + 3]];
  }
  for (; k < end; ++k) s0 += values[k] * x[indices[k]];
  return (s0 + s1) + (s2 + s3);
}

// acc[0:PB] = sum over the row's nonzeros of v * x[j, 0:PB], x: rows `ld` apart. Chunks of 4 vectors
// stay in registers across the nonzeros; two nonzeros per iteration into two sets of accumulators, so
// the multiply-adds are not one dependency chain (with one set, a nonzero costs an FMA latency, 4 cycles).
template <typename T>
void csr_row_times_block(index_t k0, index_t k1, const std::int32_t* __restrict indices, const T* __restrict values,
                         const T* __restrict x, index_t ld, int PB, T* __restrict acc) {
  using V = typename Vec<T>::type;
  constexpr int L = lanes<T>(), CW = 4 * L;
  int c = 0;
  for (; c + CW <= PB; c += CW) {
    V a0 = V{}, a1 = V{}, a2 = V{}, a3 = V{}, b0 = V{}, b1 = V{}, b2 = V{}, b3 = V{};
    index_t k = k0;
    for (; k + 2 <= k1; k += 2) {
      const T v = values[k], w = values[k + 1];
      const V* xr = reinterpret_cast<const V*>(x + index_t(indices[k]) * ld + c);
      const V* yr = reinterpret_cast<const V*>(x + index_t(indices[k + 1]) * ld + c);
      a0 += v * xr[0];
      a1 += v * xr[1];
      a2 += v * xr[2];
      a3 += v * xr[3];
      b0 += w * yr[0];
      b1 += w * yr[1];
      b2 += w * yr[2];
      b3 += w * yr[3];
    }
    if (k < k1) {
      const T v = values[k];
      const V* xr = reinterpret_cast<const V*>(x + index_t(indices[k]) * ld + c);
      a0 += v * xr[0];
      a1 += v * xr[1];
      a2 += v * xr[2];
      a3 += v * xr[3];
    }
    V* out = reinterpret_cast<V*>(acc + c);
    out[0] = a0 + b0;
    out[1] = a1 + b1;
    out[2] = a2 + b2;
    out[3] = a3 + b3;
  }
  for (; c + L <= PB; c += L) {
    V a0 = V{}, b0 = V{};
    index_t k = k0;
    for (; k + 2 <= k1; k += 2) {
      a0 += values[k] * *reinterpret_cast<const V*>(x + index_t(indices[k]) * ld + c);
      b0 += values[k + 1] * *reinterpret_cast<const V*>(x + index_t(indices[k + 1]) * ld + c);
    }
    if (k < k1) a0 += values[k] * *reinterpret_cast<const V*>(x + index_t(indices[k]) * ld + c);
    *reinterpret_cast<V*>(acc + c) = a0 + b0;
  }
  if (c < PB) {
    for (int r = c; r < PB; ++r) acc[r] = T(0);
    for (index_t k = k0; k < k1; ++k) {
      const T v = values[k];
      const T* __restrict xr = x + index_t(indices[k]) * ld;
      for (int r = c; r < PB; ++r) acc[r] += v * xr[r];
    }
  }
}

// ---- SELL: the one-sequence SpMV without gathers --------------------------------------------------
// Rows in slices of L (one vector: 16 floats or 8 doubles under AVX-512, 8 or 4 under AVX2); within a
// slice, the columns in blocks of CB = 4L. An entry is L values, one per row of the slice (zero where a
// row has fewer nonzeros in the block), and their L column offsets within the block (a byte each). x's
// block is held in 4 registers, so an entry's x values come from permutes and blends (simd/sell.h)
// instead of L indexed loads. Under AVX-512 an entry costs about as much as 2 nonzeros of the scalar CSR
// row dot, and holds up to L. The price is padding: each entry is as long as the fullest row of
// the slice in the block (at density 0.1 already well above the nonzeros; far more for very sparse W), so the
// layout is used only where the padding stays small (kSellMaxPadding) and the sequence is long enough
// to pay for the packing (kSellMinSteps).
constexpr int kSellMinSteps = 32;
constexpr index_t kSellSplitBytes = index_t(1) << 20;
constexpr index_t kSellSplitEntries = 16384;
constexpr index_t kSplitWork = index_t(1) << 16;
constexpr int kSellMaxPadding = 4;  // slots per nonzero: break-even with CSR is ~7 (per the costs above)

template <typename T>
struct SellW {
  static constexpr int L = lanes<T>(), CB = 4 * L;
  int slices = 0, blocks = 0;
  vector<std::int32_t> count;   // [slices, blocks] entries of slice s in column block b
  vector<index_t> slice_start;  // [slices + 1] first entry of each slice
  vector<T> values;             // [entries, L]
  vector<std::uint8_t> cols;    // [entries, L] column - b * CB
};

// Packs W (CSR) when the padding is small enough; returns false (and packs nothing) otherwise.
template <typename T>
bool pack_sell(SellW<T>& s, int N, const std::int32_t* indptr, const std::int32_t* indices, const T* values) {
  constexpr int L = SellW<T>::L, CB = SellW<T>::CB;
  const index_t nnz = indptr[N];
  s.slices = (N + L - 1) / L;
  s.blocks = (N + CB - 1) / CB;
  // every step visits each (slice, block) pair: not worth it (nor its memory) for a large, very sparse W
  if (index_t(s.slices) * s.blocks > nnz) return false;
  s.count.assign(index_t(s.slices) * s.blocks, 0);
  s.slice_start.assign(s.slices + 1, 0);
  vector<std::int32_t> fill(s.blocks, 0);  // per block, for the row at hand (reset nonzero by nonzero)
  index_t entries = 0;
  for (int sl = 0; sl < s.slices; ++sl) {
    std::int32_t* c = s.count.data() + index_t(sl) * s.blocks;
    for (int i = sl * L; i < std::min(N, sl * L + L); ++i) {
      for (index_t k = indptr[i]; k < indptr[i + 1]; ++k) ++fill[indices[k] / CB];
      for (index_t k = indptr[i]; k < indptr[i + 1]; ++k) {
        const int b = indices[k] / CB;
        c[b] = std::max(c[b], fill[b]);
      }
      for (index_t k = indptr[i]; k < indptr[i + 1]; ++k) fill[indices[k] / CB] = 0;
    }
    for (int b = 0; b < s.blocks; ++b) entries += c[b];
    s.slice_start[sl + 1] = entries;
  }
  if (nnz == 0 || entries * L > kSellMaxPadding * nnz) return false;
  s.values.assign(entries * L, T(0));
  s.cols.assign(entries * L, 0);
  vector<index_t> first(s.blocks);
  for (int sl = 0; sl < s.slices; ++sl) {
    const std::int32_t* c = s.count.data() + index_t(sl) * s.blocks;
    index_t e = s.slice_start[sl];
    for (int b = 0; b < s.blocks; ++b) {
      first[b] = e;
      e += c[b];
    }
    for (int i = sl * L; i < std::min(N, sl * L + L); ++i) {
      const int lane = i - sl * L;
      for (index_t k = indptr[i]; k < indptr[i + 1]; ++k) {
        const int b = indices[k] / CB;
        const index_t slot = (first[b] + fill[b]++) * L + lane;
        s.values[slot] = values[k];
        s.cols[slot] = static_cast<std::uint8_t>(indices[k] - b * CB);
      }
      for (index_t k = indptr[i]; k < indptr[i + 1]; ++k) fill[indices[k] / CB] = 0;
    }
  }
  return true;
}

// dot[0:L] = the slice's L rows of W times x (x: [blocks * CB], zero beyond N)
template <typename T>
void sell_slice_dot(const SellW<T>& s, int sl, const T* __restrict x, T* __restrict dot) {
  using O = SellOps<T>;
  constexpr int L = SellW<T>::L, CB = SellW<T>::CB;
  const std::int32_t* cnt = s.count.data() + index_t(sl) * s.blocks;
  const T* __restrict v = s.values.data();
  const std::uint8_t* __restrict c = s.cols.data();
  index_t e = s.slice_start[sl];
  typename O::V a0 = O::zero(), a1 = O::zero();
  for (int b = 0; b < s.blocks; ++b) {
    const index_t end = e + cnt[b];
    if (e == end) continue;
    const T* xb = x + index_t(b) * CB;
    const typename O::V x0 = O::load(xb), x1 = O::load(xb + L), x2 = O::load(xb + 2 * L), x3 = O::load(xb + 3 * L);
    for (; e + 2 <= end; e += 2) {
      a0 = O::fma(O::load(v + e * L), O::pick(c + e * L, x0, x1, x2, x3), a0);
      a1 = O::fma(O::load(v + (e + 1) * L), O::pick(c + (e + 1) * L, x0, x1, x2, x3), a1);
    }
    if (e < end) {
      a0 = O::fma(O::load(v + e * L), O::pick(c + e * L, x0, x1, x2, x3), a0);
      ++e;
    }
  }
  O::store(dot, O::add(a0, a1));
}

// Rows [r0, r1) of thread tid of nt, cut at multiples of `grain` where cost(i) (the work of rows [0, i),
// nondecreasing) crosses tid / nt of the total.
template <typename Cost>
void balanced_rows(int tid, int nt, int N, int grain, Cost cost, int& r0, int& r1) {
  const double total = double(cost(N));
  auto cut = [&](int k) {
    if (k <= 0) return 0;
    if (k >= nt) return N;
    int i = 0;
    while (i < N && double(cost(i)) < total * k / nt) i += grain;
    return std::min(i, N);
  };
  r0 = cut(tid);
  r1 = cut(tid + 1);
}

// The update of n units of one sequence: x = leaky(x_prev, s * Wx + c * W_in u + bias, leak), written to
// the next state (xn) and to the step's states (so). A function of its own with restrict pointers, so the
// loop (with the polynomial tanh) is vectorised.
template <typename T>
__attribute__((noinline)) void leaky_rows(int n, const T* __restrict xp, const T* __restrict wx, T s,
                                          const T* __restrict win, T c, const T* __restrict bias,
                                          const T* __restrict leak, T* __restrict xn, T* __restrict so) {
  if (bias) {
    for (int i = 0; i < n; ++i) {
      const T x = leaky_unit(xp[i], s * wx[i] + c * win[i] + bias[i], leak[i]);
      xn[i] = x;
      so[i] = x;
    }
  } else {
    for (int i = 0; i < n; ++i) {
      const T x = leaky_unit(xp[i], s * wx[i] + c * win[i], leak[i]);
      xn[i] = x;
      so[i] = x;
    }
  }
}

// st[r, i] = x[i, r] for the rows [i0, i1): the step's states ([P*B, N] layout) from the batched state
// ([N, P*B]).
template <typename T>
void states_from_rows(const T* x, int PB, int N, int i0, int i1, T* st) {
  transpose(i1 - i0, PB, x + index_t(i0) * PB, PB, st + i0, N);
}

// One step of the batched CSR path for the rows [r0, r1): x_next[i, :] over the P*B lanes (lane r = m*B + b
// of member m), from x_prev [N, PB]. uT [I, B], acc, lane_in [PB], w [B]: scratch.
// One sequence per member (B = 1), the search's case: the input term is the lane's input scale times one
// number per row, folded into the update (a per-member loop over B here cost 16% of the step).
template <typename T>
__attribute__((noinline)) void batched_update_b1(int PB, const T* __restrict xp, const T* __restrict a,
                                                 const T* __restrict sr, const T* __restrict insc, T w, T bi,
                                                 const T* __restrict lk, T* __restrict xn) {
  for (int r = 0; r < PB; ++r) xn[r] = leaky_unit(xp[r], sr[r] * a[r] + insc[r] * w + bi, lk[r]);
}

template <typename T>
void batched_rows(const ReservoirParams<T>& p, const InputTerm<T>& in, int t, int r0, int r1, const T* lane_sr,
                  const T* lane_insc, const T* lane_leak, const T* xprev, T* xnext, T* uT, T* __restrict a,
                  T* __restrict li, T* __restrict w) {
  const int B = p.batch, P = p.population, PB = P * B, I = p.inputs;
  const T* ut = p.u + index_t(t) * B * I;  // [B, I] -> uT [I, B]
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < I; ++k) uT[index_t(k) * B + b] = ut[index_t(b) * I + k];
  const T* __restrict sr = lane_sr;
  for (int i = r0; i < r1; ++i) {
    csr_row_times_block(p.indptr[i], p.indptr[i + 1], p.indices, p.values, xprev, PB, PB, a);
    in.column(t, i, uT, w);
    const T bi = p.bias ? p.bias[i] : T(0);
    const T* __restrict lk = lane_leak + index_t(i) * PB;
    const T* __restrict xp = xprev + index_t(i) * PB;
    T* __restrict xn = xnext + index_t(i) * PB;
    if (B == 1) {
      batched_update_b1(PB, xp, a, sr, lane_insc, w[0], bi, lk, xn);
      continue;
    }
    for (int m = 0; m < P; ++m) {
      const T c = p.in_scale[m];
      for (int b = 0; b < B; ++b) li[m * B + b] = c * w[b];
    }
    for (int r = 0; r < PB; ++r) xn[r] = leaky_unit(xp[r], sr[r] * a[r] + li[r] + bi, lk[r]);
  }
}

// ---- the CSR time loop ---------------------------------------------------------------------------
// One sequence: x_prev is a vector and each row a sparse dot product (SELL or CSR), followed by the
// vectorised leaky update of the thread's rows. Several (population x batch): the state is kept as
// [N, P*B] so each nonzero W[i,j] scales one contiguous row x_prev[j, :], read once per step for all.
template <typename T>
void run_csr(const ReservoirParams<T>& p, const InputTerm<T>& in) {
  const int Ts = p.steps, B = p.batch, N = p.units, P = p.population, PB = P * B, I = p.inputs;
  const std::int32_t* __restrict indptr = p.indptr;
  const std::int32_t* __restrict indices = p.indices;
  const T* __restrict values = p.values;
  const index_t nnz = indptr[N];
  SellW<T> sell;
  const bool use_sell = kHaveSell<T> && PB == 1 && Ts >= kSellMinSteps && pack_sell(sell, N, indptr, indices, values);
  constexpr int CB = SellW<T>::CB;
  const index_t NX = use_sell ? index_t(sell.blocks) * CB : N;  // x padded with zeros to whole blocks
  vector<T> xa(NX * PB, T(0)), xb(NX * PB, T(0));
  if (p.x0)  // [P,B,N] -> [N,PB]
    for (int r = 0; r < PB; ++r)
      for (int i = 0; i < N; ++i) xa[index_t(i) * PB + r] = p.x0[index_t(r) * N + i];
  // per-lane constants of the batched path: lane r = m*B + b of member m
  vector<T> lane_sr, lane_insc, lane_leak;
  if (PB > 1) {
    lane_sr.resize(PB);
    lane_insc.resize(PB);
    lane_leak.resize(index_t(N) * PB);  // [N, PB]
    for (int r = 0; r < PB; ++r) lane_sr[r] = p.sr_scale[r / B];
    for (int r = 0; r < PB; ++r) lane_insc[r] = p.in_scale[r / B];
    for (int i = 0; i < N; ++i)
      for (int r = 0; r < PB; ++r) lane_leak[index_t(i) * PB + r] = p.leak[index_t(r / B) * N + i];
  }
  // On the time-loop skeleton: each thread owns a fixed range of rows (balanced by work) and the threads
  // meet at a barrier once per step. The barrier makes every step wait for the slower thread, and for a
  // descheduled one whenever another process takes a core, so a step is split only when it is long (tens
  // of microseconds on one core): the SELL step when its matrix outgrows one core's L2 (kSellSplitBytes;
  // then the parts fit) or has many entries (kSellSplitEntries), the CSR step from kSplitWork vector
  // multiply-adds. The measurements behind the thresholds: benchmarks/RESULTS.md, "Measurements behind
  // the engine's rules".
  const index_t sell_bytes = use_sell ? sell.slice_start[sell.slices] * SellW<T>::L * index_t(sizeof(T) + 1) : 0;
  const index_t step_work = nnz * ((PB + lanes<T>() - 1) / lanes<T>());
  const index_t sell_entries = use_sell ? sell.slice_start[sell.slices] : 0;
  const bool parallel =
      use_sell ? sell_bytes > kSellSplitBytes || sell_entries >= kSellSplitEntries : step_work >= kSplitWork;
  T* const buf[2] = {xa.data(), xb.data()};
  // this thread's rows [r0, r1) and its scratch vectors
  struct Rows {
    int r0 = 0, r1 = 0;
    vector<T> dot, term, uT, lane_in, acc;
  };
  const auto setup = [&](const LoopThread& th) {
    Rows w;
    w.r1 = N;
    if (use_sell)
      balanced_rows(
          th.tid, th.nt, N, SellW<T>::L,
          [&](int i) {
            const int sl = std::min((i + SellW<T>::L - 1) / SellW<T>::L, sell.slices);
            return sell.slice_start[sl] * SellW<T>::L + i;
          },
          w.r0, w.r1);
    else balanced_rows(th.tid, th.nt, N, 1, [&](int i) { return index_t(indptr[i]) + i; }, w.r0, w.r1);
    const int rows = w.r1 - w.r0;
    w.dot.resize(rows + SellW<T>::L);
    w.term.resize(std::max(rows, B));
    w.uT.resize(index_t(I) * B);
    w.lane_in.resize(PB);
    w.acc.resize(PB);
    return w;
  };
  time_loop(TimeLoop{Ts, false, Walk::Forward, loop_threads(parallel, N)}, setup,
            [&](const LoopThread& th, Rows& w, int t, int) {
              const int r0 = w.r0, r1 = w.r1, rows = r1 - r0;
              const T* __restrict xprev = buf[t & 1];
              T* __restrict xnext = buf[(t + 1) & 1];
              T* st = p.states + index_t(t) * PB * N;
              if (PB == 1) {
                T* __restrict d = w.dot.data();
                if (use_sell) {
                  if constexpr (kHaveSell<T>)
                    for (int i = r0; i < r1; i += SellW<T>::L)
                      sell_slice_dot(sell, i / SellW<T>::L, xprev, d + (i - r0));
                } else {
                  for (int i = r0; i < r1; ++i)
                    d[i - r0] = csr_row_dot(indptr[i], indptr[i + 1], indices, values, xprev);
                }
                in.rows(t, r0, r1, w.term.data());
                leaky_rows(rows, xprev + r0, d, p.sr_scale[0], w.term.data(), p.in_scale[0],
                           p.bias ? p.bias + r0 : nullptr, p.leak + r0, xnext + r0, st + r0);
              } else {
                batched_rows(p, in, t, r0, r1, lane_sr.data(), lane_insc.data(), lane_leak.data(), xprev, xnext,
                             w.uT.data(), w.acc.data(), w.lane_in.data(), w.term.data());
                states_from_rows(xnext, PB, N, r0, r1, st);  // this thread's rows of the step's states
              }
              th.sync();  // every row of x_t is written before any thread reads it
            });
}

// q[r] = W[r, :] . x for rows [r0, r1) of a dense row-major W: four rows at a time against the same
// vectors of x (which stays in L1), so W streams through once; whole vectors, then a scalar tail.
template <typename T>
void gemv_rows(const T* __restrict W, int N, const T* __restrict x, T* __restrict q, int r0, int r1) {
  using V = typename Vec<T>::type;
  constexpr int L = lanes<T>();
  const int nv = N / L * L;
  const auto load = [](const T* a) { return *reinterpret_cast<const V*>(a); };
  const auto hsum = [](const V& v) {
    T s = T(0);
    for (int j = 0; j < L; ++j) s += v[j];
    return s;
  };
  int r = r0;
  for (; r + 4 <= r1; r += 4) {
    const T* w0 = W + index_t(r) * N;
    const T *w1 = w0 + N, *w2 = w1 + N, *w3 = w2 + N;
    V a0{}, a1{}, a2{}, a3{};
    for (int k = 0; k < nv; k += L) {
      const V xv = load(x + k);
      a0 += load(w0 + k) * xv;
      a1 += load(w1 + k) * xv;
      a2 += load(w2 + k) * xv;
      a3 += load(w3 + k) * xv;
    }
    T s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
    for (int k = nv; k < N; ++k) {
      s0 += w0[k] * x[k];
      s1 += w1[k] * x[k];
      s2 += w2[k] * x[k];
      s3 += w3[k] * x[k];
    }
    q[r] = s0;
    q[r + 1] = s1;
    q[r + 2] = s2;
    q[r + 3] = s3;
  }
  for (; r < r1; ++r) {
    const T* w = W + index_t(r) * N;
    V a{};
    for (int k = 0; k < nv; k += L) a += load(w + k) * load(x + k);
    T s = hsum(a);
    for (int k = nv; k < N; ++k) s += w[k] * x[k];
    q[r] = s;
  }
}

// Dense W and one state (population x batch = 1, the usual ESN run): a matrix-vector product per step,
// W's rows streamed once (the packed GEMM kernel spends its time packing a single row), fused with the
// leaky update of the same rows. The threads split the rows when W is larger than a core's L2 (1 MiB).
template <typename T>
void run_dense_one(const ReservoirParams<T>& p, const T* up) {
  const int Ts = p.steps, N = p.units;
  const T s = p.sr_scale[0], c = p.in_scale[0];
  const T* __restrict leak = p.leak;
  vector<T> q(N), x0(N, T(0));
  if (p.x0) std::memcpy(x0.data(), p.x0, sizeof(T) * N);
  // the rows are cut at multiples of 8: gemv_rows's groups of four rows, and so every sum, are the same on
  // any number of threads
  const auto cut = [&](int k, int nt) { return k >= nt ? N : std::min(N, int((index_t(N) * k / nt + 7) / 8 * 8)); };
  const bool parallel = double(N) * N * sizeof(T) > double(1 << 20);
  time_loop(
      TimeLoop{Ts, false, Walk::Forward, loop_threads(parallel, (N + 7) / 8)},
      [&](const LoopThread& th) { return std::pair<int, int>(cut(th.tid, th.nt), cut(th.tid + 1, th.nt)); },
      [&](const LoopThread& th, std::pair<int, int>& rows, int t, int) {
        const auto [r0, r1] = rows;
        const T* __restrict xp = t == 0 ? x0.data() : p.states + index_t(t - 1) * N;
        T* __restrict x = p.states + index_t(t) * N;
        const T* __restrict u = up + index_t(t) * N;
        gemv_rows(p.w_dense, N, xp, q.data(), r0, r1);
        const T* __restrict qq = q.data();
        if (p.bias) {
          for (int i = r0; i < r1; ++i) x[i] = leaky_unit(xp[i], s * qq[i] + c * u[i] + p.bias[i], leak[i]);
        } else {
          for (int i = r0; i < r1; ++i) x[i] = leaky_unit(xp[i], s * qq[i] + c * u[i], leak[i]);
        }
        th.sync();  // every row of x_t is written before any thread reads it
      });
}

// Dense W, state layout [P*B, N] (row r = p*B + b), which is also the layout of one step of `states`.
template <typename T>
void run_dense(const ReservoirParams<T>& p, const T* up) {
  const int Ts = p.steps, B = p.batch, N = p.units, PB = p.population * p.batch;
  if (PB == 1) return run_dense_one(p, up);
  PackedB<T> w;
  pack_b(w, p.w_dense, N, N, N, true);  // W^T: the step computes X · W^T
  vector<T> wx(index_t(PB) * N), x0(index_t(PB) * N, T(0));
  if (p.x0) std::memcpy(x0.data(), p.x0, sizeof(T) * x0.size());
  const bool parallel_rows = index_t(PB) * N >= 32768;
  for (int t = 0; t < Ts; ++t) {
    const T* xprev = t == 0 ? x0.data() : p.states + index_t(t - 1) * PB * N;
    T* xt = p.states + index_t(t) * PB * N;
    small_gemm(PB, xprev, N, w, wx.data(), N, false);
    parallel_for(PB, parallel_rows, [&](int r) {
      const int m = r / B, b = r % B;
      const T s = p.sr_scale[m], c = p.in_scale[m];
      const T* __restrict a = p.leak + index_t(m) * N;
      const T* __restrict u = up + (index_t(t) * B + b) * N;
      const T* __restrict q = wx.data() + index_t(r) * N;
      const T* __restrict xp = xprev + index_t(r) * N;
      T* __restrict x = xt + index_t(r) * N;
      if (p.bias) {
        for (int i = 0; i < N; ++i) x[i] = leaky_unit(xp[i], s * q[i] + c * u[i] + p.bias[i], a[i]);
      } else {
        for (int i = 0; i < N; ++i) x[i] = leaky_unit(xp[i], s * q[i] + c * u[i], a[i]);
      }
    });
  }
}

}  // namespace

template <typename T>
void reservoir_run_cpu(const ReservoirParams<T>& p) {
  const EngineCall in_flight;
  const int Ts = p.steps, B = p.batch, I = p.inputs, N = p.units, PB = p.population * p.batch;
  // W_in u, shared by the population: inside the CSR loop for few inputs, else for every step and
  // sequence by one GEMM before the loop, up[T*B, N] = u · W_in^T
  InputTerm<T> in;
  in.u = p.u;
  in.B = B;
  in.I = I;
  in.N = N;
  vector<T> up;
  if (p.w_dense || I > kInlineInputs) {
    up.resize(index_t(Ts) * B * N);
    PackedB<T> w_in;
    pack_b(w_in, p.w_in, I, I, N, true);
    small_gemm(Ts * B, p.u, I, w_in, up.data(), N, false);
    in.up = up.data();
  } else {
    in.w_in_t.resize(index_t(I) * N);
    for (int i = 0; i < N; ++i)
      for (int k = 0; k < I; ++k) in.w_in_t[index_t(k) * N + i] = p.w_in[index_t(i) * I + k];
  }
  if (p.w_dense) run_dense(p, up.data());
  else run_csr(p, in);
  std::memcpy(p.x_last, p.states + index_t(Ts - 1) * PB * N, sizeof(T) * index_t(PB) * N);
}

template void reservoir_run_cpu<float>(const ReservoirParams<float>&);
template void reservoir_run_cpu<double>(const ReservoirParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
