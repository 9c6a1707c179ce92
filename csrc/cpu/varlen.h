// Variable-length batches in the CPU time loops (rnnfast/recurrent.h's `lengths`).
//
// Row n of a batch runs the steps t < lengths[n] (in either direction: a reverse direction starts at its
// own last step, as torch's pack_padded_sequence gives), so at step t the active rows are those with
// lengths[n] > t. The loops run the recurrent GEMM only over maximal runs of consecutive active rows and
// the cell only on active rows; an inactive row keeps its state (forward) or its state gradient
// (backward) untouched. The layers order the rows so that each thread's rows are sorted by length
// (longest first): its active rows are then one run, a prefix, and the cost follows the real work.
#pragma once

#include <algorithm>
#include <cstdint>

#include "blas.h"
#include "buffer.h"
#include "rnnfast/parallel.h"
#include "small_gemm.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace varlen {

inline bool active(const std::int32_t* lengths, int t, int n) { return !lengths || lengths[n] > t; }

// fn(r0, r1) for each maximal run [r0, r1) of active rows in [lo, hi) at step t (all of it without lengths).
template <typename Fn>
void for_active_runs(const std::int32_t* lengths, int t, int lo, int hi, Fn&& fn) {
  if (!lengths) {
    if (hi > lo) fn(lo, hi);
    return;
  }
  int n = lo;
  while (n < hi) {
    while (n < hi && lengths[n] <= t) ++n;
    const int r0 = n;
    while (n < hi && lengths[n] > t) ++n;
    if (n > r0) fn(r0, n);
  }
}

// The steps [0, t_full) in which every row of the batch is active (min of lengths; T without lengths).
inline int full_steps(const std::int32_t* lengths, int N, int T) {
  if (!lengths) return T;
  int m = T;
  for (int n = 0; n < N; ++n) m = lengths[n] < m ? lengths[n] : m;
  return m;
}

// Rows of a [T,N,width] sequence (flattened to T*N rows) that hold active steps: the steps [0, t_full)
// whole, as one segment, then each later step's runs. Products over all steps (the input projection, dx)
// run over these segments only.
struct Segment {
  index_t row0;
  int rows;
};

inline vector<Segment> active_segments(const std::int32_t* lengths, int T, int N) {
  const int t_full = full_steps(lengths, N, T);
  vector<Segment> segs;
  if (t_full > 0) segs.push_back({0, t_full * N});
  for (int t = t_full; t < T; ++t)
    for_active_runs(lengths, t, 0, N, [&](int r0, int r1) { segs.push_back({index_t(t) * N + r0, r1 - r0}); });
  return segs;
}

// C = A · B (+ bias) on the rows of the segments (C's other rows untouched), as small_gemm, in one
// parallel loop over all segments' tasks. The tasks differ in size (the first segment's row blocks are
// long, the later steps' runs short), so each thread takes a share of the rows, not of the tasks: split
// by task count, one thread got about three quarters of the work (LSTM 100x32x256x256, lengths in [50, 100]).
template <typename T>
void segments_gemm(const vector<Segment>& segs, const T* A, index_t lda, const PackedB<T>& B, T* C, index_t ldc,
                   bool accumulate, const T* bias) {
  vector<int> first(segs.size() + 1, 0);    // first task of each segment
  vector<double> done(segs.size() + 1, 0);  // rows of the segments before each
  for (size_t s = 0; s < segs.size(); ++s) {
    first[s + 1] = first[s] + small_gemm_tasks(segs[s].rows, B);
    done[s + 1] = done[s] + segs[s].rows;
  }
  const int tasks = first.back();
  const auto run = [&](int task) {
    const size_t s = size_t(std::upper_bound(first.begin(), first.end(), task) - first.begin()) - 1;
    const Segment g = segs[s];
    small_gemm_task(task - first[s], g.rows, A + g.row0 * lda, lda, B, C + g.row0 * ldc, ldc, accumulate, bias);
  };
  // the first task at a share of the rows (a segment's tasks take equal parts of its rows)
  const auto task_at = [&](double rows) {
    const size_t s =
        std::min(segs.size() - 1, size_t(std::upper_bound(done.begin(), done.end(), rows) - done.begin()) - 1);
    const double in = (rows - done[s]) / std::max(1.0, double(segs[s].rows));
    return std::min(first[s + 1], first[s] + int(in * (first[s + 1] - first[s]) + 0.5));
  };
  const int parts = std::max(1, std::min(engine_threads(), tasks));
  parallel_for(parts, done.back() * B.M * B.K > 4e6 && tasks > 1, [&](int part) {
    const int t0 = part == 0 ? 0 : task_at(done.back() * part / parts);
    const int t1 = part == parts - 1 ? tasks : task_at(done.back() * (part + 1) / parts);
    for (int task = t0; task < t1; ++task) run(task);
  });
}

// C[M,Nc] += A^T B over the active rows only, A: [T*N rows, M] (row stride lda), B: [T*N rows, Nc] (ldb):
// a weight gradient (dW = dG^T x) without the padding's zero rows. The first segment (the steps every row
// runs) is one product in place; the later steps' active rows are gathered into contiguous blocks first,
// one product more.
template <typename T>
void gemm_tn_active(const vector<Segment>& segs, int M, int Nc, const T* A, index_t lda, const T* B, index_t ldb, T* Cm,
                    index_t ldc) {
  if (segs.empty()) return;
  gemm_parallel(true, false, M, Nc, segs[0].rows, T(1), A + segs[0].row0 * lda, lda, B + segs[0].row0 * ldb, ldb, T(1),
                Cm, ldc);
  index_t R = 0;
  for (size_t s = 1; s < segs.size(); ++s) R += segs[s].rows;
  if (R == 0) return;
  vector<T> ga(R * M), gb(R * Nc);
  vector<index_t> at(segs.size(), 0);  // each segment's first row in the gathered blocks
  for (size_t s = 2; s < segs.size(); ++s) at[s] = at[s - 1] + segs[s - 1].rows;
  parallel_for(2, double(R) * (M + Nc) > 1e5, [&](int half) {  // the copies split between two threads
    for (size_t s = 1 + half; s < segs.size(); s += 2)
      for (int i = 0; i < segs[s].rows; ++i) {
        const index_t r = at[s] + i;
        std::copy(A + (segs[s].row0 + i) * lda, A + (segs[s].row0 + i) * lda + M, ga.data() + r * M);
        std::copy(B + (segs[s].row0 + i) * ldb, B + (segs[s].row0 + i) * ldb + Nc, gb.data() + r * Nc);
      }
  });
  gemm_parallel(true, false, M, Nc, int(R), T(1), (const T*)ga.data(), M, (const T*)gb.data(), Nc, T(1), Cm, ldc);
}

// The rows of a [T,N,width] sequence (row stride ld) past their sequence's end set to zero.
template <typename T>
void zero_inactive_rows(const std::int32_t* lengths, int T_, int N, T* a, int width, index_t ld) {
  for (int n = 0; n < N; ++n)
    for (int t = lengths[n]; t < T_; ++t)
      std::fill(a + (index_t(t) * N + n) * ld, a + (index_t(t) * N + n) * ld + width, T(0));
}

}  // namespace varlen
}  // namespace RNNFAST_TIER
}  // namespace rnnfast
