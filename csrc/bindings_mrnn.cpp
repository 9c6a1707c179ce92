// Bindings of the multiplicative RNN engine (rnnfast/mrnn.h): one layer, one direction, forward and backward.
#include <pybind11/pybind11.h>

#include "rnnfast/mrnn.h"
#include "bindings_util.h"

namespace rnnfast {
namespace {

using namespace bindings;
using Obj = py::object;

// clang-format off
#define MRNN_WORKSPACE(F) F(int, steps) F(int, batch) F(int, hidden) F(int, factors) F(bool, training) F(bool, backward)
#define MRNN_FORWARD(F)                                                                                    \
  F(Obj, x) F(Obj, h0) F(Obj, w_fx) F(Obj, w_fh) F(Obj, w_hf) F(Obj, w_hx) F(Obj, b) F(Obj, y) F(Obj, h_n) \
  F(Obj, h_prev) F(Obj, h) F(Obj, fx) F(Obj, fh) F(Obj, work) F(bool, reverse) F(bool, training)
#define MRNN_BACKWARD(F)                                                                                          \
  F(Obj, x) F(Obj, w_fx) F(Obj, w_fh) F(Obj, w_hf) F(Obj, w_hx) F(Obj, h_prev) F(Obj, h) F(Obj, fx) F(Obj, fh)    \
  F(Obj, dy) F(Obj, dh_n) F(Obj, dx) F(bool, accumulate_dx) F(Obj, dh0) F(Obj, dw_fx) F(Obj, dw_fh) F(Obj, dw_hf) \
  F(Obj, dw_hx) F(Obj, db) F(Obj, work) F(bool, reverse)
// clang-format on
RNNFAST_ENTRY_ARGS(WorkspaceArgs, MRNN_WORKSPACE);
RNNFAST_ENTRY_ARGS(ForwardArgs, MRNN_FORWARD);
RNNFAST_ENTRY_ARGS(BackwardArgs, MRNN_BACKWARD);

constexpr const char* kSizes = "must have F (factors) >= 1 and H >= 1";

template <typename T>
void forward(const ForwardArgs& a) {
  const auto [Ts, N, C, H, F] = sequence_dims<T>(a.x, a.w_fh, "w_fh", false, kSizes);
  MrnnForwardParams<T> p{};
  p.steps = int(Ts), p.batch = int(N), p.input_size = int(C), p.hidden = int(H), p.factors = int(F);
  p.reverse = a.reverse, p.training = a.training;
  p.x = sequence<T>(a.x, "x", Ts, N, C, false, false, &p.ldx);
  p.h0 = dense<T>(a.h0, "h0", {N, H}, false, true);
  p.w_fx = dense<T>(a.w_fx, "w_fx", {F, C}, false);
  p.w_fh = dense<T>(a.w_fh, "w_fh", {F, H}, false);
  p.w_hf = dense<T>(a.w_hf, "w_hf", {H, F}, false);
  p.w_hx = dense<T>(a.w_hx, "w_hx", {H, C}, false);
  p.b = dense<T>(a.b, "b", {H}, false, true);
  p.y = sequence<T>(a.y, "y", Ts, N, H, true, false, &p.ldy);
  p.h_n = dense<T>(a.h_n, "h_n", {N, H}, true);
  if (a.training) {
    p.h_prev = dense<T>(a.h_prev, "h_prev", {Ts, N, H}, true);
    p.h = dense<T>(a.h, "h", {Ts, N, H}, true);
    p.fx = dense<T>(a.fx, "fx", {Ts, N, F}, true);
    p.fh = dense<T>(a.fh, "fh", {Ts, N, F}, true);
  }
  const index_t ws = mrnn_workspace_size(p.steps, p.batch, p.hidden, p.factors, a.training, false);
  p.work = dense<T>(a.work, "work", {ws}, true);
  py::gil_scoped_release release;
  mrnn_forward_cpu<T>(p);
}

template <typename T>
void backward(const BackwardArgs& a) {
  const auto [Ts, N, C, H, F] = sequence_dims<T>(a.x, a.w_fh, "w_fh", false, kSizes);
  MrnnBackwardParams<T> p{};
  p.steps = int(Ts), p.batch = int(N), p.input_size = int(C), p.hidden = int(H), p.factors = int(F);
  p.reverse = a.reverse;
  p.x = sequence<T>(a.x, "x", Ts, N, C, false, false, &p.ldx);
  p.w_fx = dense<T>(a.w_fx, "w_fx", {F, C}, false);
  p.w_fh = dense<T>(a.w_fh, "w_fh", {F, H}, false);
  p.w_hf = dense<T>(a.w_hf, "w_hf", {H, F}, false);
  p.w_hx = dense<T>(a.w_hx, "w_hx", {H, C}, false);
  p.h_prev = dense<T>(a.h_prev, "h_prev", {Ts, N, H}, false);
  p.h = dense<T>(a.h, "h", {Ts, N, H}, false);
  p.fx = dense<T>(a.fx, "fx", {Ts, N, F}, false);
  p.fh = dense<T>(a.fh, "fh", {Ts, N, F}, false);
  p.dy = sequence<T>(a.dy, "dy", Ts, N, H, false, true, &p.lddy);
  p.dh_n = dense<T>(a.dh_n, "dh_n", {N, H}, false, true);
  p.dx = sequence<T>(a.dx, "dx", Ts, N, C, true, false, &p.lddx);
  p.accumulate_dx = a.accumulate_dx;
  p.dh0 = dense<T>(a.dh0, "dh0", {N, H}, true);
  p.dw_fx = dense<T>(a.dw_fx, "dw_fx", {F, C}, true);
  p.dw_fh = dense<T>(a.dw_fh, "dw_fh", {F, H}, true);
  p.dw_hf = dense<T>(a.dw_hf, "dw_hf", {H, F}, true);
  p.dw_hx = dense<T>(a.dw_hx, "dw_hx", {H, C}, true);
  p.db = dense<T>(a.db, "db", {H}, true, true);
  const index_t ws = mrnn_workspace_size(p.steps, p.batch, p.hidden, p.factors, false, true);
  p.work = dense<T>(a.work, "work", {ws}, true);
  py::gil_scoped_release release;
  mrnn_backward_cpu<T>(p);
}

}  // namespace
}  // namespace rnnfast

void register_mrnn(pybind11::module_& m) {
  using namespace rnnfast;
  using namespace rnnfast::bindings;
  def_entry<WorkspaceArgs>(m, "mrnn_workspace_size", "Elements of the work array of mrnn_forward/backward.",
                           [](const WorkspaceArgs& a) {
                             if (a.steps < 1 || a.batch < 1 || a.hidden < 1 || a.factors < 1)
                               bad_call("steps, batch, hidden and factors must be >= 1");
                             return mrnn_workspace_size(a.steps, a.batch, a.hidden, a.factors, a.training, a.backward);
                           });
  def_entry<ForwardArgs>(m, "mrnn_forward",
                         "One layer, one direction of the multiplicative RNN forward on the CPU (see rnnfast/mrnn.h).",
                         [](const ForwardArgs& a) { float32_of(a.x, "x") ? forward<float>(a) : forward<double>(a); });
  def_entry<BackwardArgs>(
      m, "mrnn_backward", "One layer, one direction of the multiplicative RNN backward through time on the CPU.",
      [](const BackwardArgs& a) { float32_of(a.x, "x") ? backward<float>(a) : backward<double>(a); });
}
