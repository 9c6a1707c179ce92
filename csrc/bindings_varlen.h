// The `lengths` argument of the recurrent bindings (variable-length batches, rnnfast/recurrent.h):
// None, or a C-contiguous int32 array [N] with every value in [1, T].
#pragma once

#include <cstdint>
#include <string>

#include "bindings_util.h"

namespace rnnfast {
namespace bindings {

inline const std::int32_t* lengths_arg(const py::object& o, index_t N, index_t T) {
  if (o.is_none()) return nullptr;
  if (!py::isinstance<py::array>(o)) bad("lengths", "must be a numpy.ndarray or None");
  const py::array a = py::reinterpret_borrow<py::array>(o);
  if (a.dtype().num() != py::dtype::of<std::int32_t>().num()) bad("lengths", "must have dtype int32");
  if (a.ndim() != 1 || a.shape(0) != N) bad("lengths", "must have shape " + shape_str({N}));
  if (!(a.flags() & py::array::c_style)) bad("lengths", "must be C-contiguous");
  const auto* v = static_cast<const std::int32_t*>(a.data());
  for (index_t n = 0; n < N; ++n)
    if (v[n] < 1 || v[n] > T) bad("lengths", "must hold values in [1, " + std::to_string(T) + "]");
  return v;
}

}  // namespace bindings
}  // namespace rnnfast
