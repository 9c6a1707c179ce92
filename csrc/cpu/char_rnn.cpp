// min-char-rnn's training steps fused (see rnnfast/char_rnn.h for the math and the arrays).
//
// Why one call for many steps: at batch 1, H = 100, a step is ~3 MFLOP; through the general layers it
// costs ~210 us, four fifths of it Python and NumPy per-call overhead on arrays of 100-10,000 elements.
// Here the whole step (forward, loss, BPTT, clip, Adagrad) and the data fetch run in C++, for all the steps
// between two events of the caller (progress, validation, sampling, checkpoint).
//
// Layout: for the whole call the parameters, Adagrad sums and gradients live in the workspace, padded to
// whole SIMD vectors (Hp, Vp, Tp: H, V, T rounded up to the lanes), so every inner loop runs over whole
// vectors with zero padding (zero gradient keeps a padded parameter at zero through Adagrad), and in the
// layout each product wants:
//   win  [V][Hp]  W_ih transposed: the one-hot input selects a row; its gradient adds to that row
//   whh  [H][Hp]  W_hh (row i: the weights into unit i), for dh_prev = W_hh^T draw (axpy over rows)
//   whhT [H][Hp]  W_hh^T, for W_hh h (axpy over rows); refreshed from whh after each update
//   wout [V][Hp]  W_out
// Every product is an "axpy GEMM": C[m][:] (+)= sum_k a(m, k) B[k][:] with a(m, k) a broadcast scalar and
// B's rows whole vectors, register-blocked over 4 rows of C x 4 vectors (see gemm_axpy).
// The logits are kept transposed, z[v][t] (Tp per row), so the softmax over v is a loop over rows with the
// T time steps in the vector lanes: no horizontal reductions.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "rnnfast/cell_math.h"
#include "rnnfast/char_rnn.h"

#include "buffer.h"
#include "simd/tiles.h"
#include "simd/transpose.h"
#include "simd/vec.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

#define RNNFAST_ROW_FN __attribute__((noinline))

constexpr index_t round_up(index_t n, index_t m) { return (n + m - 1) / m * m; }

// ---- workspace layout --------------------------------------------------------------------------------
// Offsets in elements; every block starts on a 64-byte boundary (relative to the aligned base).
template <typename T>
struct Layout {
  int V, H, T_;
  index_t Hp, Vp, Tp;
  index_t win, whh, whhT, bih, bhh, wout, bout;            // parameters
  index_t s_win, s_whh, s_bih, s_bhh, s_wout, s_bout;      // Adagrad sums
  index_t g_win, g_whh, g_b, g_wout, g_bout;               // gradients (g_b: b_ih's, and b_hh's unless frozen)
  index_t hs, hsT, z, dhout, draw, hp, dh, mx, sm, ztgt;   // activations and scratch
  index_t total;

  Layout(int vocab, int hidden, int seq_len) : V(vocab), H(hidden), T_(seq_len) {
    const index_t L = lanes<T>(), A = 64 / index_t(sizeof(T));
    Hp = round_up(H, L);
    Vp = round_up(V, L);
    Tp = round_up(T_, L);
    index_t at = 0;
    auto take = [&](index_t n) { const index_t o = at; at += round_up(n, A); return o; };
    // whh and whhT get Hp rows (the padding ones stay zero) so that W_hh^T is made of whole 8x8 blocks
    win = take(V * Hp); whh = take(Hp * Hp); whhT = take(Hp * Hp); bih = take(Hp); bhh = take(Hp);
    wout = take(V * Hp); bout = take(Vp);
    s_win = take(V * Hp); s_whh = take(H * Hp); s_bih = take(Hp); s_bhh = take(Hp); s_wout = take(V * Hp);
    s_bout = take(Vp);
    g_win = take(V * Hp); g_whh = take(H * Hp); g_b = take(Hp); g_wout = take(V * Hp); g_bout = take(Vp);
    hs = take((Tp + 1) * Hp);  // row 0: the carried state h_{-1}; row t+1: h_t; rows > T stay zero
    hsT = take(Hp * Tp);       // hsT[k][t] = h_t[k]
    z = take(V * Tp);          // logits z[v][t], then their gradient
    dhout = take(T_ * Hp);     // W_out^T dz_t
    draw = take(T_ * Hp);      // gradient of the pre-activation at t
    hp = take(Hp); dh = take(Hp); mx = take(Tp); sm = take(Tp); ztgt = take(Tp);
    total = at + A;  // slack for aligning the base
  }
};

