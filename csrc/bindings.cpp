// The only C++ file that knows about Python: module rnnfast._core.
// Python (python/rnnfast) validates arguments and allocates every array; this file re-checks the
// invariants the engines rely on (dtype, shape, strides, writability), builds the params structs and
// releases the GIL around the compute.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "rnnfast/cpu_engine.h"
#include "rnnfast/parallel.h"
#include "rnnfast/recurrent.h"
#include "rnnfast/reservoir.h"
#include "bindings_util.h"

void register_char(pybind11::module_& m);  // csrc/bindings_char.cpp

#ifdef RNNFAST_WITH_CUDA
#include "rnnfast/cuda_device.h"
void register_cuda(pybind11::module_& m);  // csrc/bindings_cuda.cpp
#endif

namespace py = pybind11;
using rnnfast::index_t;
using namespace rnnfast::bindings;

namespace {

struct Dims {
  index_t steps, batch, input_size, hidden;
};

// T, N, C from x: [T,N,C] and H from w_hh: [G*H,H], checked to be >= 1 and within 32-bit BLAS indices.
template <typename T>
Dims recurrent_dims(rnnfast::Cell cell, const py::object& x, const py::object& w_hh) {
  const py::array xa = typed<T>(x, "x");
  if (xa.ndim() != 3) bad("x", "must be 3-D (T, N, C)");
  const py::array wa = typed<T>(w_hh, "w_hh");
  if (wa.ndim() != 2) bad("w_hh", "must be 2-D (G*H, H)");
  const Dims d{xa.shape(0), xa.shape(1), xa.shape(2), wa.shape(1)};
  if (d.steps < 1 || d.batch < 1 || d.input_size < 1 || d.hidden < 1) bad("x", "must have T, N, C >= 1 and H >= 1");
  const index_t GH = rnnfast::gates_of(cell) * d.hidden;
  if (d.steps * d.batch * std::max(d.input_size, GH) >= (index_t(1) << 31))
    bad("x", "is too large for 32-bit BLAS indices");
  return d;
}

template <typename T>
void forward_typed(int cell_i, const py::object& x, const py::object& h0, const py::object& c0,
                   const py::object& w_ih, const py::object& w_hh, const py::object& b_ih,
                   const py::object& b_hh, const py::object& y, const py::object& h_n, const py::object& c_n,
                   const py::object& h_prev, const py::object& c_prev, const py::object& gates,
                   const py::object& extra, const py::object& work, bool reverse, bool training) {
  using namespace rnnfast;
  RecurrentForwardParams<T> p{};
  p.cell = cell_from_int(cell_i);
  const auto [Ts, N, C, H] = recurrent_dims<T>(p.cell, x, w_hh);
  const index_t G = gates_of(p.cell), GH = G * H;
  const bool lstm = p.cell == Cell::Lstm, gru = G == 3;
  p.steps = int(Ts); p.batch = int(N); p.input_size = int(C); p.hidden = int(H);
  p.reverse = reverse; p.training = training;
  p.x = sequence<T>(x, "x", Ts, N, C, false, false, &p.ldx);
  p.h0 = dense<T>(h0, "h0", {N, H}, false, true);
  p.c0 = lstm ? dense<T>(c0, "c0", {N, H}, false, true) : nullptr;
  p.w_ih = dense<T>(w_ih, "w_ih", {GH, C}, false, false);
  p.w_hh = dense<T>(w_hh, "w_hh", {GH, H}, false, false);
  p.b_ih = dense<T>(b_ih, "b_ih", {GH}, false, true);
  p.b_hh = dense<T>(b_hh, "b_hh", {GH}, false, true);
  p.y = sequence<T>(y, "y", Ts, N, H, true, false, &p.ldy);
  p.h_n = dense<T>(h_n, "h_n", {N, H}, true, false);
  p.c_n = lstm ? dense<T>(c_n, "c_n", {N, H}, true, false) : nullptr;
  if (training) {
    p.h_prev = dense<T>(h_prev, "h_prev", {Ts, N, H}, true, false);
    p.c_prev = lstm ? dense<T>(c_prev, "c_prev", {Ts, N, H}, true, false) : nullptr;
    p.gates = dense<T>(gates, "gates", {Ts, N, GH}, true, false);
    p.extra = gru ? dense<T>(extra, "extra", {Ts, N, H}, true, false) : nullptr;
  }
  const index_t ws = recurrent_workspace_size(p.cell, p.steps, p.batch, p.hidden, false);
  p.work = dense<T>(work, "work", {ws}, true, false);
  py::gil_scoped_release release;
  recurrent_forward_cpu<T>(p);
}

template <typename T>
void backward_typed(int cell_i, const py::object& x, const py::object& w_ih, const py::object& w_hh,
                    const py::object& h_prev, const py::object& c_prev, const py::object& gates,
                    const py::object& extra, const py::object& dy, const py::object& dh_n,
                    const py::object& dc_n, const py::object& dx, bool accumulate_dx, const py::object& dh0,
                    const py::object& dc0, const py::object& dw_ih, const py::object& dw_hh,
                    const py::object& db_ih, const py::object& db_hh, const py::object& work, bool reverse) {
  using namespace rnnfast;
  RecurrentBackwardParams<T> p{};
  p.cell = cell_from_int(cell_i);
  const auto [Ts, N, C, H] = recurrent_dims<T>(p.cell, x, w_hh);
  const index_t G = gates_of(p.cell), GH = G * H;
  const bool lstm = p.cell == Cell::Lstm, gru = G == 3;
  p.steps = int(Ts); p.batch = int(N); p.input_size = int(C); p.hidden = int(H);
  p.reverse = reverse;
  p.x = sequence<T>(x, "x", Ts, N, C, false, false, &p.ldx);
  p.w_ih = dense<T>(w_ih, "w_ih", {GH, C}, false, false);
  p.w_hh = dense<T>(w_hh, "w_hh", {GH, H}, false, false);
  p.h_prev = dense<T>(h_prev, "h_prev", {Ts, N, H}, false, false);
  p.c_prev = lstm ? dense<T>(c_prev, "c_prev", {Ts, N, H}, false, false) : nullptr;
  p.gates = dense<T>(gates, "gates", {Ts, N, GH}, false, false);
  p.extra = gru ? dense<T>(extra, "extra", {Ts, N, H}, false, false) : nullptr;
  p.dy = sequence<T>(dy, "dy", Ts, N, H, false, true, &p.lddy);
  p.dh_n = dense<T>(dh_n, "dh_n", {N, H}, false, true);
  p.dc_n = lstm ? dense<T>(dc_n, "dc_n", {N, H}, false, true) : nullptr;
  p.dx = sequence<T>(dx, "dx", Ts, N, C, true, false, &p.lddx);
  p.accumulate_dx = accumulate_dx;
  p.dh0 = dense<T>(dh0, "dh0", {N, H}, true, false);
  p.dc0 = lstm ? dense<T>(dc0, "dc0", {N, H}, true, false) : nullptr;
  p.dw_ih = dense<T>(dw_ih, "dw_ih", {GH, C}, true, false);
  p.dw_hh = dense<T>(dw_hh, "dw_hh", {GH, H}, true, false);
  p.db_ih = dense<T>(db_ih, "db_ih", {GH}, true, true);
  p.db_hh = dense<T>(db_hh, "db_hh", {GH}, true, true);
  const index_t ws = recurrent_workspace_size(p.cell, p.steps, p.batch, p.hidden, true);
  p.work = dense<T>(work, "work", {ws}, true, false);
  py::gil_scoped_release release;
  recurrent_backward_cpu<T>(p);
}


void register_recurrent(py::module_& m) {
  m.def("recurrent_workspace_size",
        [](int cell, int steps, int batch, int hidden, bool backward) {
          if (steps < 1 || batch < 1 || hidden < 1)
            throw std::invalid_argument("rnnfast._core.recurrent_workspace_size: steps, batch and hidden must be >= 1");
          return rnnfast::recurrent_workspace_size(rnnfast::cell_from_int(cell), steps, batch, hidden, backward);
        },
        py::arg("cell"), py::arg("steps"), py::arg("batch"), py::arg("hidden"), py::arg("backward"));
  m.def("recurrent_forward",
        [](int cell, py::object x, py::object h0, py::object c0, py::object w_ih, py::object w_hh,
           py::object b_ih, py::object b_hh, py::object y, py::object h_n, py::object c_n, py::object h_prev,
           py::object c_prev, py::object gates, py::object extra, py::object work, bool reverse, bool training) {
          (float32_of(x, "x") ? forward_typed<float> : forward_typed<double>)(
              cell, x, h0, c0, w_ih, w_hh, b_ih, b_hh, y, h_n, c_n, h_prev, c_prev, gates, extra, work, reverse,
              training);
        },
        "One layer, one direction of RNN/LSTM/GRU forward on the CPU (see rnnfast/recurrent.h).",
        py::arg("cell"), py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih"), py::arg("b_hh"), py::arg("y"), py::arg("h_n"), py::arg("c_n"), py::arg("h_prev"),
        py::arg("c_prev"), py::arg("gates"), py::arg("extra"), py::arg("work"), py::arg("reverse"),
        py::arg("training"));
  m.def("recurrent_backward",
        [](int cell, py::object x, py::object w_ih, py::object w_hh, py::object h_prev, py::object c_prev,
           py::object gates, py::object extra, py::object dy, py::object dh_n, py::object dc_n, py::object dx,
           bool accumulate_dx, py::object dh0, py::object dc0, py::object dw_ih, py::object dw_hh,
           py::object db_ih, py::object db_hh, py::object work, bool reverse) {
          (float32_of(x, "x") ? backward_typed<float> : backward_typed<double>)(
              cell, x, w_ih, w_hh, h_prev, c_prev, gates, extra, dy, dh_n, dc_n, dx, accumulate_dx, dh0, dc0,
              dw_ih, dw_hh, db_ih, db_hh, work, reverse);
        },
        "One layer, one direction of RNN/LSTM/GRU backward through time on the CPU.",
        py::arg("cell"), py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("h_prev"), py::arg("c_prev"),
        py::arg("gates"), py::arg("extra"), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"), py::arg("dx"),
        py::arg("accumulate_dx"), py::arg("dh0"), py::arg("dc0"), py::arg("dw_ih"), py::arg("dw_hh"),
        py::arg("db_ih"), py::arg("db_hh"), py::arg("work"), py::arg("reverse"));
}

template <typename T>
void reservoir_typed(const py::object& u, const py::object& w, const py::object& indptr, const py::object& indices,
                     const py::object& values, const py::object& w_in, const py::object& bias,
                     const py::object& sr_scale, const py::object& in_scale, const py::object& leak,
                     const py::object& x0, const py::object& states, const py::object& x_last) {
  using namespace rnnfast;
  ReservoirParams<T> p{};
  const py::array ua = typed<T>(u, "u");
  if (ua.ndim() != 3) bad("u", "must be 3-D (T, B, I)");
  const py::array wia = typed<T>(w_in, "w_in");
  if (wia.ndim() != 2) bad("w_in", "must be 2-D (N, I)");
  const py::array sa = typed<T>(sr_scale, "sr_scale");
  if (sa.ndim() != 1) bad("sr_scale", "must be 1-D (P,)");
  const index_t Ts = ua.shape(0), B = ua.shape(1), I = ua.shape(2), N = wia.shape(0), P = sa.shape(0);
  if (Ts < 1 || B < 1 || I < 1 || N < 1 || P < 1) bad("u", "must have T, B, I >= 1 (and N, P >= 1)");
  if (Ts * B * std::max(N, I) >= (index_t(1) << 31) || P * B * N >= (index_t(1) << 31))
    bad("u", "is too large for 32-bit indices");
  p.steps = int(Ts); p.batch = int(B); p.inputs = int(I); p.units = int(N); p.population = int(P);
  p.u = dense<T>(u, "u", {Ts, B, I}, false, false);
  p.w_in = dense<T>(w_in, "w_in", {N, I}, false, false);
  p.bias = dense<T>(bias, "bias", {N}, false, true);
  p.sr_scale = dense<T>(sr_scale, "sr_scale", {P}, false, false);
  p.in_scale = dense<T>(in_scale, "in_scale", {P}, false, false);
  p.leak = dense<T>(leak, "leak", {P, N}, false, false);
  p.x0 = dense<T>(x0, "x0", {P, B, N}, false, true);
  p.states = dense<T>(states, "states", {Ts, P, B, N}, true, false);
  p.x_last = dense<T>(x_last, "x_last", {P, B, N}, true, false);
  if (!w.is_none()) {
    p.w_dense = dense<T>(w, "w", {N, N}, false, false);
  } else {
    if (!py::isinstance<py::array_t<std::int32_t>>(indptr) || !py::isinstance<py::array_t<std::int32_t>>(indices))
      bad("indptr/indices", "must be int32 numpy arrays (CSR) when w is None");
    const py::array ip = py::reinterpret_borrow<py::array>(indptr), ix = py::reinterpret_borrow<py::array>(indices);
    if (ip.dtype().num() != py::dtype::of<std::int32_t>().num() || ix.dtype().num() != py::dtype::of<std::int32_t>().num())
      bad("indptr/indices", "must have dtype int32");
    if (ip.ndim() != 1 || ip.shape(0) != N + 1 || !(ip.flags() & py::array::c_style)) bad("indptr", "must have shape (N+1,)");
    const auto* iptr = static_cast<const std::int32_t*>(ip.data());
    const index_t nnz = iptr[N];
    if (ix.ndim() != 1 || ix.shape(0) != nnz || !(ix.flags() & py::array::c_style))
      bad("indices", "must have shape (nnz,) = (indptr[-1],)");
    if (iptr[0] != 0) bad("indptr", "must start at 0");
    for (index_t i = 0; i < N; ++i)
      if (iptr[i + 1] < iptr[i]) bad("indptr", "must be non-decreasing");
    const auto* iidx = static_cast<const std::int32_t*>(ix.data());
    for (index_t k = 0; k < nnz; ++k)
      if (iidx[k] < 0 || iidx[k] >= N) bad("indices", "must lie in [0, N)");
    p.indptr = iptr;
    p.indices = iidx;
    p.values = dense<T>(values, "values", {nnz}, false, false);
  }
  py::gil_scoped_release release;
  reservoir_run_cpu<T>(p);
}


void register_reservoir(py::module_& m) {
  m.def("reservoir_run",
        [](py::object u, py::object w, py::object indptr, py::object indices, py::object values, py::object w_in,
           py::object bias, py::object sr_scale, py::object in_scale, py::object leak, py::object x0,
           py::object states, py::object x_last) {
          (float32_of(u, "u") ? reservoir_typed<float> : reservoir_typed<double>)(
              u, w, indptr, indices, values, w_in, bias, sr_scale, in_scale, leak, x0, states, x_last);
        },
        "Run a population of leaky reservoirs over a batch of sequences on the CPU (rnnfast/reservoir.h).",
        py::arg("u"), py::arg("w"), py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("w_in"),
        py::arg("bias"), py::arg("sr_scale"), py::arg("in_scale"), py::arg("leak"), py::arg("x0"),
        py::arg("states"), py::arg("x_last"));
}

void register_info(py::module_& m) {
  m.def("build_info", []() {
    py::dict d;
    d["version"] = RNNFAST_VERSION;
    d["blas"] = RNNFAST_BLAS_NAME;
    d["blas_core"] = rnnfast::blas_core_name();
    d["threads"] = rnnfast::engine_threads();
    d["cpu_isa"] = rnnfast::cpu_engine().tier;
    d["cpu_isa_compiled"] = rnnfast::cpu_tiers_compiled();
    d["cpu_isa_supported"] = rnnfast::cpu_tiers_supported();
    d["cpu_features"] = rnnfast::cpu_features();
#ifdef RNNFAST_WITH_CUDA
    d["cuda_compiled"] = true;
    d["cuda_runtime_version"] = rnnfast::cuda_runtime_version();
#else
    d["cuda_compiled"] = false;
#endif
    d["compiler"] = __VERSION__;
    return d;
  });
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw std::invalid_argument("rnnfast._core.set_num_threads: argument 'n' must be >= 1");
    rnnfast::set_engine_threads(n);
  }, "Limit the CPU engine's threads for the calls that start from now on (RNNFAST_NUM_THREADS at run time).",
        py::arg("n"));
  m.def("cuda_device_count", []() {
#ifdef RNNFAST_WITH_CUDA
    return rnnfast::cuda_device_count();
#else
    return 0;
#endif
  }, "Number of usable CUDA devices now (0 without a driver, a GPU, or CUDA support compiled in).");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnfast compiled engines (CPU; CUDA when compiled in)";
  rnnfast::cpu_engine();  // choose the CPU tier now: a bad RNNFAST_CPU_ISA fails the import with its reason
  rnnfast::blas_single_threaded();  // the engine's own threads split the work (see rnnfast/parallel.h)
  register_info(m);
  register_recurrent(m);
  register_reservoir(m);
  register_char(m);
#ifdef RNNFAST_WITH_CUDA
  register_cuda(m);
#endif
  { void register_mrnn(py::module_&); register_mrnn(m); }  // multiplicative RNN: csrc/bindings_mrnn.cpp
  { void register_rop(py::module_&); register_rop(m); }  // R-ops (J v) of the RNN and MRNN: csrc/bindings_rop.cpp
  { void register_train(py::module_&); register_train(m); }  // training-step kernels: csrc/bindings_train.cpp
  { void register_statespace(py::module_&); register_statespace(m); }  // HMM and Kalman: csrc/bindings_statespace.cpp
  { void register_online(py::module_&); register_online(m); }  // online read-outs (LMS, RLS): csrc/bindings_online.cpp
}
