// Python bindings of the state-space recursions (rnnfast/statespace.h): register_statespace(m), called from
// the PYBIND11_MODULE in bindings.cpp. Python (python/rnnfast/statespace) validates the model and the data
// and allocates every array; this file re-checks what the engine relies on (dtypes, shapes, contiguity,
// writability, sequence offsets and group indices), fills the params structs and releases the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "rnnfast/cpu_engine.h"
#include "rnnfast/statespace.h"
#include "bindings_util.h"

namespace py = pybind11;
using rnnfast::index_t;
using namespace rnnfast::bindings;

namespace {

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

template <typename T>
void forward_backward_typed(const py::object& startprob, const py::object& transmat, const py::object& framelogprob,
                            const py::object& offsets, const py::object& filtered, const py::object& emission,
                            const py::object& scale, const py::object& step_logprob, const py::object& loglik,
                            const py::object& posterior, const py::object& xi_sum) {
  using namespace rnnfast;
  HmmForwardBackwardParams<T> p{};
  const index_t K = square_size<T>(transmat, "transmat");
  const index_t R = frame_rows<T>(framelogprob, K);
  index_t S = 0;
  p.offsets = sequence_offsets(offsets, R, &S);
  p.states = int(K); p.sequences = int(S); p.rows = R;
  p.startprob = dense<T>(startprob, "startprob", {K}, false);
  p.transmat = dense<T>(transmat, "transmat", {K, K}, false);
  p.framelogprob = dense<T>(framelogprob, "framelogprob", {R, K}, false);
  p.posterior = dense<T>(posterior, "posterior", {R, K}, true, true);
  p.filtered = dense<T>(filtered, "filtered", {R, K}, true, p.posterior == nullptr);
  p.emission = dense<T>(emission, "emission", {R, K}, true);  // may be framelogprob (overwritten)
  p.scale = dense<T>(scale, "scale", {R}, true);
  p.step_logprob = dense<double>(step_logprob, "step_logprob", {R}, true);
  p.loglik = dense<double>(loglik, "loglik", {S}, true);
  p.xi_sum = dense<T>(xi_sum, "xi_sum", {K, K}, true, true);
  if (p.xi_sum && !p.posterior) bad("xi_sum", "needs posterior (the backward pass)");
  py::gil_scoped_release release;
  hmm_forward_backward_cpu<T>(p);
}

template <typename T>
void viterbi_typed(const py::object& log_startprob, const py::object& log_transmat, const py::object& framelogprob,
                   const py::object& offsets, const py::object& backpointer, const py::object& path,
                   const py::object& logprob) {
  using namespace rnnfast;
  HmmViterbiParams<T> p{};
  const index_t K = square_size<T>(log_transmat, "log_transmat");
  const index_t R = frame_rows<T>(framelogprob, K);
  index_t S = 0;
  p.offsets = sequence_offsets(offsets, R, &S);
  p.states = int(K); p.sequences = int(S); p.rows = R;
  p.log_startprob = dense<T>(log_startprob, "log_startprob", {K}, false);
  p.log_transmat = dense<T>(log_transmat, "log_transmat", {K, K}, false);
  p.framelogprob = dense<T>(framelogprob, "framelogprob", {R, K}, false);
  p.backpointer = dense<std::int32_t>(backpointer, "backpointer", {R, K}, true);
  p.path = dense<std::int32_t>(path, "path", {R}, true);
  p.logprob = dense<double>(logprob, "logprob", {S}, true);
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

const char* const kKalmanArgs[] = {
    "transition_matrix", "transition_covariance", "observation_matrix", "observation_covariance", "initial_mean",
    "initial_covariance", "state_offset", "obs_offset", "y", "group", "observed", "pred_mean", "pred_cov", "filt_mean",
    "filt_cov", "gain", "innov_chol", "innov_logdet", "loglik", "smooth_mean", "smooth_cov", "pair_cov",
    "smoother_gain", "status"};

template <typename T>
void kalman_typed(const py::dict& a) {
  using namespace rnnfast;
  for (const auto& item : a) {
    const std::string key = py::str(item.first);
    if (std::find(std::begin(kKalmanArgs), std::end(kKalmanArgs), key) == std::end(kKalmanArgs))
      bad(key, "is not an argument of kalman");
  }
  const auto arg = [&](const char* name) -> py::object {  // an absent argument is None
    return a.contains(name) ? py::object(a[name]) : py::object(py::none());
  };
  KalmanParams<T> p{};
  const index_t X = square_size<T>(arg("transition_matrix"), "transition_matrix");
  const py::array c = typed<T>(arg("observation_matrix"), "observation_matrix");
  if (c.ndim() != 2 || c.shape(1) != X || c.shape(0) < 1) bad("observation_matrix", "must have shape (Y, X), Y >= 1");
  const index_t Y = c.shape(0);
  const py::array y = typed<T>(arg("y"), "y");
  if (y.ndim() != 3 || y.shape(2) != Y || y.shape(0) < 1 || y.shape(1) < 1) bad("y", "must have shape (T, N, Y), T, N >= 1");
  const index_t Ts = y.shape(0), N = y.shape(1);
  const py::array gr = typed<std::int32_t>(arg("group"), "group");
  const py::array ob = typed<std::uint8_t>(arg("observed"), "observed");
  if (ob.ndim() != 2 || ob.shape(0) != Ts || ob.shape(1) < 1) bad("observed", "must have shape (T, G), G >= 1");
  const index_t G = ob.shape(1);
  if (Ts * N * std::max(X, Y) >= (index_t(1) << 40) || N >= (index_t(1) << 31) || G > N) bad("y", "is too large");
  p.steps = int(Ts); p.batch = int(N); p.state = int(X); p.obs = int(Y); p.groups = int(G);
  p.transition_matrix = dense<T>(arg("transition_matrix"), "transition_matrix", {X, X}, false);
  p.transition_covariance = dense<T>(arg("transition_covariance"), "transition_covariance", {X, X}, false);
  p.observation_matrix = dense<T>(arg("observation_matrix"), "observation_matrix", {Y, X}, false);
  p.observation_covariance = dense<T>(arg("observation_covariance"), "observation_covariance", {Y, Y}, false);
  p.initial_mean = dense<T>(arg("initial_mean"), "initial_mean", {X}, false);
  p.initial_covariance = dense<T>(arg("initial_covariance"), "initial_covariance", {X, X}, false);
  p.state_offset = offset_arg<T>(arg("state_offset"), "state_offset", Ts, N, X, &p.state_offset_per_step);
  p.obs_offset = offset_arg<T>(arg("obs_offset"), "obs_offset", Ts, N, Y, &p.obs_offset_per_step);
  p.y = dense<T>(arg("y"), "y", {Ts, N, Y}, false);
  p.group = dense<std::int32_t>(arg("group"), "group", {N}, false);
  for (index_t n = 0; n < N; ++n)
    if (p.group[n] < 0 || p.group[n] >= G) bad("group", "must lie in [0, G)");
  p.observed = dense<std::uint8_t>(arg("observed"), "observed", {Ts, G}, false);
  p.pred_mean = dense<T>(arg("pred_mean"), "pred_mean", {Ts, N, X}, true);
  p.pred_cov = dense<T>(arg("pred_cov"), "pred_cov", {Ts, G, X, X}, true);
  p.filt_mean = dense<T>(arg("filt_mean"), "filt_mean", {Ts, N, X}, true);
  p.filt_cov = dense<T>(arg("filt_cov"), "filt_cov", {Ts, G, X, X}, true);
  p.gain = dense<T>(arg("gain"), "gain", {Ts, G, Y, X}, true);
  p.innov_chol = dense<T>(arg("innov_chol"), "innov_chol", {Ts, G, Y, Y}, true);
  p.innov_logdet = dense<double>(arg("innov_logdet"), "innov_logdet", {Ts, G}, true);
  p.loglik = dense<double>(arg("loglik"), "loglik", {N}, true);
  p.smooth_mean = dense<T>(arg("smooth_mean"), "smooth_mean", {Ts, N, X}, true, true);
  if (p.smooth_mean) {
    p.smooth_cov = dense<T>(arg("smooth_cov"), "smooth_cov", {Ts, G, X, X}, true);
    p.pair_cov = dense<T>(arg("pair_cov"), "pair_cov", {Ts, G, X, X}, true, true);
    p.smoother_gain = dense<T>(arg("smoother_gain"), "smoother_gain", {Ts, G, X, X}, true);
  }
  p.status = dense<std::int32_t>(arg("status"), "status", {G}, true);
  py::gil_scoped_release release;
  kalman_cpu<T>(p);
}

}  // namespace

void register_statespace(py::module_& m) {
  m.def("hmm_forward_backward",
        [](py::object startprob, py::object transmat, py::object framelogprob, py::object offsets, py::object filtered,
           py::object emission, py::object scale, py::object step_logprob, py::object loglik, py::object posterior,
           py::object xi_sum) {
          (float32_of(transmat, "transmat") ? forward_backward_typed<float> : forward_backward_typed<double>)(
              startprob, transmat, framelogprob, offsets, filtered, emission, scale, step_logprob, loglik, posterior,
              xi_sum);
        },
        "Scaled forward-backward of a hidden Markov model over a batch of sequences (rnnfast/statespace.h).",
        py::arg("startprob"), py::arg("transmat"), py::arg("framelogprob"), py::arg("offsets"), py::arg("filtered"),
        py::arg("emission"), py::arg("scale"), py::arg("step_logprob"), py::arg("loglik"), py::arg("posterior"),
        py::arg("xi_sum"));
  m.def("hmm_viterbi",
        [](py::object log_startprob, py::object log_transmat, py::object framelogprob, py::object offsets,
           py::object backpointer, py::object path, py::object logprob) {
          (float32_of(log_transmat, "log_transmat") ? viterbi_typed<float> : viterbi_typed<double>)(
              log_startprob, log_transmat, framelogprob, offsets, backpointer, path, logprob);
        },
        "Viterbi paths of a hidden Markov model over a batch of sequences (rnnfast/statespace.h).",
        py::arg("log_startprob"), py::arg("log_transmat"), py::arg("framelogprob"), py::arg("offsets"),
        py::arg("backpointer"), py::arg("path"), py::arg("logprob"));
  m.def("kalman",
        [](py::kwargs kw) {
          const py::dict a(kw);
          if (!a.contains("transition_matrix")) bad("transition_matrix", "is required");
          (float32_of(a["transition_matrix"], "transition_matrix") ? kalman_typed<float> : kalman_typed<double>)(a);
        },
        "Kalman filter (and with smooth_mean given, the RTS smoother) of a linear-Gaussian state-space model "
        "over a batch of sequences; keyword arguments as the fields of rnnfast::KalmanParams.");
}
