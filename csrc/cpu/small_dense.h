// Small dense kernels of the state-space recursions (csrc/cpu/hmm.cpp, csrc/cpu/kalman.cpp): products,
// Cholesky factorisations and triangular solves of matrices with a few to a few hundred rows, row-major and
// dense (the leading dimension is the row length unless given). Inside a time loop a BLAS call costs more
// than such a product, so these are register-blocked loops over the tier's vectors (simd/tiles.h sizes the
// blocks). Each product sums over k the same way in its vector blocks and in its scalar tail, so an element's
// value does not depend on where it lies in the matrix.
#pragma once

#include <cmath>

#include "rnnfast/common.h"

#include "simd/tiles.h"
#include "simd/vec.h"

#if !defined(RNNFAST_TIER)
#error "csrc/cpu/small_dense.h is compiled per tier only"
#endif

namespace rnnfast {
namespace RNNFAST_TIER {
namespace dense {

// dst[0..n) = src[0..n) (small copies: a libc memcpy call costs more than the copy)
template <typename T>
inline void copy(int n, const T* __restrict src, T* __restrict dst) {
  constexpr int L = lanes<T>();  // whole vectors: GCC turns a plain element loop into a memcpy call
  int i = 0;
  for (; i + L <= n; i += L) store(dst + i, load(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

// sum of x[0..n) in vector partial sums (a serial scalar sum is a latency chain of n additions)
template <typename T>
inline T sum(int n, const T* x) {
  constexpr int L = lanes<T>();
  VecT<T> v0{}, v1{};
  int k = 0;
  for (; k + 2 * L <= n; k += 2 * L) {
    v0 += load(x + k);
    v1 += load(x + k + L);
  }
  if (k + L <= n) {
    v0 += load(x + k);
    k += L;
  }
  T s = hsum<T>(v0 + v1);
  for (; k < n; ++k) s += x[k];
  return s;
}

// c[0..n) = (accumulate ? c : 0) + sum_k a[k] B[k, 0..n)  (B: K rows `ldb` apart): a vector times a matrix.
// Columns in blocks of V vectors held in registers; the k loop runs as two chains (even and odd k, added
// at the end), which halves the latency of a step of a recursion whose next step waits for c.
template <typename T, int V>
inline int row_times_block(int K, int n, int j, const T* __restrict a, const T* __restrict B, index_t ldb,
                           T* __restrict c, bool accumulate) {
  constexpr int L = lanes<T>();
  for (; j + V * L <= n; j += V * L) {
    VecT<T> s0[V], s1[V];
    for (int v = 0; v < V; ++v) {
      s0[v] = accumulate ? load(c + j + v * L) : VecT<T>{};
      s1[v] = VecT<T>{};
    }
    int k = 0;
    for (; k + 2 <= K; k += 2) {
      const T a0 = a[k], a1 = a[k + 1];  // scalar x vector: GCC broadcasts from memory
      const T* __restrict b0 = B + k * ldb + j;
      const T* __restrict b1 = b0 + ldb;
      for (int v = 0; v < V; ++v) {
        s0[v] += a0 * load(b0 + v * L);
        s1[v] += a1 * load(b1 + v * L);
      }
    }
    if (k < K) {
      const T a0 = a[k];
      for (int v = 0; v < V; ++v) s0[v] += a0 * load(B + k * ldb + j + v * L);
    }
    for (int v = 0; v < V; ++v) store(c + j + v * L, s0[v] + s1[v]);
  }
  return j;
}

template <typename T>
inline void row_times(int K, int n, const T* __restrict a, const T* __restrict B, index_t ldb, T* __restrict c,
                      bool accumulate) {
  constexpr int kWide = kVecRegisters >= 32 ? 8 : 4;  // 2 x kWide accumulators + broadcasts fit the registers
  int j = row_times_block<T, kWide>(K, n, 0, a, B, ldb, c, accumulate);
  if (kWide > 4) j = row_times_block<T, 4>(K, n, j, a, B, ldb, c, accumulate);
  j = row_times_block<T, 2>(K, n, j, a, B, ldb, c, accumulate);
  j = row_times_block<T, 1>(K, n, j, a, B, ldb, c, accumulate);
  for (; j < n; ++j) {
    T s0 = accumulate ? c[j] : T(0), s1 = T(0);
    int k = 0;
    for (; k + 2 <= K; k += 2) {
      s0 += a[k] * B[k * ldb + j];
      s1 += a[k + 1] * B[(k + 1) * ldb + j];
    }
    if (k < K) s0 += a[k] * B[k * ldb + j];
    c[j] = s0 + s1;
  }
}

// C[MR rows, NR vectors] (+)= A[MR rows, K] B[K, NR vectors]: one register tile
template <typename T, int MR, int NR>
__attribute__((always_inline)) inline void mm_tile(int K, const T* __restrict A, int lda, const T* __restrict B,
                                                   int ldb, T* __restrict C, int ldc, bool accumulate) {
  constexpr int L = lanes<T>();
  VecT<T> s[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NR; ++v) s[r][v] = accumulate ? load(C + r * ldc + v * L) : VecT<T>{};
  for (int k = 0; k < K; ++k) {
    VecT<T> b[NR];
    for (int v = 0; v < NR; ++v) b[v] = load(B + k * ldb + v * L);
    for (int r = 0; r < MR; ++r) {
      const T a = A[r * lda + k];
      for (int v = 0; v < NR; ++v) s[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NR; ++v) store(C + r * ldc + v * L, s[r][v]);
}

template <typename T, int NR>
inline int mm_columns(int M, int N, int K, int j, const T* A, const T* B, T* C, bool accumulate) {
  constexpr int L = lanes<T>(), MR = kGemmMR;
  for (; j + NR * L <= N; j += NR * L) {
    int i = 0;
    for (; i + MR <= M; i += MR) mm_tile<T, MR, NR>(K, A + i * K, K, B + j, N, C + i * N + j, N, accumulate);
    for (; i < M; ++i) mm_tile<T, 1, NR>(K, A + i * K, K, B + j, N, C + i * N + j, N, accumulate);
  }
  return j;
}

// C[M,N] = (accumulate ? C : 0) + A[M,K] B[K,N]
template <typename T>
inline void mm(int M, int N, int K, const T* A, const T* B, T* C, bool accumulate = false) {
  int j = mm_columns<T, kGemmNR>(M, N, K, 0, A, B, C, accumulate);
  j = mm_columns<T, 1>(M, N, K, j, A, B, C, accumulate);
  for (; j < N; ++j)
    for (int i = 0; i < M; ++i) {
      T s = accumulate ? C[i * N + j] : T(0);
      for (int k = 0; k < K; ++k) s += A[i * K + k] * B[k * N + j];
      C[i * N + j] = s;
    }
}

template <typename T>
inline void transpose(int M, int N, const T* __restrict A, T* __restrict At) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) At[index_t(j) * M + i] = A[index_t(i) * N + j];
}

// a = (a + a^T) / 2
template <typename T>
inline void symmetrize(int n, T* a) {
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      const T v = (a[i * n + j] + a[j * n + i]) * T(0.5);
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
}

// In place: the lower triangle of a becomes L with L L^T = a (the upper triangle is zeroed); false when a is
// not positive definite (a pivot <= 0 or NaN). Right-looking: after each column, the trailing rows are
// updated by vector loops over a contiguous copy of the column (col: n scratch).
template <typename T>
inline bool cholesky(int n, T* a, T* col) {
  for (int j = 0; j < n; ++j) {
    T* rj = a + index_t(j) * n;
    const T d = rj[j];
    if (!(d > T(0))) return false;
    const T l = std::sqrt(d), inv = T(1) / l;
    rj[j] = l;
    for (int k = j + 1; k < n; ++k) rj[k] = T(0);
    const int m = n - j - 1;
    for (int i = 0; i < m; ++i) {
      T& e = a[index_t(j + 1 + i) * n + j];
      e *= inv;
      col[i] = e;
    }
    for (int i = 0; i < m; ++i) {
      T* __restrict ri = a + index_t(j + 1 + i) * n + j + 1;
      const T ci = col[i];
      for (int k = 0; k <= i; ++k) ri[k] -= ci * col[k];
    }
  }
  return true;
}

// B[n,m] := L^-1 B (solve_lower), or B := L^-T B (solve_lower_transposed), for a lower-triangular L [n,n]
// and rdiag[i] = 1 / L[i,i]. Columns in blocks of V vectors: a row's block stays in registers while the
// solved rows are subtracted from it (a loop over whole rows would store and reload it for every term).
template <typename T, int V, bool Transposed>
inline int solve_block(int n, int m, int j, const T* __restrict L, T* __restrict B, const T* __restrict rdiag) {
  constexpr int L_ = lanes<T>();
  for (; j + V * L_ <= m; j += V * L_) {
    for (int q = 0; q < n; ++q) {
      const int i = Transposed ? n - 1 - q : q;
      VecT<T> s[V];
      for (int v = 0; v < V; ++v) s[v] = load(B + index_t(i) * m + j + v * L_);
      for (int k = Transposed ? i + 1 : 0; k < (Transposed ? n : i); ++k) {
        const T l = Transposed ? L[k * n + i] : L[i * n + k];
        for (int v = 0; v < V; ++v) s[v] -= l * load(B + index_t(k) * m + j + v * L_);
      }
      const T r = rdiag[i];
      for (int v = 0; v < V; ++v) store(B + index_t(i) * m + j + v * L_, s[v] * r);
    }
  }
  return j;
}

template <typename T, bool Transposed>
inline void solve(int n, int m, const T* L, T* B, const T* rdiag) {
  int j = solve_block<T, 4, Transposed>(n, m, 0, L, B, rdiag);
  j = solve_block<T, 2, Transposed>(n, m, j, L, B, rdiag);
  j = solve_block<T, 1, Transposed>(n, m, j, L, B, rdiag);
  for (; j < m; ++j)
    for (int q = 0; q < n; ++q) {
      const int i = Transposed ? n - 1 - q : q;
      T s = B[index_t(i) * m + j];
      for (int k = Transposed ? i + 1 : 0; k < (Transposed ? n : i); ++k)
        s -= (Transposed ? L[k * n + i] : L[i * n + k]) * B[index_t(k) * m + j];
      B[index_t(i) * m + j] = s * rdiag[i];
    }
}

// rdiag: n scratch, filled here (and used by solve_lower_transposed with the same L)
template <typename T>
inline void solve_lower(int n, int m, const T* L, T* B, T* rdiag) {
  for (int i = 0; i < n; ++i) rdiag[i] = T(1) / L[i * n + i];
  solve<T, false>(n, m, L, B, rdiag);
}

template <typename T>
inline void solve_lower_transposed(int n, int m, const T* L, T* B, const T* rdiag) {
  solve<T, true>(n, m, L, B, rdiag);
}

}  // namespace dense
}  // namespace RNNFAST_TIER
}  // namespace rnnfast
