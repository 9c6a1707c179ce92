// Online read-outs (LMS, RLS/FORCE) trained step by step with the reservoir (see rnnfast/online_readout.h).
//
// Why in the engine: reservoirpy's RLS step is ~10 NumPy calls that allocate N x N temporaries (the outer
// product, P + dP, the division), so a step at N = 500 costs several passes over 2 MB. Here a step is one
// pass over P: the rank-one update of step t-1 is applied row by row while the same rows are dotted with
// x_t, giving step t's P x_t (P is symmetric, so row i . x_t is (P x_t)_i).
//
// Threads: rows are split in fixed blocks of kBlock; every sum over rows is taken per block and the blocks
// added in order, so the results do not depend on the thread count. That lets a long run change its thread
// count between segments of steps: two threads meet at four barriers per step (~50 us at N = 500), and when
// another process takes one of the cores each barrier waits for the descheduled partner (measured 2.5k-9k
// steps/s against 14k on one thread). So a long run times short probes of both counts, runs segments on the
// faster one and probes the other now and then (on a quiet machine the probes cost under 1%).
#include "rnnfast/online_readout.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "rnnfast/cell_math.h"
#include "rnnfast/parallel.h"

#include "buffer.h"
#include "simd/vec.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

constexpr int kBlock = 32;                        // rows per block of the per-block partial sums
constexpr double kTwoThreadsWork = double(1 << 16);  // multiply-adds per step above which two threads split it
constexpr int kSegment = 128;     // steps per segment of a run that may switch thread counts
constexpr int kProbe = 16;        // steps of a probe of the other thread count
constexpr int kMinInterval = 8;   // segments between probes (doubled by each probe that loses) ...
constexpr int kMaxInterval = 64;  // ... up to this

