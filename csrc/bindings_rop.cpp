// Bindings of the R-op engine (rnnfast/rop.h): J v of one layer, one direction of the vanilla RNN and the MRNN.
#include <pybind11/pybind11.h>

#include <string>

#include "rnnfast/rop.h"
#include "bindings_util.h"

namespace rnnfast {
namespace {

using namespace bindings;
using Obj = py::object;

// clang-format off
#define RNN_ROP(F)                                                                                  \
  F(Obj, x) F(Obj, h0) F(Obj, y) F(Obj, w_ih) F(Obj, w_hh) F(Obj, v_ih) F(Obj, v_hh) F(Obj, v_b_ih) \
  F(Obj, v_b_hh) F(Obj, rx) F(Obj, rh0) F(Obj, ry) F(std::string, nonlinearity) F(bool, reverse)
#define MRNN_ROP_WORKSPACE(F) F(int, steps) F(int, batch) F(int, factors) F(bool, have_factors)
#define MRNN_ROP(F)                                                                                              \
  F(Obj, x) F(Obj, h0) F(Obj, y) F(Obj, fx) F(Obj, fh) F(Obj, w_fx) F(Obj, w_fh) F(Obj, w_hf) F(Obj, w_hx)       \
  F(Obj, v_fx) F(Obj, v_fh) F(Obj, v_hf) F(Obj, v_hx) F(Obj, v_b) F(Obj, rx) F(Obj, rh0) F(Obj, ry) F(Obj, work) \
  F(bool, reverse)
// clang-format on
RNNFAST_ENTRY_ARGS(RnnRopArgs, RNN_ROP);
RNNFAST_ENTRY_ARGS(WorkspaceArgs, MRNN_ROP_WORKSPACE);
RNNFAST_ENTRY_ARGS(MrnnRopArgs, MRNN_ROP);

template <typename T>
void rnn_rop(const RnnRopArgs& a) {
  const auto [Ts, N, C, H, F] = sequence_dims<T>(a.x, a.w_hh, "w_hh", true, "must have sizes >= 1");
  (void)F;
  RnnRopParams<T> p{};
  p.relu = a.nonlinearity == "relu";
  p.steps = int(Ts), p.batch = int(N), p.input_size = int(C), p.hidden = int(H);
  p.reverse = a.reverse;
  p.x = sequence<T>(a.x, "x", Ts, N, C, false, false, &p.ldx);
  p.h0 = dense<T>(a.h0, "h0", {N, H}, false, true);
  p.y = sequence<T>(a.y, "y", Ts, N, H, false, false, &p.ldy);
  p.w_ih = dense<T>(a.w_ih, "w_ih", {H, C}, false);
  p.w_hh = dense<T>(a.w_hh, "w_hh", {H, H}, false);
  p.v_ih = dense<T>(a.v_ih, "v_ih", {H, C}, false, true);
  p.v_hh = dense<T>(a.v_hh, "v_hh", {H, H}, false, true);
  p.v_b_ih = dense<T>(a.v_b_ih, "v_b_ih", {H}, false, true);
  p.v_b_hh = dense<T>(a.v_b_hh, "v_b_hh", {H}, false, true);
  p.rx = sequence<T>(a.rx, "rx", Ts, N, C, false, true, &p.ldrx);
  p.rh0 = dense<T>(a.rh0, "rh0", {N, H}, false, true);
  p.ry = sequence<T>(a.ry, "ry", Ts, N, H, true, false, &p.ldry);
  py::gil_scoped_release release;
  rnn_rop_cpu<T>(p);
}

template <typename T>
void mrnn_rop(const MrnnRopArgs& a) {
  const auto [Ts, N, C, H, F] = sequence_dims<T>(a.x, a.w_fh, "w_fh", false, "must have sizes >= 1");
  if (a.fx.is_none() != a.fh.is_none())
    bad(a.fx.is_none() ? "fx" : "fh", "must be given together with the other (or both None)");
  MrnnRopParams<T> p{};
  p.steps = int(Ts), p.batch = int(N), p.input_size = int(C), p.hidden = int(H), p.factors = int(F);
  p.reverse = a.reverse;
  p.x = sequence<T>(a.x, "x", Ts, N, C, false, false, &p.ldx);
  p.h0 = dense<T>(a.h0, "h0", {N, H}, false, true);
  p.y = sequence<T>(a.y, "y", Ts, N, H, false, false, &p.ldy);
  p.fx = dense<T>(a.fx, "fx", {Ts, N, F}, false, true);
  p.fh = dense<T>(a.fh, "fh", {Ts, N, F}, false, true);
  p.w_fx = dense<T>(a.w_fx, "w_fx", {F, C}, false);
  p.w_fh = dense<T>(a.w_fh, "w_fh", {F, H}, false);
  p.w_hf = dense<T>(a.w_hf, "w_hf", {H, F}, false);
  p.w_hx = dense<T>(a.w_hx, "w_hx", {H, C}, false);
  p.v_fx = dense<T>(a.v_fx, "v_fx", {F, C}, false, true);
  p.v_fh = dense<T>(a.v_fh, "v_fh", {F, H}, false, true);
  p.v_hf = dense<T>(a.v_hf, "v_hf", {H, F}, false, true);
  p.v_hx = dense<T>(a.v_hx, "v_hx", {H, C}, false, true);
  p.v_b = dense<T>(a.v_b, "v_b", {H}, false, true);
  p.rx = sequence<T>(a.rx, "rx", Ts, N, C, false, true, &p.ldrx);
  p.rh0 = dense<T>(a.rh0, "rh0", {N, H}, false, true);
  p.ry = sequence<T>(a.ry, "ry", Ts, N, H, true, false, &p.ldry);
  p.work = dense<T>(a.work, "work", {mrnn_rop_workspace_size(p.steps, p.batch, p.factors, p.fx != nullptr)}, true);
  py::gil_scoped_release release;
  mrnn_rop_cpu<T>(p);
}

}  // namespace
}  // namespace rnnfast

void register_rop(pybind11::module_& m) {
  using namespace rnnfast;
  using namespace rnnfast::bindings;
  def_entry<RnnRopArgs>(m, "rnn_rop",
                        "R-op (J v) of one layer, one direction of the vanilla RNN on the CPU (see rnnfast/rop.h).",
                        [](const RnnRopArgs& a) {
                          if (a.nonlinearity != "tanh" && a.nonlinearity != "relu")
                            bad("nonlinearity", "must be 'tanh' or 'relu'");
                          float32_of(a.x, "x") ? rnn_rop<float>(a) : rnn_rop<double>(a);
                        });
  def_entry<WorkspaceArgs>(m, "mrnn_rop_workspace_size", "Elements of the work array of mrnn_rop.",
                           [](const WorkspaceArgs& a) {
                             if (a.steps < 1 || a.batch < 1 || a.factors < 1)
                               bad_call("steps, batch and factors must be >= 1");
                             return mrnn_rop_workspace_size(a.steps, a.batch, a.factors, a.have_factors);
                           });
  def_entry<MrnnRopArgs>(
      m, "mrnn_rop", "R-op (J v) of one layer, one direction of the multiplicative RNN on the CPU (see rnnfast/rop.h).",
      [](const MrnnRopArgs& a) { float32_of(a.x, "x") ? mrnn_rop<float>(a) : mrnn_rop<double>(a); });
}
