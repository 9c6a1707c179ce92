// The Kalman filter and Rauch-Tung-Striebel smoother over a batch of sequences sharing a linear-Gaussian
// model (see rnnfast/statespace.h for the equations and shapes).
//
// Four phases: (1) the filter's covariances, once per covariance group (the sequences with the same
// observed steps), and the smoother's gains J_t, which need only the filter's covariances: a second thread
// follows the filter step by step and computes them as the filter goes; (2) the filter's means and
// log-likelihoods, per sequence, and (3) the smoother's covariances, per group, which are independent of each
// other and run side by side; (4) the smoother's means. The covariance phases cost O(X^3) a step and the
// mean phases O(X^2) a sequence and step, so a batch pays for its covariances once per group. Products are
// dense:: kernels (small_dense.h).
#include "rnnfast/statespace.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "rnnfast/parallel.h"

#include "buffer.h"
#include "small_dense.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

using dense::mm;

template <typename T>
struct Lds {
  int T_, N, X, Y, G;
  index_t XX, XY, YY;
  vector<T> At, Ct;  // A^T [X,X], C^T [X,Y]
  explicit Lds(const KalmanParams<T>& p)
      : T_(p.steps),
        N(p.batch),
        X(p.state),
        Y(p.obs),
        G(p.groups),
        XX(index_t(X) * X),
        XY(index_t(X) * Y),
        YY(index_t(Y) * Y),
        At(XX),
        Ct(XY) {
    dense::transpose(X, X, p.transition_matrix, At.data());
    dense::transpose(Y, X, p.observation_matrix, Ct.data());
  }
  index_t tg(int t, int g) const { return index_t(t) * G + g; }
  index_t tn(int t, int n) const { return index_t(t) * N + n; }
};

// (1) The covariances of group g through the filter; 0, or 1 + the step whose innovation covariance is not
// positive definite. With the smoother, A P_t|t is kept in smoother_gain[t] for it.
template <typename T>
int filter_covariance_steps(const KalmanParams<T>& p, const Lds<T>& d, int g, std::atomic<int>* progress) {
  const int X = d.X, Y = d.Y;
  vector<T> ws(4 * d.XX + 2 * d.XY + X + Y);
  T *AP = ws.data(), *IKC = AP + d.XX, *IKCt = IKC + d.XX, *M1 = IKCt + d.XX, *K = M1 + d.XX, *KR = K + d.XY,
    *col = KR + d.XY, *rdiag = col + X;
  for (int t = 0; t < d.T_; ++t) {
    T* Pp = p.pred_cov + d.tg(t, g) * d.XX;
    T* Pf = p.filt_cov + d.tg(t, g) * d.XX;
    if (t == 0) {
      dense::copy(int(d.XX), p.initial_covariance, Pp);
    } else {
      T* APprev = p.smooth_mean ? p.smoother_gain + d.tg(t - 1, g) * d.XX : AP;
      mm(X, X, X, p.transition_matrix, p.filt_cov + d.tg(t - 1, g) * d.XX, APprev);
      mm(X, X, X, APprev, d.At.data(), Pp);  // A P A^T
      for (index_t i = 0; i < d.XX; ++i) Pp[i] += p.transition_covariance[i];
      dense::symmetrize(X, Pp);
    }
    double& logdet = p.innov_logdet[d.tg(t, g)];
    if (!p.observed[d.tg(t, g)]) {
      dense::copy(int(d.XX), Pp, Pf);
      logdet = 0.0;
      if (progress) progress->store(t + 1, std::memory_order_release);
      continue;
    }
    T* L = p.innov_chol + d.tg(t, g) * d.YY;
    T* Kt = p.gain + d.tg(t, g) * d.XY;  // K^T [Y,X]
    mm(Y, X, X, p.observation_matrix, Pp, Kt);  // C P [Y,X]
    mm(Y, Y, X, Kt, d.Ct.data(), L);             // C P C^T
    for (index_t i = 0; i < d.YY; ++i) L[i] += p.observation_covariance[i];
    if (!dense::cholesky(Y, L, col)) return t + 1;
    double ld = 0.0;
    for (int i = 0; i < Y; ++i) ld += std::log(double(L[i * Y + i]));
    logdet = 2.0 * ld;
    dense::solve_lower(Y, X, L, Kt, rdiag);  // K^T = S^-1 C P  (K = P C^T S^-1)
    dense::solve_lower_transposed(Y, X, L, Kt, rdiag);
    // Joseph form: P_t|t = (I - K C) P (I - K C)^T + K R K^T, a sum of positive semi-definite products
    dense::transpose(Y, X, Kt, K);                       // K [X,Y]
    mm(X, X, Y, K, p.observation_matrix, IKC);           // K C
    for (index_t i = 0; i < d.XX; ++i) IKC[i] = -IKC[i];
    for (int i = 0; i < X; ++i) IKC[i * X + i] += T(1);
    mm(X, X, X, IKC, Pp, M1);
    dense::transpose(X, X, IKC, IKCt);
    mm(X, X, X, M1, IKCt, Pf);
    mm(X, Y, Y, K, p.observation_covariance, KR);        // K R
    mm(X, X, Y, KR, Kt, Pf, true);                       // + K R K^T
    dense::symmetrize(X, Pf);
    if (progress) progress->store(t + 1, std::memory_order_release);
  }
  return 0;
}

