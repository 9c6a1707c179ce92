// Bindings of the state-space recursions (rnnfast/statespace.h): the HMM forward-backward and Viterbi, and
// the Kalman filter and RTS smoother. Python (python/rnnfast/statespace) validates the model and the data
// and allocates every array; this file re-checks what the engine relies on (dtypes, shapes, contiguity,
// writability, sequence offsets and group indices), fills the params structs and releases the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>

#include "rnnfast/cpu_engine.h"
#include "rnnfast/statespace.h"
#include "bindings_util.h"

namespace rnnfast {
namespace {

using namespace bindings;
using Obj = py::object;

// clang-format off
#define HMM_FORWARD_BACKWARD(F)                                                                                  \
  F(Obj, startprob) F(Obj, transmat) F(Obj, framelogprob) F(Obj, offsets) F(Obj, filtered) F(Obj, emission)     \
  F(Obj, scale) F(Obj, step_logprob) F(Obj, loglik) F(Obj, posterior) F(Obj, xi_sum)
#define HMM_VITERBI(F)                                                                                           \
  F(Obj, log_startprob) F(Obj, log_transmat) F(Obj, framelogprob) F(Obj, offsets) F(Obj, backpointer)           \
  F(Obj, path) F(Obj, logprob)
#define KALMAN(F)                                                                                                \
  F(Obj, transition_matrix) F(Obj, transition_covariance) F(Obj, observation_matrix)                            \
  F(Obj, observation_covariance) F(Obj, initial_mean) F(Obj, initial_covariance) F(Obj, state_offset)           \
  F(Obj, obs_offset) F(Obj, y) F(Obj, group) F(Obj, observed) F(Obj, pred_mean) F(Obj, pred_cov)                \
  F(Obj, filt_mean) F(Obj, filt_cov) F(Obj, gain) F(Obj, innov_chol) F(Obj, innov_logdet) F(Obj, loglik)        \
  F(Obj, smooth_mean) F(Obj, smooth_cov) F(Obj, pair_cov) F(Obj, smoother_gain) F(Obj, status)
// clang-format on
RNNFAST_ENTRY_ARGS(ForwardBackwardArgs, HMM_FORWARD_BACKWARD);
RNNFAST_ENTRY_ARGS(ViterbiArgs, HMM_VITERBI);
RNNFAST_ENTRY_ARGS(KalmanArgs, KALMAN);

// K from a square [K,K] matrix (>= 1)
template <typename T>
index_t square_size(const py::object& o, const char* name) {
  const py::array a = typed<T>(o, name);
  if (a.ndim() != 2 || a.shape(0) != a.shape(1) || a.shape(0) < 1) bad(name, "must be a square matrix (K, K), K >= 1");
  return a.shape(0);
}

// offsets [S+1] (int64): 0 = offsets[0] < offsets[1] < ... < offsets[S] = R. Returns S.
const index_t* sequence_offsets(const py::object& o, index_t rows, index_t* sequences) {
  const py::array a = typed<index_t>(o, "offsets");
  if (a.ndim() != 1 || a.shape(0) < 2) bad("offsets", "must be 1-D with S + 1 >= 2 entries");
  const index_t* off = dense<index_t>(o, "offsets", {a.shape(0)}, false);
  const index_t S = a.shape(0) - 1;
  if (off[0] != 0 || off[S] != rows) bad("offsets", "must start at 0 and end at the number of rows");
  for (index_t s = 0; s < S; ++s)
    if (off[s + 1] <= off[s]) bad("offsets", "must increase strictly (every sequence has length >= 1)");
  if (S >= (index_t(1) << 31)) bad("offsets", "holds too many sequences");
  *sequences = S;
  return off;
}

// R and K of framelogprob [R,K]
template <typename T>
index_t frame_rows(const py::object& framelogprob, index_t K) {
  const py::array f = typed<T>(framelogprob, "framelogprob");
  if (f.ndim() != 2 || f.shape(1) != K || f.shape(0) < 1) bad("framelogprob", "must have shape (R, K), R >= 1");
  if (f.shape(0) >= (index_t(1) << 31)) bad("framelogprob", "has too many rows for 32-bit BLAS indices");
  return f.shape(0);
}

struct HmmSizes {
  index_t K, R, S;  // states, rows of all sequences, sequences
};

// The sizes of an HMM call from its [K,K] transition matrix, framelogprob [R,K] and offsets [S+1], into p.
template <typename T, typename P>
HmmSizes hmm_sizes(const py::object& transmat, const char* name, const py::object& framelogprob,
                   const py::object& offsets, P& p) {
  HmmSizes z{};
  z.K = square_size<T>(transmat, name);
  z.R = frame_rows<T>(framelogprob, z.K);
  p.offsets = sequence_offsets(offsets, z.R, &z.S);
  p.states = int(z.K), p.sequences = int(z.S), p.rows = z.R;
  return z;
}

template <typename T>
void forward_backward(const ForwardBackwardArgs& a) {
  HmmForwardBackwardParams<T> p{};
  const auto [K, R, S] = hmm_sizes<T>(a.transmat, "transmat", a.framelogprob, a.offsets, p);
  p.startprob = dense<T>(a.startprob, "startprob", {K}, false);
  p.transmat = dense<T>(a.transmat, "transmat", {K, K}, false);
  p.framelogprob = dense<T>(a.framelogprob, "framelogprob", {R, K}, false);
  p.posterior = dense<T>(a.posterior, "posterior", {R, K}, true, true);
  p.filtered = dense<T>(a.filtered, "filtered", {R, K}, true, p.posterior == nullptr);
  p.emission = dense<T>(a.emission, "emission", {R, K}, true);  // may be framelogprob (overwritten)
  p.scale = dense<T>(a.scale, "scale", {R}, true);
  p.step_logprob = dense<double>(a.step_logprob, "step_logprob", {R}, true);
  p.loglik = dense<double>(a.loglik, "loglik", {S}, true);
  p.xi_sum = dense<T>(a.xi_sum, "xi_sum", {K, K}, true, true);
  if (p.xi_sum && !p.posterior) bad("xi_sum", "needs posterior (the backward pass)");
  py::gil_scoped_release release;
  hmm_forward_backward_cpu<T>(p);
}

template <typename T>
void viterbi(const ViterbiArgs& a) {
  HmmViterbiParams<T> p{};
  const auto [K, R, S] = hmm_sizes<T>(a.log_transmat, "log_transmat", a.framelogprob, a.offsets, p);
  p.log_startprob = dense<T>(a.log_startprob, "log_startprob", {K}, false);
  p.log_transmat = dense<T>(a.log_transmat, "log_transmat", {K, K}, false);
  p.framelogprob = dense<T>(a.framelogprob, "framelogprob", {R, K}, false);
  p.backpointer = dense<std::int32_t>(a.backpointer, "backpointer", {R, K}, true);
  p.path = dense<std::int32_t>(a.path, "path", {R}, true);
  p.logprob = dense<double>(a.logprob, "logprob", {S}, true);
  py::gil_scoped_release release;
  hmm_viterbi_cpu<T>(p);
}

// An offset: [X] (constant) or [T,N,X] (per step), or None.
template <typename T>
const T* offset_arg(const py::object& o, const char* name, index_t Ts, index_t N, index_t width, bool* per_step) {
  *per_step = false;
  if (o.is_none()) return nullptr;
  const py::array a = typed<T>(o, name);
  if (a.ndim() == 1) return dense<T>(o, name, {width}, false);
  *per_step = true;
  return dense<T>(o, name, {Ts, N, width}, false);
}

template <typename T>
void kalman(const KalmanArgs& a) {
  KalmanParams<T> p{};
  const index_t X = square_size<T>(a.transition_matrix, "transition_matrix");
  const py::array c = typed<T>(a.observation_matrix, "observation_matrix");
  if (c.ndim() != 2 || c.shape(1) != X || c.shape(0) < 1) bad("observation_matrix", "must have shape (Y, X), Y >= 1");
  const index_t Y = c.shape(0);
  const py::array y = typed<T>(a.y, "y");
  if (y.ndim() != 3 || y.shape(2) != Y || y.shape(0) < 1 || y.shape(1) < 1)
    bad("y", "must have shape (T, N, Y), T, N >= 1");
  const index_t Ts = y.shape(0), N = y.shape(1);
  const py::array gr = typed<std::int32_t>(a.group, "group");
  const py::array ob = typed<std::uint8_t>(a.observed, "observed");
  if (ob.ndim() != 2 || ob.shape(0) != Ts || ob.shape(1) < 1) bad("observed", "must have shape (T, G), G >= 1");
  const index_t G = ob.shape(1);
  if (Ts * N * std::max(X, Y) >= (index_t(1) << 40) || N >= (index_t(1) << 31) || G > N) bad("y", "is too large");
  p.steps = int(Ts), p.batch = int(N), p.state = int(X), p.obs = int(Y), p.groups = int(G);
  p.transition_matrix = dense<T>(a.transition_matrix, "transition_matrix", {X, X}, false);
  p.transition_covariance = dense<T>(a.transition_covariance, "transition_covariance", {X, X}, false);
  p.observation_matrix = dense<T>(a.observation_matrix, "observation_matrix", {Y, X}, false);
  p.observation_covariance = dense<T>(a.observation_covariance, "observation_covariance", {Y, Y}, false);
  p.initial_mean = dense<T>(a.initial_mean, "initial_mean", {X}, false);
  p.initial_covariance = dense<T>(a.initial_covariance, "initial_covariance", {X, X}, false);
  p.state_offset = offset_arg<T>(a.state_offset, "state_offset", Ts, N, X, &p.state_offset_per_step);
  p.obs_offset = offset_arg<T>(a.obs_offset, "obs_offset", Ts, N, Y, &p.obs_offset_per_step);
  p.y = dense<T>(a.y, "y", {Ts, N, Y}, false);
  p.group = dense<std::int32_t>(a.group, "group", {N}, false);
  for (index_t n = 0; n < N; ++n)
    if (p.group[n] < 0 || p.group[n] >= G) bad("group", "must lie in [0, G)");
  p.observed = dense<std::uint8_t>(a.observed, "observed", {Ts, G}, false);
  p.pred_mean = dense<T>(a.pred_mean, "pred_mean", {Ts, N, X}, true);
  p.pred_cov = dense<T>(a.pred_cov, "pred_cov", {Ts, G, X, X}, true);
  p.filt_mean = dense<T>(a.filt_mean, "filt_mean", {Ts, N, X}, true);
  p.filt_cov = dense<T>(a.filt_cov, "filt_cov", {Ts, G, X, X}, true);
  p.gain = dense<T>(a.gain, "gain", {Ts, G, Y, X}, true);
  p.innov_chol = dense<T>(a.innov_chol, "innov_chol", {Ts, G, Y, Y}, true);
  p.innov_logdet = dense<double>(a.innov_logdet, "innov_logdet", {Ts, G}, true);
  p.loglik = dense<double>(a.loglik, "loglik", {N}, true);
  p.smooth_mean = dense<T>(a.smooth_mean, "smooth_mean", {Ts, N, X}, true, true);
  if (p.smooth_mean) {
    p.smooth_cov = dense<T>(a.smooth_cov, "smooth_cov", {Ts, G, X, X}, true);
    p.pair_cov = dense<T>(a.pair_cov, "pair_cov", {Ts, G, X, X}, true, true);
    p.smoother_gain = dense<T>(a.smoother_gain, "smoother_gain", {Ts, G, X, X}, true);
  }
  p.status = dense<std::int32_t>(a.status, "status", {G}, true);
  py::gil_scoped_release release;
  kalman_cpu<T>(p);
}

}  // namespace
}  // namespace rnnfast

