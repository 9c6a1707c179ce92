// Bindings of the CUDA engine (compiled only when it is built): the time loops on device pointers. Python
// (rnnfast/_cuda.py) validates and allocates every CuPy array and passes raw device pointers (0 for none)
// and its current stream; this file only fills the params struct and releases the GIL while the launches
// are queued (they return without waiting for the GPU).
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "rnnfast/recurrent_cuda.h"
#include "bindings_util.h"

namespace rnnfast {
namespace {

using namespace bindings;
using ptr_t = std::uintptr_t;
using Str = std::string;

// clang-format off
#define CUDA_WORKSPACE(F) F(int, cell) F(int, batch) F(int, hidden) F(bool, backward)
#define CUDA_FORWARD(F)                                                                                        \
  F(Str, dtype) F(int, cell) F(int, steps) F(int, batch) F(int, hidden) F(bool, reverse) F(bool, training)     \
  F(ptr_t, xp) F(ptr_t, w_hh_t) F(ptr_t, b_hh) F(ptr_t, h0) F(ptr_t, c0) F(ptr_t, y) F(index_t, ldy)           \
  F(ptr_t, h_n) F(ptr_t, c_n) F(ptr_t, h_prev) F(ptr_t, c_prev) F(ptr_t, gates) F(ptr_t, extra) F(ptr_t, work) \
  F(ptr_t, stream) F(ptr_t, lengths) F(ptr_t, zoneout) F(double, zoneout_p)
#define CUDA_BACKWARD(F)                                                                                         \
  F(Str, dtype) F(int, cell) F(int, steps) F(int, batch) F(int, hidden) F(bool, reverse) F(ptr_t, w_hh)          \
  F(ptr_t, h_prev) F(ptr_t, c_prev) F(ptr_t, gates) F(ptr_t, extra) F(ptr_t, dy) F(index_t, lddy) F(ptr_t, dh_n) \
  F(ptr_t, dc_n) F(ptr_t, dG) F(ptr_t, dGh) F(ptr_t, dh0) F(ptr_t, dc0) F(ptr_t, work) F(ptr_t, stream)     \
  F(ptr_t, lengths) F(ptr_t, zoneout)
#define CUDA_RESERVOIR(F)                                                                                       \
  F(Str, dtype) F(int, steps) F(int, batch) F(int, units) F(int, population) F(ptr_t, w_dense) F(ptr_t, indptr) \
  F(ptr_t, indices) F(ptr_t, values) F(ptr_t, uproj) F(ptr_t, bias) F(ptr_t, sr_scale) F(ptr_t, in_scale)       \
  F(ptr_t, leak) F(ptr_t, x0) F(ptr_t, states) F(ptr_t, stream)
#define CUDA_MRNN_WORKSPACE(F) F(int, batch) F(int, hidden) F(int, factors) F(bool, backward)
#define CUDA_MRNN_FORWARD(F)                                                                                  \
  F(Str, dtype) F(int, steps) F(int, batch) F(int, hidden) F(int, factors) F(bool, reverse) F(bool, training) \
  F(ptr_t, fx) F(ptr_t, xh) F(ptr_t, w_fh_t) F(ptr_t, w_hf_t) F(ptr_t, h0) F(ptr_t, y) F(index_t, ldy)        \
  F(ptr_t, h_n) F(ptr_t, h_prev) F(ptr_t, h) F(ptr_t, fh) F(ptr_t, work) F(ptr_t, stream)
#define CUDA_MRNN_BACKWARD(F)                                                                                    \
  F(Str, dtype) F(int, steps) F(int, batch) F(int, hidden) F(int, factors) F(bool, reverse) F(ptr_t, w_fh)       \
  F(ptr_t, w_hf) F(ptr_t, h) F(ptr_t, fx) F(ptr_t, fh) F(ptr_t, dy) F(index_t, lddy) F(ptr_t, dh_n) F(ptr_t, dA) \
  F(ptr_t, dFX) F(ptr_t, dFH) F(ptr_t, dh0) F(ptr_t, work) F(ptr_t, stream)
#define LAUNCH_EMPTY(F) F(int, count) F(ptr_t, stream)
// clang-format on
RNNFAST_ENTRY_ARGS(WorkspaceArgs, CUDA_WORKSPACE);
RNNFAST_ENTRY_ARGS(ForwardArgs, CUDA_FORWARD);
RNNFAST_ENTRY_ARGS(BackwardArgs, CUDA_BACKWARD);
RNNFAST_ENTRY_ARGS(ReservoirArgs, CUDA_RESERVOIR);
RNNFAST_ENTRY_ARGS(MrnnWorkspaceArgs, CUDA_MRNN_WORKSPACE);
RNNFAST_ENTRY_ARGS(MrnnForwardArgs, CUDA_MRNN_FORWARD);
RNNFAST_ENTRY_ARGS(MrnnBackwardArgs, CUDA_MRNN_BACKWARD);
RNNFAST_ENTRY_ARGS(LaunchEmptyArgs, LAUNCH_EMPTY);

bool float32_name(const std::string& dtype) {
  if (dtype == "float32") return true;
  if (dtype == "float64") return false;
  bad("dtype", "must be 'float32' or 'float64', got '" + dtype + "'");
}

void check_sizes(int steps, int batch, int hidden) {
  if (steps < 1 || batch < 1 || hidden < 1) bad_call("steps, batch and hidden must be >= 1");
}

void check_factors(int factors) {
  if (factors < 1) bad("factors", "must be >= 1");
}

template <typename T>
T* as(ptr_t p) {
  return reinterpret_cast<T*>(p);
}

template <typename T>
void forward(const ForwardArgs& a) {
  CudaForwardParams<T> p{};
  p.cell = cell_from_int(a.cell);
  p.steps = a.steps, p.batch = a.batch, p.hidden = a.hidden, p.reverse = a.reverse, p.training = a.training;
  p.xp = as<const T>(a.xp), p.w_hh_t = as<const T>(a.w_hh_t), p.b_hh = as<const T>(a.b_hh);
  p.h0 = as<const T>(a.h0), p.c0 = as<const T>(a.c0);
  p.y = as<T>(a.y), p.ldy = a.ldy, p.h_n = as<T>(a.h_n), p.c_n = as<T>(a.c_n);
  p.h_prev = as<T>(a.h_prev), p.c_prev = as<T>(a.c_prev), p.gates = as<T>(a.gates), p.extra = as<T>(a.extra);
  p.work = as<T>(a.work);
  p.stream = reinterpret_cast<void*>(a.stream);
  p.lengths = as<const std::int32_t>(a.lengths);  // null: every sequence runs all steps
  p.zoneout = as<const T>(a.zoneout);               // null: no zoneout mask (then zoneout_p: eval's p)
  if (!(a.zoneout_p >= 0 && a.zoneout_p < 1)) bad("zoneout_p", "must be in [0, 1)");
  p.zoneout_p = T(a.zoneout_p);
  py::gil_scoped_release release;
  recurrent_forward_cuda<T>(p);
}

template <typename T>
void backward(const BackwardArgs& a) {
  CudaBackwardParams<T> p{};
  p.cell = cell_from_int(a.cell);
  p.steps = a.steps, p.batch = a.batch, p.hidden = a.hidden, p.reverse = a.reverse;
  p.w_hh = as<const T>(a.w_hh), p.h_prev = as<const T>(a.h_prev), p.c_prev = as<const T>(a.c_prev);
  p.gates = as<const T>(a.gates), p.extra = as<const T>(a.extra);
  p.dy = as<const T>(a.dy), p.lddy = a.lddy, p.dh_n = as<const T>(a.dh_n), p.dc_n = as<const T>(a.dc_n);
  p.dG = as<T>(a.dG), p.dGh = as<T>(a.dGh), p.dh0 = as<T>(a.dh0), p.dc0 = as<T>(a.dc0);
  p.work = as<T>(a.work);
  p.stream = reinterpret_cast<void*>(a.stream);
  p.lengths = as<const std::int32_t>(a.lengths);
  p.zoneout = as<const T>(a.zoneout);
  py::gil_scoped_release release;
  recurrent_backward_cuda<T>(p);
}

template <typename T>
void reservoir(const ReservoirArgs& a) {
  CudaReservoirParams<T> p{};
  p.steps = a.steps, p.batch = a.batch, p.units = a.units, p.population = a.population;
  p.w_dense = as<const T>(a.w_dense);
  p.indptr = as<const std::int32_t>(a.indptr), p.indices = as<const std::int32_t>(a.indices);
  p.values = as<const T>(a.values);
  if (!p.w_dense && !(p.indptr && p.indices && p.values))
    bad_call("the reservoir needs w_dense or all of indptr, indices, values");
  p.uproj = as<const T>(a.uproj), p.bias = as<const T>(a.bias), p.sr_scale = as<const T>(a.sr_scale);
  p.in_scale = as<const T>(a.in_scale), p.leak = as<const T>(a.leak), p.x0 = as<const T>(a.x0);
  p.states = as<T>(a.states);
  p.stream = reinterpret_cast<void*>(a.stream);
  py::gil_scoped_release release;
  reservoir_run_cuda<T>(p);
}

template <typename T>
void mrnn_forward(const MrnnForwardArgs& a) {
  CudaMrnnForwardParams<T> p{};
  p.steps = a.steps, p.batch = a.batch, p.hidden = a.hidden, p.factors = a.factors, p.reverse = a.reverse;
  p.training = a.training;
  p.fx = as<const T>(a.fx), p.xh = as<const T>(a.xh), p.w_fh_t = as<const T>(a.w_fh_t);
  p.w_hf_t = as<const T>(a.w_hf_t), p.h0 = as<const T>(a.h0), p.y = as<T>(a.y), p.ldy = a.ldy;
  p.h_n = as<T>(a.h_n), p.h_prev = as<T>(a.h_prev), p.h = as<T>(a.h), p.fh = as<T>(a.fh), p.work = as<T>(a.work);
  p.stream = reinterpret_cast<void*>(a.stream);
  py::gil_scoped_release release;
  mrnn_forward_cuda<T>(p);
}

template <typename T>
void mrnn_backward(const MrnnBackwardArgs& a) {
  CudaMrnnBackwardParams<T> p{};
  p.steps = a.steps, p.batch = a.batch, p.hidden = a.hidden, p.factors = a.factors, p.reverse = a.reverse;
  p.w_fh = as<const T>(a.w_fh), p.w_hf = as<const T>(a.w_hf), p.h = as<const T>(a.h), p.fx = as<const T>(a.fx);
  p.fh = as<const T>(a.fh), p.dy = as<const T>(a.dy), p.lddy = a.lddy, p.dh_n = as<const T>(a.dh_n);
  p.dA = as<T>(a.dA), p.dFX = as<T>(a.dFX), p.dFH = as<T>(a.dFH), p.dh0 = as<T>(a.dh0), p.work = as<T>(a.work);
  p.stream = reinterpret_cast<void*>(a.stream);
  py::gil_scoped_release release;
  mrnn_backward_cuda<T>(p);
}

}  // namespace

// lengths, zoneout (and the forward's zoneout_p) may be left out
namespace bindings {
template <>
struct optional_tail<ForwardArgs> : std::integral_constant<std::size_t, 3> {};
template <>
struct optional_tail<BackwardArgs> : std::integral_constant<std::size_t, 2> {};
}  // namespace bindings
}  // namespace rnnfast

