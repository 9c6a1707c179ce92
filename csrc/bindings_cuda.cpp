// Bindings of the CUDA engine (compiled only when it is built): the recurrent time loops on device
// pointers. Python (rnnfast/_cuda.py) validates and allocates every CuPy array and passes raw device
// pointers (0 for none) and its current stream; this file only builds the params struct and releases
// the GIL while the launches are queued (they return without waiting for the GPU).
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "rnnfast/recurrent_cuda.h"

namespace py = pybind11;
using rnnfast::index_t;

namespace {

using ptr_t = std::uintptr_t;

bool is_float32(const std::string& dtype) {
  if (dtype == "float32") return true;
  if (dtype == "float64") return false;
  throw std::invalid_argument("rnnfast._core: argument 'dtype' must be 'float32' or 'float64', got '" + dtype + "'");
}

void check_sizes(int steps, int batch, int hidden) {
  if (steps < 1 || batch < 1 || hidden < 1)
    throw std::invalid_argument("rnnfast._core: steps, batch and hidden must be >= 1");
}

template <typename T>
T* as(ptr_t p) { return reinterpret_cast<T*>(p); }

template <typename T>
void forward_typed(int cell, int steps, int batch, int hidden, bool reverse, bool training, ptr_t xp, ptr_t w_hh_t,
                   ptr_t b_hh, ptr_t h0, ptr_t c0, ptr_t y, index_t ldy, ptr_t h_n, ptr_t c_n, ptr_t h_prev,
                   ptr_t c_prev, ptr_t gates, ptr_t extra, ptr_t work, ptr_t stream, ptr_t lengths, ptr_t zoneout,
                   double zoneout_p) {
  rnnfast::CudaForwardParams<T> p{};
  p.cell = rnnfast::cell_from_int(cell);
  p.steps = steps; p.batch = batch; p.hidden = hidden; p.reverse = reverse; p.training = training;
  p.xp = as<const T>(xp); p.w_hh_t = as<const T>(w_hh_t); p.b_hh = as<const T>(b_hh);
  p.h0 = as<const T>(h0); p.c0 = as<const T>(c0);
  p.y = as<T>(y); p.ldy = ldy; p.h_n = as<T>(h_n); p.c_n = as<T>(c_n);
  p.h_prev = as<T>(h_prev); p.c_prev = as<T>(c_prev); p.gates = as<T>(gates); p.extra = as<T>(extra);
  p.work = as<T>(work);
  p.stream = reinterpret_cast<void*>(stream);
  p.lengths = as<const std::int32_t>(lengths);
  p.zoneout = as<const T>(zoneout);
  if (!(zoneout_p >= 0 && zoneout_p < 1)) throw std::invalid_argument("rnnfast._core: zoneout_p must be in [0, 1)");
  p.zoneout_p = T(zoneout_p);
  py::gil_scoped_release release;
  rnnfast::recurrent_forward_cuda<T>(p);
}

template <typename T>
void backward_typed(int cell, int steps, int batch, int hidden, bool reverse, ptr_t w_hh, ptr_t h_prev,
                    ptr_t c_prev, ptr_t gates, ptr_t extra, ptr_t dy, index_t lddy, ptr_t dh_n, ptr_t dc_n,
                    ptr_t dG, ptr_t dGh, ptr_t dh0, ptr_t dc0, ptr_t work, ptr_t stream, ptr_t lengths,
                    ptr_t zoneout) {
  rnnfast::CudaBackwardParams<T> p{};
  p.cell = rnnfast::cell_from_int(cell);
  p.steps = steps; p.batch = batch; p.hidden = hidden; p.reverse = reverse;
  p.w_hh = as<const T>(w_hh); p.h_prev = as<const T>(h_prev); p.c_prev = as<const T>(c_prev);
  p.gates = as<const T>(gates); p.extra = as<const T>(extra);
  p.dy = as<const T>(dy); p.lddy = lddy; p.dh_n = as<const T>(dh_n); p.dc_n = as<const T>(dc_n);
  p.dG = as<T>(dG); p.dGh = as<T>(dGh); p.dh0 = as<T>(dh0); p.dc0 = as<T>(dc0);
  p.work = as<T>(work);
  p.stream = reinterpret_cast<void*>(stream);
  p.lengths = as<const std::int32_t>(lengths);
  p.zoneout = as<const T>(zoneout);
  py::gil_scoped_release release;
  rnnfast::recurrent_backward_cuda<T>(p);
}

template <typename T>
void reservoir_typed(int steps, int batch, int units, int population, ptr_t w_dense, ptr_t indptr, ptr_t indices,
                     ptr_t values, ptr_t uproj, ptr_t bias, ptr_t sr_scale, ptr_t in_scale, ptr_t leak, ptr_t x0,
                     ptr_t states, ptr_t stream) {
  rnnfast::CudaReservoirParams<T> p{};
  p.steps = steps; p.batch = batch; p.units = units; p.population = population;
  p.w_dense = as<const T>(w_dense);
  p.indptr = as<const std::int32_t>(indptr); p.indices = as<const std::int32_t>(indices);
  p.values = as<const T>(values);
  if (!p.w_dense && !(p.indptr && p.indices && p.values))
    throw std::invalid_argument("rnnfast._core: reservoir needs w_dense or all of indptr, indices, values");
  p.uproj = as<const T>(uproj); p.bias = as<const T>(bias); p.sr_scale = as<const T>(sr_scale);
  p.in_scale = as<const T>(in_scale); p.leak = as<const T>(leak); p.x0 = as<const T>(x0);
  p.states = as<T>(states);
  p.stream = reinterpret_cast<void*>(stream);
  py::gil_scoped_release release;
  rnnfast::reservoir_run_cuda<T>(p);
}

template <typename T>
void mrnn_forward_typed(int steps, int batch, int hidden, int factors, bool reverse, bool training, ptr_t fx,
                        ptr_t xh, ptr_t w_fh_t, ptr_t w_hf_t, ptr_t h0, ptr_t y, index_t ldy, ptr_t h_n, ptr_t h_prev,
                        ptr_t h, ptr_t fh, ptr_t work, ptr_t stream) {
  rnnfast::CudaMrnnForwardParams<T> p{};
  p.steps = steps; p.batch = batch; p.hidden = hidden; p.factors = factors; p.reverse = reverse;
  p.training = training;
  p.fx = as<const T>(fx); p.xh = as<const T>(xh); p.w_fh_t = as<const T>(w_fh_t); p.w_hf_t = as<const T>(w_hf_t);
  p.h0 = as<const T>(h0); p.y = as<T>(y); p.ldy = ldy; p.h_n = as<T>(h_n);
  p.h_prev = as<T>(h_prev); p.h = as<T>(h); p.fh = as<T>(fh); p.work = as<T>(work);
  p.stream = reinterpret_cast<void*>(stream);
  py::gil_scoped_release release;
  rnnfast::mrnn_forward_cuda<T>(p);
}

template <typename T>
void mrnn_backward_typed(int steps, int batch, int hidden, int factors, bool reverse, ptr_t w_fh, ptr_t w_hf,
                         ptr_t h, ptr_t fx, ptr_t fh, ptr_t dy, index_t lddy, ptr_t dh_n, ptr_t dA, ptr_t dFX,
                         ptr_t dFH, ptr_t dh0, ptr_t work, ptr_t stream) {
  rnnfast::CudaMrnnBackwardParams<T> p{};
  p.steps = steps; p.batch = batch; p.hidden = hidden; p.factors = factors; p.reverse = reverse;
  p.w_fh = as<const T>(w_fh); p.w_hf = as<const T>(w_hf); p.h = as<const T>(h); p.fx = as<const T>(fx);
  p.fh = as<const T>(fh); p.dy = as<const T>(dy); p.lddy = lddy; p.dh_n = as<const T>(dh_n);
  p.dA = as<T>(dA); p.dFX = as<T>(dFX); p.dFH = as<T>(dFH); p.dh0 = as<T>(dh0); p.work = as<T>(work);
  p.stream = reinterpret_cast<void*>(stream);
  py::gil_scoped_release release;
  rnnfast::mrnn_backward_cuda<T>(p);
}

}  // namespace

