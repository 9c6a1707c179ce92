// Python bindings of the R-op engine (rnnfast/rop.h): register_rop(m), called from the PYBIND11_MODULE in
// bindings.cpp. Python (python/rnnfast/rop.py) validates and allocates; this file re-checks what the
// engine relies on (dtype, shape, row strides, writability), fills the params structs and releases the
// GIL around the compute. Every error names the argument.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "rnnfast/rop.h"
#include "bindings_util.h"

namespace py = pybind11;
using rnnfast::index_t;
using namespace rnnfast::bindings;

namespace {

template <typename T>
void rnn_rop_typed(const py::object& x, const py::object& h0, const py::object& y, const py::object& w_ih,
                   const py::object& w_hh, const py::object& v_ih, const py::object& v_hh, const py::object& v_b_ih,
                   const py::object& v_b_hh, const py::object& rx, const py::object& rh0, const py::object& ry,
                   bool relu, bool reverse) {
  using namespace rnnfast;
  const auto [Ts, N, C, H, F] = sequence_dims<T>(x, w_hh, "w_hh", true, "must have sizes >= 1");
  (void)F;
  RnnRopParams<T> p{};
  p.relu = relu;
  p.steps = int(Ts); p.batch = int(N); p.input_size = int(C); p.hidden = int(H);
  p.reverse = reverse;
  p.x = sequence<T>(x, "x", Ts, N, C, false, false, &p.ldx);
  p.h0 = dense<T>(h0, "h0", {N, H}, false, true);
  p.y = sequence<T>(y, "y", Ts, N, H, false, false, &p.ldy);
  p.w_ih = dense<T>(w_ih, "w_ih", {H, C}, false);
  p.w_hh = dense<T>(w_hh, "w_hh", {H, H}, false);
  p.v_ih = dense<T>(v_ih, "v_ih", {H, C}, false, true);
  p.v_hh = dense<T>(v_hh, "v_hh", {H, H}, false, true);
  p.v_b_ih = dense<T>(v_b_ih, "v_b_ih", {H}, false, true);
  p.v_b_hh = dense<T>(v_b_hh, "v_b_hh", {H}, false, true);
  p.rx = sequence<T>(rx, "rx", Ts, N, C, false, true, &p.ldrx);
  p.rh0 = dense<T>(rh0, "rh0", {N, H}, false, true);
  p.ry = sequence<T>(ry, "ry", Ts, N, H, true, false, &p.ldry);
  py::gil_scoped_release release;
  rnn_rop_cpu<T>(p);
}

template <typename T>
void mrnn_rop_typed(const py::object& x, const py::object& h0, const py::object& y, const py::object& fx,
                    const py::object& fh, const py::object& w_fx, const py::object& w_fh, const py::object& w_hf,
                    const py::object& w_hx, const py::object& v_fx, const py::object& v_fh, const py::object& v_hf,
                    const py::object& v_hx, const py::object& v_b, const py::object& rx, const py::object& rh0,
                    const py::object& ry, const py::object& work, bool reverse) {
  using namespace rnnfast;
  const auto [Ts, N, C, H, F] = sequence_dims<T>(x, w_fh, "w_fh", false, "must have sizes >= 1");
  if (fx.is_none() != fh.is_none())
    bad(fx.is_none() ? "fx" : "fh", "must be given together with the other (or both None)");
  MrnnRopParams<T> p{};
  p.steps = int(Ts); p.batch = int(N); p.input_size = int(C); p.hidden = int(H); p.factors = int(F);
  p.reverse = reverse;
  p.x = sequence<T>(x, "x", Ts, N, C, false, false, &p.ldx);
  p.h0 = dense<T>(h0, "h0", {N, H}, false, true);
  p.y = sequence<T>(y, "y", Ts, N, H, false, false, &p.ldy);
  p.fx = dense<T>(fx, "fx", {Ts, N, F}, false, true);
  p.fh = dense<T>(fh, "fh", {Ts, N, F}, false, true);
  p.w_fx = dense<T>(w_fx, "w_fx", {F, C}, false);
  p.w_fh = dense<T>(w_fh, "w_fh", {F, H}, false);
  p.w_hf = dense<T>(w_hf, "w_hf", {H, F}, false);
  p.w_hx = dense<T>(w_hx, "w_hx", {H, C}, false);
  p.v_fx = dense<T>(v_fx, "v_fx", {F, C}, false, true);
  p.v_fh = dense<T>(v_fh, "v_fh", {F, H}, false, true);
  p.v_hf = dense<T>(v_hf, "v_hf", {H, F}, false, true);
  p.v_hx = dense<T>(v_hx, "v_hx", {H, C}, false, true);
  p.v_b = dense<T>(v_b, "v_b", {H}, false, true);
  p.rx = sequence<T>(rx, "rx", Ts, N, C, false, true, &p.ldrx);
  p.rh0 = dense<T>(rh0, "rh0", {N, H}, false, true);
  p.ry = sequence<T>(ry, "ry", Ts, N, H, true, false, &p.ldry);
  p.work = dense<T>(work, "work", {mrnn_rop_workspace_size(p.steps, p.batch, p.factors, p.fx != nullptr)}, true);
  py::gil_scoped_release release;
  mrnn_rop_cpu<T>(p);
}

}  // namespace

