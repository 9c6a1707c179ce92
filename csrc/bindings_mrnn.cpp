// Python bindings of the multiplicative RNN engine (rnnfast/mrnn.h): register_mrnn(m), called from the
// PYBIND11_MODULE in bindings.cpp. Python (python/rnnfast/mrnn.py) validates and allocates; this file
// re-checks what the engine relies on (dtype, shape, row strides, writability), fills the params structs
// and releases the GIL around the compute. Every error names the argument.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "rnnfast/mrnn.h"
#include "bindings_util.h"

namespace py = pybind11;
using rnnfast::index_t;
using namespace rnnfast::bindings;

namespace {


template <typename T>
void forward_typed(const py::object& x, const py::object& h0, const py::object& w_fx, const py::object& w_fh,
                   const py::object& w_hf, const py::object& w_hx, const py::object& b, const py::object& y,
                   const py::object& h_n, const py::object& h_prev, const py::object& h, const py::object& fx,
                   const py::object& fh, const py::object& work, bool reverse, bool training) {
  using namespace rnnfast;
  const auto [Ts, N, C, H, F] =
      sequence_dims<T>(x, w_fh, "w_fh", false, "must have F (factors) >= 1 and H >= 1");
  MrnnForwardParams<T> p{};
  p.steps = int(Ts); p.batch = int(N); p.input_size = int(C); p.hidden = int(H); p.factors = int(F);
  p.reverse = reverse; p.training = training;
  p.x = sequence<T>(x, "x", Ts, N, C, false, false, &p.ldx);
  p.h0 = dense<T>(h0, "h0", {N, H}, false, true);
  p.w_fx = dense<T>(w_fx, "w_fx", {F, C}, false);
  p.w_fh = dense<T>(w_fh, "w_fh", {F, H}, false);
  p.w_hf = dense<T>(w_hf, "w_hf", {H, F}, false);
  p.w_hx = dense<T>(w_hx, "w_hx", {H, C}, false);
  p.b = dense<T>(b, "b", {H}, false, true);
  p.y = sequence<T>(y, "y", Ts, N, H, true, false, &p.ldy);
  p.h_n = dense<T>(h_n, "h_n", {N, H}, true);
  if (training) {
    p.h_prev = dense<T>(h_prev, "h_prev", {Ts, N, H}, true);
    p.h = dense<T>(h, "h", {Ts, N, H}, true);
    p.fx = dense<T>(fx, "fx", {Ts, N, F}, true);
    p.fh = dense<T>(fh, "fh", {Ts, N, F}, true);
  }
  p.work = dense<T>(work, "work", {mrnn_workspace_size(p.steps, p.batch, p.hidden, p.factors, training, false)}, true);
  py::gil_scoped_release release;
  mrnn_forward_cpu<T>(p);
}

template <typename T>
void backward_typed(const py::object& x, const py::object& w_fx, const py::object& w_fh, const py::object& w_hf,
                    const py::object& w_hx, const py::object& h_prev, const py::object& h, const py::object& fx,
                    const py::object& fh, const py::object& dy, const py::object& dh_n, const py::object& dx,
                    bool accumulate_dx, const py::object& dh0, const py::object& dw_fx, const py::object& dw_fh,
                    const py::object& dw_hf, const py::object& dw_hx, const py::object& db, const py::object& work,
                    bool reverse) {
  using namespace rnnfast;
  const auto [Ts, N, C, H, F] =
      sequence_dims<T>(x, w_fh, "w_fh", false, "must have F (factors) >= 1 and H >= 1");
  MrnnBackwardParams<T> p{};
  p.steps = int(Ts); p.batch = int(N); p.input_size = int(C); p.hidden = int(H); p.factors = int(F);
  p.reverse = reverse;
  p.x = sequence<T>(x, "x", Ts, N, C, false, false, &p.ldx);
  p.w_fx = dense<T>(w_fx, "w_fx", {F, C}, false);
  p.w_fh = dense<T>(w_fh, "w_fh", {F, H}, false);
  p.w_hf = dense<T>(w_hf, "w_hf", {H, F}, false);
  p.w_hx = dense<T>(w_hx, "w_hx", {H, C}, false);
  p.h_prev = dense<T>(h_prev, "h_prev", {Ts, N, H}, false);
  p.h = dense<T>(h, "h", {Ts, N, H}, false);
  p.fx = dense<T>(fx, "fx", {Ts, N, F}, false);
  p.fh = dense<T>(fh, "fh", {Ts, N, F}, false);
  p.dy = sequence<T>(dy, "dy", Ts, N, H, false, true, &p.lddy);
  p.dh_n = dense<T>(dh_n, "dh_n", {N, H}, false, true);
  p.dx = sequence<T>(dx, "dx", Ts, N, C, true, false, &p.lddx);
  p.accumulate_dx = accumulate_dx;
  p.dh0 = dense<T>(dh0, "dh0", {N, H}, true);
  p.dw_fx = dense<T>(dw_fx, "dw_fx", {F, C}, true);
  p.dw_fh = dense<T>(dw_fh, "dw_fh", {F, H}, true);
  p.dw_hf = dense<T>(dw_hf, "dw_hf", {H, F}, true);
  p.dw_hx = dense<T>(dw_hx, "dw_hx", {H, C}, true);
  p.db = dense<T>(db, "db", {H}, true, true);
  p.work = dense<T>(work, "work", {mrnn_workspace_size(p.steps, p.batch, p.hidden, p.factors, false, true)}, true);
  py::gil_scoped_release release;
  mrnn_backward_cpu<T>(p);
}

}  // namespace

