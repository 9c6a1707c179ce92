// The recursions of the hidden Markov model and the linear-Gaussian state-space model (see
// rnnfast/statespace.h for the equations and shapes).
//
// Sizes are small (K states: 2..256; X, Y: a few to tens), so every product is one of the register-blocked
// kernels below, not a BLAS call (whose per-call cost is that of a 16x16 product). The one large product,
// the expected transition counts of a whole batch (K x R x K), is a BLAS GEMM after the time loops.
#include "rnnfast/statespace.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "rnnfast/activations.h"
#include "rnnfast/parallel.h"

#include "blas.h"
#include "buffer.h"
#include "simd/vec.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

// ---- small dense kernels (row-major) -------------------------------------------------------------------

// c[0..n) = sum_k a[k] B[k, 0..n) (B: K rows, `ldb` apart), or c += that. Columns in blocks of V vectors
// held in registers over the whole k loop; the sum runs over k in order in every block and in the scalar
// tail, so a column's value does not depend on n.
template <typename T, int V>
inline int row_times_block(int K, int n, int j, const T* __restrict a, const T* __restrict B, index_t ldb,
                           T* __restrict c, bool accumulate) {
  constexpr int L = lanes<T>();
  for (; j + V * L <= n; j += V * L) {
    VecT<T> s[V];
    for (int v = 0; v < V; ++v) s[v] = accumulate ? load(c + j + v * L) : VecT<T>{};
    for (int k = 0; k < K; ++k) {
      const VecT<T> ak = splat(a[k]);
      const T* __restrict b = B + k * ldb + j;
      for (int v = 0; v < V; ++v) s[v] += ak * load(b + v * L);
    }
    for (int v = 0; v < V; ++v) store(c + j + v * L, s[v]);
  }
  return j;
}

template <typename T>
void row_times(int K, int n, const T* __restrict a, const T* __restrict B, index_t ldb, T* __restrict c,
               bool accumulate) {
  int j = row_times_block<T, 4>(K, n, 0, a, B, ldb, c, accumulate);
  j = row_times_block<T, 2>(K, n, j, a, B, ldb, c, accumulate);
  j = row_times_block<T, 1>(K, n, j, a, B, ldb, c, accumulate);
  for (; j < n; ++j) {
    T s = accumulate ? c[j] : T(0);
    for (int k = 0; k < K; ++k) s += a[k] * B[k * ldb + j];
    c[j] = s;
  }
}

// C[M,N] = A[M,K] B[K,N] (or C += A B); leading dimensions are the row lengths (dense matrices).
template <typename T>
void mm(int M, int N, int K, const T* A, const T* B, T* C, bool accumulate = false) {
  for (int i = 0; i < M; ++i) row_times(K, N, A + index_t(i) * K, B, N, C + index_t(i) * N, accumulate);
}

template <typename T>
void transpose(int M, int N, const T* __restrict A, T* __restrict At) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) At[index_t(j) * M + i] = A[index_t(i) * N + j];
}

template <typename T>
void symmetrize(int n, T* a) {
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      const T v = (a[i * n + j] + a[j * n + i]) * T(0.5);
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
}

// In place: the lower triangle of a becomes L with L L^T = a (the upper triangle is zeroed). False when a
// is not positive definite (a pivot <= 0 or NaN).
template <typename T>
bool cholesky(int n, T* a) {
  for (int j = 0; j < n; ++j) {
    T* rj = a + index_t(j) * n;
    T d = rj[j];
    for (int k = 0; k < j; ++k) d -= rj[k] * rj[k];
    if (!(d > T(0))) return false;
    const T l = std::sqrt(d);
    rj[j] = l;
    for (int i = j + 1; i < n; ++i) {
      T* ri = a + index_t(i) * n;
      T s = ri[j];
      for (int k = 0; k < j; ++k) s -= ri[k] * rj[k];
      ri[j] = s / l;
    }
    for (int k = j + 1; k < n; ++k) rj[k] = T(0);
  }
  return true;
}

