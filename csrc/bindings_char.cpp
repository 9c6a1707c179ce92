// Python bindings of the fused min-char-rnn training loop (rnnfast/char_rnn.h): char_rnn_workspace_size
// and char_rnn_train, registered on rnnfast._core by register_char (called from csrc/bindings.cpp).
// Python (rnnfast.charmodel.FusedMinCharRNN) allocates every array; this file checks dtypes, shapes,
// contiguity and writability, and releases the GIL around the loop.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "rnnfast/char_rnn.h"
#include "rnnfast/parallel.h"

namespace py = pybind11;
using rnnfast::index_t;

namespace {

[[noreturn]] void bad_arg(const std::string& name, const std::string& what) {
  throw std::invalid_argument("rnnfast._core.char_rnn_train: argument '" + name + "' " + what);
}

std::string shape_text(const std::vector<index_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

py::array as_nd(const py::object& o, const std::string& name, int ndim) {
  if (!py::isinstance<py::array>(o)) bad_arg(name, "must be a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (a.ndim() != ndim) bad_arg(name, "must be " + std::to_string(ndim) + "-D");
  return a;
}

// A C-contiguous array of dtype Elem and exactly `shape` (writable when asked).
template <typename Elem>
Elem* dense_array(const py::object& o, const std::string& name, const std::vector<index_t>& shape, bool writable,
                  const char* dtype_name) {
  py::array a = as_nd(o, name, int(shape.size()));
  if (a.dtype().num() != py::dtype::of<Elem>().num()) bad_arg(name, std::string("must have dtype ") + dtype_name);
  for (size_t i = 0; i < shape.size(); ++i)
    if (a.shape(i) != shape[i]) bad_arg(name, "must have shape " + shape_text(shape));
  if (!(a.flags() & py::array::c_style)) bad_arg(name, "must be C-contiguous");
  if (writable) {
    if (!a.writeable()) bad_arg(name, "must be writable");
    return static_cast<Elem*>(a.mutable_data());
  }
  return const_cast<Elem*>(static_cast<const Elem*>(a.data()));
}

bool is_double(const py::object& dtype) {
  const py::dtype dt = py::dtype::from_args(dtype);
  if (dt.num() == py::dtype::of<float>().num()) return false;
  if (dt.num() == py::dtype::of<double>().num()) return true;
  throw std::invalid_argument("rnnfast._core: dtype must be float32 or float64");
}

template <typename T>
py::tuple train_typed(const py::sequence& params, const py::sequence& sums, const py::object& h,
                      const py::object& data, int seq_len, index_t pos, int steps, double lr, double eps,
                      bool eps_inside_sqrt, double clip, double loss_scale, bool freeze_b_hh,
                      const py::object& losses, const py::object& work) {
  using namespace rnnfast;
  const char* dn = sizeof(T) == 4 ? "float32" : "float64";
  if (py::len(params) != 6 || py::len(sums) != 6)
    throw std::invalid_argument("rnnfast._core.char_rnn_train: params and sums must each hold 6 arrays "
                                "(w_ih, w_hh, b_ih, b_hh, w_out, b_out)");
  const py::array wa = as_nd(params[0], "params[0] (w_ih)", 2);
  const index_t H = wa.shape(0), V = wa.shape(1);
  if (H < 1 || V < 1 || H > (1 << 20) || V > (1 << 20)) bad_arg("params[0] (w_ih)", "must have 1 <= H, V <= 2^20");
  const std::vector<std::vector<index_t>> shapes = {{H, V}, {H, H}, {H}, {H}, {V, H}, {V}};
  const char* names[6] = {"w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out"};
  T* pp[6];
  T* ss[6];
  for (int i = 0; i < 6; ++i) {
    const std::string k = std::to_string(i) + "] (" + names[i] + ")";
    pp[i] = dense_array<T>(params[i], "params[" + k, shapes[i], true, dn);
    ss[i] = dense_array<T>(sums[i], "sums[" + k, shapes[i], true, dn);
  }
  T* hp = dense_array<T>(h, "h", {H}, true, dn);
  const index_t n = as_nd(data, "data", 1).shape(0);
  const std::int32_t* d = dense_array<std::int32_t>(data, "data", {n}, false, "int32");
  if (seq_len < 1 || seq_len > (1 << 20)) bad_arg("seq_len", "must be in [1, 2^20]");
  if (n < seq_len + 1) bad_arg("data", "must hold at least seq_len + 1 characters");
  if (pos < 0 || pos >= n) bad_arg("pos", "must be in [0, len(data))");
  if (steps < 0) bad_arg("steps", "must be >= 0");
  const index_t nl = as_nd(losses, "losses", 1).shape(0);
  if (nl < steps) bad_arg("losses", "must hold at least `steps` elements");
  double* lp = dense_array<double>(losses, "losses", {nl}, true, "float64");
  const index_t need = char_rnn_workspace_size<T>(int(V), int(H), seq_len);
  const index_t nw = as_nd(work, "work", 1).shape(0);
  if (nw < need) bad_arg("work", "must hold at least char_rnn_workspace_size(...) = " + std::to_string(need) +
                                     " elements");
  T* wp = dense_array<T>(work, "work", {nw}, true, dn);
  if (!(std::isfinite(lr) && lr >= 0)) bad_arg("lr", "must be finite and >= 0");
  if (!(std::isfinite(eps) && eps > 0)) bad_arg("eps", "must be finite and > 0");
  if (!std::isfinite(clip)) bad_arg("clip", "must be finite (<= 0: no clipping)");
  if (!std::isfinite(loss_scale)) bad_arg("loss_scale", "must be finite");

  CharRnnTrainParams<T> p{};
  p.vocab = int(V);
  p.hidden = int(H);
  p.seq_len = seq_len;
  p.steps = steps;
  p.w_ih = pp[0]; p.w_hh = pp[1]; p.b_ih = pp[2]; p.b_hh = pp[3]; p.w_out = pp[4]; p.b_out = pp[5];
  p.s_w_ih = ss[0]; p.s_w_hh = ss[1]; p.s_b_ih = ss[2]; p.s_b_hh = ss[3]; p.s_w_out = ss[4]; p.s_b_out = ss[5];
  p.h = hp;
  p.data = d;
  p.data_len = n;
  p.pos = pos;
  p.lr = T(lr);
  p.eps = T(eps);
  p.clip = T(clip);
  p.loss_scale = T(loss_scale);
  p.eps_inside_sqrt = eps_inside_sqrt;
  p.freeze_b_hh = freeze_b_hh;
  p.losses = lp;
  p.work = wp;
  CharRnnTrainResult r;
  {
    py::gil_scoped_release release;
    EngineCall call;
    r = char_rnn_train_cpu<T>(p);
  }
  return py::make_tuple(r.steps_done, r.pos, r.restarts, static_cast<int>(r.status), r.detail);
}

}  // namespace

void register_char(py::module_& m) {
  m.def("char_rnn_workspace_size",
        [](int vocab, int hidden, int seq_len, const py::object& dtype) {
          if (vocab < 1 || hidden < 1 || seq_len < 1)
            throw std::invalid_argument("rnnfast._core.char_rnn_workspace_size: vocab, hidden, seq_len must be >= 1");
          return is_double(dtype) ? rnnfast::char_rnn_workspace_size<double>(vocab, hidden, seq_len)
                                  : rnnfast::char_rnn_workspace_size<float>(vocab, hidden, seq_len);
        },
        "Elements of the workspace char_rnn_train needs (dtype float32 or float64).",
        py::arg("vocab"), py::arg("hidden"), py::arg("seq_len"), py::arg("dtype"));
  m.def("char_rnn_train",
        [](const py::sequence& params, const py::sequence& sums, const py::object& h, const py::object& data,
           int seq_len, index_t pos, int steps, double lr, double eps, bool eps_inside_sqrt, double clip,
           double loss_scale, bool freeze_b_hh, const py::object& losses, const py::object& work) {
          if (py::len(params) < 1) throw std::invalid_argument("rnnfast._core.char_rnn_train: params is empty");
          const py::object w0 = params[0];
          if (!py::isinstance<py::array>(w0)) bad_arg("params[0] (w_ih)", "must be a numpy.ndarray");
          return (is_double(py::reinterpret_borrow<py::array>(w0).dtype()) ? train_typed<double>
                                                                          : train_typed<float>)(
              params, sums, h, data, seq_len, pos, steps, lr, eps, eps_inside_sqrt, clip, loss_scale, freeze_b_hh,
              losses, work);
        },
        "`steps` min-char-rnn training steps fused (rnnfast/char_rnn.h): updates params, sums, h in place, "
        "writes losses[:steps]; returns (steps_done, pos, restarts, status, detail).",
        py::arg("params"), py::arg("sums"), py::arg("h"), py::arg("data"), py::arg("seq_len"), py::arg("pos"),
        py::arg("steps"), py::arg("lr"), py::arg("eps"), py::arg("eps_inside_sqrt"), py::arg("clip"),
        py::arg("loss_scale"), py::arg("freeze_b_hh"), py::arg("losses"), py::arg("work"));
}
