// The classic memory models of the lecture, before RNNs: hidden Markov models (a one-of-K discrete state)
// and linear dynamical systems (a continuous state with linear-Gaussian dynamics). Their recursions over
// time run in the CPU engine (csrc/cpu/hmm.cpp, csrc/cpu/kalman.cpp); Python (rnnfast.statespace) validates, allocates
// and does the M-steps of EM; rnnfast.reference.hmm and rnnfast.reference.lgssm are the NumPy references.
//
// Shape letters (rightmost dimension fastest, all strides in elements):
//   HMM: K = hidden states, S = sequences, R = rows of all sequences concatenated (sum of their lengths).
//   LDS: T = time steps, N = sequences, X = state size, Y = observation size, G = covariance groups.
#pragma once

#include <cstdint>

#include "rnnfast/common.h"

namespace rnnfast {

// ---- hidden Markov model: scaled forward-backward ----------------------------------------------------
//   filtered[t]  = p(z_t | x_1..t)                       alpha_t = (alpha_{t-1} A) o b_t / c_t
//   c_t          = p(x_t | x_1..t-1) / exp(m_t)          m_t = max_k framelogprob[t,k]; b_t = exp(flp[t] - m_t)
//   step_logprob = log c_t + m_t                         their sum over a sequence is its log-likelihood
//   posterior[t] = p(z_t | x_1..T) = alpha_t o beta_t / <alpha_t, beta_t>
//   xi_sum[i,j]  = sum over sequences and t >= 1 of p(z_{t-1} = i, z_t = j | x)
// The backward messages beta_t = A (b_{t+1} o beta_{t+1}) are normalised to sum 1 on their own (not by c_t),
// so the forward and the backward pass of a sequence run at the same time, on two threads.
// A sequence the model cannot produce (some c_t = 0) gets loglik -inf and NaN posteriors, and adds
// nothing to xi_sum.
template <typename T>
struct HmmForwardBackwardParams {
  int states;                   // K
  int sequences;                // S
  index_t rows;                 // R
  const index_t* offsets;       // [S+1] first row of each sequence; offsets[0] = 0, offsets[S] = R, lengths >= 1
  const T* startprob;           // [K]
  const T* transmat;            // [K,K] transmat[i,j] = p(z_t = j | z_{t-1} = i)
  const T* framelogprob;        // [R,K] log p(x_t | z_t = k), finite or -inf
  T* filtered;                  // [R,K] out, or nullptr without posterior (scoring only)
  T* emission;                  // [R,K] workspace: b_t, then (with posterior) the xi weights; may be framelogprob
  T* scale;                     // [R] workspace: c_t
  double* step_logprob;         // [R] out
  double* loglik;               // [S] out
  T* posterior;                 // [R,K] out, or nullptr: forward pass only
  T* xi_sum;                    // [K,K] out (needs posterior), or nullptr
};

// ---- hidden Markov model: Viterbi (log space) ----------------------------------------------------------
//   delta_t(j) = max_i (delta_{t-1}(i) + log A(i,j)) + framelogprob[t,j],  delta_0 = log pi + framelogprob[0]
// Ties go to the lowest state index (as numpy.argmax). -inf entries are allowed in every log input.
template <typename T>
struct HmmViterbiParams {
  int states;                   // K
  int sequences;                // S
  index_t rows;                 // R
  const index_t* offsets;       // [S+1]
  const T* log_startprob;       // [K]
  const T* log_transmat;        // [K,K]
  const T* framelogprob;        // [R,K]
  std::int32_t* backpointer;    // [R,K] workspace
  std::int32_t* path;           // [R] out: the most likely state sequence
  double* logprob;              // [S] out: its log-probability (joint with the observations)
};

// ---- linear-Gaussian state-space model: Kalman filter and Rauch-Tung-Striebel smoother -------------------
//   x_0 ~ N(mu0, P0);  x_t = A x_{t-1} + o_t + w_t, w ~ N(0, Q)  (t >= 1);  y_t = C x_t + d_t + v_t, v ~ N(0, R)
// o_t and d_t are the offsets (B u_t + b and D u_t + d with driving inputs u: Python computes them for all
// steps at once). A row y_t with a missing value is skipped (no update), as pykalman skips masked rows.
//
// N sequences share the model. The covariances do not depend on the data, only on which steps are observed,
// so they are computed once per covariance group: the sequences with the same pattern of observed steps.
// Filter update in Joseph form, P = (I - K C) P (I - K C)^T + K R K^T, and every covariance symmetrised.
// Smoother: J_t = P_t|t A^T P_t+1|t^-1,  P_t|T = P_t|t + J_t (P_t+1|T - P_t+1|t) J_t^T,
//           Cov(x_t+1, x_t | all) = P_t+1|T J_t^T,  m_t|T = m_t|t + J_t (m_t+1|T - m_t+1|t).
// A covariance that is not positive definite where it is factored (the innovation covariance C P C^T + R,
// or P_t+1|t in the smoother) stops its group: status[g] = 1 + that step.
template <typename T>
struct KalmanParams {
  int steps, batch, state, obs, groups;  // T, N, X, Y, G
  const T* transition_matrix;            // A [X,X]
  const T* transition_covariance;        // Q [X,X]
  const T* observation_matrix;           // C [Y,X]
  const T* observation_covariance;       // R [Y,Y]
  const T* initial_mean;                 // mu0 [X]
  const T* initial_covariance;           // P0 [X,X]
  const T* state_offset;                 // [T,N,X] (per_step) or [X], or nullptr (zero); o_0 is not used
  const T* obs_offset;                   // [T,N,Y] (per_step) or [Y], or nullptr (zero)
  bool state_offset_per_step, obs_offset_per_step;
  const T* y;                            // [T,N,Y]; rows of unobserved steps are not read
  const std::int32_t* group;             // [N] covariance group of each sequence, in [0, G)
  const std::uint8_t* observed;          // [T,G] 1: the group's sequences observe step t
  // filter
  T* pred_mean;                          // [T,N,X] out: m_t|t-1
  T* pred_cov;                           // [T,G,X,X] out: P_t|t-1
  T* filt_mean;                          // [T,N,X] out: m_t|t
  T* filt_cov;                           // [T,G,X,X] out: P_t|t
  T* gain;                               // [T,G,X,Y] workspace: Kalman gains
  T* innov_chol;                         // [T,G,Y,Y] workspace: Cholesky factors of C P_t|t-1 C^T + R
  double* innov_logdet;                  // [T,G] workspace: their log-determinants
  double* loglik;                        // [N] out: log p(y) (unobserved steps count 0)
  // smoother (all nullptr: filter only)
  T* smooth_mean;                        // [T,N,X] out: m_t|T
  T* smooth_cov;                         // [T,G,X,X] out: P_t|T; may be filt_cov (overwritten)
  T* pair_cov;                           // [T,G,X,X] out: Cov(x_t, x_t-1 | all), row 0 zero; or nullptr
  T* smoother_gain;                      // [T,G,X,X] workspace: J_t
  std::int32_t* status;                  // [G] out: 0, or 1 + the step where a factorisation failed
};

template <typename T>
void hmm_forward_backward_cpu(const HmmForwardBackwardParams<T>& p);
template <typename T>
void hmm_viterbi_cpu(const HmmViterbiParams<T>& p);
template <typename T>
void kalman_cpu(const KalmanParams<T>& p);

}  // namespace rnnfast
