// The hidden Markov model's recursions: scaled forward-backward and Viterbi over a batch of sequences (see
// rnnfast/statespace.h for the equations and shapes).
//
// A step of a pass is a K-vector times the K x K transition matrix (dense::row_times), and the next step
// waits for it: the step's latency is the cost. So the normalisation of a step's vector (a sum, a division,
// a scaling) is kept off that path: the next product takes the unnormalised vector and the factor is folded
// into the element-wise product with the emissions. The forward and backward passes of a sequence are
// independent (each normalised on its own), and run on two threads. After them, one pass over the rows
// forms the posteriors and the weights of the expected transition counts, which are one BLAS GEMM.
#include "rnnfast/statespace.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "rnnfast/activations.h"
#include "rnnfast/parallel.h"

#include "blas.h"
#include "buffer.h"
#include "small_dense.h"
#include "simd/vec.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

constexpr index_t kRowBlock = 256;  // rows per task of the row-parallel phases

// Below this, an unnormalised message is rescaled before the next product (its entries could underflow)
template <typename T>
constexpr T tiny() {
  return sizeof(T) == 4 ? T(1e-30) : T(1e-250);
}

// exp(x) with exp(-inf) = 0 exactly (the polynomial exp clamps its argument, so a state that cannot emit
// x_t would otherwise keep a probability of ~1e-308)
template <typename T>
inline T exp_or_zero(T x) {
  const T e = act_exp(x);
  return x < (sizeof(T) == 4 ? T(-87) : T(-708)) ? T(0) : e;
}

// b_t = exp(framelogprob[t] - m_t) into emission, m_t = max_k framelogprob[t,k] into rowmax (-inf: no state
// can emit x_t)
template <typename T>
void emission_rows(const HmmForwardBackwardParams<T>& p, index_t r0, index_t r1, double* rowmax) {
  const int K = p.states;
  for (index_t r = r0; r < r1; ++r) {
    const T* __restrict f = p.framelogprob + r * K;
    T* __restrict e = p.emission + r * K;
    T m = f[0];
    for (int k = 1; k < K; ++k) m = f[k] > m ? f[k] : m;
    rowmax[r - r0] = double(m);
    if (m == -std::numeric_limits<T>::infinity()) {
      std::fill(e, e + K, T(0));
      continue;
    }
    for (int k = 0; k < K; ++k) e[k] = exp_or_zero(f[k] - m);
  }
}

// The forward pass of sequence s: filtered, scale (c_t), step_logprob (m_t on entry), loglik.
// ws: 3K scratch.
template <typename T>
void hmm_forward(const HmmForwardBackwardParams<T>& p, int s, T* ws) {
  const int K = p.states;
  const index_t r0 = p.offsets[s], r1 = p.offsets[s + 1];
  T *u = ws, *prev = ws + K, *cur = ws + 2 * K;
  double ll = 0.0;
  T inv_prev = T(1);  // 1 / c_t-1: prev * inv_prev = alpha_t-1
  for (index_t r = r0; r < r1; ++r) {
    const T* __restrict b = p.emission + r * K;
    if (r == r0) {
      for (int k = 0; k < K; ++k) cur[k] = p.startprob[k] * b[k];
    } else {
      dense::row_times(K, K, prev, p.transmat, K, u, false);
      for (int k = 0; k < K; ++k) cur[k] = u[k] * b[k] * inv_prev;
    }
    const T c = dense::sum(K, cur);
    p.scale[r] = c;
    const double lc = std::log(double(c)) + p.step_logprob[r];
    p.step_logprob[r] = lc;
    if (!(c > T(0))) {  // the model cannot produce this sequence
      for (index_t q = r; q < r1; ++q) {
        if (p.filtered) std::fill(p.filtered + q * K, p.filtered + (q + 1) * K, std::numeric_limits<T>::quiet_NaN());
        p.scale[q] = T(0);
        p.step_logprob[q] = -std::numeric_limits<double>::infinity();
      }
      p.loglik[s] = -std::numeric_limits<double>::infinity();
      return;
    }
    const T inv = T(1) / c;
    if (p.filtered) {
      T* __restrict f = p.filtered + r * K;
      for (int k = 0; k < K; ++k) f[k] = cur[k] * inv;
    }
    ll += lc;
    std::swap(prev, cur);
    inv_prev = inv;
    if (c < tiny<T>()) {  // normalise now: the next product could underflow
      for (int k = 0; k < K; ++k) prev[k] *= inv;
      inv_prev = T(1);
    }
  }
  p.loglik[s] = ll;
}

