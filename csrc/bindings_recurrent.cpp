// Bindings of the recurrent engine (rnnfast/recurrent.h): one layer, one direction of RNN/LSTM/GRU forward
// and backward, with the input as a sequence x [T,N,C] or, for a first layer fed one-hot rows, as int32
// indices x_index [T,N] (the *_onehot entry points: no dx; dW_ih as a scatter-add).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <type_traits>

#include "rnnfast/recurrent.h"
#include "bindings_util.h"
#include "bindings_varlen.h"

namespace rnnfast {
namespace {

using namespace bindings;
using Obj = py::object;

// The arguments of the entry points, INPUT being x or x_index.
// clang-format off
#define RECURRENT_FORWARD_ARGS(F, INPUT)                                                                          \
  F(int, cell) F(Obj, INPUT) F(Obj, h0) F(Obj, c0) F(Obj, w_ih) F(Obj, w_hh) F(Obj, b_ih) F(Obj, b_hh) F(Obj, y)  \
  F(Obj, h_n) F(Obj, c_n) F(Obj, h_prev) F(Obj, c_prev) F(Obj, gates) F(Obj, extra) F(Obj, work) F(bool, reverse) \
  F(bool, training) F(Obj, lengths) F(Obj, zoneout) F(Obj, zoneout_p)
#define RECURRENT_BACKWARD_ARGS(F, INPUT, DX)                                                                    \
  F(int, cell) F(Obj, INPUT) F(Obj, w_ih) F(Obj, w_hh) F(Obj, h_prev) F(Obj, c_prev) F(Obj, gates) F(Obj, extra) \
  F(Obj, dy) F(Obj, dh_n) F(Obj, dc_n) DX(F) F(Obj, dh0) F(Obj, dc0) F(Obj, dw_ih) F(Obj, dw_hh) F(Obj, db_ih)   \
  F(Obj, db_hh) F(Obj, work) F(bool, reverse) F(Obj, lengths) F(Obj, zoneout)
#define WITH_DX(F) F(Obj, dx) F(bool, accumulate_dx)
#define NO_DX(F)
#define FORWARD_X(F) RECURRENT_FORWARD_ARGS(F, x)
#define FORWARD_INDEX(F) RECURRENT_FORWARD_ARGS(F, x_index)
#define BACKWARD_X(F) RECURRENT_BACKWARD_ARGS(F, x, WITH_DX)
#define BACKWARD_INDEX(F) RECURRENT_BACKWARD_ARGS(F, x_index, NO_DX)
#define WORKSPACE(F) F(int, cell) F(int, steps) F(int, batch) F(int, hidden) F(bool, backward)
// clang-format on
RNNFAST_ENTRY_ARGS(WorkspaceArgs, WORKSPACE);
RNNFAST_ENTRY_ARGS(ForwardArgs, FORWARD_X);
RNNFAST_ENTRY_ARGS(OnehotForwardArgs, FORWARD_INDEX);
RNNFAST_ENTRY_ARGS(BackwardArgs, BACKWARD_X);
RNNFAST_ENTRY_ARGS(OnehotBackwardArgs, BACKWARD_INDEX);

struct Dims {
  index_t T, N, C, H;
};

// T, N, C from x: [T,N,C] and H from w_hh: [G*H,H]; >= 1 and within 32-bit BLAS indices.
template <typename T>
Dims input_dims(Cell cell, const py::object& x, const py::object& w_hh) {
  const py::array xa = typed<T>(x, "x");
  if (xa.ndim() != 3) bad("x", "must be 3-D (T, N, C)");
  const py::array wa = typed<T>(w_hh, "w_hh");
  if (wa.ndim() != 2) bad("w_hh", "must be 2-D (G*H, H)");
  const Dims d{xa.shape(0), xa.shape(1), xa.shape(2), wa.shape(1)};
  if (d.T < 1 || d.N < 1 || d.C < 1 || d.H < 1) bad("x", "must have T, N, C >= 1 and H >= 1");
  check_blas_size("x", d.T * d.N * std::max(d.C, gates_of(cell) * d.H));
  return d;
}

// T, N from x_index: [T,N], C from w_ih: [G*H,C], H from w_hh: [G*H,H].
template <typename T>
Dims index_dims(Cell cell, const py::object& x_index, const py::object& w_ih, const py::object& w_hh) {
  const py::array xi = ndim_array(x_index, "x_index", 2);
  const py::array wi = ndim_array(w_ih, "w_ih", 2);
  const py::array wh = ndim_array(w_hh, "w_hh", 2);
  const Dims d{xi.shape(0), xi.shape(1), wi.shape(1), wh.shape(1)};
  if (d.T < 1 || d.N < 1 || d.C < 1 || d.H < 1) bad("x_index", "must have T, N >= 1 (and C, H >= 1)");
  const index_t GH = gates_of(cell) * d.H;
  check_blas_size("x_index", std::max(d.T * d.N * std::max(d.C, GH), d.C * GH));
  return d;
}

// Whether the input comes as indices (x_index) instead of a sequence x.
template <typename A>
constexpr bool kIndexInput = std::is_same_v<A, OnehotForwardArgs> || std::is_same_v<A, OnehotBackwardArgs>;

template <typename T, typename A>
Dims dims_of(Cell cell, const A& a) {
  if constexpr (kIndexInput<A>) return index_dims<T>(cell, a.x_index, a.w_ih, a.w_hh);
  else return input_dims<T>(cell, a.x, a.w_hh);
}

// The input: x (a sequence, possibly a column slice) or x_index (one-hot rows as indices < C).
template <typename T, typename A, typename P>
void fill_input(const A& a, const Dims& d, P& p) {
  if constexpr (kIndexInput<A>) p.x_index = indices(a.x_index, "x_index", {d.T, d.N}, d.C);
  else p.x = sequence<T>(a.x, "x", d.T, d.N, d.C, false, false, &p.ldx);
}

// The cell, the sizes, the direction and the input (x or x_index) of a forward or backward call.
template <typename T, typename A, typename P>
Dims fill_sizes_and_input(const A& a, P& p) {
  p.cell = cell_from_int(a.cell);
  const Dims d = dims_of<T>(p.cell, a);
  p.steps = int(d.T), p.batch = int(d.N), p.input_size = int(d.C), p.hidden = int(d.H);
  p.reverse = a.reverse;
  fill_input<T>(a, d, p);
  return d;
}

// The training cache: written by the forward, read by the backward.
template <typename T, typename A, typename P>
void fill_cache(const A& a, const Dims& d, Cell cell, bool writable, P& p) {
  const index_t GH = gates_of(cell) * d.H;
  p.h_prev = dense<T>(a.h_prev, "h_prev", {d.T, d.N, d.H}, writable);
  p.c_prev = cell == Cell::Lstm ? dense<T>(a.c_prev, "c_prev", {d.T, d.N, d.H}, writable) : nullptr;
  p.gates = dense<T>(a.gates, "gates", {d.T, d.N, GH}, writable);
  p.extra = gates_of(cell) == 3 ? dense<T>(a.extra, "extra", {d.T, d.N, d.H}, writable) : nullptr;
}

// The options of issue #17: variable lengths (None or int32 [N] in [1, T]) and zoneout's keep-new mask
// (None or [T,N,H]; rnnfast/zoneout.h).
template <typename T, typename A, typename P>
void fill_options(const A& a, const Dims& d, P& p) {
  p.lengths = lengths_arg(a.lengths, d.N, d.T);
  p.zoneout = dense<T>(a.zoneout, "zoneout", {d.T, d.N, d.H}, false, true);
}

template <typename T, typename A>
void forward(const A& a) {
  RecurrentForwardParams<T> p{};
  const auto [Ts, N, C, H] = fill_sizes_and_input<T>(a, p);
  const index_t GH = gates_of(p.cell) * H;
  const bool lstm = p.cell == Cell::Lstm;
  p.training = a.training;
  p.h0 = dense<T>(a.h0, "h0", {N, H}, false, true);
  p.c0 = lstm ? dense<T>(a.c0, "c0", {N, H}, false, true) : nullptr;
  p.w_ih = dense<T>(a.w_ih, "w_ih", {GH, C}, false);
  p.w_hh = dense<T>(a.w_hh, "w_hh", {GH, H}, false);
  p.b_ih = dense<T>(a.b_ih, "b_ih", {GH}, false, true);
  p.b_hh = dense<T>(a.b_hh, "b_hh", {GH}, false, true);
  p.y = sequence<T>(a.y, "y", Ts, N, H, true, false, &p.ldy);
  p.h_n = dense<T>(a.h_n, "h_n", {N, H}, true);
  p.c_n = lstm ? dense<T>(a.c_n, "c_n", {N, H}, true) : nullptr;
  if (a.training) fill_cache<T>(a, Dims{Ts, N, C, H}, p.cell, true, p);
  p.work = dense<T>(a.work, "work", {recurrent_workspace_size(p.cell, p.steps, p.batch, p.hidden, false)}, true);
  fill_options<T>(a, Dims{Ts, N, C, H}, p);
  const double zoneout_p = a.zoneout_p.is_none() ? 0.0 : a.zoneout_p.template cast<double>();
  if (!(zoneout_p >= 0 && zoneout_p < 1)) bad("zoneout_p", "must be in [0, 1)");
  p.zoneout_p = T(zoneout_p);
  py::gil_scoped_release release;
  recurrent_forward_cpu<T>(p);
}

template <typename T, typename A>
void backward(const A& a) {
  RecurrentBackwardParams<T> p{};
  const auto [Ts, N, C, H] = fill_sizes_and_input<T>(a, p);
  const index_t GH = gates_of(p.cell) * H;
  const bool lstm = p.cell == Cell::Lstm;
  p.w_ih = dense<T>(a.w_ih, "w_ih", {GH, C}, false);
  p.w_hh = dense<T>(a.w_hh, "w_hh", {GH, H}, false);
  fill_cache<T>(a, Dims{Ts, N, C, H}, p.cell, false, p);
  p.dy = sequence<T>(a.dy, "dy", Ts, N, H, false, true, &p.lddy);
  p.dh_n = dense<T>(a.dh_n, "dh_n", {N, H}, false, true);
  p.dc_n = lstm ? dense<T>(a.dc_n, "dc_n", {N, H}, false, true) : nullptr;
  if constexpr (std::is_same_v<A, BackwardArgs>) {
    p.dx = sequence<T>(a.dx, "dx", Ts, N, C, true, false, &p.lddx);
    p.accumulate_dx = a.accumulate_dx;
  }
  p.dh0 = dense<T>(a.dh0, "dh0", {N, H}, true);
  p.dc0 = lstm ? dense<T>(a.dc0, "dc0", {N, H}, true) : nullptr;
  p.dw_ih = dense<T>(a.dw_ih, "dw_ih", {GH, C}, true);
  p.dw_hh = dense<T>(a.dw_hh, "dw_hh", {GH, H}, true);
  p.db_ih = dense<T>(a.db_ih, "db_ih", {GH}, true, true);
  p.db_hh = dense<T>(a.db_hh, "db_hh", {GH}, true, true);
  p.work = dense<T>(a.work, "work", {recurrent_workspace_size(p.cell, p.steps, p.batch, p.hidden, true)}, true);
  fill_options<T>(a, Dims{Ts, N, C, H}, p);
  py::gil_scoped_release release;
  recurrent_backward_cpu<T>(p);
}

// The dtype of a call: x's, or w_hh's where the input is indices.
template <typename A>
bool float32_call(const A& a) {
  if constexpr (kIndexInput<A>) return float32_of(a.w_hh, "w_hh");
  else return float32_of(a.x, "x");
}

}  // namespace

// lengths, zoneout (and the forward's zoneout_p) may be left out
namespace bindings {
template <>
struct optional_tail<ForwardArgs> : std::integral_constant<std::size_t, 3> {};
template <>
struct optional_tail<OnehotForwardArgs> : std::integral_constant<std::size_t, 3> {};
template <>
struct optional_tail<BackwardArgs> : std::integral_constant<std::size_t, 2> {};
template <>
struct optional_tail<OnehotBackwardArgs> : std::integral_constant<std::size_t, 2> {};
}  // namespace bindings
}  // namespace rnnfast