void register_mrnn(py::module_& m) {
  m.def("mrnn_workspace_size",
        [](int steps, int batch, int hidden, int factors, bool training, bool backward) {
          if (steps < 1 || batch < 1 || hidden < 1 || factors < 1)
            throw std::invalid_argument(
                "rnnfast._core.mrnn_workspace_size: steps, batch, hidden and factors must be >= 1");
          return rnnfast::mrnn_workspace_size(steps, batch, hidden, factors, training, backward);
        },
        py::arg("steps"), py::arg("batch"), py::arg("hidden"), py::arg("factors"), py::arg("training"),
        py::arg("backward"));
  m.def("mrnn_forward",
        [](py::object x, py::object h0, py::object w_fx, py::object w_fh, py::object w_hf, py::object w_hx,
           py::object b, py::object y, py::object h_n, py::object h_prev, py::object h, py::object fx, py::object fh,
           py::object work, bool reverse, bool training) {
          (float32_of(x, "x") ? forward_typed<float> : forward_typed<double>)(x, h0, w_fx, w_fh, w_hf, w_hx, b, y, h_n,
                                                                         h_prev, h, fx, fh, work, reverse, training);
        },
        "One layer, one direction of the multiplicative RNN forward on the CPU (see rnnfast/mrnn.h).",
        py::arg("x"), py::arg("h0"), py::arg("w_fx"), py::arg("w_fh"), py::arg("w_hf"), py::arg("w_hx"), py::arg("b"),
        py::arg("y"), py::arg("h_n"), py::arg("h_prev"), py::arg("h"), py::arg("fx"), py::arg("fh"), py::arg("work"),
        py::arg("reverse"), py::arg("training"));
  m.def("mrnn_backward",
        [](py::object x, py::object w_fx, py::object w_fh, py::object w_hf, py::object w_hx, py::object h_prev,
           py::object h, py::object fx, py::object fh, py::object dy, py::object dh_n, py::object dx,
           bool accumulate_dx, py::object dh0, py::object dw_fx, py::object dw_fh, py::object dw_hf,
           py::object dw_hx, py::object db, py::object work, bool reverse) {
          (float32_of(x, "x") ? backward_typed<float> : backward_typed<double>)(
              x, w_fx, w_fh, w_hf, w_hx, h_prev, h, fx, fh, dy, dh_n, dx, accumulate_dx, dh0, dw_fx, dw_fh, dw_hf,
              dw_hx, db, work, reverse);
        },
        "One layer, one direction of the multiplicative RNN backward through time on the CPU.",
        py::arg("x"), py::arg("w_fx"), py::arg("w_fh"), py::arg("w_hf"), py::arg("w_hx"), py::arg("h_prev"),
        py::arg("h"), py::arg("fx"), py::arg("fh"), py::arg("dy"), py::arg("dh_n"), py::arg("dx"),
        py::arg("accumulate_dx"), py::arg("dh0"), py::arg("dw_fx"), py::arg("dw_fh"), py::arg("dw_hf"),
        py::arg("dw_hx"), py::arg("db"), py::arg("work"), py::arg("reverse"));
}