void register_rop(py::module_& m) {
  m.def("rnn_rop",
        [](py::object x, py::object h0, py::object y, py::object w_ih, py::object w_hh, py::object v_ih,
           py::object v_hh, py::object v_b_ih, py::object v_b_hh, py::object rx, py::object rh0, py::object ry,
           const std::string& nonlinearity, bool reverse) {
          if (nonlinearity != "tanh" && nonlinearity != "relu") bad("nonlinearity", "must be 'tanh' or 'relu'");
          (float32_of(x, "x") ? rnn_rop_typed<float> : rnn_rop_typed<double>)(
              x, h0, y, w_ih, w_hh, v_ih, v_hh, v_b_ih, v_b_hh, rx, rh0, ry, nonlinearity == "relu", reverse);
        },
        "R-op (J v) of one layer, one direction of the vanilla RNN on the CPU (see rnnfast/rop.h).",
        py::arg("x"), py::arg("h0"), py::arg("y"), py::arg("w_ih"), py::arg("w_hh"), py::arg("v_ih"),
        py::arg("v_hh"), py::arg("v_b_ih"), py::arg("v_b_hh"), py::arg("rx"), py::arg("rh0"), py::arg("ry"),
        py::arg("nonlinearity"), py::arg("reverse"));
  m.def("mrnn_rop_workspace_size",
        [](int steps, int batch, int factors, bool have_factors) {
          if (steps < 1 || batch < 1 || factors < 1)
            throw std::invalid_argument("rnnfast._core.mrnn_rop_workspace_size: steps, batch and factors must be >= 1");
          return rnnfast::mrnn_rop_workspace_size(steps, batch, factors, have_factors);
        },
        py::arg("steps"), py::arg("batch"), py::arg("factors"), py::arg("have_factors"));
  m.def("mrnn_rop",
        [](py::object x, py::object h0, py::object y, py::object fx, py::object fh, py::object w_fx,
           py::object w_fh, py::object w_hf, py::object w_hx, py::object v_fx, py::object v_fh, py::object v_hf,
           py::object v_hx, py::object v_b, py::object rx, py::object rh0, py::object ry, py::object work,
           bool reverse) {
          (float32_of(x, "x") ? mrnn_rop_typed<float> : mrnn_rop_typed<double>)(
              x, h0, y, fx, fh, w_fx, w_fh, w_hf, w_hx, v_fx, v_fh, v_hf, v_hx, v_b, rx, rh0, ry, work, reverse);
        },
        "R-op (J v) of one layer, one direction of the multiplicative RNN on the CPU (see rnnfast/rop.h).",
        py::arg("x"), py::arg("h0"), py::arg("y"), py::arg("fx"), py::arg("fh"), py::arg("w_fx"), py::arg("w_fh"),
        py::arg("w_hf"), py::arg("w_hx"), py::arg("v_fx"), py::arg("v_fh"), py::arg("v_hf"), py::arg("v_hx"),
        py::arg("v_b"), py::arg("rx"), py::arg("rh0"), py::arg("ry"), py::arg("work"), py::arg("reverse"));
}