// The backward pass of sequence s: beta_t, normalised to sum 1, into posterior[t]. ws: 3K scratch.
template <typename T>
void hmm_backward(const HmmForwardBackwardParams<T>& p, const T* transmat_t, int s, T* ws) {
  const int K = p.states;
  const index_t r0 = p.offsets[s], r1 = p.offsets[s + 1];
  T *v = ws, *next = ws + K, *cur = ws + 2 * K;
  T* last = p.posterior + (r1 - 1) * K;
  std::fill(last, last + K, T(1) / T(K));
  std::copy(last, last + K, next);
  T inv_next = T(1);  // next * inv_next = beta_t
  for (index_t r = r1 - 1; r > r0; --r) {
    const T* __restrict b = p.emission + r * K;
    for (int k = 0; k < K; ++k) v[k] = b[k] * next[k] * inv_next;
    dense::row_times(K, K, v, transmat_t, K, cur, false);  // cur[i] = sum_j A[i,j] v[j]
    const T n = dense::sum(K, cur);
    T* __restrict prev = p.posterior + (r - 1) * K;
    if (!(n > T(0))) {  // impossible: the forward pass marks the sequence
      for (index_t q = r0; q < r; ++q) std::fill(p.posterior + q * K, p.posterior + (q + 1) * K, T(0));
      return;
    }
    const T inv = T(1) / n;
    for (int k = 0; k < K; ++k) prev[k] = cur[k] * inv;
    std::swap(next, cur);
    inv_next = inv;
    if (n < tiny<T>()) {
      std::copy(prev, prev + K, next);
      inv_next = T(1);
    }
  }
}

// posterior[t] = alpha_t o beta_t / g_t (g_t = <alpha_t, beta_t>); emission[t] becomes the xi weights
// w_t = b_t o beta_t / (c_t g_t), zero at a sequence's first row, so that
// sum_t xi_t = A o (sum_t alpha_t-1 w_t^T): one GEMM over all rows (filtered[0:R-1]^T emission[1:R]).
template <typename T>
void hmm_combine_rows(const HmmForwardBackwardParams<T>& p, const std::uint8_t* first, index_t r0, index_t r1) {
  const int K = p.states;
  for (index_t r = r0; r < r1; ++r) {
    const T* __restrict a = p.filtered + r * K;
    T* __restrict post = p.posterior + r * K;
    T* __restrict e = p.emission + r * K;
    T g = T(0);
    if (p.scale[r] > T(0)) {  // 0: a row of a sequence the model cannot produce
      for (int k = 0; k < K; ++k) e[k] *= post[k];  // b_t o beta_t
      for (int k = 0; k < K; ++k) post[k] *= a[k];
      g = dense::sum(K, post);
    }
    if (!(g > T(0))) {  // impossible, or alpha_t and beta_t without common support (p(x) underflowed)
      std::fill(post, post + K, std::numeric_limits<T>::quiet_NaN());
      std::fill(e, e + K, T(0));
      continue;
    }
    const T inv = T(1) / g;
    const T w = first[r] ? T(0) : inv / p.scale[r];
    for (int k = 0; k < K; ++k) {
      e[k] *= w;
      post[k] *= inv;
    }
  }
}

// ---- Viterbi ---------------------------------------------------------------------------------------------

// best[j] = max_i (delta[i] + logA[i,j]) with the first i on ties, arg[j] = that i (as T: the same lanes)
template <typename T, int V>
inline int max_plus_block(int K, int j, const T* __restrict delta, const T* __restrict logA, T* __restrict best,
                          T* __restrict arg) {
  constexpr int L = lanes<T>();
  for (; j + V * L <= K; j += V * L) {
    VecT<T> m[V], a[V];
    for (int v = 0; v < V; ++v) {
      m[v] = VecT<T>{} - std::numeric_limits<T>::infinity();
      a[v] = VecT<T>{};
    }
    VecT<T> idx{};  // i in every lane
    for (int i = 0; i < K; ++i, idx += T(1)) {
      const T di = delta[i];  // scalar + vector: a broadcast
      const T* __restrict row = logA + index_t(i) * K + j;
      for (int v = 0; v < V; ++v) {
        const VecT<T> cand = di + load(row + v * L);
        const auto gt = cand > m[v];
        m[v] = gt ? cand : m[v];
        a[v] = gt ? idx : a[v];
      }
    }
    for (int v = 0; v < V; ++v) {
      store(best + j + v * L, m[v]);
      store(arg + j + v * L, a[v]);
    }
  }
  return j;
}

template <typename T>
void max_plus(int K, const T* delta, const T* logA, T* best, T* arg) {
  int j = max_plus_block<T, 4>(K, 0, delta, logA, best, arg);
  j = max_plus_block<T, 1>(K, j, delta, logA, best, arg);
  for (; j < K; ++j) {
    T m = -std::numeric_limits<T>::infinity(), a = T(0);
    for (int i = 0; i < K; ++i) {
      const T cand = delta[i] + logA[index_t(i) * K + j];
      if (cand > m) {
        m = cand;
        a = T(i);
      }
    }
    best[j] = m;
    arg[j] = a;
  }
}