// B[n,m] := L^-1 B (lower) and B := L^-T B: row operations, each a vector loop over the m columns.
template <typename T>
void solve_lower(int n, int m, const T* L, T* B) {
  for (int i = 0; i < n; ++i) {
    T* __restrict bi = B + index_t(i) * m;
    for (int k = 0; k < i; ++k) {
      const T l = L[i * n + k];
      const T* __restrict bk = B + index_t(k) * m;
      for (int j = 0; j < m; ++j) bi[j] -= l * bk[j];
    }
    const T d = L[i * n + i];
    for (int j = 0; j < m; ++j) bi[j] /= d;
  }
}

template <typename T>
void solve_lower_transposed(int n, int m, const T* L, T* B) {
  for (int i = n - 1; i >= 0; --i) {
    T* __restrict bi = B + index_t(i) * m;
    for (int k = i + 1; k < n; ++k) {
      const T l = L[k * n + i];
      const T* __restrict bk = B + index_t(k) * m;
      for (int j = 0; j < m; ++j) bi[j] -= l * bk[j];
    }
    const T d = L[i * n + i];
    for (int j = 0; j < m; ++j) bi[j] /= d;
  }
}

// e = exp(x), with exp(-inf) = 0 exactly (the polynomial exp clamps its argument, so a state that cannot
// emit x would otherwise keep a probability of ~1e-308)
template <typename T>
inline T exp_or_zero(T x) {
  const T e = act_exp(x);
  return x < (sizeof(T) == 4 ? T(-87) : T(-708)) ? T(0) : e;
}

constexpr index_t kRowBlock = 256;  // rows per task of the row-parallel phases

// ---- HMM forward-backward ----------------------------------------------------------------------------

// b_t = exp(framelogprob[t] - m_t), m_t = max_k framelogprob[t,k] (-inf when no state can emit x_t)
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

template <typename T>
void hmm_forward(const HmmForwardBackwardParams<T>& p, int s, T* u) {
  const int K = p.states;
  const index_t r0 = p.offsets[s], r1 = p.offsets[s + 1];
  double ll = 0.0;
  bool possible = true;
  for (index_t r = r0; r < r1; ++r) {
    T* __restrict a = p.filtered + r * K;
    const T* __restrict b = p.emission + r * K;
    if (r == r0) {
      for (int k = 0; k < K; ++k) a[k] = p.startprob[k] * b[k];
    } else {
      row_times(K, K, a - K, p.transmat, K, u, false);
      for (int k = 0; k < K; ++k) a[k] = u[k] * b[k];
    }
    T c = T(0);
    for (int k = 0; k < K; ++k) c += a[k];
    p.scale[r] = c;
    const double lc = std::log(double(c)) + p.step_logprob[r];  // step_logprob holds m_t until here
    p.step_logprob[r] = lc;
    if (!(c > T(0))) {  // the model cannot produce this sequence
      possible = false;
      for (index_t q = r; q < r1; ++q) {
        std::fill(p.filtered + q * K, p.filtered + (q + 1) * K, std::numeric_limits<T>::quiet_NaN());
        p.scale[q] = T(0);
        if (q > r) p.step_logprob[q] = -std::numeric_limits<double>::infinity();
      }
      break;
    }
    const T inv = T(1) / c;
    for (int k = 0; k < K; ++k) a[k] *= inv;
    ll += lc;
  }
  p.loglik[s] = possible ? ll : -std::numeric_limits<double>::infinity();
}

// beta_t (normalised to sum 1) into posterior[t]; v = b_t o beta_t is the scratch
template <typename T>
void hmm_backward(const HmmForwardBackwardParams<T>& p, const T* transmat_t, int s, T* v) {
  const int K = p.states;
  const index_t r0 = p.offsets[s], r1 = p.offsets[s + 1];
  T* last = p.posterior + (r1 - 1) * K;
  std::fill(last, last + K, T(1) / T(K));
  for (index_t r = r1 - 1; r > r0; --r) {
    const T* __restrict beta = p.posterior + r * K;
    const T* __restrict b = p.emission + r * K;
    for (int k = 0; k < K; ++k) v[k] = b[k] * beta[k];
    T* __restrict prev = p.posterior + (r - 1) * K;
    row_times(K, K, v, transmat_t, K, prev, false);  // prev[i] = sum_j A[i,j] v[j]
    T n = T(0);
    for (int k = 0; k < K; ++k) n += prev[k];
    if (!(n > T(0))) {  // impossible: the forward pass marks the sequence; keep the rows finite
      for (index_t q = r0; q < r; ++q) std::fill(p.posterior + q * K, p.posterior + (q + 1) * K, T(0));
      return;
    }
    const T inv = T(1) / n;
    for (int k = 0; k < K; ++k) prev[k] *= inv;
  }
}