// ---- products --------------------------------------------------------------------------------------
// One MB x NB tile: C[i][j-th vector] (+)= sum_{k<K} A[i*am + k*ak] * B[k*ldb + j-th vector].
template <typename T, int MB, int NB>
void tile(int K, const T* A, index_t am, index_t ak, const T* B, index_t ldb, T* C, index_t ldc, bool accumulate) {
  using V = VecT<T>;
  constexpr int L = lanes<T>();
  V acc[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) acc[i][j] = accumulate ? load(C + i * ldc + j * L) : V{};
  for (int k = 0; k < K; ++k) {
    const T* b = B + k * ldb;
    V bv[NB];
    for (int j = 0; j < NB; ++j) bv[j] = load(b + j * L);
    for (int i = 0; i < MB; ++i) {
      const T a = A[i * am + k * ak];
      for (int j = 0; j < NB; ++j) acc[i][j] += a * bv[j];
    }
  }
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) store(C + i * ldc + j * L, acc[i][j]);
}

// Blocks of NB vectors (simd/tiles.h: at most 16 accumulators on 32 registers, 12 on 16), then the remainder.
template <typename T, int MB, int NB, int R = NB - 1>
void tile_rest(int rest, int K, const T* A, index_t am, index_t ak, const T* B, index_t ldb, T* C, index_t ldc,
               bool accumulate) {
  if constexpr (R >= 1) {
    if (rest == R) return tile<T, MB, R>(K, A, am, ak, B, ldb, C, ldc, accumulate);
    tile_rest<T, MB, NB, R - 1>(rest, K, A, am, ak, B, ldb, C, ldc, accumulate);
  }
}

template <typename T, int MB, int NB>
void tile_row(int nv, int K, const T* A, index_t am, index_t ak, const T* B, index_t ldb, T* C, index_t ldc,
              bool accumulate) {
  constexpr int L = lanes<T>();
  int j = 0;
  for (; j + NB <= nv; j += NB) tile<T, MB, NB>(K, A, am, ak, B + j * L, ldb, C + j * L, ldc, accumulate);
  tile_rest<T, MB, NB>(nv - j, K, A, am, ak, B + j * L, ldb, C + j * L, ldc, accumulate);
}

// C[m][0:nv vectors] (+)= sum_{k<K} a(m, k) B[k][0:nv vectors], a(m, k) = A[m*am + k*ak], m < M.
template <typename T>
void gemm_axpy(int M, int nv, int K, const T* A, index_t am, index_t ak, const T* B, index_t ldb, T* C,
               index_t ldc, bool accumulate) {
  constexpr int R = kAxpyRows, NB = kAxpyVecs, RT = kAxpyThinRows, NBT = kAxpyThinVecs;
  static_assert(R == 4, "the remainder switch below handles up to 3 rows");
  int m = 0;
  if (nv <= NBT)  // thin C (the logits, T lanes): more rows keep the accumulators busy
    for (; m + RT <= M; m += RT) tile_row<T, RT, NBT>(nv, K, A + m * am, am, ak, B, ldb, C + m * ldc, ldc, accumulate);
  for (; m + R <= M; m += R) tile_row<T, R, NB>(nv, K, A + m * am, am, ak, B, ldb, C + m * ldc, ldc, accumulate);
  const T* a = A + m * am;
  T* c = C + m * ldc;
  switch (M - m) {
    case 3: tile_row<T, 3, NB>(nv, K, a, am, ak, B, ldb, c, ldc, accumulate); break;
    case 2: tile_row<T, 2, NB>(nv, K, a, am, ak, B, ldb, c, ldc, accumulate); break;
    case 1: tile_row<T, 1, NB>(nv, K, a, am, ak, B, ldb, c, ldc, accumulate); break;
    default: break;
  }
}

