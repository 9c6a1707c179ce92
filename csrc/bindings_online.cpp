// Python bindings of the online read-outs (rnnfast/online_readout.h): register_online(m), called from the
// PYBIND11_MODULE in bindings.cpp. Python (the ESN's online module) validates and allocates; this file
// re-checks what the engine relies on (dtype, shape, contiguity, writability, the CSR structure), fills the
// params struct and releases the GIL around the loop. Every error names the argument.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "rnnfast/online_readout.h"
#include "bindings_util.h"

namespace py = pybind11;
using rnnfast::index_t;
using namespace rnnfast::bindings;

namespace {

// A 1-D C-contiguous int32 array of `n` entries (n < 0: any length).
const std::int32_t* int32_vector(const py::object& o, const std::string& name, index_t n) {
  if (!py::isinstance<py::array>(o)) bad(name, "must be a numpy.ndarray");
  const py::array a = py::reinterpret_borrow<py::array>(o);
  if (a.dtype().num() != py::dtype::of<std::int32_t>().num()) bad(name, "must have dtype int32");
  if (a.ndim() != 1 || (n >= 0 && a.shape(0) != n) || !(a.flags() & py::array::c_style))
    bad(name, n >= 0 ? "must have shape (" + std::to_string(n) + ",)" : "must be a contiguous 1-D array");
  return static_cast<const std::int32_t*>(a.data());
}

template <typename T>
void online_typed(const py::object& u, const py::object& w, const py::object& indptr, const py::object& indices,
                  const py::object& values, const py::object& w_in, const py::object& bias, const py::object& leak,
                  const py::object& targets, const py::object& x, const py::object& y, const py::object& w_out,
                  const py::object& b_out, const py::object& P, const py::object& S, const py::object& states,
                  const py::object& outputs, bool feedback, bool train, const std::string& rule, bool fit_bias,
                  double learning_rate, double forgetting) {
  using namespace rnnfast;
  OnlineReadoutParams<T> p{};
  const py::array xa = typed<T>(x, "x"), wo = typed<T>(w_out, "w_out"), oa = typed<T>(outputs, "outputs");
  if (xa.ndim() != 1 || xa.shape(0) < 1) bad("x", "must be 1-D (N,) with N >= 1");
  if (wo.ndim() != 2 || wo.shape(1) < 1) bad("w_out", "must be 2-D (N, O) with O >= 1");
  if (oa.ndim() != 2 || oa.shape(0) < 1) bad("outputs", "must be 2-D (T, O) with T >= 1");
  const index_t N = xa.shape(0), O = wo.shape(1), Ts = oa.shape(0);
  index_t I = 0;
  if (!u.is_none()) {
    const py::array ua = typed<T>(u, "u");
    if (ua.ndim() != 2) bad("u", "must be 2-D (T, I)");
    I = ua.shape(1);
    p.u = dense<T>(u, "u", {Ts, I}, false);
  }
  if (I == 0 && !feedback) bad("u", "is required (with I >= 1) without feedback");
  if (Ts * std::max({N, I, O}) >= (index_t(1) << 31) || N * N >= (index_t(1) << 31))
    bad("x", "is too large for 32-bit indices");
  if (rule != "lms" && rule != "rls") bad("rule", "must be 'lms' or 'rls'");
  if (!(forgetting > 0.0 && forgetting <= 1.0)) bad("forgetting", "must lie in (0, 1]");
  p.steps = int(Ts);
  p.inputs = int(I);
  p.units = int(N);
  p.n_outputs = int(O);
  p.feedback = feedback;
  p.train = train;
  p.fit_bias = fit_bias;
  p.rule = rule == "rls" ? OnlineRule::Rls : OnlineRule::Lms;
  p.learning_rate = T(learning_rate);
  p.forgetting = T(forgetting);
  const index_t V = I + (feedback ? O : 0);
  p.w_in = dense<T>(w_in, "w_in", {N, V}, false);
  p.bias = dense<T>(bias, "bias", {N}, false, true);
  p.leak = dense<T>(leak, "leak", {N}, false);
  p.targets = dense<T>(targets, "targets", {Ts, O}, false, !train);
  p.x = dense<T>(x, "x", {N}, true);
  p.y = dense<T>(y, "y", {O}, true);
  p.w_out = dense<T>(w_out, "w_out", {N, O}, true);
  p.b_out = dense<T>(b_out, "b_out", {O}, true);
  p.states = dense<T>(states, "states", {Ts, N}, true, true);
  p.outputs = dense<T>(outputs, "outputs", {Ts, O}, true);
  if (train && p.rule == OnlineRule::Rls) {
    p.p = dense<T>(P, "P", {N, N}, true);
    p.s = dense<double>(S, "S", {1}, true);
  }
  if (!w.is_none()) {
    p.w_dense = dense<T>(w, "w", {N, N}, false);
  } else {
    const std::int32_t* ip = int32_vector(indptr, "indptr", N + 1);
    if (ip[0] != 0) bad("indptr", "must start at 0");
    for (index_t i = 0; i < N; ++i)
      if (ip[i + 1] < ip[i]) bad("indptr", "must be non-decreasing");
    const index_t nnz = ip[N];
    const std::int32_t* ix = int32_vector(indices, "indices", nnz);
    for (index_t k = 0; k < nnz; ++k)
      if (ix[k] < 0 || ix[k] >= N) bad("indices", "must lie in [0, N)");
    p.indptr = ip;
    p.indices = ix;
    p.values = dense<T>(values, "values", {nnz}, false);
  }
  py::gil_scoped_release release;
  online_readout_cpu<T>(p);
}

}  // namespace

void register_online(py::module_& m) {
  m.def(
      "online_readout",
      [](py::object u, py::object w, py::object indptr, py::object indices, py::object values, py::object w_in,
         py::object bias, py::object leak, py::object targets, py::object x, py::object y, py::object w_out,
         py::object b_out, py::object P, py::object S, py::object states, py::object outputs, bool feedback, bool train,
         const std::string& rule, bool fit_bias, double learning_rate, double forgetting) {
        (float32_of(x, "x") ? online_typed<float> : online_typed<double>)(u, w, indptr, indices, values, w_in, bias,
                                                                          leak, targets, x, y, w_out, b_out, P, S,
                                                                          states, outputs, feedback, train, rule,
                                                                          fit_bias, learning_rate, forgetting);
      },
      "Run a reservoir with an online read-out (LMS or RLS), trained step by step, on the CPU "
      "(rnnfast/online_readout.h).",
      py::arg("u"), py::arg("w"), py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("w_in"),
      py::arg("bias"), py::arg("leak"), py::arg("targets"), py::arg("x"), py::arg("y"), py::arg("w_out"),
      py::arg("b_out"), py::arg("P"), py::arg("S"), py::arg("states"), py::arg("outputs"), py::arg("feedback"),
      py::arg("train"), py::arg("rule"), py::arg("fit_bias"), py::arg("learning_rate"), py::arg("forgetting"));
}