// posterior[t] = alpha_t o beta_t / g_t (g_t = <alpha_t, beta_t>); emission[t] becomes the xi weights
// w_t = b_t o beta_t / (c_t g_t), zero at a sequence's first row, so that
// sum_t xi_t = A o (sum_t alpha_{t-1} w_t^T): one GEMM over all rows (filtered[0:R-1]^T emission[1:R]).
template <typename T>
void hmm_combine_rows(const HmmForwardBackwardParams<T>& p, const std::uint8_t* first, index_t r0, index_t r1) {
  const int K = p.states;
  for (index_t r = r0; r < r1; ++r) {
    const T* __restrict a = p.filtered + r * K;
    T* __restrict post = p.posterior + r * K;
    T* __restrict e = p.emission + r * K;
    if (!(p.scale[r] > T(0))) {  // an impossible sequence's rows
      std::fill(post, post + K, std::numeric_limits<T>::quiet_NaN());
      std::fill(e, e + K, T(0));
      continue;
    }
    T g = T(0);
    for (int k = 0; k < K; ++k) g += a[k] * post[k];
    if (!(g > T(0))) {  // alpha_t and beta_t without common support: p(x) underflowed to 0
      std::fill(post, post + K, std::numeric_limits<T>::quiet_NaN());
      std::fill(e, e + K, T(0));
      continue;
    }
    const T inv = T(1) / g;
    const T w = first[r] ? T(0) : T(1) / (p.scale[r] * g);
    for (int k = 0; k < K; ++k) {
      e[k] *= post[k] * w;
      post[k] = a[k] * post[k] * inv;
    }
  }
}

// ---- HMM Viterbi ---------------------------------------------------------------------------------------

