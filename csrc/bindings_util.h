// Argument checks shared by the pybind11 binding files (bindings*.cpp): the only code besides them that
// knows about Python. Every error names the argument (std::invalid_argument -> Python ValueError).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "rnnfast/common.h"

namespace rnnfast {
namespace bindings {

namespace py = pybind11;

[[noreturn]] inline void bad(const std::string& name, const std::string& what) {
  throw std::invalid_argument("rnnfast._core: argument '" + name + "' " + what);
}

template <typename T>
py::array typed(const py::object& o, const std::string& name) {
  if (!py::isinstance<py::array>(o)) bad(name, "must be a numpy.ndarray");
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (a.dtype().num() != py::dtype::of<T>().num())
    bad(name, "must have dtype " + py::str(py::dtype::of<T>()).cast<std::string>());
  return a;
}

inline std::string shape_str(const std::vector<index_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// A C-contiguous array of exactly `shape`, or nullptr for None when allowed.
template <typename T>
T* dense(const py::object& o, const std::string& name, const std::vector<index_t>& shape, bool writable,
         bool allow_none = false) {
  if (o.is_none()) {
    if (allow_none) return nullptr;
    bad(name, "is required");
  }
  py::array a = typed<T>(o, name);
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) bad(name, "must have shape " + shape_str(shape));
  if (!(a.flags() & py::array::c_style)) bad(name, "must be C-contiguous");
  if (writable) {
    if (!a.writeable()) bad(name, "must be writable");
    return static_cast<T*>(a.mutable_data());
  }
  return const_cast<T*>(static_cast<const T*>(a.data()));
}

// A sequence [T,N,width] whose rows are contiguous and `ld` apart (a column slice of a C-contiguous
// [T,N,ld] array is accepted, so directions of a bidirectional output are written in place).
template <typename T>
T* sequence(const py::object& o, const std::string& name, index_t steps, index_t batch, index_t width,
            bool writable, bool allow_none, index_t* ld) {
  if (o.is_none()) {
    if (allow_none) { *ld = width; return nullptr; }
    bad(name, "is required");
  }
  py::array a = typed<T>(o, name);
  if (a.ndim() != 3 || a.shape(0) != steps || a.shape(1) != batch || a.shape(2) != width)
    bad(name, "must have shape " + shape_str({steps, batch, width}));
  // Element (t, n, j) must lie at (t*N + n)*ld + j; strides of length-1 dimensions do not matter.
  const index_t es = sizeof(T);
  const index_t s0 = a.strides(0), s1 = a.strides(1), s2 = a.strides(2);
  const index_t row = batch > 1 ? s1 : (steps > 1 ? s0 : width * es);
  const bool ok = (width == 1 || s2 == es) && row % es == 0 && row / es >= width &&
                  (steps == 1 || s0 == batch * row);
  if (!ok) bad(name, "must have contiguous rows (a C-contiguous array or a column slice of one)");
  *ld = row / es;
  if (writable) {
    if (!a.writeable()) bad(name, "must be writable");
    return static_cast<T*>(a.mutable_data());
  }
  return const_cast<T*>(static_cast<const T*>(a.data()));
}

// float32 (true) or float64 (false) from the array `name`; anything else is an error.
inline bool float32_of(const py::object& a, const std::string& name) {
  if (!py::isinstance<py::array>(a)) bad(name, "must be a numpy.ndarray");
  const int num = py::reinterpret_borrow<py::array>(a).dtype().num();
  if (num == py::dtype::of<float>().num()) return true;
  if (num == py::dtype::of<double>().num()) return false;
  bad(name, "must have dtype float32 or float64");
}

struct SeqDims {
  index_t T, N, C, H, F;
};

// T, N, C from x: [T,N,C]; F, H from w: [F,H] (square: [H,H], then F = H); all >= 1 (else `sizes`, the
// message naming w's sizes) and within 32-bit BLAS indices.
template <typename T>
SeqDims sequence_dims(const py::object& x, const py::object& w, const char* w_name, bool square,
                      const char* sizes) {
  const py::array xa = typed<T>(x, "x");
  if (xa.ndim() != 3) bad("x", "must be 3-D (T, N, C)");
  const py::array wa = typed<T>(w, w_name);
  if (wa.ndim() != 2) bad(w_name, square ? "must be 2-D (H, H)" : "must be 2-D (F, H)");
  if (square && wa.shape(0) != wa.shape(1)) bad(w_name, "must be square (H, H)");
  const SeqDims d{xa.shape(0), xa.shape(1), xa.shape(2), wa.shape(1), wa.shape(0)};
  if (d.T < 1 || d.N < 1 || d.C < 1) bad("x", "must have T, N, C >= 1");
  if (d.F < 1 || d.H < 1) bad(w_name, sizes);
  if (d.T * d.N * std::max({d.C, d.H, d.F}) >= (index_t(1) << 31)) bad("x", "is too large for 32-bit BLAS indices");
  return d;
}

}  // namespace bindings
}  // namespace rnnfast