// a . b over n elements, vectorised (GCC keeps float reductions scalar without -ffast-math)
template <typename T>
T dot(const T* __restrict a, const T* __restrict b, int n) {
  constexpr int L = lanes<T>();
  VecT<T> s0{}, s1{};
  int k = 0;
  for (; k + 2 * L <= n; k += 2 * L) {
    s0 += load(a + k) * load(b + k);
    s1 += load(a + k + L) * load(b + k + L);
  }
  for (; k + L <= n; k += L) s0 += load(a + k) * load(b + k);
  T s = hsum<T>(s0 + s1);
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

// row = (row - a * k) * inv_l, then returns row . x   (one pass: RLS's rank-one update and the next P x)
template <typename T>
T update_row_dot(T* __restrict row, const T* __restrict k, T a, T inv_l, const T* __restrict x, int n) {
  constexpr int L = lanes<T>();
  const VecT<T> va = splat(a), vl = splat(inv_l);
  VecT<T> s0{}, s1{};
  int j = 0;
  for (; j + 2 * L <= n; j += 2 * L) {
    const VecT<T> r0 = (load(row + j) - va * load(k + j)) * vl;
    const VecT<T> r1 = (load(row + j + L) - va * load(k + j + L)) * vl;
    store(row + j, r0);
    store(row + j + L, r1);
    s0 += r0 * load(x + j);
    s1 += r1 * load(x + j + L);
  }
  for (; j + L <= n; j += L) {
    const VecT<T> r0 = (load(row + j) - va * load(k + j)) * vl;
    store(row + j, r0);
    s0 += r0 * load(x + j);
  }
  T s = hsum<T>(s0 + s1);
  for (; j < n; ++j) {
    row[j] = (row[j] - a * k[j]) * inv_l;
    s += row[j] * x[j];
  }
  return s;
}

template <typename T>
void run(const OnlineReadoutParams<T>& p) {
  const int Ts = p.steps, I = p.inputs, N = p.units, O = p.n_outputs;
  const int V = I + (p.feedback ? O : 0);  // columns of W_in
  const bool rls = p.train && p.rule == OnlineRule::Rls;
  const int blocks = (N + kBlock - 1) / kBlock;
  const index_t nnz = p.w_dense ? index_t(N) * N : index_t(p.indptr[N]);
  const double work = double(nnz) + double(N) * (V + 2 * O) + (rls ? 2.0 * N * N : 0.0);
  const int want = work >= kTwoThreadsWork && blocks >= 2 ? 2 : 1;

  vector<T> xa(p.x, p.x + N), xb(N), v(std::max(V, 1)), k(rls ? N : 0), k_old(rls ? N : 0);
  vector<T> part_xk(blocks), part_y(index_t(blocks) * O), part_y2(index_t(blocks) * O), y(p.y, p.y + O);
  T* x_prev = xa.data();
  T* x_cur = xb.data();
  T c_old = T(0);
  bool pending = false;  // step t-1's rank-one update of P not applied yet (k_old, c_old)
  double S = rls ? *p.s : 0.0;
  const T lambda = p.forgetting, inv_l = T(1) / p.forgetting, lr = p.learning_rate;

  // the input vector of step t: [u_t, y_{t-1}]
  const auto set_input = [&](int t) {
    if (I) std::memcpy(v.data(), p.u + index_t(t) * I, sizeof(T) * I);
    if (p.feedback) std::memcpy(v.data() + I, y.data(), sizeof(T) * O);
  };
  if (Ts > 0) set_input(0);

  // steps [t_begin, t_end) on `threads` threads
  const auto segment = [&](int t_begin, int t_end, int threads) {
    parallel_region(threads, [&](int tid, int nt, SpinBarrier& barrier) {
      const int b0 = int(static_cast<long long>(blocks) * tid / nt),
                b1 = int(static_cast<long long>(blocks) * (tid + 1) / nt);
      const int r0 = b0 * kBlock, r1 = std::min(N, b1 * kBlock);
      vector<T> e(O);  // the error, summed by every thread for itself
      for (int t = t_begin; t < t_end; ++t) {
        // 1. the reservoir: x_t from x_{t-1} and v = [u_t, y_{t-1}] (written by thread 0 before the step)
        for (int i = r0; i < r1; ++i) {
          T pre = p.bias ? p.bias[i] : T(0);
          if (p.w_dense) pre += dot(p.w_dense + index_t(i) * N, x_prev, N);
          else
            for (index_t q = p.indptr[i]; q < p.indptr[i + 1]; ++q) pre += p.values[q] * x_prev[p.indices[q]];
          pre += dot(p.w_in + index_t(i) * V, v.data(), V);
          x_cur[i] = leaky_unit(x_prev[i], pre, p.leak[i]);
        }
        barrier.wait();
        // 2. per block: RLS's pass over P (last step's update, this step's P x_t) and x_t . k; x_t W_out
        for (int b = b0; b < b1; ++b) {
          const int i0 = b * kBlock, i1 = std::min(N, i0 + kBlock);
          if (rls) {
            T s = T(0);
            for (int i = i0; i < i1; ++i) {
              T* row = p.p + index_t(i) * N;
              k[i] =
                  pending ? update_row_dot(row, k_old.data(), k_old[i] / c_old, inv_l, x_cur, N) : dot(row, x_cur, N);
              s += x_cur[i] * k[i];
            }
            part_xk[b] = s;
          }
          if (!p.train) continue;
          T* py = part_y.data() + index_t(b) * O;
          for (int o = 0; o < O; ++o) py[o] = T(0);
          for (int i = i0; i < i1; ++i) {
            const T* w = p.w_out + index_t(i) * O;
            for (int o = 0; o < O; ++o) py[o] += x_cur[i] * w[o];
          }
        }
        barrier.wait();
        // 3. the error (every thread sums the blocks in the same order), the read-out's update, its output
        T c = lambda;
        if (rls)
          for (int b = 0; b < blocks; ++b) c += part_xk[b];
        if (p.train) {
          for (int o = 0; o < O; ++o) {
            T s = p.b_out[o];
            for (int b = 0; b < blocks; ++b) s += part_y[index_t(b) * O + o];
            e[o] = s - p.targets[index_t(t) * O + o];
          }
        }
        for (int b = b0; b < b1; ++b) {
          const int i0 = b * kBlock, i1 = std::min(N, i0 + kBlock);
          T* py = part_y2.data() + index_t(b) * O;
          for (int o = 0; o < O; ++o) py[o] = T(0);
          for (int i = i0; i < i1; ++i) {
            T* w = p.w_out + index_t(i) * O;
            if (p.train) {
              const T g = rls ? k[i] / c : lr * x_cur[i];
              for (int o = 0; o < O; ++o) w[o] -= g * e[o];
            }
            for (int o = 0; o < O; ++o) py[o] += x_cur[i] * w[o];
          }
        }
        barrier.wait();
        if (tid == 0) {
          T* out = p.outputs + index_t(t) * O;
          for (int o = 0; o < O; ++o) {
            T s = p.b_out[o];
            for (int b = 0; b < blocks; ++b) s += part_y2[index_t(b) * O + o];
            out[o] = y[o] = s;
          }
          if (rls) S = double(lambda) * S + 1.0;
          if (p.train && p.fit_bias)
            for (int o = 0; o < O; ++o)
              p.b_out[o] = rls ? T((S * double(p.b_out[o]) - double(e[o])) / S) : p.b_out[o] - lr * e[o];
          if (p.states) std::memcpy(p.states + index_t(t) * N, x_cur, sizeof(T) * N);
          if (rls) {
            std::swap(k, k_old);
            c_old = c;
            pending = true;
          }
          std::swap(x_prev, x_cur);
          if (t + 1 < Ts) set_input(t + 1);
        }
        barrier.wait();
      }
    });
  };
  if (want == 1 || engine_threads() < 2 || Ts < 4 * kSegment) {
    segment(0, Ts, want);
  } else {
    // Short probes of both counts first, then segments on the faster one; every `interval` segments a probe
    // of the other count. A probe that loses doubles the interval (to kMaxInterval segments), one that wins
    // switches and resets it: few probes on a steady machine, a quick switch when the load changes.
    double per_step[3] = {0.0, 0.0, 0.0};  // seconds per step of the latest segment or probe on 1 and 2 threads
    const auto timed = [&](int t0, int t1, int threads) {
      const auto start = std::chrono::steady_clock::now();
      segment(t0, t1, threads);
      per_step[threads] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / (t1 - t0);
    };
    int t = 0;
    timed(t, t + kProbe, 2);
    t += kProbe;
    timed(t, t + kProbe, 1);
    t += kProbe;
    int best = per_step[1] < per_step[2] ? 1 : 2, interval = kMinInterval, since = 0;
    while (t < Ts) {
      if (since == interval && Ts - t > kSegment) {
        timed(t, t + kProbe, 3 - best);
        t += kProbe;
        since = 0;
        if (per_step[3 - best] < per_step[best]) {
          best = 3 - best;
          interval = kMinInterval;
        } else {
          interval = std::min(2 * interval, kMaxInterval);
        }
        continue;
      }
      const int t1 = std::min(Ts, t + kSegment);
      timed(t, t1, best);
      t = t1;
      ++since;
    }
  }
  // the last step's update of P (no next x to dot with)
  if (pending)
    for (int i = 0; i < N; ++i) {
      T* row = p.p + index_t(i) * N;
      const T a = k_old[i] / c_old;
      for (int j = 0; j < N; ++j) row[j] = (row[j] - a * k_old[j]) * inv_l;
    }
  std::memcpy(p.x, x_prev, sizeof(T) * N);
  std::memcpy(p.y, y.data(), sizeof(T) * O);
  if (rls) *p.s = S;
}

}  // namespace

template <typename T>
void online_readout_cpu(const OnlineReadoutParams<T>& p) {
  const EngineCall in_flight;
  run(p);
}

template void online_readout_cpu<float>(const OnlineReadoutParams<float>&);
template void online_readout_cpu<double>(const OnlineReadoutParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