void register_recurrent(pybind11::module_& m) {
  using namespace rnnfast;
  using namespace rnnfast::bindings;
  def_entry<WorkspaceArgs>(m, "recurrent_workspace_size", "Elements of the work array of recurrent_forward/backward.",
                           [](const WorkspaceArgs& a) {
                             if (a.steps < 1 || a.batch < 1 || a.hidden < 1)
                               bad_call("steps, batch and hidden must be >= 1");
                             return recurrent_workspace_size(cell_from_int(a.cell), a.steps, a.batch, a.hidden,
                                                             a.backward);
                           });
  def_entry<ForwardArgs>(m, "recurrent_forward",
                         "One layer, one direction of RNN/LSTM/GRU forward on the CPU (see rnnfast/recurrent.h).",
                         [](const ForwardArgs& a) { float32_call(a) ? forward<float>(a) : forward<double>(a); });
  def_entry<BackwardArgs>(m, "recurrent_backward",
                          "One layer, one direction of RNN/LSTM/GRU backward through time on the CPU.",
                          [](const BackwardArgs& a) { float32_call(a) ? backward<float>(a) : backward<double>(a); });
  def_entry<OnehotForwardArgs>(
      m, "recurrent_forward_onehot", "recurrent_forward with one-hot input given as int32 indices x_index [T, N].",
      [](const OnehotForwardArgs& a) { float32_call(a) ? forward<float>(a) : forward<double>(a); });
  def_entry<OnehotBackwardArgs>(
      m, "recurrent_backward_onehot", "recurrent_backward for a forward with x_index: no dx; dW_ih as a scatter-add.",
      [](const OnehotBackwardArgs& a) { float32_call(a) ? backward<float>(a) : backward<double>(a); });
}
