// Bindings of the reservoir engine (rnnfast/reservoir.h): a population of leaky reservoirs over a batch of
// sequences, with W dense or as CSR (indptr, indices, values).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>

#include "rnnfast/reservoir.h"
#include "bindings_util.h"

namespace rnnfast {
namespace {

using namespace bindings;
using Obj = py::object;

// clang-format off
#define RESERVOIR_RUN(F)                                                                                       \
  F(Obj, u) F(Obj, w) F(Obj, indptr) F(Obj, indices) F(Obj, values) F(Obj, w_in) F(Obj, bias) F(Obj, sr_scale) \
  F(Obj, in_scale) F(Obj, leak) F(Obj, x0) F(Obj, states) F(Obj, x_last)
// clang-format on
RNNFAST_ENTRY_ARGS(RunArgs, RESERVOIR_RUN);

// W as CSR: indptr [N+1] from 0, non-decreasing; indices [nnz] in [0, N); values [nnz].
template <typename T>
void fill_csr(const RunArgs& a, index_t N, ReservoirParams<T>& p) {
  if (a.indptr.is_none()) bad("indptr", "is required when w is None");
  if (a.indices.is_none()) bad("indices", "is required when w is None");
  const std::int32_t* iptr = dense<std::int32_t>(a.indptr, "indptr", {N + 1}, false);
  const index_t nnz = iptr[N];
  if (iptr[0] != 0) bad("indptr", "must start at 0");
  for (index_t i = 0; i < N; ++i)
    if (iptr[i + 1] < iptr[i]) bad("indptr", "must be non-decreasing");
  p.indptr = iptr;
  p.indices = indices(a.indices, "indices", {nnz}, N);
  p.values = dense<T>(a.values, "values", {nnz}, false);
}

template <typename T>
void run(const RunArgs& a) {
  ReservoirParams<T> p{};
  const py::array ua = typed<T>(a.u, "u");
  if (ua.ndim() != 3) bad("u", "must be 3-D (T, B, I)");
  const py::array wia = typed<T>(a.w_in, "w_in");
  if (wia.ndim() != 2) bad("w_in", "must be 2-D (N, I)");
  const py::array sa = typed<T>(a.sr_scale, "sr_scale");
  if (sa.ndim() != 1) bad("sr_scale", "must be 1-D (P,)");
  const index_t Ts = ua.shape(0), B = ua.shape(1), I = ua.shape(2), N = wia.shape(0), P = sa.shape(0);
  if (Ts < 1 || B < 1 || I < 1 || N < 1 || P < 1) bad("u", "must have T, B, I >= 1 (and N, P >= 1)");
  check_blas_size("u", std::max(Ts * B * std::max(N, I), P * B * N));
  p.steps = int(Ts), p.batch = int(B), p.inputs = int(I), p.units = int(N), p.population = int(P);
  p.u = dense<T>(a.u, "u", {Ts, B, I}, false);
  p.w_in = dense<T>(a.w_in, "w_in", {N, I}, false);
  p.bias = dense<T>(a.bias, "bias", {N}, false, true);
  p.sr_scale = dense<T>(a.sr_scale, "sr_scale", {P}, false);
  p.in_scale = dense<T>(a.in_scale, "in_scale", {P}, false);
  p.leak = dense<T>(a.leak, "leak", {P, N}, false);
  p.x0 = dense<T>(a.x0, "x0", {P, B, N}, false, true);
  p.states = dense<T>(a.states, "states", {Ts, P, B, N}, true);
  p.x_last = dense<T>(a.x_last, "x_last", {P, B, N}, true);
  if (!a.w.is_none()) p.w_dense = dense<T>(a.w, "w", {N, N}, false);
  else fill_csr(a, N, p);
  py::gil_scoped_release release;
  reservoir_run_cpu<T>(p);
}

}  // namespace
}  // namespace rnnfast

void register_reservoir(pybind11::module_& m) {
  using namespace rnnfast;
  using namespace rnnfast::bindings;
  def_entry<RunArgs>(m, "reservoir_run",
                     "Run a population of leaky reservoirs over a batch of sequences on the CPU (rnnfast/reservoir.h).",
                     [](const RunArgs& a) { float32_of(a.u, "u") ? run<float>(a) : run<double>(a); });
}
