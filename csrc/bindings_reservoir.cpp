// Bindings of the reservoir engine (rnnfast/reservoir.h): a population of leaky reservoirs over a batch of
// sequences, with W dense or as CSR (indptr, indices, values).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>

#include "rnnfast/reservoir.h"
#include "rnnfast/ridge_stats.h"
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

// clang-format off
#define RIDGE_STATS(F) \
  F(Obj, x) F(Obj, y) F(Obj, cx) F(Obj, cy) F(Obj, xx) F(Obj, xy) F(Obj, xs) F(Obj, ys) F(Obj, scratch)
// clang-format on
RNNFAST_ENTRY_ARGS(StatsArgs, RIDGE_STATS);

// x: (steps, batch, N) of float32 or float64 with N contiguous values per row and any positive row strides
// (a member's slice of the engine's [T, P, B, N] states); the statistics float64 (rnnfast/ridge_stats.h).
template <typename T>
void ridge_stats(const StatsArgs& a) {
  RidgeStatsParams<T> p{};
  py::array x = typed<T>(a.x, "x");
  if (x.ndim() != 3 || x.shape(2) < 1) bad("x", "must be 3-D (steps, batch, N) with N >= 1");
  const index_t S = x.shape(0), B = x.shape(1), N = x.shape(2), es = sizeof(T);
  const index_t s0 = x.strides(0), s1 = x.strides(1);
  if ((N > 1 && x.strides(2) != es) || s0 % es || s1 % es || s0 < 0 || s1 < 0)
    bad("x", "must have contiguous rows of N values and non-negative strides");
  if (S * B * N >= (index_t(1) << 40) || N >= (index_t(1) << 31)) bad("x", "is too large");
  const py::array y = typed<double>(a.y, "y");
  if (y.ndim() != 2 || y.shape(0) != S * B || y.shape(1) < 1)
    bad("y", "must have shape (steps * batch, O) = (" + std::to_string(S * B) + ", O) with O >= 1");
  const index_t O = y.shape(1);
  p.steps = int(S);
  p.batch = int(B);
  p.features = int(N);
  p.outputs = int(O);
  p.x = data_of<T>(x, "x", false);
  p.ld_step = s0 / es;
  p.ld_batch = s1 / es;
  p.y = dense<double>(a.y, "y", {S * B, O}, false);
  p.cx = dense<double>(a.cx, "cx", {N}, false);
  p.cy = dense<double>(a.cy, "cy", {O}, false);
  py::array xx = typed<double>(a.xx, "xx");
  if (xx.ndim() != 2 || xx.shape(0) != N || xx.shape(1) != N || !(xx.flags() & py::array::f_style))
    bad("xx", "must be a Fortran-ordered (" + std::to_string(N) + ", " + std::to_string(N) + ") array");
  p.xx = data_of<double>(xx, "xx", true);
  p.xy = dense<double>(a.xy, "xy", {N, O}, true);
  p.xs = dense<double>(a.xs, "xs", {N}, true);
  p.ys = dense<double>(a.ys, "ys", {O}, true);
  py::array sc = typed<double>(a.scratch, "scratch");
  if (!(sc.flags() & py::array::c_style) || sc.size() < S * B * N)
    bad("scratch", "must be a C-contiguous float64 array of at least steps * batch * N entries");
  p.scratch = data_of<double>(sc, "scratch", true);
  py::gil_scoped_release release;
  ridge_stats_add_cpu<T>(p);
}

}  // namespace
}  // namespace rnnfast

void register_reservoir(pybind11::module_& m) {
  using namespace rnnfast;
  using namespace rnnfast::bindings;
  def_entry<RunArgs>(m, "reservoir_run",
                     "Run a population of leaky reservoirs over a batch of sequences on the CPU (rnnfast/reservoir.h).",
                     [](const RunArgs& a) { float32_of(a.u, "u") ? run<float>(a) : run<double>(a); });
  def_entry<StatsArgs>(
      m, "ridge_stats_add", "Add rows of states to a ridge read-out's float64 statistics (rnnfast/ridge_stats.h).",
      [](const StatsArgs& a) { float32_of(a.x, "x") ? ridge_stats<float>(a) : ridge_stats<double>(a); });
}