// progress: with the smoother's gains following on another thread, the steps done (-1: failed).
template <typename T>
int filter_covariances(const KalmanParams<T>& p, const Lds<T>& d, int g, std::atomic<int>* progress) {
  const int status = filter_covariance_steps(p, d, g, progress);
  if (progress && status) progress->store(-1, std::memory_order_release);
  return status;
}

// The smoother's gains of group g: J_t^T = P_t+1|t^-1 (A P_t|t), in place over A P_t|t in smoother_gain[t],
// t = 0..T-2. With progress, it follows the filter on another thread (step t waits for the filter's step
// t + 1). 0, or 1 + the step whose predicted covariance is not positive definite.
template <typename T>
int smoother_gains(const KalmanParams<T>& p, const Lds<T>& d, int g, const std::atomic<int>* progress) {
  const int X = d.X;
  vector<T> ws(d.XX + 2 * X);
  T *Lp = ws.data(), *col = Lp + d.XX, *rdiag = col + X;
  for (int t = 0; t + 1 < d.T_; ++t) {
    if (progress) {
      int spins = 0, done;
      while ((done = progress->load(std::memory_order_acquire)) >= 0 && done < t + 2)
        if (++spins > 256) std::this_thread::yield();
      if (done < 0) return 0;  // the filter failed: its status says where
    }
    dense::copy(int(d.XX), p.pred_cov + d.tg(t + 1, g) * d.XX, Lp);
    if (!dense::cholesky(X, Lp, col)) return t + 2;
    T* Jt = p.smoother_gain + d.tg(t, g) * d.XX;
    dense::solve_lower(X, X, Lp, Jt, rdiag);
    dense::solve_lower_transposed(X, X, Lp, Jt, rdiag);
  }
  return 0;
}

template <typename T>
const T* offset_at(const T* base, bool per_step, const Lds<T>& d, int t, int n, int width) {
  if (!base) return nullptr;
  return per_step ? base + d.tn(t, n) * width : base;
}

// (2) The means of sequences [n0, n1) through the filter, with their log-likelihoods.
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
        dense::copy(X, p.initial_mean, mp);
      } else {
        dense::row_times(X, X, p.filt_mean + d.tn(t - 1, n) * X, d.At.data(), X, mp, false);  // A m
        if (const T* o = offset_at(p.state_offset, p.state_offset_per_step, d, t, n, X))
          for (int i = 0; i < X; ++i) mp[i] += o[i];
      }
      if (!p.observed[d.tg(t, g)]) {
        dense::copy(X, mp, mf);
        continue;
      }
      dense::row_times(X, Y, mp, d.Ct.data(), Y, r.data(), false);  // C m
      const T* y = p.y + d.tn(t, n) * Y;
      const T* o = offset_at(p.obs_offset, p.obs_offset_per_step, d, t, n, Y);
      for (int i = 0; i < Y; ++i) r[i] = y[i] - r[i] - (o ? o[i] : T(0));
      dense::copy(X, mp, mf);
      dense::row_times(Y, X, r.data(), p.gain + d.tg(t, g) * d.XY, X, mf, true);  // + K r
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

