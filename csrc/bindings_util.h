// The helpers of the pybind11 binding files (csrc/bindings*.cpp), the only C++ files that know about Python.
//
// Python (python/rnnfast) validates the arguments and allocates every array; the bindings re-check what
// the engines rely on (dtype, shape, strides, writability, index ranges), fill the engine's params struct
// and release the GIL around the compute. Every error names the entry point and the argument
// (std::invalid_argument -> Python ValueError).
//
// An entry point's arguments are declared once, as a list macro LIST(F) = F(type, name) F(type, name) ...:
// RNNFAST_ENTRY_ARGS(Args, LIST) makes the struct Args with one member per argument, and def_entry<Args>
// registers a function taking them in that order under those Python names (positional or keyword), which
// calls fn(const Args&).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rnnfast/common.h"

namespace rnnfast {
namespace bindings {

namespace py = pybind11;

// ---- entry points ----------------------------------------------------------------------------------------

// The entry point this thread is in (set by def_entry), named by the error messages.
inline const char*& current_entry() {
  thread_local const char* name = nullptr;
  return name;
}

struct EntryScope {
  explicit EntryScope(const char* name) : saved(current_entry()) { current_entry() = name; }
  ~EntryScope() { current_entry() = saved; }
  EntryScope(const EntryScope&) = delete;
  EntryScope& operator=(const EntryScope&) = delete;
  const char* saved;
};

inline std::string entry_prefix() {
  const char* fn = current_entry();
  return std::string("rnnfast._core") + (fn ? std::string(".") + fn : std::string()) + ": ";
}

// A bad argument `name`: "rnnfast._core.<entry>: argument '<name>' <what>".
[[noreturn]] inline void bad(const std::string& name, const std::string& what) {
  throw std::invalid_argument(entry_prefix() + "argument '" + name + "' " + what);
}

// A bad combination of arguments (sizes given as several integers).
[[noreturn]] inline void bad_call(const std::string& what) { throw std::invalid_argument(entry_prefix() + what); }

template <typename... Ts>
struct TypeList {};

#define RNNFAST_ARG_FIELD(type, name) type name;
#define RNNFAST_ARG_NAME(type, name) #name,
#define RNNFAST_ARG_TYPE(type, name) , type
#define RNNFAST_ARG_FROM_KWARGS(type, name) a.name = ::rnnfast::bindings::kwarg<type>(kw, #name);
#define RNNFAST_ENTRY_ARGS(Name, LIST)                                        \
  struct Name {                                                               \
    LIST(RNNFAST_ARG_FIELD)                                                   \
    static constexpr const char* names[] = {LIST(RNNFAST_ARG_NAME)};          \
    using types = ::rnnfast::bindings::TypeList<void LIST(RNNFAST_ARG_TYPE)>; \
    static Name from_kwargs(const ::pybind11::dict& kw) {                     \
      Name a{};                                                               \
      LIST(RNNFAST_ARG_FROM_KWARGS)                                           \
      return a;                                                               \
    }                                                                         \
  }

// The keyword argument `name` of type E; an absent py::object is None, any other absent argument an error.
template <typename E>
E kwarg(const py::dict& kw, const char* name) {
  if (kw.contains(name)) return kw[name].cast<E>();
  if constexpr (std::is_same_v<E, py::object>) return py::none();
  else bad(name, "is required");
}

// Entry points whose last `value` arguments may be left out (options added after the others): specialise
// optional_tail for their Args. A left-out py::object is None, an argument of another type its zero.
template <typename Args>
struct optional_tail : std::integral_constant<std::size_t, 0> {};

template <typename Args, std::size_t I, typename E>
auto entry_arg() {
  if constexpr (I + optional_tail<Args>::value >= std::size(Args::names)) {
    if constexpr (std::is_same_v<E, py::object>) return py::arg(Args::names[I]) = py::none();
    else return py::arg(Args::names[I]) = E{};
  } else {
    return py::arg(Args::names[I]);
  }
}

template <typename Args, typename Fn, typename... Ts, std::size_t... I>
void def_entry_impl(py::module_& m, const char* name, const char* doc, Fn fn, TypeList<void, Ts...>,
                    std::index_sequence<I...>) {
  m.def(
      name,
      [name, fn](Ts... v) {
        const EntryScope scope(name);
        return fn(Args{std::move(v)...});
      },
      doc, entry_arg<Args, I, Ts>()...);
}

// Registers m.<name>(args of Args, in order) -> fn(const Args&).
template <typename Args, typename Fn>
void def_entry(py::module_& m, const char* name, const char* doc, Fn fn) {
  def_entry_impl<Args>(m, name, doc, fn, typename Args::types{}, std::make_index_sequence<std::size(Args::names)>{});
}

// Registers m.<name>(**kwargs) -> fn(const Args&): keyword arguments only, any of Args' names (an absent
// object argument is None), for entry points whose many arguments are mostly optional.
template <typename Args, typename Fn>
void def_entry_kwargs(py::module_& m, const char* name, const char* doc, Fn fn) {
  m.def(
      name,
      [name, fn](py::kwargs kw) {
        const EntryScope scope(name);
        for (const auto& item : kw) {
          const std::string key = py::str(item.first);
          if (std::find(std::begin(Args::names), std::end(Args::names), key) == std::end(Args::names))
            bad(key, std::string("is not an argument of ") + name);
        }
        return fn(Args::from_kwargs(kw));
      },
      doc);
}

// ---- arrays ------------------------------------------------------------------------------------------------

template <typename E>
std::string dtype_name() {
  return py::str(py::dtype::of<E>()).cast<std::string>();
}

inline std::string shape_str(const std::vector<index_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

inline py::array as_array(const py::object& o, const std::string& name) {
  if (!py::isinstance<py::array>(o)) bad(name, "must be a numpy.ndarray");
  return py::reinterpret_borrow<py::array>(o);
}

// An array of `ndim` dimensions (any dtype), for reading sizes.
inline py::array ndim_array(const py::object& o, const std::string& name, int ndim) {
  py::array a = as_array(o, name);
  if (a.ndim() != ndim) bad(name, "must be " + std::to_string(ndim) + "-D");
  return a;
}

// An array of dtype E.
template <typename E>
py::array typed(const py::object& o, const std::string& name) {
  py::array a = as_array(o, name);
  if (a.dtype().num() != py::dtype::of<E>().num()) bad(name, "must have dtype " + dtype_name<E>());
  return a;
}

template <typename E>
E* data_of(py::array& a, const std::string& name, bool writable) {
  if (writable) {
    if (!a.writeable()) bad(name, "must be writable");
    return static_cast<E*>(a.mutable_data());
  }
  return const_cast<E*>(static_cast<const E*>(a.data()));
}

// A C-contiguous array of dtype E and exactly `shape`, or nullptr for None when allowed.
template <typename E>
E* dense(const py::object& o, const std::string& name, const std::vector<index_t>& shape, bool writable,
         bool allow_none = false) {
  if (o.is_none()) {
    if (allow_none) return nullptr;
    bad(name, "is required");
  }
  py::array a = typed<E>(o, name);
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) bad(name, "must have shape " + shape_str(shape));
  if (!(a.flags() & py::array::c_style)) bad(name, "must be C-contiguous");
  return data_of<E>(a, name, writable);
}

// The shape of the array `name` of dtype E (checked by dense afterwards), for arrays of any shape.
template <typename E>
std::vector<index_t> shape_of(const py::object& o, const std::string& name) {
  const py::array a = typed<E>(o, name);
  return std::vector<index_t>(a.shape(), a.shape() + a.ndim());
}

// A sequence [T,N,width] whose rows are contiguous and `ld` apart (a column slice of a C-contiguous
// [T,N,ld] array is accepted, so directions of a bidirectional output are written in place), or nullptr
// for None when allowed.
template <typename T>
T* sequence(const py::object& o, const std::string& name, index_t steps, index_t batch, index_t width, bool writable,
            bool allow_none, index_t* ld) {
  *ld = width;
  if (o.is_none()) {
    if (allow_none) return nullptr;
    bad(name, "is required");
  }
  py::array a = typed<T>(o, name);
  if (a.ndim() != 3 || a.shape(0) != steps || a.shape(1) != batch || a.shape(2) != width)
    bad(name, "must have shape " + shape_str({steps, batch, width}));
  // Element (t, n, j) must lie at (t*N + n)*ld + j; strides of length-1 dimensions do not matter.
  const index_t es = sizeof(T);
  const index_t s0 = a.strides(0), s1 = a.strides(1), s2 = a.strides(2);
  const index_t row = batch > 1 ? s1 : (steps > 1 ? s0 : width * es);
  const bool ok = (width == 1 || s2 == es) && row % es == 0 && row / es >= width && (steps == 1 || s0 == batch * row);
  if (!ok) bad(name, "must have contiguous rows (a C-contiguous array or a column slice of one)");
  *ld = row / es;
  return data_of<T>(a, name, writable);
}

// int32 indices of exactly `shape`, all in [0, bound).
inline const std::int32_t* indices(const py::object& o, const std::string& name, const std::vector<index_t>& shape,
                                   index_t bound) {
  const std::int32_t* idx = dense<std::int32_t>(o, name, shape, false);
  index_t n = 1;
  for (index_t s : shape) n *= s;
  for (index_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= bound)
      bad(name, "must lie in [0, " + std::to_string(bound) + "), got " + std::to_string(idx[i]));
  return idx;
}

// float32 (true) or float64 (false) from the array `name`; anything else is an error.
inline bool float32_of(const py::object& a, const std::string& name) {
  const int num = as_array(a, name).dtype().num();
  if (num == py::dtype::of<float>().num()) return true;
  if (num == py::dtype::of<double>().num()) return false;
  bad(name, "must have dtype float32 or float64");
}

// float32 (true) or float64 (false) from a dtype argument (a numpy dtype, type or name).
inline bool float32_dtype(const py::object& dtype, const std::string& name) {
  py::dtype dt;
  try {
    dt = py::dtype::from_args(dtype);
  } catch (const py::error_already_set&) { bad(name, "must be float32 or float64"); }
  if (dt.num() == py::dtype::of<float>().num()) return true;
  if (dt.num() == py::dtype::of<double>().num()) return false;
  bad(name, "must be float32 or float64");
}

// Every product of sizes the engines index with 32-bit BLAS integers stays below 2^31.
inline void check_blas_size(const std::string& name, index_t elements) {
  if (elements >= (index_t(1) << 31)) bad(name, "is too large for 32-bit BLAS indices");
}

struct SeqDims {
  index_t T, N, C, H, F;
};

// T, N, C from x: [T,N,C]; F, H from w: [F,H] (square: [H,H], then F = H); all >= 1 (else `sizes`, the
// message naming w's sizes) and within 32-bit BLAS indices.
template <typename T>
SeqDims sequence_dims(const py::object& x, const py::object& w, const char* w_name, bool square, const char* sizes) {
  const py::array xa = typed<T>(x, "x");
  if (xa.ndim() != 3) bad("x", "must be 3-D (T, N, C)");
  const py::array wa = typed<T>(w, w_name);
  if (wa.ndim() != 2) bad(w_name, square ? "must be 2-D (H, H)" : "must be 2-D (F, H)");
  if (square && wa.shape(0) != wa.shape(1)) bad(w_name, "must be square (H, H)");
  const SeqDims d{xa.shape(0), xa.shape(1), xa.shape(2), wa.shape(1), wa.shape(0)};
  if (d.T < 1 || d.N < 1 || d.C < 1) bad("x", "must have T, N, C >= 1");
  if (d.F < 1 || d.H < 1) bad(w_name, sizes);
  check_blas_size("x", d.T * d.N * std::max({d.C, d.H, d.F}));
  return d;
}

}  // namespace bindings
}  // namespace rnnfast

// The registration functions, one per family, called by the PYBIND11_MODULE in csrc/bindings.cpp (global
// names: tests/cuda_emulation/module.cpp registers the CUDA family in a module of its own).
void register_recurrent(pybind11::module_& m);  // csrc/bindings_recurrent.cpp
void register_reservoir(pybind11::module_& m);  // csrc/bindings_reservoir.cpp
void register_mrnn(pybind11::module_& m);       // csrc/bindings_mrnn.cpp
void register_rop(pybind11::module_& m);        // csrc/bindings_rop.cpp
void register_char(pybind11::module_& m);       // csrc/bindings_char.cpp
void register_train(pybind11::module_& m);      // csrc/bindings_train.cpp
void register_statespace(pybind11::module_& m);  // csrc/bindings_statespace.cpp
void register_online(pybind11::module_& m);      // csrc/bindings_online.cpp
void register_cuda(pybind11::module_& m);        // csrc/bindings_cuda.cpp (CUDA builds only)