void register_cuda(pybind11::module_& m) {
  using namespace rnnfast;
  using namespace rnnfast::bindings;
  m.def("cuda_set_tiling", &cuda_set_tiling, py::arg("rows"), py::arg("min_batch"),
        "Process-wide: batches of >= min_batch rows use the tiled step kernel with rows (32 or 64) batch rows "
        "per block; rows=0 keeps the row kernel everywhere.");
  m.def(
      "cuda_tiling", [] { return py::make_tuple(cuda_tiling_rows(), cuda_tiling_min_batch()); },
      "(rows, min_batch) of the step kernel choice (see cuda_set_tiling).");
  m.def("cuda_set_row_kernel", &cuda_set_row_kernel, py::arg("width"), py::arg("units"),
        "Process-wide: the row step kernel's units per warp slice (32, 16 or 8; narrower = more blocks) and units "
        "per thread in single-gate launches such as every backward step (1, 2 or 4; above 1 stages V in shared "
        "memory).");
  m.def(
      "cuda_row_kernel", [] { return py::make_tuple(cuda_row_kernel_width(), cuda_row_kernel_units()); },
      "(width, units) of the row step kernel (see cuda_set_row_kernel).");
  m.def("cuda_set_sync_checks", &cuda_set_sync_checks, py::arg("on"),
        "Process-wide debug mode (initially RNNFAST_CUDA_SYNC=1): synchronise and check after every launch, so "
        "that a failing kernel is named with its cell, pass, direction and step.");
  m.def("cuda_sync_checks", &cuda_sync_checks, "Whether the debug mode of cuda_set_sync_checks is on.");
  def_entry<LaunchEmptyArgs>(
      m, "cuda_launch_empty",
      "Queue `count` empty kernels on a CUDA stream through the engine's launch path (the launch floor).",
      [](const LaunchEmptyArgs& a) {
        if (a.count < 0) bad("count", "must be >= 0");
        py::gil_scoped_release release;
        cuda_launch_empty(a.count, reinterpret_cast<void*>(a.stream));
      });
  def_entry<WorkspaceArgs>(m, "cuda_workspace_size", "Elements of the work array of cuda_recurrent_forward/backward.",
                           [](const WorkspaceArgs& a) {
                             check_sizes(1, a.batch, a.hidden);
                             const Cell c = cell_from_int(a.cell);
                             return a.backward ? cuda_backward_workspace_size(c, a.batch, a.hidden)
                                               : cuda_forward_workspace_size(c, a.batch, a.hidden);
                           });
  def_entry<ForwardArgs>(
      m, "cuda_recurrent_forward",
      "Queue one layer, one direction of RNN/LSTM/GRU forward on a CUDA stream (rnnfast/recurrent_cuda.h).",
      [](const ForwardArgs& a) {
        check_sizes(a.steps, a.batch, a.hidden);
        float32_name(a.dtype) ? forward<float>(a) : forward<double>(a);
      });
  def_entry<BackwardArgs>(m, "cuda_recurrent_backward",
                          "Queue one layer, one direction of RNN/LSTM/GRU backward through time on a CUDA stream.",
                          [](const BackwardArgs& a) {
                            check_sizes(a.steps, a.batch, a.hidden);
                            float32_name(a.dtype) ? backward<float>(a) : backward<double>(a);
                          });
  def_entry<ReservoirArgs>(m, "cuda_reservoir_run",
                           "Queue a population of leaky reservoirs over a batch of sequences on a CUDA stream.",
                           [](const ReservoirArgs& a) {
                             check_sizes(a.steps, a.batch, a.units);
                             if (a.population < 1) bad("population", "must be >= 1");
                             float32_name(a.dtype) ? reservoir<float>(a) : reservoir<double>(a);
                           });
  def_entry<MrnnWorkspaceArgs>(m, "cuda_mrnn_workspace_size",
                               "Elements of the work array of cuda_mrnn_forward/backward.",
                               [](const MrnnWorkspaceArgs& a) {
                                 check_sizes(1, a.batch, a.hidden);
                                 check_factors(a.factors);
                                 return cuda_mrnn_workspace_size(a.batch, a.hidden, a.factors, a.backward);
                               });
  def_entry<MrnnForwardArgs>(m, "cuda_mrnn_forward",
                             "Queue one layer, one direction of the multiplicative RNN forward on a CUDA stream.",
                             [](const MrnnForwardArgs& a) {
                               check_sizes(a.steps, a.batch, a.hidden);
                               check_factors(a.factors);
                               float32_name(a.dtype) ? mrnn_forward<float>(a) : mrnn_forward<double>(a);
                             });
  def_entry<MrnnBackwardArgs>(
      m, "cuda_mrnn_backward",
      "Queue one layer, one direction of the multiplicative RNN backward through time on a CUDA stream.",
      [](const MrnnBackwardArgs& a) {
        check_sizes(a.steps, a.batch, a.hidden);
        check_factors(a.factors);
        float32_name(a.dtype) ? mrnn_backward<float>(a) : mrnn_backward<double>(a);
      });
}