// y[0:NB vectors] += sum_{k<K} x[k] B[k][0:NB vectors]: two interleaved chains over k hide the FMA latency
// (this product is on the recurrence's critical path).
template <typename T, int NB>
void matvec_block(int K, const T* x, const T* B, index_t ldb, T* y) {
  using V = VecT<T>;
  constexpr int L = lanes<T>();
  V a0[NB], a1[NB];
  for (int j = 0; j < NB; ++j) { a0[j] = load(y + j * L); a1[j] = V{}; }
  int k = 0;
  for (; k + 2 <= K; k += 2) {
    const T x0 = x[k], x1 = x[k + 1];
    const T* b0 = B + k * ldb;
    const T* b1 = b0 + ldb;
    for (int j = 0; j < NB; ++j) {
      a0[j] += x0 * load(b0 + j * L);
      a1[j] += x1 * load(b1 + j * L);
    }
  }
  if (k < K) {
    const T x0 = x[k];
    const T* b0 = B + k * ldb;
    for (int j = 0; j < NB; ++j) a0[j] += x0 * load(b0 + j * L);
  }
  for (int j = 0; j < NB; ++j) store(y + j * L, a0[j] + a1[j]);
}

template <typename T, int NB = kMatvecBlock>
void matvec_rest(int rest, int K, const T* x, const T* B, index_t ldb, T* y) {
  if constexpr (NB >= 1) {
    if (rest == NB) return matvec_block<T, NB>(K, x, B, ldb, y);
    matvec_rest<T, NB - 1>(rest, K, x, B, ldb, y);
  }
}

// y[0:nv vectors] += x B, in blocks of kMatvecBlock vectors (two chains of accumulators each: simd/tiles.h)
template <typename T>
void matvec(int K, int nv, const T* x, const T* B, index_t ldb, T* y) {
  constexpr int L = lanes<T>(), NB = kMatvecBlock;
  for (int j = 0; j < nv; j += NB) matvec_rest<T>(std::min(NB, nv - j), K, x, B + j * L, ldb, y + j * L);
}

// ---- per-element rows (plain loops, vectorised by the compiler; noinline keeps restrict effective) ----
// h = tanh((win_row + b_ih) + hp), hp = W_hh h_prev + b_hh (the cell math of rnnfast/cell_math.h)
template <typename T>
RNNFAST_ROW_FN void rnn_forward_row(index_t n, const T* __restrict wrow, const T* __restrict bih,
                                    const T* __restrict hp, T* __restrict h) {
  for (index_t j = 0; j < n; ++j) h[j] = rnn_unit_forward<T, false>(wrow[j] + bih[j], hp[j]);
}

// draw = (dhout + dh) (1 - h^2)
template <typename T>
RNNFAST_ROW_FN void rnn_backward_row(index_t n, const T* __restrict dhout, const T* __restrict dh,
                                     const T* __restrict h, T* __restrict draw) {
  for (index_t j = 0; j < n; ++j) draw[j] = rnn_unit_backward<T, false>(dhout[j] + dh[j], h[j]);
}

template <typename T>
RNNFAST_ROW_FN void max_into(index_t n, T* __restrict m, const T* __restrict z) {
  for (index_t j = 0; j < n; ++j) m[j] = z[j] > m[j] ? z[j] : m[j];
}

// z = exp(z - m) in place; s += z
template <typename T>
RNNFAST_ROW_FN void exp_sum_into(index_t n, T* __restrict z, const T* __restrict m, T* __restrict s) {
  for (index_t j = 0; j < n; ++j) {
    const T e = act_exp(z[j] - m[j]);
    z[j] = e;
    s[j] += e;
  }
}

template <typename T>
RNNFAST_ROW_FN void scale_row(index_t n, T* __restrict z, const T* __restrict r) {
  for (index_t j = 0; j < n; ++j) z[j] *= r[j];
}

template <typename T>
RNNFAST_ROW_FN void add_row(index_t n, T* __restrict a, const T* __restrict b) {
  for (index_t j = 0; j < n; ++j) a[j] += b[j];
}

// ---- clip and Adagrad over whole vectors (n a multiple of the lanes) -------------------------------------
// Clips g to [-c, c] in place (c > 0; c <= 0: no clipping); returns true when g holds a NaN (which the clip
// keeps, as NumPy's).
template <typename T>
bool clip_and_check(index_t n, T* g, T c) {
  using V = VecT<T>;
  constexpr int L = lanes<T>();
  const V lo = splat<T>(-c), hi = splat<T>(c);
  V nan{};
  for (index_t i = 0; i < n; i += L) {
    V v = load(g + i);
    if (c > 0) {
      v = v < lo ? lo : v;
      v = v > hi ? hi : v;
      store(g + i, v);
    }
    nan += v != v ? splat<T>(1) : V{};
  }
  return hsum<T>(nan) != 0;
}