void register_statespace(pybind11::module_& m) {
  using namespace rnnfast;
  using namespace rnnfast::bindings;
  def_entry<ForwardBackwardArgs>(
      m, "hmm_forward_backward",
      "Scaled forward-backward of a hidden Markov model over a batch of sequences (rnnfast/statespace.h).",
      [](const ForwardBackwardArgs& a) {
        float32_of(a.transmat, "transmat") ? forward_backward<float>(a) : forward_backward<double>(a);
      });
  def_entry<ViterbiArgs>(m, "hmm_viterbi",
                         "Viterbi paths of a hidden Markov model over a batch of sequences (rnnfast/statespace.h).",
                         [](const ViterbiArgs& a) {
                           float32_of(a.log_transmat, "log_transmat") ? viterbi<float>(a) : viterbi<double>(a);
                         });
  def_entry_kwargs<KalmanArgs>(
      m, "kalman",
      "Kalman filter (and with smooth_mean given, the RTS smoother) of a linear-Gaussian state-space model "
      "over a batch of sequences; keyword arguments as the fields of rnnfast::KalmanParams.",
      [](const KalmanArgs& a) {
        if (a.transition_matrix.is_none()) bad("transition_matrix", "is required");
        float32_of(a.transition_matrix, "transition_matrix") ? kalman<float>(a) : kalman<double>(a);
      });
}