// best[j] = max_i (delta[i] + logA[i,j]) with the first i on ties, arg[j] = that i (as T: same vector lanes)
template <typename T, int V>
inline int max_plus_block(int K, int j, const T* __restrict delta, const T* __restrict logA, T* __restrict best,
                          T* __restrict arg) {
  constexpr int L = lanes<T>();
  for (; j + V * L <= K; j += V * L) {
    VecT<T> m[V], a[V];
    for (int v = 0; v < V; ++v) {
      m[v] = splat(-std::numeric_limits<T>::infinity());
      a[v] = VecT<T>{};
    }
    for (int i = 0; i < K; ++i) {
      const VecT<T> di = splat(delta[i]), idx = splat(T(i));
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

// ---- Kalman filter and smoother -----------------------------------------------------------------------

template <typename T>
struct Lds {
  int T_, N, X, Y, G;
  index_t XX, XY, YY;
  vector<T> At, Ct;  // A^T [X,X], C^T [X,Y]
  explicit Lds(const KalmanParams<T>& p)
      : T_(p.steps), N(p.batch), X(p.state), Y(p.obs), G(p.groups), XX(index_t(X) * X), XY(index_t(X) * Y),
        YY(index_t(Y) * Y), At(XX), Ct(XY) {
    transpose(X, X, p.transition_matrix, At.data());
    transpose(Y, X, p.observation_matrix, Ct.data());
  }
  index_t tg(int t, int g) const { return index_t(t) * G + g; }
  index_t tn(int t, int n) const { return index_t(t) * N + n; }
};

// The covariances of group g through the filter; 0, or 1 + the step whose innovation covariance is not
// positive definite.
template <typename T>
int filter_covariances(const KalmanParams<T>& p, const Lds<T>& d, int g) {
  const int X = d.X, Y = d.Y;
  vector<T> ws(4 * d.XX + 3 * d.XY);
  T *AP = ws.data(), *IKC = AP + d.XX, *IKCt = IKC + d.XX, *M1 = IKCt + d.XX, *CP = M1 + d.XX, *K = CP + d.XY,
    *KR = K + d.XY;
  for (int t = 0; t < d.T_; ++t) {
    T* Pp = p.pred_cov + d.tg(t, g) * d.XX;
    T* Pf = p.filt_cov + d.tg(t, g) * d.XX;
    if (t == 0) {
      std::memcpy(Pp, p.initial_covariance, sizeof(T) * d.XX);
    } else {
      mm(X, X, X, p.transition_matrix, p.filt_cov + d.tg(t - 1, g) * d.XX, AP);
      mm(X, X, X, AP, d.At.data(), Pp);
      for (index_t i = 0; i < d.XX; ++i) Pp[i] += p.transition_covariance[i];
      symmetrize(X, Pp);
    }
    double& logdet = p.innov_logdet[d.tg(t, g)];
    if (!p.observed[d.tg(t, g)]) {
      std::memcpy(Pf, Pp, sizeof(T) * d.XX);
      logdet = 0.0;
      continue;
    }
    T* L = p.innov_chol + d.tg(t, g) * d.YY;
    T* Kt = p.gain + d.tg(t, g) * d.XY;  // K^T [Y,X]
    mm(Y, X, X, p.observation_matrix, Pp, CP);          // C P [Y,X]
    mm(Y, Y, X, CP, d.Ct.data(), L);                     // C P C^T
    for (index_t i = 0; i < d.YY; ++i) L[i] += p.observation_covariance[i];
    if (!cholesky(Y, L)) return t + 1;
    double ld = 0.0;
    for (int i = 0; i < Y; ++i) ld += std::log(double(L[i * Y + i]));
    logdet = 2.0 * ld;
    std::memcpy(Kt, CP, sizeof(T) * d.XY);               // K^T = S^-1 C P  (K = P C^T S^-1)
    solve_lower(Y, X, L, Kt);
    solve_lower_transposed(Y, X, L, Kt);
    // Joseph form: Pf = (I - K C) Pp (I - K C)^T + K R K^T
    transpose(Y, X, Kt, K);                              // K [X,Y]
    mm(X, X, Y, K, p.observation_matrix, IKC);           // K C
    for (index_t i = 0; i < d.XX; ++i) IKC[i] = -IKC[i];
    for (int i = 0; i < X; ++i) IKC[i * X + i] += T(1);
    mm(X, X, X, IKC, Pp, M1);
    transpose(X, X, IKC, IKCt);
    mm(X, X, X, M1, IKCt, Pf);
    mm(X, Y, Y, K, p.observation_covariance, KR);        // K R
    mm(X, X, Y, KR, Kt, Pf, true);                       // + K R K^T
    symmetrize(X, Pf);
  }
  return 0;
}

template <typename T>
const T* offset_at(const T* base, bool per_step, const Lds<T>& d, int t, int n, int width) {
  if (!base) return nullptr;
  return per_step ? base + d.tn(t, n) * width : base;
}

// The means of sequences [n0, n1) through the filter, with their log-likelihoods.
template <typename T>
void filter_means(const KalmanParams<T>& p, const Lds<T>& d, int n0, int n1) {
  const int X = d.X, Y = d.Y;
  vector<T> r(Y);
  const double log2pi = 1.8378770664093454836;  // log(2 pi)
  for (int n = n0; n < n1; ++n) p.loglik[n] = 0.0;
  for (int t = 0; t < d.T_; ++t) {
    for (int n = n0; n < n1; ++n) {
      const int g = p.group[n];
      T* mp = p.pred_mean + d.tn(t, n) * X;
      T* mf = p.filt_mean + d.tn(t, n) * X;
      if (t == 0) {
        std::memcpy(mp, p.initial_mean, sizeof(T) * X);
      } else {
        row_times(X, X, p.filt_mean + d.tn(t - 1, n) * X, d.At.data(), X, mp, false);  // A m
        if (const T* o = offset_at(p.state_offset, p.state_offset_per_step, d, t, n, X))
          for (int i = 0; i < X; ++i) mp[i] += o[i];
      }
      if (!p.observed[d.tg(t, g)]) {
        std::memcpy(mf, mp, sizeof(T) * X);
        continue;
      }
      row_times(X, Y, mp, d.Ct.data(), Y, r.data(), false);  // C m
      const T* y = p.y + d.tn(t, n) * Y;
      const T* o = offset_at(p.obs_offset, p.obs_offset_per_step, d, t, n, Y);
      for (int i = 0; i < Y; ++i) r[i] = y[i] - r[i] - (o ? o[i] : T(0));
      std::memcpy(mf, mp, sizeof(T) * X);
      row_times(Y, X, r.data(), p.gain + d.tg(t, g) * d.XY, X, mf, true);  // + K r
      const T* L = p.innov_chol + d.tg(t, g) * d.YY;
      double q = 0.0;  // |L^-1 r|^2 = r^T S^-1 r
      for (int i = 0; i < Y; ++i) {
        T s = r[i];
        for (int k = 0; k < i; ++k) s -= L[i * Y + k] * r[k];
        r[i] = s / L[i * Y + i];
        q += double(r[i]) * double(r[i]);
      }
      p.loglik[n] += -0.5 * (Y * log2pi + p.innov_logdet[d.tg(t, g)] + q);
    }
  }
}

// The covariances of group g through the smoother; 0, or 1 + the step whose predicted covariance is not
// positive definite.
template <typename T>
int smooth_covariances(const KalmanParams<T>& p, const Lds<T>& d, int g) {
  const int X = d.X;
  vector<T> ws(4 * d.XX);
  T *Lp = ws.data(), *J = Lp + d.XX, *D = J + d.XX, *JD = D + d.XX;
  const index_t last = d.tg(d.T_ - 1, g) * d.XX;
  std::memcpy(p.smooth_cov + last, p.filt_cov + last, sizeof(T) * d.XX);
  std::fill(p.pair_cov + d.tg(0, g) * d.XX, p.pair_cov + (d.tg(0, g) + 1) * d.XX, T(0));
  for (int t = d.T_ - 2; t >= 0; --t) {
    const T* Pp1 = p.pred_cov + d.tg(t + 1, g) * d.XX;
    const T* Ps1 = p.smooth_cov + d.tg(t + 1, g) * d.XX;
    const T* Pf = p.filt_cov + d.tg(t, g) * d.XX;
    T* Jt = p.smoother_gain + d.tg(t, g) * d.XX;  // J^T
    T* Ps = p.smooth_cov + d.tg(t, g) * d.XX;
    std::memcpy(Lp, Pp1, sizeof(T) * d.XX);
    if (!cholesky(X, Lp)) return t + 2;
    mm(X, X, X, p.transition_matrix, Pf, Jt);  // A Pf
    solve_lower(X, X, Lp, Jt);                  // J^T = Pp1^-1 A Pf
    solve_lower_transposed(X, X, Lp, Jt);
    transpose(X, X, Jt, J);
    for (index_t i = 0; i < d.XX; ++i) D[i] = Ps1[i] - Pp1[i];
    mm(X, X, X, J, D, JD);
    std::memcpy(Ps, Pf, sizeof(T) * d.XX);
    mm(X, X, X, JD, Jt, Ps, true);
    symmetrize(X, Ps);
    mm(X, X, X, Ps1, Jt, p.pair_cov + d.tg(t + 1, g) * d.XX);  // Cov(x_t+1, x_t) = P_t+1|T J^T
  }
  return 0;
}

template <typename T>
void smooth_means(const KalmanParams<T>& p, const Lds<T>& d, int n0, int n1) {
  const int X = d.X;
  vector<T> diff(X);
  for (int n = n0; n < n1; ++n)
    std::memcpy(p.smooth_mean + d.tn(d.T_ - 1, n) * X, p.filt_mean + d.tn(d.T_ - 1, n) * X, sizeof(T) * X);
  for (int t = d.T_ - 2; t >= 0; --t)
    for (int n = n0; n < n1; ++n) {
      const T* ms1 = p.smooth_mean + d.tn(t + 1, n) * X;
      const T* mp1 = p.pred_mean + d.tn(t + 1, n) * X;
      for (int i = 0; i < X; ++i) diff[i] = ms1[i] - mp1[i];
      T* ms = p.smooth_mean + d.tn(t, n) * X;
      std::memcpy(ms, p.filt_mean + d.tn(t, n) * X, sizeof(T) * X);
      row_times(X, X, diff.data(), p.smoother_gain + d.tg(t, p.group[n]) * d.XX, X, ms, true);
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
  // b_t and m_t (kept in step_logprob until the forward pass adds log c_t)
  parallel_for(blocks, big, [&](int b) {
    const index_t r0 = b * kRowBlock, r1 = std::min(R, r0 + kRowBlock);
    emission_rows(p, r0, r1, p.step_logprob + r0);
  });
  const bool backward = p.posterior != nullptr;
  vector<T> transmat_t(backward ? index_t(K) * K : 0);
  if (backward) transpose(K, K, p.transmat, transmat_t.data());
  // tasks [0, S): forward passes; [S, 2S): backward passes, which do not need the forward's results: with
  // two threads, one runs every forward pass and the other every backward pass
  const int tasks = backward ? 2 * S : S;
  parallel_for(tasks, big, [&](int task) {
    vector<T> scratch(K);
    if (task < S) hmm_forward(p, task, scratch.data());
    else hmm_backward(p, transmat_t.data(), task - S, scratch.data());
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
  if (R < 2) {
    std::fill(p.xi_sum, p.xi_sum + index_t(K) * K, T(0));
    return;
  }
  // counts[i,j] = sum_t alpha_{t-1}[i] w_t[j] over all rows (w is zero at each sequence's first row)
  gemm_parallel(true, false, K, K, int(R - 1), T(1), p.filtered, K, p.emission + K, K, T(0), p.xi_sum, K);
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

template <typename T>
void kalman_cpu(const KalmanParams<T>& p) {
  const EngineCall in_flight;
  const Lds<T> d(p);
  const int G = d.G, N = d.N;
  const bool big = double(d.T_) * (double(G) * d.XX * d.X + double(N) * d.XX) > 1e5;
  for (int g = 0; g < G; ++g) p.status[g] = 0;
  parallel_for(G, big, [&](int g) { p.status[g] = filter_covariances(p, d, g); });
  for (int g = 0; g < G; ++g)
    if (p.status[g]) return;
  // the filter's means (in chunks of sequences) and the smoother's covariances (per group) are independent
  constexpr int kChunk = 16;
  const int chunks = (N + kChunk - 1) / kChunk;
  const bool smooth = p.smooth_mean != nullptr;
  vector<std::int32_t> smooth_status(G, 0);
  parallel_for(chunks + (smooth ? G : 0), big, [&](int task) {
    if (task < chunks) filter_means(p, d, task * kChunk, std::min(N, (task + 1) * kChunk));
    else smooth_status[task - chunks] = smooth_covariances(p, d, task - chunks);
  });
  if (!smooth) return;
  for (int g = 0; g < G; ++g) {
    p.status[g] = smooth_status[g];
    if (p.status[g]) return;
  }
  parallel_for(chunks, big, [&](int c) { smooth_means(p, d, c * kChunk, std::min(N, (c + 1) * kChunk)); });
}

#define RNNFAST_INSTANTIATE(T)                                                  \
  template void hmm_forward_backward_cpu<T>(const HmmForwardBackwardParams<T>&); \
  template void hmm_viterbi_cpu<T>(const HmmViterbiParams<T>&);                  \
  template void kalman_cpu<T>(const KalmanParams<T>&);
RNNFAST_INSTANTIATE(float)
RNNFAST_INSTANTIATE(double)
#undef RNNFAST_INSTANTIATE

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