// S += g^2; p -= lr (g / sqrt(S + eps))  (or lr (g / (sqrt(S) + eps))), the order of optim.Adagrad.
// A zero gradient leaves p and S exactly as they were.
template <typename T>
void adagrad(index_t n, T* __restrict p, T* __restrict S, const T* __restrict g, T lr, T eps, bool eps_inside) {
  using V = VecT<T>;
  constexpr int L = lanes<T>();
  const V veps = splat<T>(eps);
  for (index_t i = 0; i < n; i += L) {
    const V gv = load(g + i);
    const V s = load(S + i) + gv * gv;
    store(S + i, s);
    const V d = eps_inside ? vsqrt<T>(s + veps) : vsqrt<T>(s) + veps;
    store(p + i, load(p + i) - lr * (gv / d));
  }
}

template <typename T>
void copy_rows(int rows, int cols, const T* src, index_t lds, T* dst, index_t ldd) {
  for (int i = 0; i < rows; ++i) std::memcpy(dst + i * ldd, src + i * lds, sizeof(T) * cols);
}

}  // namespace

template <typename T>
index_t char_rnn_workspace_size(int vocab, int hidden, int seq_len) {
  return Layout<T>(vocab, hidden, seq_len).total;
}

template <typename T>
CharRnnTrainResult char_rnn_train_cpu(const CharRnnTrainParams<T>& p) {
  const Layout<T> lay(p.vocab, p.hidden, p.seq_len);
  const int V = p.vocab, H = p.hidden, Ts = p.seq_len;
  const index_t Hp = lay.Hp, Vp = lay.Vp, Tp = lay.Tp;
  constexpr int L = lanes<T>();
  const int nvH = int(Hp / L), nvT = int(Tp / L);

  // the workspace, aligned to 64 bytes and zeroed (the padding must be zero)
  T* base = p.work;
  while (reinterpret_cast<std::uintptr_t>(base) % 64) ++base;
  std::fill(base, base + lay.total - 64 / index_t(sizeof(T)), T(0));
  T* win = base + lay.win; T* whh = base + lay.whh; T* whhT = base + lay.whhT;
  T* bih = base + lay.bih; T* bhh = base + lay.bhh; T* wout = base + lay.wout; T* bout = base + lay.bout;
  T* s_win = base + lay.s_win; T* s_whh = base + lay.s_whh; T* s_bih = base + lay.s_bih;
  T* s_bhh = base + lay.s_bhh; T* s_wout = base + lay.s_wout; T* s_bout = base + lay.s_bout;
  T* g_win = base + lay.g_win; T* g_whh = base + lay.g_whh; T* g_b = base + lay.g_b;
  T* g_wout = base + lay.g_wout; T* g_bout = base + lay.g_bout;
  T* hs = base + lay.hs; T* hsT = base + lay.hsT; T* z = base + lay.z; T* dhout = base + lay.dhout;
  T* draw = base + lay.draw; T* hp = base + lay.hp; T* dh = base + lay.dh;
  T* mx = base + lay.mx; T* sm = base + lay.sm; T* ztgt = base + lay.ztgt;

  // load: the arrays into the padded layouts
  transpose(H, V, p.w_ih, V, win, Hp);
  transpose(H, V, p.s_w_ih, V, s_win, Hp);
  copy_rows(H, H, p.w_hh, H, whh, Hp);
  copy_rows(H, H, p.s_w_hh, H, s_whh, Hp);
  transpose(H, H, p.w_hh, H, whhT, Hp);
  copy_rows(V, H, p.w_out, H, wout, Hp);
  copy_rows(V, H, p.s_w_out, H, s_wout, Hp);
  std::memcpy(bih, p.b_ih, sizeof(T) * H);
  std::memcpy(bhh, p.b_hh, sizeof(T) * H);
  std::memcpy(s_bih, p.s_b_ih, sizeof(T) * H);
  std::memcpy(s_bhh, p.s_b_hh, sizeof(T) * H);
  std::memcpy(bout, p.b_out, sizeof(T) * V);
  std::memcpy(s_bout, p.s_b_out, sizeof(T) * V);
  std::memcpy(hs, p.h, sizeof(T) * H);

  CharRnnTrainResult res;
  res.pos = p.pos;
  vector<int> rows;            // distinct characters of the chunk: the rows of win with a gradient
  vector<unsigned char> seen(V, 0);
  rows.reserve(Ts);

  for (int step = 0; step < p.steps; ++step) {
    // data: min-char-rnn's order
    if (res.pos + Ts + 1 >= p.data_len && res.pos > 0) {
      res.pos = 0;
      ++res.restarts;
      std::fill(hs, hs + Hp, T(0));
    }
    const std::int32_t* x = p.data + res.pos;  // inputs x[0..T-1], targets x[1..T]
    bool ok = true;
    for (int t = 0; t <= Ts && ok; ++t)
      if (x[t] < 0 || x[t] >= V) {
        res.status = CharRnnStatus::BadIndex;
        res.detail = res.pos + t;
        ok = false;
      }
    if (!ok) break;

    // forward through time: h_t = tanh((W_ih[:, x_t] + b_ih) + (W_hh h_{t-1} + b_hh))
    for (int t = 0; t < Ts; ++t) {
      std::memcpy(hp, bhh, sizeof(T) * Hp);
      matvec(H, nvH, hs + t * Hp, whhT, Hp, hp);
      rnn_forward_row(Hp, win + index_t(x[t]) * Hp, bih, hp, hs + (t + 1) * Hp);
    }
    // logits z[v][t] = b_out[v] + sum_k W_out[v][k] h_t[k]
    transpose(int(Tp), int(Hp), hs + Hp, Hp, hsT, Tp);
    for (int v = 0; v < V; ++v) std::fill(z + v * Tp, z + (v + 1) * Tp, bout[v]);
    gemm_axpy(V, nvT, H, wout, Hp, 1, hsT, Tp, z, Tp, true);

    // softmax cross-entropy over v for every t (the lanes); nll_t = log sum_v exp(z - m) - (z_y - m)
    std::memcpy(mx, z, sizeof(T) * Tp);
    for (int v = 1; v < V; ++v) max_into(Tp, mx, z + v * Tp);
    for (int t = 0; t < Ts; ++t) ztgt[t] = z[index_t(x[t + 1]) * Tp + t] - mx[t];
    std::fill(sm, sm + Tp, T(0));
    for (int v = 0; v < V; ++v) exp_sum_into(Tp, z + v * Tp, mx, sm);
    double loss = 0;
    for (int t = 0; t < Ts; ++t) loss += double(T(std::log(sm[t])) - ztgt[t]);
    // dz = loss_scale (softmax - onehot); lanes t >= T get 0
    for (index_t t = 0; t < Tp; ++t) sm[t] = t < Ts ? p.loss_scale / sm[t] : T(0);
    for (int v = 0; v < V; ++v) scale_row(Tp, z + v * Tp, sm);
    for (int t = 0; t < Ts; ++t) z[index_t(x[t + 1]) * Tp + t] -= p.loss_scale;

    // backward: the output layer for all t at once
    gemm_axpy(Ts, nvH, V, z, 1, Tp, wout, Hp, dhout, Hp, false);          // dhout[t] = W_out^T dz_t
    gemm_axpy(V, nvH, Ts, z, Tp, 1, hs + Hp, Hp, g_wout, Hp, false);      // dW_out = sum_t dz_t h_t^T
    for (int v = 0; v < V; ++v) {
      VecT<T> s{};
      for (int j = 0; j < nvT; ++j) s += load(z + v * Tp + j * L);
      g_bout[v] = hsum<T>(s);
    }
    // BPTT through the recurrence
    std::fill(dh, dh + Hp, T(0));
    for (int t = Ts - 1; t >= 0; --t) {
      rnn_backward_row(Hp, dhout + t * Hp, dh, hs + (t + 1) * Hp, draw + t * Hp);
      if (t > 0) {
        std::fill(dh, dh + Hp, T(0));
        matvec(H, nvH, draw + t * Hp, whh, Hp, dh);  // dh_{t-1} = W_hh^T draw_t
      }
    }
    gemm_axpy(H, nvH, Ts, draw, 1, Hp, hs, Hp, g_whh, Hp, false);          // dW_hh = sum_t draw_t h_{t-1}^T
    std::fill(g_b, g_b + Hp, T(0));
    for (int t = 0; t < Ts; ++t) add_row(Hp, g_b, draw + t * Hp);
    rows.clear();
    for (int t = 0; t < Ts; ++t)
      if (!seen[x[t]]) {
        seen[x[t]] = 1;
        rows.push_back(x[t]);
        std::fill(g_win + index_t(x[t]) * Hp, g_win + index_t(x[t] + 1) * Hp, T(0));
      }
    for (int t = 0; t < Ts; ++t) add_row(Hp, g_win + index_t(x[t]) * Hp, draw + t * Hp);
    for (int r : rows) seen[r] = 0;

    // clip every element; a NaN stops before anything is updated (as optim's step() raises)
    int bad = -1;
    for (int r : rows)
      if (clip_and_check(Hp, g_win + index_t(r) * Hp, p.clip)) bad = 0;
    if (clip_and_check(H * Hp, g_whh, p.clip) && bad < 0) bad = 1;
    if (clip_and_check(Hp, g_b, p.clip) && bad < 0) bad = 2;  // also b_hh's gradient unless frozen
    if (clip_and_check(V * Hp, g_wout, p.clip) && bad < 0) bad = 4;
    if (clip_and_check(Vp, g_bout, p.clip) && bad < 0) bad = 5;
    if (bad >= 0) {
      res.status = CharRnnStatus::NonFinite;
      res.detail = bad;
      break;
    }

    // Adagrad (rows of W_ih without a gradient would not change: skipped)
    for (int r : rows) adagrad(Hp, win + index_t(r) * Hp, s_win + index_t(r) * Hp, g_win + index_t(r) * Hp,
                               p.lr, p.eps, p.eps_inside_sqrt);
    adagrad(H * Hp, whh, s_whh, g_whh, p.lr, p.eps, p.eps_inside_sqrt);
    adagrad(Hp, bih, s_bih, g_b, p.lr, p.eps, p.eps_inside_sqrt);
    if (!p.freeze_b_hh) adagrad(Hp, bhh, s_bhh, g_b, p.lr, p.eps, p.eps_inside_sqrt);
    adagrad(V * Hp, wout, s_wout, g_wout, p.lr, p.eps, p.eps_inside_sqrt);
    adagrad(Vp, bout, s_bout, g_bout, p.lr, p.eps, p.eps_inside_sqrt);
    transpose(int(Hp), int(Hp), whh, Hp, whhT, Hp);

    p.losses[step] = loss / Ts;
    std::memcpy(hs, hs + index_t(Ts) * Hp, sizeof(T) * Hp);  // carry h_{T-1}
    res.pos += Ts;
    ++res.steps_done;
  }

  // store: the padded layouts back into the arrays
  transpose(V, H, win, Hp, p.w_ih, V);
  transpose(V, H, s_win, Hp, p.s_w_ih, V);
  copy_rows(H, H, whh, Hp, p.w_hh, H);
  copy_rows(H, H, s_whh, Hp, p.s_w_hh, H);
  copy_rows(V, H, wout, Hp, p.w_out, H);
  copy_rows(V, H, s_wout, Hp, p.s_w_out, H);
  std::memcpy(p.b_ih, bih, sizeof(T) * H);
  std::memcpy(p.b_hh, bhh, sizeof(T) * H);
  std::memcpy(p.s_b_ih, s_bih, sizeof(T) * H);
  std::memcpy(p.s_b_hh, s_bhh, sizeof(T) * H);
  std::memcpy(p.b_out, bout, sizeof(T) * V);
  std::memcpy(p.s_b_out, s_bout, sizeof(T) * V);
  std::memcpy(p.h, hs, sizeof(T) * H);
  return res;
}

template index_t char_rnn_workspace_size<float>(int, int, int);
template index_t char_rnn_workspace_size<double>(int, int, int);
template CharRnnTrainResult char_rnn_train_cpu<float>(const CharRnnTrainParams<float>&);
template CharRnnTrainResult char_rnn_train_cpu<double>(const CharRnnTrainParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
