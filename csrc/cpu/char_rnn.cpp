// min-char-rnn's training steps fused (see rnnfast/char_rnn.h for the math and the arrays).
//
// Why one call for many steps: at batch 1, H = 100, a step is ~3 MFLOP, and through the general layers most
// of its time is Python and NumPy per-call overhead on arrays of 100-10,000 elements.
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
    auto take = [&](index_t n) {
      const index_t o = at;
      at += round_up(n, A);
      return o;
    };
    // whh and whhT get Hp rows (the padding ones stay zero) so that W_hh^T is made of whole 8x8 blocks
    win = take(V * Hp);
    whh = take(Hp * Hp);
    whhT = take(Hp * Hp);
    bih = take(Hp);
    bhh = take(Hp);
    wout = take(V * Hp);
    bout = take(Vp);
    s_win = take(V * Hp);
    s_whh = take(H * Hp);
    s_bih = take(Hp);
    s_bhh = take(Hp);
    s_wout = take(V * Hp);
    s_bout = take(Vp);
    g_win = take(V * Hp);
    g_whh = take(H * Hp);
    g_b = take(Hp);
    g_wout = take(V * Hp);
    g_bout = take(Vp);
    hs = take((Tp + 1) * Hp);  // row 0: the carried state h_{-1}; row t+1: h_t; rows > T stay zero
    hsT = take(Hp * Tp);       // hsT[k][t] = h_t[k]
    z = take(V * Tp);          // logits z[v][t], then their gradient
    dhout = take(T_ * Hp);     // W_out^T dz_t
    draw = take(T_ * Hp);      // gradient of the pre-activation at t
    hp = take(Hp);
    dh = take(Hp);
    mx = take(Tp);
    sm = take(Tp);
    ztgt = take(Tp);
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
void gemm_axpy(int M, int nv, int K, const T* A, index_t am, index_t ak, const T* B, index_t ldb, T* C, index_t ldc,
               bool accumulate) {
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
  for (int j = 0; j < NB; ++j) {
    a0[j] = load(y + j * L);
    a1[j] = V{};
  }
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

// The blocks of the workspace (see Layout), aligned to 64 bytes and zeroed (the padding must be zero).
template <typename T>
struct Blocks {
  T *win, *whh, *whhT, *bih, *bhh, *wout, *bout;
  T *s_win, *s_whh, *s_bih, *s_bhh, *s_wout, *s_bout;
  T *g_win, *g_whh, *g_b, *g_wout, *g_bout;
  T *hs, *hsT, *z, *dhout, *draw, *hp, *dh, *mx, *sm, *ztgt;

  Blocks(const Layout<T>& lay, T* work) {
    T* base = work;
    while (reinterpret_cast<std::uintptr_t>(base) % 64) ++base;
    std::fill(base, base + lay.total - 64 / index_t(sizeof(T)), T(0));
    win = base + lay.win, whh = base + lay.whh, whhT = base + lay.whhT, bih = base + lay.bih;
    bhh = base + lay.bhh, wout = base + lay.wout, bout = base + lay.bout;
    s_win = base + lay.s_win, s_whh = base + lay.s_whh, s_bih = base + lay.s_bih, s_bhh = base + lay.s_bhh;
    s_wout = base + lay.s_wout, s_bout = base + lay.s_bout;
    g_win = base + lay.g_win, g_whh = base + lay.g_whh, g_b = base + lay.g_b, g_wout = base + lay.g_wout;
    g_bout = base + lay.g_bout;
    hs = base + lay.hs, hsT = base + lay.hsT, z = base + lay.z, dhout = base + lay.dhout, draw = base + lay.draw;
    hp = base + lay.hp, dh = base + lay.dh, mx = base + lay.mx, sm = base + lay.sm, ztgt = base + lay.ztgt;
  }
};

// The training steps of one call, each a named step of min-char-rnn's loop: fetch a chunk, forward, loss,
// backward, clip, Adagrad. The parameters live in the padded layouts between the two move_arrays.
template <typename T>
class CharTrainer {
 public:
  explicit CharTrainer(const CharRnnTrainParams<T>& p)
      : p_(p), lay_(p.vocab, p.hidden, p.seq_len), b_(lay_, p.work), seen_(p.vocab, 0) {
    rows_.reserve(p.seq_len);
  }

  CharRnnTrainResult run() {
    move_arrays(true);
    CharRnnTrainResult res;
    res.pos = p_.pos;
    for (int step = 0; step < p_.steps; ++step) {
      const std::int32_t* x = fetch_chunk(res);  // inputs x[0..T-1], targets x[1..T]
      if (!x) break;
      forward(x);
      const double loss = loss_and_logit_gradients(x);
      backward(x);
      const int bad = clip_gradients();
      if (bad >= 0) {  // a NaN stops before anything is updated (as optim's step() raises)
        res.status = CharRnnStatus::NonFinite;
        res.detail = bad;
        break;
      }
      adagrad_step();
      p_.losses[step] = loss / p_.seq_len;
      std::memcpy(b_.hs, b_.hs + index_t(p_.seq_len) * lay_.Hp, sizeof(T) * lay_.Hp);  // carry h_{T-1}
      res.pos += p_.seq_len;
      ++res.steps_done;
    }
    move_arrays(false);
    return res;
  }

 private:
  static constexpr int L = lanes<T>();
  int nvH() const { return int(lay_.Hp / L); }
  int nvT() const { return int(lay_.Tp / L); }

  // The arrays into the padded layouts (load) or back (store), each pair named once.
  void move_arrays(bool load) {
    const int V = p_.vocab, H = p_.hidden;
    const index_t Hp = lay_.Hp;
    const auto transposed = [&](int rows, int cols, T* a, T* padded) {  // a [rows][cols] <-> padded [cols][Hp]
      if (load) transpose(rows, cols, a, cols, padded, Hp);
      else transpose(cols, rows, padded, Hp, a, cols);
    };
    const auto padded_rows = [&](int rows, int cols, T* a, T* padded) {  // a [rows][cols] <-> padded [rows][Hp]
      if (load) copy_rows(rows, cols, a, cols, padded, Hp);
      else copy_rows(rows, cols, padded, Hp, a, cols);
    };
    const auto plain = [&](int n, T* a, T* padded) {
      if (load) std::memcpy(padded, a, sizeof(T) * n);
      else std::memcpy(a, padded, sizeof(T) * n);
    };
    transposed(H, V, p_.w_ih, b_.win);
    transposed(H, V, p_.s_w_ih, b_.s_win);
    padded_rows(H, H, p_.w_hh, b_.whh);
    padded_rows(H, H, p_.s_w_hh, b_.s_whh);
    padded_rows(V, H, p_.w_out, b_.wout);
    padded_rows(V, H, p_.s_w_out, b_.s_wout);
    plain(H, p_.b_ih, b_.bih);
    plain(H, p_.b_hh, b_.bhh);
    plain(H, p_.s_b_ih, b_.s_bih);
    plain(H, p_.s_b_hh, b_.s_bhh);
    plain(V, p_.b_out, b_.bout);
    plain(V, p_.s_b_out, b_.s_bout);
    plain(H, p_.h, b_.hs);
    if (load) transpose(H, H, p_.w_hh, H, b_.whhT, Hp);  // W_hh^T for the forward's matvec
  }

  // The next chunk in min-char-rnn's order (back to the start, with a zero state, when the text runs out),
  // or nullptr (res says why) when a character is outside [0, V).
  const std::int32_t* fetch_chunk(CharRnnTrainResult& res) {
    const int Ts = p_.seq_len;
    if (res.pos + Ts + 1 >= p_.data_len && res.pos > 0) {
      res.pos = 0;
      ++res.restarts;
      std::fill(b_.hs, b_.hs + lay_.Hp, T(0));
    }
    const std::int32_t* x = p_.data + res.pos;
    for (int t = 0; t <= Ts; ++t)
      if (x[t] < 0 || x[t] >= p_.vocab) {
        res.status = CharRnnStatus::BadIndex;
        res.detail = res.pos + t;
        return nullptr;
      }
    return x;
  }

  // h_t = tanh((W_ih[:, x_t] + b_ih) + (W_hh h_{t-1} + b_hh)); then the logits z[v][t] = b_out[v] + W_out[v] h_t.
  // The recurrence is one sequence on one thread: a matrix-vector product a step, nothing to share.
  void forward(const std::int32_t* x) {
    const int V = p_.vocab, H = p_.hidden, Ts = p_.seq_len;
    const index_t Hp = lay_.Hp, Tp = lay_.Tp;
    for (int t = 0; t < Ts; ++t) {
      std::memcpy(b_.hp, b_.bhh, sizeof(T) * Hp);
      matvec(H, nvH(), b_.hs + t * Hp, b_.whhT, Hp, b_.hp);
      rnn_forward_row(Hp, b_.win + index_t(x[t]) * Hp, b_.bih, b_.hp, b_.hs + (t + 1) * Hp);
    }
    transpose(int(Tp), int(Hp), b_.hs + Hp, Hp, b_.hsT, Tp);
    for (int v = 0; v < V; ++v) std::fill(b_.z + v * Tp, b_.z + (v + 1) * Tp, b_.bout[v]);
    gemm_axpy(V, nvT(), H, b_.wout, Hp, 1, b_.hsT, Tp, b_.z, Tp, true);
  }

  // Softmax cross-entropy over v for every t (the lanes): returns the summed nll_t = log sum_v exp(z - m) -
  // (z_y - m) and leaves dz = loss_scale (softmax - onehot) in z (lanes t >= T: 0).
  double loss_and_logit_gradients(const std::int32_t* x) {
    const int V = p_.vocab, Ts = p_.seq_len;
    const index_t Tp = lay_.Tp;
    T* z = b_.z;
    std::memcpy(b_.mx, z, sizeof(T) * Tp);
    for (int v = 1; v < V; ++v) max_into(Tp, b_.mx, z + v * Tp);
    for (int t = 0; t < Ts; ++t) b_.ztgt[t] = z[index_t(x[t + 1]) * Tp + t] - b_.mx[t];
    std::fill(b_.sm, b_.sm + Tp, T(0));
    for (int v = 0; v < V; ++v) exp_sum_into(Tp, z + v * Tp, b_.mx, b_.sm);
    double loss = 0;
    for (int t = 0; t < Ts; ++t) loss += double(T(std::log(b_.sm[t])) - b_.ztgt[t]);
    for (index_t t = 0; t < Tp; ++t) b_.sm[t] = t < Ts ? p_.loss_scale / b_.sm[t] : T(0);
    for (int v = 0; v < V; ++v) scale_row(Tp, z + v * Tp, b_.sm);
    for (int t = 0; t < Ts; ++t) z[index_t(x[t + 1]) * Tp + t] -= p_.loss_scale;
    return loss;
  }

  // The gradients: the output layer for all t at once, BPTT through the recurrence, then W_hh's, the
  // biases' and the rows of W_ih the chunk's characters select (rows_).
  void backward(const std::int32_t* x) {
    const int V = p_.vocab, H = p_.hidden, Ts = p_.seq_len;
    const index_t Hp = lay_.Hp, Tp = lay_.Tp;
    gemm_axpy(Ts, nvH(), V, b_.z, 1, Tp, b_.wout, Hp, b_.dhout, Hp, false);      // dhout[t] = W_out^T dz_t
    gemm_axpy(V, nvH(), Ts, b_.z, Tp, 1, b_.hs + Hp, Hp, b_.g_wout, Hp, false);  // dW_out = sum_t dz_t h_t^T
    for (int v = 0; v < V; ++v) {
      VecT<T> s{};
      for (int j = 0; j < nvT(); ++j) s += load(b_.z + v * Tp + j * L);
      b_.g_bout[v] = hsum<T>(s);
    }
    std::fill(b_.dh, b_.dh + Hp, T(0));
    for (int t = Ts - 1; t >= 0; --t) {
      rnn_backward_row(Hp, b_.dhout + t * Hp, b_.dh, b_.hs + (t + 1) * Hp, b_.draw + t * Hp);
      if (t > 0) {
        std::fill(b_.dh, b_.dh + Hp, T(0));
        matvec(H, nvH(), b_.draw + t * Hp, b_.whh, Hp, b_.dh);  // dh_{t-1} = W_hh^T draw_t
      }
    }
    gemm_axpy(H, nvH(), Ts, b_.draw, 1, Hp, b_.hs, Hp, b_.g_whh, Hp, false);  // dW_hh = sum_t draw_t h_{t-1}^T
    std::fill(b_.g_b, b_.g_b + Hp, T(0));
    for (int t = 0; t < Ts; ++t) add_row(Hp, b_.g_b, b_.draw + t * Hp);
    rows_.clear();
    for (int t = 0; t < Ts; ++t)
      if (!seen_[x[t]]) {
        seen_[x[t]] = 1;
        rows_.push_back(x[t]);
        std::fill(b_.g_win + index_t(x[t]) * Hp, b_.g_win + index_t(x[t] + 1) * Hp, T(0));
      }
    for (int t = 0; t < Ts; ++t) add_row(Hp, b_.g_win + index_t(x[t]) * Hp, b_.draw + t * Hp);
    for (int r : rows_) seen_[r] = 0;
  }

  // Clips every gradient element; returns the first parameter (0..5, CharRnnStatus::NonFinite's detail)
  // whose gradient holds a NaN, or -1.
  int clip_gradients() {
    const int V = p_.vocab, H = p_.hidden;
    const index_t Hp = lay_.Hp;
    int bad = -1;
    for (int r : rows_)
      if (clip_and_check(Hp, b_.g_win + index_t(r) * Hp, p_.clip)) bad = 0;
    if (clip_and_check(H * Hp, b_.g_whh, p_.clip) && bad < 0) bad = 1;
    if (clip_and_check(Hp, b_.g_b, p_.clip) && bad < 0) bad = 2;  // also b_hh's gradient unless frozen
    if (clip_and_check(V * Hp, b_.g_wout, p_.clip) && bad < 0) bad = 4;
    if (clip_and_check(lay_.Vp, b_.g_bout, p_.clip) && bad < 0) bad = 5;
    return bad;
  }

  // Adagrad (rows of W_ih without a gradient would not change: skipped); then W_hh^T from the new W_hh.
  void adagrad_step() {
    const int V = p_.vocab, H = p_.hidden;
    const index_t Hp = lay_.Hp;
    const T lr = p_.lr, eps = p_.eps;
    const bool inside = p_.eps_inside_sqrt;
    for (int r : rows_)
      adagrad(Hp, b_.win + index_t(r) * Hp, b_.s_win + index_t(r) * Hp, b_.g_win + index_t(r) * Hp, lr, eps, inside);
    adagrad(H * Hp, b_.whh, b_.s_whh, b_.g_whh, lr, eps, inside);
    adagrad(Hp, b_.bih, b_.s_bih, b_.g_b, lr, eps, inside);
    if (!p_.freeze_b_hh) adagrad(Hp, b_.bhh, b_.s_bhh, b_.g_b, lr, eps, inside);
    adagrad(V * Hp, b_.wout, b_.s_wout, b_.g_wout, lr, eps, inside);
    adagrad(lay_.Vp, b_.bout, b_.s_bout, b_.g_bout, lr, eps, inside);
    transpose(int(Hp), int(Hp), b_.whh, Hp, b_.whhT, Hp);
  }

  const CharRnnTrainParams<T>& p_;
  const Layout<T> lay_;
  const Blocks<T> b_;
  vector<int> rows_;  // distinct characters of the chunk: the rows of win with a gradient
  vector<unsigned char> seen_;
};

}  // namespace

template <typename T>
index_t char_rnn_workspace_size(int vocab, int hidden, int seq_len) {
  return Layout<T>(vocab, hidden, seq_len).total;
}

template <typename T>
CharRnnTrainResult char_rnn_train_cpu(const CharRnnTrainParams<T>& p) {
  return CharTrainer<T>(p).run();
}

template index_t char_rnn_workspace_size<float>(int, int, int);
template index_t char_rnn_workspace_size<double>(int, int, int);
template CharRnnTrainResult char_rnn_train_cpu<float>(const CharRnnTrainParams<float>&);
template CharRnnTrainResult char_rnn_train_cpu<double>(const CharRnnTrainParams<double>&);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
