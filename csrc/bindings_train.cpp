// Python bindings of the training-step kernels, registered on rnnfast._core by register_train (called
// from csrc/bindings.cpp):
//   recurrent_forward_onehot / recurrent_backward_onehot   a first layer fed one-hot rows given as int32
//                                                          indices (rnnfast/recurrent.h, x_index)
//   readout_xent                                           Linear read-out + softmax cross-entropy, forward
//                                                          and backward (rnnfast/readout.h)
//   adam_update, sum_squares, all_finite                   rnnfast.optim's Adam, clipping and finiteness check
//                                                          (rnnfast/adam.h)
// Python allocates every array; this file checks dtypes, shapes, contiguity, writability and index ranges,
// and releases the GIL around the compute.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rnnfast/adam.h"
#include "rnnfast/readout.h"
#include "rnnfast/recurrent.h"
#include "bindings_varlen.h"

namespace py = pybind11;
using rnnfast::index_t;
using rnnfast::bindings::lengths_arg;

namespace {

[[noreturn]] void fail(const char* fn, const std::string& name, const std::string& what) {
  throw std::invalid_argument(std::string("rnnfast._core.") + fn + ": argument '" + name + "' " + what);
}

std::string shape_text(const std::vector<index_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// A C-contiguous array of dtype E and exactly `shape` (nullptr for None when allowed).
template <typename E>
E* arr(const char* fn, const py::object& o, const std::string& name, const std::vector<index_t>& shape, bool writable,
       bool allow_none = false) {
  if (o.is_none()) {
    if (allow_none) return nullptr;
    fail(fn, name, "is required");
  }
  if (!py::isinstance<py::array>(o)) fail(fn, name, "must be a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (a.dtype().num() != py::dtype::of<E>().num())
    fail(fn, name, std::string("must have dtype ") + py::str(py::dtype::of<E>()).cast<std::string>());
  bool ok = a.ndim() == py::ssize_t(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) fail(fn, name, "must have shape " + shape_text(shape));
  if (!(a.flags() & py::array::c_style)) fail(fn, name, "must be C-contiguous");
  if (writable) {
    if (!a.writeable()) fail(fn, name, "must be writable");
    return static_cast<E*>(a.mutable_data());
  }
  return const_cast<E*>(static_cast<const E*>(a.data()));
}

// A sequence [T,N,width] whose rows are contiguous and `ld` apart (a C-contiguous array, or a column slice
// of one: a direction of a bidirectional layer's output), or nullptr for None when allowed.
template <typename T>
T* seq(const char* fn, const py::object& o, const std::string& name, index_t steps, index_t batch, index_t width,
       bool writable, bool allow_none, index_t* ld) {
  *ld = width;
  if (o.is_none()) {
    if (allow_none) return nullptr;
    fail(fn, name, "is required");
  }
  if (!py::isinstance<py::array>(o)) fail(fn, name, "must be a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (a.dtype().num() != py::dtype::of<T>().num())
    fail(fn, name, std::string("must have dtype ") + py::str(py::dtype::of<T>()).cast<std::string>());
  if (a.ndim() != 3 || a.shape(0) != steps || a.shape(1) != batch || a.shape(2) != width)
    fail(fn, name, "must have shape " + shape_text({steps, batch, width}));
  const index_t es = sizeof(T), s0 = a.strides(0), s1 = a.strides(1), s2 = a.strides(2);
  const index_t row = batch > 1 ? s1 : (steps > 1 ? s0 : width * es);
  if (!((width == 1 || s2 == es) && row % es == 0 && row / es >= width && (steps == 1 || s0 == batch * row)))
    fail(fn, name, "must have contiguous rows (a C-contiguous array or a column slice of one)");
  *ld = row / es;
  if (writable) {
    if (!a.writeable()) fail(fn, name, "must be writable");
    return static_cast<T*>(a.mutable_data());
  }
  return const_cast<T*>(static_cast<const T*>(a.data()));
}

py::array nd(const char* fn, const py::object& o, const std::string& name, int ndim) {
  if (!py::isinstance<py::array>(o)) fail(fn, name, "must be a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (a.ndim() != ndim) fail(fn, name, "must be " + std::to_string(ndim) + "-D");
  return a;
}

bool is_f32(const char* fn, const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o)) fail(fn, name, "must be a numpy.ndarray");
  const int num = py::reinterpret_borrow<py::array>(o).dtype().num();
  if (num == py::dtype::of<float>().num()) return true;
  if (num == py::dtype::of<double>().num()) return false;
  fail(fn, name, "must have dtype float32 or float64");
}

// int32 indices [rows...] all in [0, bound)
const std::int32_t* indices(const char* fn, const py::object& o, const std::string& name,
                            const std::vector<index_t>& shape, index_t bound) {
  const std::int32_t* idx = arr<std::int32_t>(fn, o, name, shape, false);
  index_t n = 1;
  for (index_t s : shape) n *= s;
  for (index_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= bound)
      fail(fn, name, "must lie in [0, " + std::to_string(bound) + "), got " + std::to_string(idx[i]));
  return idx;
}

// ---- one-hot recurrent layer -----------------------------------------------------------------------
struct OnehotDims {
  index_t steps, batch, input_size, hidden;
};

template <typename T>
OnehotDims onehot_dims(const char* fn, rnnfast::Cell cell, const py::object& x_index, const py::object& w_ih,
                       const py::object& w_hh) {
  const py::array xi = nd(fn, x_index, "x_index", 2);
  const py::array wi = nd(fn, w_ih, "w_ih", 2);
  const py::array wh = nd(fn, w_hh, "w_hh", 2);
  const OnehotDims d{xi.shape(0), xi.shape(1), wi.shape(1), wh.shape(1)};
  if (d.steps < 1 || d.batch < 1 || d.input_size < 1 || d.hidden < 1)
    fail(fn, "x_index", "must have T, N >= 1 (and C, H >= 1)");
  const index_t GH = rnnfast::gates_of(cell) * d.hidden;
  if (d.steps * d.batch * std::max(d.input_size, GH) >= (index_t(1) << 31) || d.input_size * GH >= (index_t(1) << 31))
    fail(fn, "x_index", "is too large for 32-bit indices");
  return d;
}

template <typename T>
void onehot_forward_typed(int cell_i, const py::object& x_index, const py::object& h0, const py::object& c0,
                          const py::object& w_ih, const py::object& w_hh, const py::object& b_ih,
                          const py::object& b_hh, const py::object& y, const py::object& h_n, const py::object& c_n,
                          const py::object& h_prev, const py::object& c_prev, const py::object& gates,
                          const py::object& extra, const py::object& work, bool reverse, bool training, const py::object& lengths,
                   const py::object& zoneout, double zoneout_p) {
  using namespace rnnfast;
  const char* fn = "recurrent_forward_onehot";
  RecurrentForwardParams<T> p{};
  p.cell = cell_from_int(cell_i);
  const auto [Ts, N, C, H] = onehot_dims<T>(fn, p.cell, x_index, w_ih, w_hh);
  const index_t GH = gates_of(p.cell) * H;
  const bool lstm = p.cell == Cell::Lstm, gru = gates_of(p.cell) == 3;
  p.steps = int(Ts); p.batch = int(N); p.input_size = int(C); p.hidden = int(H);
  p.reverse = reverse; p.training = training;
  p.x_index = indices(fn, x_index, "x_index", {Ts, N}, C);
  p.h0 = arr<T>(fn, h0, "h0", {N, H}, false, true);
  p.c0 = lstm ? arr<T>(fn, c0, "c0", {N, H}, false, true) : nullptr;
  p.w_ih = arr<T>(fn, w_ih, "w_ih", {GH, C}, false);
  p.w_hh = arr<T>(fn, w_hh, "w_hh", {GH, H}, false);
  p.b_ih = arr<T>(fn, b_ih, "b_ih", {GH}, false, true);
  p.b_hh = arr<T>(fn, b_hh, "b_hh", {GH}, false, true);
  p.y = seq<T>(fn, y, "y", Ts, N, H, true, false, &p.ldy);
  p.h_n = arr<T>(fn, h_n, "h_n", {N, H}, true);
  p.c_n = lstm ? arr<T>(fn, c_n, "c_n", {N, H}, true) : nullptr;
  if (training) {
    p.h_prev = arr<T>(fn, h_prev, "h_prev", {Ts, N, H}, true);
    p.c_prev = lstm ? arr<T>(fn, c_prev, "c_prev", {Ts, N, H}, true) : nullptr;
    p.gates = arr<T>(fn, gates, "gates", {Ts, N, GH}, true);
    p.extra = gru ? arr<T>(fn, extra, "extra", {Ts, N, H}, true) : nullptr;
  }
  p.work = arr<T>(fn, work, "work", {recurrent_workspace_size(p.cell, p.steps, p.batch, p.hidden, false)}, true);
  p.lengths = lengths_arg(lengths, N, Ts);
  p.zoneout = arr<T>(fn, zoneout, "zoneout", {Ts, N, H}, false, true);
  if (!(zoneout_p >= 0 && zoneout_p < 1)) rnnfast::bindings::bad("zoneout_p", "must be in [0, 1)");
  p.zoneout_p = T(zoneout_p);
  py::gil_scoped_release release;
  recurrent_forward_cpu<T>(p);
}

template <typename T>
void onehot_backward_typed(int cell_i, const py::object& x_index, const py::object& w_ih, const py::object& w_hh,
                           const py::object& h_prev, const py::object& c_prev, const py::object& gates,
                           const py::object& extra, const py::object& dy, const py::object& dh_n,
                           const py::object& dc_n, const py::object& dh0, const py::object& dc0,
                           const py::object& dw_ih, const py::object& dw_hh, const py::object& db_ih,
                           const py::object& db_hh, const py::object& work, bool reverse, const py::object& lengths,
                   const py::object& zoneout) {
  using namespace rnnfast;
  const char* fn = "recurrent_backward_onehot";
  RecurrentBackwardParams<T> p{};
  p.cell = cell_from_int(cell_i);
  const auto [Ts, N, C, H] = onehot_dims<T>(fn, p.cell, x_index, w_ih, w_hh);
  const index_t GH = gates_of(p.cell) * H;
  const bool lstm = p.cell == Cell::Lstm, gru = gates_of(p.cell) == 3;
  p.steps = int(Ts); p.batch = int(N); p.input_size = int(C); p.hidden = int(H);
  p.reverse = reverse;
  p.x_index = indices(fn, x_index, "x_index", {Ts, N}, C);
  p.w_ih = arr<T>(fn, w_ih, "w_ih", {GH, C}, false);
  p.w_hh = arr<T>(fn, w_hh, "w_hh", {GH, H}, false);
  p.h_prev = arr<T>(fn, h_prev, "h_prev", {Ts, N, H}, false);
  p.c_prev = lstm ? arr<T>(fn, c_prev, "c_prev", {Ts, N, H}, false) : nullptr;
  p.gates = arr<T>(fn, gates, "gates", {Ts, N, GH}, false);
  p.extra = gru ? arr<T>(fn, extra, "extra", {Ts, N, H}, false) : nullptr;
  p.dy = seq<T>(fn, dy, "dy", Ts, N, H, false, true, &p.lddy);
  p.dh_n = arr<T>(fn, dh_n, "dh_n", {N, H}, false, true);
  p.dc_n = lstm ? arr<T>(fn, dc_n, "dc_n", {N, H}, false, true) : nullptr;
  p.dh0 = arr<T>(fn, dh0, "dh0", {N, H}, true);
  p.dc0 = lstm ? arr<T>(fn, dc0, "dc0", {N, H}, true) : nullptr;
  p.dw_ih = arr<T>(fn, dw_ih, "dw_ih", {GH, C}, true);
  p.dw_hh = arr<T>(fn, dw_hh, "dw_hh", {GH, H}, true);
  p.db_ih = arr<T>(fn, db_ih, "db_ih", {GH}, true, true);
  p.db_hh = arr<T>(fn, db_hh, "db_hh", {GH}, true, true);
  p.work = arr<T>(fn, work, "work", {recurrent_workspace_size(p.cell, p.steps, p.batch, p.hidden, true)}, true);
  p.lengths = lengths_arg(lengths, N, Ts);
  p.zoneout = arr<T>(fn, zoneout, "zoneout", {Ts, N, H}, false, true);
  py::gil_scoped_release release;
  recurrent_backward_cpu<T>(p);
}

// ---- read-out + softmax cross-entropy ---------------------------------------------------------------
template <typename T>
double readout_typed(const py::object& x, const py::object& w, const py::object& b, const py::object& targets,
                     double scale, const py::object& logits, const py::object& nll, const py::object& dw,
                     const py::object& db, const py::object& dx) {
  using namespace rnnfast;
  const char* fn = "readout_xent";
  const py::array xa = nd(fn, x, "x", 2), wa = nd(fn, w, "w", 2);
  const index_t R = xa.shape(0), H = xa.shape(1), K = wa.shape(0);
  if (R < 1 || H < 1 || K < 1) fail(fn, "x", "must have rows >= 1, and w classes >= 1");
  if (R * std::max(H, K) >= (index_t(1) << 31) || K * H >= (index_t(1) << 31))
    fail(fn, "x", "is too large for 32-bit BLAS indices");
  ReadoutXentParams<T> p{};
  p.rows = int(R); p.in = int(H); p.classes = int(K);
  p.x = arr<T>(fn, x, "x", {R, H}, false);
  p.w = arr<T>(fn, w, "w", {K, H}, false);
  p.b = arr<T>(fn, b, "b", {K}, false, true);
  p.targets = indices(fn, targets, "targets", {R}, K);
  p.scale = T(scale);
  p.logits = arr<T>(fn, logits, "logits", {R, K}, true);
  p.nll = arr<double>(fn, nll, "nll", {R}, true);
  p.dw = arr<T>(fn, dw, "dw", {K, H}, true, true);
  p.db = p.dw ? arr<T>(fn, db, "db", {K}, true, true) : nullptr;
  p.dx = p.dw ? arr<T>(fn, dx, "dx", {R, H}, true, true) : nullptr;
  py::gil_scoped_release release;
  return readout_xent_cpu<T>(p);
}

// ---- optimizer ---------------------------------------------------------------------------------------
template <typename T>
void adam_typed(const py::object& p_, const py::object& g, const py::object& m, const py::object& v, double b1,
                double omb1, double b2, double omb2, double eps, double wd, double step_size, double bias2_sqrt) {
  using namespace rnnfast;
  const char* fn = "adam_update";
  const py::array pa = py::reinterpret_borrow<py::array>(p_);
  std::vector<index_t> shape(pa.shape(), pa.shape() + pa.ndim());
  AdamParams<T> a{};
  a.n = index_t(pa.size());
  a.p = arr<T>(fn, p_, "p", shape, true);
  a.g = arr<T>(fn, g, "g", shape, false);
  a.m = arr<T>(fn, m, "m", shape, true);
  a.v = arr<T>(fn, v, "v", shape, true);
  a.b1 = T(b1); a.omb1 = T(omb1); a.b2 = T(b2); a.omb2 = T(omb2); a.eps = T(eps); a.wd = T(wd);
  a.step_size = T(step_size); a.bias2_sqrt = T(bias2_sqrt);
  py::gil_scoped_release release;
  adam_update_cpu<T>(a);
}

// A C++ reduction over all elements of a contiguous array g of any shape (dtype T), checked.
template <typename T, typename F>
auto reduce_typed(const char* fn, const py::object& g, F reduce) {
  const py::array ga = py::reinterpret_borrow<py::array>(g);
  std::vector<index_t> shape(ga.shape(), ga.shape() + ga.ndim());
  const T* d = arr<T>(fn, g, "g", shape, false);
  const index_t n = index_t(ga.size());
  py::gil_scoped_release release;
  return reduce(d, n);
}

}  // namespace

void register_train(py::module_& m) {
  m.def("recurrent_forward_onehot",
        [](int cell, py::object x_index, py::object h0, py::object c0, py::object w_ih, py::object w_hh,
           py::object b_ih, py::object b_hh, py::object y, py::object h_n, py::object c_n, py::object h_prev,
           py::object c_prev, py::object gates, py::object extra, py::object work, bool reverse, bool training, py::object lengths,
           py::object zoneout, double zoneout_p) {
          (is_f32("recurrent_forward_onehot", w_hh, "w_hh") ? onehot_forward_typed<float> : onehot_forward_typed<double>)(
              cell, x_index, h0, c0, w_ih, w_hh, b_ih, b_hh, y, h_n, c_n, h_prev, c_prev, gates, extra, work, reverse,
              training, lengths, zoneout, zoneout_p);
        },
        "recurrent_forward with one-hot input given as int32 indices x_index [T, N].",
        py::arg("cell"), py::arg("x_index"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih"), py::arg("b_hh"), py::arg("y"), py::arg("h_n"), py::arg("c_n"), py::arg("h_prev"),
        py::arg("c_prev"), py::arg("gates"), py::arg("extra"), py::arg("work"), py::arg("reverse"),
        py::arg("training"), py::arg("lengths") = py::none(),
        py::arg("zoneout") = py::none(), py::arg("zoneout_p") = 0.0);
  m.def("recurrent_backward_onehot",
        [](int cell, py::object x_index, py::object w_ih, py::object w_hh, py::object h_prev, py::object c_prev,
           py::object gates, py::object extra, py::object dy, py::object dh_n, py::object dc_n, py::object dh0,
           py::object dc0, py::object dw_ih, py::object dw_hh, py::object db_ih, py::object db_hh, py::object work,
           bool reverse, py::object lengths, py::object zoneout) {
          (is_f32("recurrent_backward_onehot", w_hh, "w_hh") ? onehot_backward_typed<float>
                                                              : onehot_backward_typed<double>)(
              cell, x_index, w_ih, w_hh, h_prev, c_prev, gates, extra, dy, dh_n, dc_n, dh0, dc0, dw_ih, dw_hh, db_ih,
              db_hh, work, reverse, lengths, zoneout);
        },
        "recurrent_backward for a forward with x_index: no dx; dW_ih as a scatter-add.",
        py::arg("cell"), py::arg("x_index"), py::arg("w_ih"), py::arg("w_hh"), py::arg("h_prev"), py::arg("c_prev"),
        py::arg("gates"), py::arg("extra"), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"), py::arg("dh0"),
        py::arg("dc0"), py::arg("dw_ih"), py::arg("dw_hh"), py::arg("db_ih"), py::arg("db_hh"), py::arg("work"),
        py::arg("reverse"), py::arg("lengths") = py::none(),
        py::arg("zoneout") = py::none());
  m.def("readout_xent",
        [](py::object x, py::object w, py::object b, py::object targets, double scale, py::object logits,
           py::object nll, py::object dw, py::object db, py::object dx) {
          return (is_f32("readout_xent", x, "x") ? readout_typed<float> : readout_typed<double>)(
              x, w, b, targets, scale, logits, nll, dw, db, dx);
        },
        "Linear read-out + softmax cross-entropy and their backward (rnnfast/readout.h); returns the summed "
        "loss. dw=None: forward and loss only.",
        py::arg("x"), py::arg("w"), py::arg("b"), py::arg("targets"), py::arg("scale"), py::arg("logits"),
        py::arg("nll"), py::arg("dw"), py::arg("db"), py::arg("dx"));
  m.def("adam_update",
        [](py::object p, py::object g, py::object mm, py::object v, double b1, double omb1, double b2, double omb2,
           double eps, double wd, double step_size, double bias2_sqrt) {
          (is_f32("adam_update", p, "p") ? adam_typed<float> : adam_typed<double>)(
              p, g, mm, v, b1, omb1, b2, omb2, eps, wd, step_size, bias2_sqrt);
        },
        "One Adam update of one parameter array in place (rnnfast/adam.h).",
        py::arg("p"), py::arg("g"), py::arg("m"), py::arg("v"), py::arg("b1"), py::arg("omb1"), py::arg("b2"),
        py::arg("omb2"), py::arg("eps"), py::arg("wd"), py::arg("step_size"), py::arg("bias2_sqrt"));
  m.def("sum_squares",
        [](py::object g) {
          return is_f32("sum_squares", g, "g") ? reduce_typed<float>("sum_squares", g, rnnfast::sum_squares_cpu<float>)
                                               : reduce_typed<double>("sum_squares", g, rnnfast::sum_squares_cpu<double>);
        },
        "Sum of the squares of a float array's elements, in double.", py::arg("g"));
  m.def("all_finite",
        [](py::object g) {
          return is_f32("all_finite", g, "g") ? reduce_typed<float>("all_finite", g, rnnfast::all_finite_cpu<float>)
                                              : reduce_typed<double>("all_finite", g, rnnfast::all_finite_cpu<double>);
        },
        "Whether no element of a float array is NaN or infinite.", py::arg("g"));
}