void register_cuda(py::module_& m) {
  m.def("cuda_set_tiling", &rnnfast::cuda_set_tiling, py::arg("rows"), py::arg("min_batch"),
        "Process-wide: batches of >= min_batch rows use the tiled step kernel with rows (32 or 64) batch rows "
        "per block; rows=0 keeps the row kernel everywhere.");
  m.def("cuda_tiling", [] { return py::make_tuple(rnnfast::cuda_tiling_rows(), rnnfast::cuda_tiling_min_batch()); },
        "(rows, min_batch) of the step kernel choice (see cuda_set_tiling).");
  m.def("cuda_set_row_kernel", &rnnfast::cuda_set_row_kernel, py::arg("width"), py::arg("units"),
        "Process-wide: the row step kernel's units per warp slice (32, 16 or 8; narrower = more blocks) and units "
        "per thread in single-gate launches such as every backward step (1, 2 or 4; above 1 stages V in shared "
        "memory).");
  m.def("cuda_row_kernel",
        [] { return py::make_tuple(rnnfast::cuda_row_kernel_width(), rnnfast::cuda_row_kernel_units()); },
        "(width, units) of the row step kernel (see cuda_set_row_kernel).");
  m.def("cuda_set_sync_checks", &rnnfast::cuda_set_sync_checks, py::arg("on"),
        "Process-wide debug mode (initially RNNFAST_CUDA_SYNC=1): synchronise and check after every launch, so "
        "that a failing kernel is named with its cell, pass, direction and step.");
  m.def("cuda_sync_checks", &rnnfast::cuda_sync_checks, "Whether the debug mode of cuda_set_sync_checks is on.");
  m.def("cuda_launch_empty",
        [](int count, ptr_t stream) {
          if (count < 0) throw std::invalid_argument("rnnfast._core: count must be >= 0");
          py::gil_scoped_release release;
          rnnfast::cuda_launch_empty(count, reinterpret_cast<void*>(stream));
        },
        "Queue `count` empty kernels on a CUDA stream through the engine's launch path (the launch floor).",
        py::arg("count"), py::arg("stream"));
  m.def("cuda_workspace_size",
        [](int cell, int batch, int hidden, bool backward) {
          check_sizes(1, batch, hidden);
          const rnnfast::Cell c = rnnfast::cell_from_int(cell);
          return backward ? rnnfast::cuda_backward_workspace_size(c, batch, hidden)
                          : rnnfast::cuda_forward_workspace_size(c, batch, hidden);
        },
        py::arg("cell"), py::arg("batch"), py::arg("hidden"), py::arg("backward"));
  m.def("cuda_recurrent_forward",
        [](const std::string& dtype, int cell, int steps, int batch, int hidden, bool reverse, bool training,
           ptr_t xp, ptr_t w_hh_t, ptr_t b_hh, ptr_t h0, ptr_t c0, ptr_t y, index_t ldy, ptr_t h_n, ptr_t c_n,
           ptr_t h_prev, ptr_t c_prev, ptr_t gates, ptr_t extra, ptr_t work, ptr_t stream, ptr_t lengths,
           ptr_t zoneout, double zoneout_p) {
          check_sizes(steps, batch, hidden);
          (is_float32(dtype) ? forward_typed<float> : forward_typed<double>)(
              cell, steps, batch, hidden, reverse, training, xp, w_hh_t, b_hh, h0, c0, y, ldy, h_n, c_n, h_prev,
              c_prev, gates, extra, work, stream, lengths, zoneout, zoneout_p);
        },
        "Queue one layer, one direction of RNN/LSTM/GRU forward on a CUDA stream (rnnfast/recurrent_cuda.h).",
        py::arg("dtype"), py::arg("cell"), py::arg("steps"), py::arg("batch"), py::arg("hidden"), py::arg("reverse"),
        py::arg("training"), py::arg("xp"), py::arg("w_hh_t"), py::arg("b_hh"), py::arg("h0"), py::arg("c0"),
        py::arg("y"), py::arg("ldy"), py::arg("h_n"), py::arg("c_n"), py::arg("h_prev"), py::arg("c_prev"),
        py::arg("gates"), py::arg("extra"), py::arg("work"), py::arg("stream"), py::arg("lengths") = 0,
        py::arg("zoneout") = 0, py::arg("zoneout_p") = 0.0);
  m.def("cuda_recurrent_backward",
        [](const std::string& dtype, int cell, int steps, int batch, int hidden, bool reverse, ptr_t w_hh,
           ptr_t h_prev, ptr_t c_prev, ptr_t gates, ptr_t extra, ptr_t dy, index_t lddy, ptr_t dh_n, ptr_t dc_n,
           ptr_t dG, ptr_t dGh, ptr_t dh0, ptr_t dc0, ptr_t work, ptr_t stream, ptr_t lengths, ptr_t zoneout) {
          check_sizes(steps, batch, hidden);
          (is_float32(dtype) ? backward_typed<float> : backward_typed<double>)(
              cell, steps, batch, hidden, reverse, w_hh, h_prev, c_prev, gates, extra, dy, lddy, dh_n, dc_n, dG,
              dGh, dh0, dc0, work, stream, lengths, zoneout);
        },
        "Queue one layer, one direction of RNN/LSTM/GRU backward through time on a CUDA stream.",
        py::arg("dtype"), py::arg("cell"), py::arg("steps"), py::arg("batch"), py::arg("hidden"), py::arg("reverse"),
        py::arg("w_hh"), py::arg("h_prev"), py::arg("c_prev"), py::arg("gates"), py::arg("extra"), py::arg("dy"),
        py::arg("lddy"), py::arg("dh_n"), py::arg("dc_n"), py::arg("dG"), py::arg("dGh"), py::arg("dh0"),
        py::arg("dc0"), py::arg("work"), py::arg("stream"), py::arg("lengths") = 0, py::arg("zoneout") = 0);
  m.def("cuda_reservoir_run",
        [](const std::string& dtype, int steps, int batch, int units, int population, ptr_t w_dense, ptr_t indptr,
           ptr_t indices, ptr_t values, ptr_t uproj, ptr_t bias, ptr_t sr_scale, ptr_t in_scale, ptr_t leak,
           ptr_t x0, ptr_t states, ptr_t stream) {
          check_sizes(steps, batch, units);
          if (population < 1) throw std::invalid_argument("rnnfast._core: population must be >= 1");
          (is_float32(dtype) ? reservoir_typed<float> : reservoir_typed<double>)(
              steps, batch, units, population, w_dense, indptr, indices, values, uproj, bias, sr_scale, in_scale,
              leak, x0, states, stream);
        },
        "Queue a population of leaky reservoirs over a batch of sequences on a CUDA stream.",
        py::arg("dtype"), py::arg("steps"), py::arg("batch"), py::arg("units"), py::arg("population"),
        py::arg("w_dense"), py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("uproj"),
        py::arg("bias"), py::arg("sr_scale"), py::arg("in_scale"), py::arg("leak"), py::arg("x0"),
        py::arg("states"), py::arg("stream"));
  m.def("cuda_mrnn_workspace_size",
        [](int batch, int hidden, int factors, bool backward) {
          check_sizes(1, batch, hidden);
          if (factors < 1) throw std::invalid_argument("rnnfast._core: factors must be >= 1");
          return rnnfast::cuda_mrnn_workspace_size(batch, hidden, factors, backward);
        },
        py::arg("batch"), py::arg("hidden"), py::arg("factors"), py::arg("backward"));
  m.def("cuda_mrnn_forward",
        [](const std::string& dtype, int steps, int batch, int hidden, int factors, bool reverse, bool training,
           ptr_t fx, ptr_t xh, ptr_t w_fh_t, ptr_t w_hf_t, ptr_t h0, ptr_t y, index_t ldy, ptr_t h_n, ptr_t h_prev,
           ptr_t h, ptr_t fh, ptr_t work, ptr_t stream) {
          check_sizes(steps, batch, hidden);
          if (factors < 1) throw std::invalid_argument("rnnfast._core: factors must be >= 1");
          (is_float32(dtype) ? mrnn_forward_typed<float> : mrnn_forward_typed<double>)(
              steps, batch, hidden, factors, reverse, training, fx, xh, w_fh_t, w_hf_t, h0, y, ldy, h_n, h_prev, h,
              fh, work, stream);
        },
        "Queue one layer, one direction of the multiplicative RNN forward on a CUDA stream.",
        py::arg("dtype"), py::arg("steps"), py::arg("batch"), py::arg("hidden"), py::arg("factors"),
        py::arg("reverse"), py::arg("training"), py::arg("fx"), py::arg("xh"), py::arg("w_fh_t"), py::arg("w_hf_t"),
        py::arg("h0"), py::arg("y"), py::arg("ldy"), py::arg("h_n"), py::arg("h_prev"), py::arg("h"), py::arg("fh"),
        py::arg("work"), py::arg("stream"));
  m.def("cuda_mrnn_backward",
        [](const std::string& dtype, int steps, int batch, int hidden, int factors, bool reverse, ptr_t w_fh,
           ptr_t w_hf, ptr_t h, ptr_t fx, ptr_t fh, ptr_t dy, index_t lddy, ptr_t dh_n, ptr_t dA, ptr_t dFX,
           ptr_t dFH, ptr_t dh0, ptr_t work, ptr_t stream) {
          check_sizes(steps, batch, hidden);
          if (factors < 1) throw std::invalid_argument("rnnfast._core: factors must be >= 1");
          (is_float32(dtype) ? mrnn_backward_typed<float> : mrnn_backward_typed<double>)(
              steps, batch, hidden, factors, reverse, w_fh, w_hf, h, fx, fh, dy, lddy, dh_n, dA, dFX, dFH, dh0,
              work, stream);
        },
        "Queue one layer, one direction of the multiplicative RNN backward through time on a CUDA stream.",
        py::arg("dtype"), py::arg("steps"), py::arg("batch"), py::arg("hidden"), py::arg("factors"),
        py::arg("reverse"), py::arg("w_fh"), py::arg("w_hf"), py::arg("h"), py::arg("fx"), py::arg("fh"),
        py::arg("dy"), py::arg("lddy"), py::arg("dh_n"), py::arg("dA"), py::arg("dFX"), py::arg("dFH"),
        py::arg("dh0"), py::arg("work"), py::arg("stream"));
}