// (3) The covariances of group g through the smoother, from the gains J_t^T in smoother_gain.
template <typename T>
void smooth_covariances(const KalmanParams<T>& p, const Lds<T>& d, int g) {
  const int X = d.X;
  vector<T> ws(3 * d.XX);
  T *J = ws.data(), *D = J + d.XX, *JD = D + d.XX;
  const index_t last = d.tg(d.T_ - 1, g) * d.XX;
  const bool in_place = p.smooth_cov == p.filt_cov;
  if (!in_place) dense::copy(int(d.XX), p.filt_cov + last, p.smooth_cov + last);
  if (p.pair_cov) std::fill(p.pair_cov + d.tg(0, g) * d.XX, p.pair_cov + (d.tg(0, g) + 1) * d.XX, T(0));
  for (int t = d.T_ - 2; t >= 0; --t) {
    const T* Pp1 = p.pred_cov + d.tg(t + 1, g) * d.XX;
    const T* Ps1 = p.smooth_cov + d.tg(t + 1, g) * d.XX;
    const T* Pf = p.filt_cov + d.tg(t, g) * d.XX;
    const T* Jt = p.smoother_gain + d.tg(t, g) * d.XX;  // J^T
    T* Ps = p.smooth_cov + d.tg(t, g) * d.XX;
    dense::transpose(X, X, Jt, J);
    for (index_t i = 0; i < d.XX; ++i) D[i] = Ps1[i] - Pp1[i];
    mm(X, X, X, J, D, JD);
    if (!in_place) dense::copy(int(d.XX), Pf, Ps);
    mm(X, X, X, JD, Jt, Ps, true);  // P_t|T = P_t|t + J (P_t+1|T - P_t+1|t) J^T
    dense::symmetrize(X, Ps);
    if (p.pair_cov) mm(X, X, X, Ps1, Jt, p.pair_cov + d.tg(t + 1, g) * d.XX);  // Cov(x_t+1, x_t) = P_t+1|T J^T
  }
}

// (4) The smoother's means of sequences [n0, n1).
template <typename T>
void smooth_means(const KalmanParams<T>& p, const Lds<T>& d, int n0, int n1) {
  const int X = d.X;
  vector<T> diff(X);
  for (int n = n0; n < n1; ++n)
    dense::copy(X, p.filt_mean + d.tn(d.T_ - 1, n) * X, p.smooth_mean + d.tn(d.T_ - 1, n) * X);
  for (int t = d.T_ - 2; t >= 0; --t)
    for (int n = n0; n < n1; ++n) {
      const T* ms1 = p.smooth_mean + d.tn(t + 1, n) * X;
      const T* mp1 = p.pred_mean + d.tn(t + 1, n) * X;
      for (int i = 0; i < X; ++i) diff[i] = ms1[i] - mp1[i];
      T* ms = p.smooth_mean + d.tn(t, n) * X;
      dense::copy(X, p.filt_mean + d.tn(t, n) * X, ms);
      dense::row_times(X, X, diff.data(), p.smoother_gain + d.tg(t, p.group[n]) * d.XX, X, ms, true);
    }
}

}  // namespace

template <typename T>
void kalman_cpu(const KalmanParams<T>& p) {
  const EngineCall in_flight;
  const Lds<T> d(p);
  const int G = d.G, N = d.N;
  const bool big = double(d.T_) * (double(G) * d.XX * d.X + double(N) * d.XX) > 1e5;
  const bool smooth = p.smooth_mean != nullptr;
  vector<std::int32_t> gain_status(G, 0);
  for (int g = 0; g < G; ++g) p.status[g] = 0;
  if (smooth && G == 1 && big) {
    // one group: the smoother's gains follow the filter on a second thread
    std::atomic<int> progress{0};
    parallel_region(2, [&](int tid, int nt, SpinBarrier&) {
      if (nt == 1) {
        p.status[0] = filter_covariances(p, d, 0, static_cast<std::atomic<int>*>(nullptr));
        if (!p.status[0]) gain_status[0] = smoother_gains(p, d, 0, static_cast<const std::atomic<int>*>(nullptr));
      } else if (tid == 0) {
        p.status[0] = filter_covariances(p, d, 0, &progress);
      } else {
        gain_status[0] = smoother_gains(p, d, 0, &progress);
      }
    });
  } else {
    parallel_for(G, big, [&](int g) {
      p.status[g] = filter_covariances(p, d, g, static_cast<std::atomic<int>*>(nullptr));
      if (smooth && !p.status[g])
        gain_status[g] = smoother_gains(p, d, g, static_cast<const std::atomic<int>*>(nullptr));
    });
  }
  for (int g = 0; g < G; ++g) {
    if (!p.status[g]) p.status[g] = gain_status[g];
    if (p.status[g]) return;
  }
  constexpr int kChunk = 16;  // sequences per task of the mean phases
  const int chunks = (N + kChunk - 1) / kChunk;
  parallel_for(chunks + (smooth ? G : 0), big, [&](int task) {
    if (task < chunks) filter_means(p, d, task * kChunk, std::min(N, (task + 1) * kChunk));
    else smooth_covariances(p, d, task - chunks);
  });
  if (!smooth) return;
  parallel_for(chunks, big, [&](int c) { smooth_means(p, d, c * kChunk, std::min(N, (c + 1) * kChunk)); });
}

template void kalman_cpu<float>(const KalmanParams<float>&);
template void kalman_cpu<double>(const KalmanParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
