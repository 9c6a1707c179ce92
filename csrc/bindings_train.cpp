// Bindings of the training-step kernels: the Linear read-out + softmax cross-entropy, forward and backward
// (rnnfast/readout.h), and rnnfast.optim's Adam update, clipping's sum of squares and the finiteness check
// (rnnfast/adam.h).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <vector>

#include "rnnfast/adam.h"
#include "rnnfast/readout.h"
#include "bindings_util.h"

namespace rnnfast {
namespace {

using namespace bindings;
using Obj = py::object;

// clang-format off
#define READOUT_XENT(F)                                                                                           \
  F(Obj, x) F(Obj, w) F(Obj, b) F(Obj, targets) F(double, scale) F(Obj, logits) F(Obj, nll) F(Obj, dw) F(Obj, db) \
  F(Obj, dx)
#define ADAM_UPDATE(F)                                                                                \
  F(Obj, p) F(Obj, g) F(Obj, m) F(Obj, v) F(double, b1) F(double, omb1) F(double, b2) F(double, omb2) \
  F(double, eps) F(double, wd) F(double, step_size) F(double, bias2_sqrt)
#define REDUCTION(F) F(Obj, g)
// clang-format on
RNNFAST_ENTRY_ARGS(ReadoutArgs, READOUT_XENT);
RNNFAST_ENTRY_ARGS(AdamArgs, ADAM_UPDATE);
RNNFAST_ENTRY_ARGS(ReductionArgs, REDUCTION);

template <typename T>
double readout(const ReadoutArgs& a) {
  const py::array xa = ndim_array(a.x, "x", 2), wa = ndim_array(a.w, "w", 2);
  const index_t R = xa.shape(0), H = xa.shape(1), K = wa.shape(0);
  if (R < 1 || H < 1 || K < 1) bad("x", "must have rows >= 1, and w classes >= 1");
  check_blas_size("x", std::max(R * std::max(H, K), K * H));
  ReadoutXentParams<T> p{};
  p.rows = int(R), p.in = int(H), p.classes = int(K);
  p.x = dense<T>(a.x, "x", {R, H}, false);
  p.w = dense<T>(a.w, "w", {K, H}, false);
  p.b = dense<T>(a.b, "b", {K}, false, true);
  p.targets = indices(a.targets, "targets", {R}, K);
  p.scale = T(a.scale);
  p.logits = dense<T>(a.logits, "logits", {R, K}, true);
  p.nll = dense<double>(a.nll, "nll", {R}, true);
  p.dw = dense<T>(a.dw, "dw", {K, H}, true, true);
  p.db = p.dw ? dense<T>(a.db, "db", {K}, true, true) : nullptr;
  p.dx = p.dw ? dense<T>(a.dx, "dx", {R, H}, true, true) : nullptr;
  py::gil_scoped_release release;
  return readout_xent_cpu<T>(p);
}

template <typename T>
void adam(const AdamArgs& a) {
  const std::vector<index_t> shape = shape_of<T>(a.p, "p");
  AdamParams<T> u{};
  u.p = dense<T>(a.p, "p", shape, true);
  u.g = dense<T>(a.g, "g", shape, false);
  u.m = dense<T>(a.m, "m", shape, true);
  u.v = dense<T>(a.v, "v", shape, true);
  u.n = index_t(py::reinterpret_borrow<py::array>(a.p).size());
  u.b1 = T(a.b1), u.omb1 = T(a.omb1), u.b2 = T(a.b2), u.omb2 = T(a.omb2), u.eps = T(a.eps), u.wd = T(a.wd);
  u.step_size = T(a.step_size), u.bias2_sqrt = T(a.bias2_sqrt);
  py::gil_scoped_release release;
  adam_update_cpu<T>(u);
}

// reduce(data, n) over all elements of the contiguous array g of any shape (dtype T).
template <typename T, typename F>
auto reduction(const ReductionArgs& a, F reduce) {
  const T* d = dense<T>(a.g, "g", shape_of<T>(a.g, "g"), false);
  const index_t n = index_t(py::reinterpret_borrow<py::array>(a.g).size());
  py::gil_scoped_release release;
  return reduce(d, n);
}

}  // namespace
}  // namespace rnnfast

void register_train(pybind11::module_& m) {
  using namespace rnnfast;
  using namespace rnnfast::bindings;
  def_entry<ReadoutArgs>(
      m, "readout_xent",
      "Linear read-out + softmax cross-entropy and their backward (rnnfast/readout.h); returns the "
      "summed loss. dw=None: forward and loss only.",
      [](const ReadoutArgs& a) { return float32_of(a.x, "x") ? readout<float>(a) : readout<double>(a); });
  def_entry<AdamArgs>(m, "adam_update", "One Adam update of one parameter array in place (rnnfast/adam.h).",
                      [](const AdamArgs& a) { float32_of(a.p, "p") ? adam<float>(a) : adam<double>(a); });
  def_entry<ReductionArgs>(m, "sum_squares", "Sum of the squares of a float array's elements, in double.",
                           [](const ReductionArgs& a) {
                             return float32_of(a.g, "g") ? reduction<float>(a, sum_squares_cpu<float>)
                                                         : reduction<double>(a, sum_squares_cpu<double>);
                           });
  def_entry<ReductionArgs>(m, "all_finite", "Whether no element of a float array is NaN or infinite.",
                           [](const ReductionArgs& a) {
                             return float32_of(a.g, "g") ? reduction<float>(a, all_finite_cpu<float>)
                                                         : reduction<double>(a, all_finite_cpu<double>);
                           });
}