template <typename T>
void hmm_viterbi_sequence(const HmmViterbiParams<T>& p, int s, T* delta, T* best, T* arg) {
  const int K = p.states;
  const index_t r0 = p.offsets[s], r1 = p.offsets[s + 1];
  for (int k = 0; k < K; ++k) delta[k] = p.log_startprob[k] + p.framelogprob[r0 * K + k];
  for (index_t r = r0 + 1; r < r1; ++r) {
    max_plus(K, delta, p.log_transmat, best, arg);
    const T* __restrict f = p.framelogprob + r * K;
    std::int32_t* __restrict bp = p.backpointer + r * K;
    for (int k = 0; k < K; ++k) {
      delta[k] = best[k] + f[k];
      bp[k] = std::int32_t(arg[k]);
    }
  }
  int z = 0;
  for (int k = 1; k < K; ++k)
    if (delta[k] > delta[z]) z = k;
  p.logprob[s] = double(delta[z]);
  p.path[r1 - 1] = z;
  for (index_t r = r1 - 1; r > r0; --r) {
    z = p.backpointer[r * K + z];
    p.path[r - 1] = z;
  }
}

}  // namespace

template <typename T>
void hmm_forward_backward_cpu(const HmmForwardBackwardParams<T>& p) {
  const EngineCall in_flight;
  const int K = p.states, S = p.sequences;
  const index_t R = p.rows;
  const bool big = double(R) * K > 2e4;
  const int blocks = int((R + kRowBlock - 1) / kRowBlock);
  // b_t and m_t (m_t kept in step_logprob until the forward pass adds log c_t)
  parallel_for(blocks, big, [&](int b) {
    const index_t r0 = b * kRowBlock, r1 = std::min(R, r0 + kRowBlock);
    emission_rows(p, r0, r1, p.step_logprob + r0);
  });
  const bool backward = p.posterior != nullptr;
  vector<T> transmat_t(backward ? index_t(K) * K : 0);
  if (backward) dense::transpose(K, K, p.transmat, transmat_t.data());
  // tasks [0, S): forward passes; [S, 2S): backward passes, which do not need the forward's results: with
  // two threads, one runs every forward pass and the other every backward pass
  const int tasks = backward ? 2 * S : S;
  parallel_for(tasks, big, [&](int task) {
    vector<T> ws(3 * index_t(K));
    if (task < S) hmm_forward(p, task, ws.data());
    else hmm_backward(p, transmat_t.data(), task - S, ws.data());
  });
  if (!backward) return;
  for (int s = 0; s < S; ++s)  // an impossible sequence's rows: scale 0 marks them for hmm_combine_rows
    if (!(p.loglik[s] > -std::numeric_limits<double>::infinity()))
      std::fill(p.scale + p.offsets[s], p.scale + p.offsets[s + 1], T(0));
  vector<std::uint8_t> first(R, 0);
  for (int s = 0; s < S; ++s) first[p.offsets[s]] = 1;
  parallel_for(blocks, big, [&](int b) {
    const index_t r0 = b * kRowBlock, r1 = std::min(R, r0 + kRowBlock);
    hmm_combine_rows(p, first.data(), r0, r1);
  });
  if (!p.xi_sum) return;
  // counts[i,j] = sum_t alpha_t-1[i] w_t[j] over the rows of each run of possible sequences (w is zero at
  // each sequence's first row; an impossible sequence's NaN alphas are left out)
  std::fill(p.xi_sum, p.xi_sum + index_t(K) * K, T(0));
  for (int sa = 0; sa < S;) {
    if (!(p.loglik[sa] > -std::numeric_limits<double>::infinity())) {
      ++sa;
      continue;
    }
    int sb = sa + 1;
    while (sb < S && p.loglik[sb] > -std::numeric_limits<double>::infinity()) ++sb;
    const index_t r0 = p.offsets[sa], rows = p.offsets[sb] - r0;
    if (rows >= 2)
      gemm_parallel(true, false, K, K, int(rows - 1), T(1), p.filtered + r0 * K, K, p.emission + (r0 + 1) * K, K, T(1),
                    p.xi_sum, K);
    sa = sb;
  }
  for (index_t i = 0; i < index_t(K) * K; ++i) p.xi_sum[i] *= p.transmat[i];
}

template <typename T>
void hmm_viterbi_cpu(const HmmViterbiParams<T>& p) {
  const EngineCall in_flight;
  const int K = p.states;
  parallel_for(p.sequences, double(p.rows) * K * K > 1e5, [&](int s) {
    vector<T> ws(3 * index_t(K));
    hmm_viterbi_sequence(p, s, ws.data(), ws.data() + K, ws.data() + 2 * K);
  });
}

template void hmm_forward_backward_cpu<float>(const HmmForwardBackwardParams<float>&);
template void hmm_forward_backward_cpu<double>(const HmmForwardBackwardParams<double>&);
template void hmm_viterbi_cpu<float>(const HmmViterbiParams<float>&);
template void hmm_viterbi_cpu<double>(const HmmViterbiParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
