// Bindings of the fused min-char-rnn training loop (rnnfast/char_rnn.h). Python
// (rnnfast.charmodel.FusedMinCharRNN) allocates every array.
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "rnnfast/char_rnn.h"
#include "rnnfast/parallel.h"
#include "bindings_util.h"

namespace rnnfast {
namespace {

using namespace bindings;
using Obj = py::object;

// clang-format off
#define CHAR_WORKSPACE(F) F(int, vocab) F(int, hidden) F(int, seq_len) F(Obj, dtype)
#define CHAR_TRAIN(F)                                                                                       \
  F(py::sequence, params) F(py::sequence, sums) F(Obj, h) F(Obj, data) F(int, seq_len) F(index_t, pos)      \
  F(int, steps) F(double, lr) F(double, eps) F(bool, eps_inside_sqrt) F(double, clip) F(double, loss_scale) \
  F(bool, freeze_b_hh) F(Obj, losses) F(Obj, work)
// clang-format on
RNNFAST_ENTRY_ARGS(WorkspaceArgs, CHAR_WORKSPACE);
RNNFAST_ENTRY_ARGS(TrainArgs, CHAR_TRAIN);

// The six parameter arrays (w_ih, w_hh, b_ih, b_hh, w_out, b_out) and their Adagrad sums, of sizes H, V
// taken from w_ih: [H,V].
template <typename T>
void fill_weights(const TrainArgs& a, CharRnnTrainParams<T>& p) {
  if (py::len(a.params) != 6 || py::len(a.sums) != 6)
    bad_call("params and sums must each hold 6 arrays (w_ih, w_hh, b_ih, b_hh, w_out, b_out)");
  const py::array wa = ndim_array(a.params[0], "params[0] (w_ih)", 2);
  const index_t H = wa.shape(0), V = wa.shape(1);
  if (H < 1 || V < 1 || H > (1 << 20) || V > (1 << 20)) bad("params[0] (w_ih)", "must have 1 <= H, V <= 2^20");
  p.vocab = int(V), p.hidden = int(H);
  const std::vector<std::vector<index_t>> shapes = {{H, V}, {H, H}, {H}, {H}, {V, H}, {V}};
  const char* names[6] = {"w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out"};
  T** params[6] = {&p.w_ih, &p.w_hh, &p.b_ih, &p.b_hh, &p.w_out, &p.b_out};
  T** sums[6] = {&p.s_w_ih, &p.s_w_hh, &p.s_b_ih, &p.s_b_hh, &p.s_w_out, &p.s_b_out};
  for (int i = 0; i < 6; ++i) {
    const std::string k = std::to_string(i) + "] (" + names[i] + ")";
    *params[i] = dense<T>(a.params[i], "params[" + k, shapes[i], true);
    *sums[i] = dense<T>(a.sums[i], "sums[" + k, shapes[i], true);
  }
  p.h = dense<T>(a.h, "h", {H}, true);
}

template <typename T>
py::tuple train(const TrainArgs& a) {
  CharRnnTrainParams<T> p{};
  fill_weights(a, p);
  const index_t n = ndim_array(a.data, "data", 1).shape(0);
  p.data = dense<std::int32_t>(a.data, "data", {n}, false);
  p.data_len = n;
  if (a.seq_len < 1 || a.seq_len > (1 << 20)) bad("seq_len", "must be in [1, 2^20]");
  if (n < a.seq_len + 1) bad("data", "must hold at least seq_len + 1 characters");
  if (a.pos < 0 || a.pos >= n) bad("pos", "must be in [0, len(data))");
  if (a.steps < 0) bad("steps", "must be >= 0");
  const index_t nl = ndim_array(a.losses, "losses", 1).shape(0);
  if (nl < a.steps) bad("losses", "must hold at least `steps` elements");
  p.losses = dense<double>(a.losses, "losses", {nl}, true);
  const index_t need = char_rnn_workspace_size<T>(p.vocab, p.hidden, a.seq_len);
  const index_t nw = ndim_array(a.work, "work", 1).shape(0);
  if (nw < need) bad("work", "must hold at least char_rnn_workspace_size(...) = " + std::to_string(need) + " elements");
  p.work = dense<T>(a.work, "work", {nw}, true);
  if (!(std::isfinite(a.lr) && a.lr >= 0)) bad("lr", "must be finite and >= 0");
  if (!(std::isfinite(a.eps) && a.eps > 0)) bad("eps", "must be finite and > 0");
  if (!std::isfinite(a.clip)) bad("clip", "must be finite (<= 0: no clipping)");
  if (!std::isfinite(a.loss_scale)) bad("loss_scale", "must be finite");
  p.seq_len = a.seq_len, p.steps = a.steps, p.pos = a.pos;
  p.lr = T(a.lr), p.eps = T(a.eps), p.clip = T(a.clip), p.loss_scale = T(a.loss_scale);
  p.eps_inside_sqrt = a.eps_inside_sqrt, p.freeze_b_hh = a.freeze_b_hh;
  CharRnnTrainResult r;
  {
    py::gil_scoped_release release;
    EngineCall call;
    r = char_rnn_train_cpu<T>(p);
  }
  return py::make_tuple(r.steps_done, r.pos, r.restarts, static_cast<int>(r.status), r.detail);
}

}  // namespace
}  // namespace rnnfast

void register_char(pybind11::module_& m) {
  using namespace rnnfast;
  using namespace rnnfast::bindings;
  def_entry<WorkspaceArgs>(
      m, "char_rnn_workspace_size", "Elements of the workspace char_rnn_train needs (dtype float32 or float64).",
      [](const WorkspaceArgs& a) {
        if (a.vocab < 1 || a.hidden < 1 || a.seq_len < 1) bad_call("vocab, hidden, seq_len must be >= 1");
        return float32_dtype(a.dtype, "dtype") ? char_rnn_workspace_size<float>(a.vocab, a.hidden, a.seq_len)
                                               : char_rnn_workspace_size<double>(a.vocab, a.hidden, a.seq_len);
      });
  def_entry<TrainArgs>(m, "char_rnn_train",
                       "`steps` min-char-rnn training steps fused (rnnfast/char_rnn.h): updates params, sums, h in "
                       "place, writes losses[:steps]; returns (steps_done, pos, restarts, status, detail).",
                       [](const TrainArgs& a) {
                         if (py::len(a.params) < 1) bad("params", "is empty");
                         return float32_of(a.params[0], "params[0] (w_ih)") ? train<float>(a) : train<double>(a);
                       });
}
