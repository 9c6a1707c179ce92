// Register-blocked kernel for the per-step recurrent GEMM (see small_gemm.h).
// Written with the vector types of simd/vec.h; the tile shape (kGemmMR rows x kGemmNR vectors) per tier is
// in simd/tiles.h: each k step loads kNR vectors of B and broadcasts kMR values of A for kMR * kNR FMAs.
#include "small_gemm.h"

#include <algorithm>
#include <cstring>

#include "rnnfast/parallel.h"
#include "simd/vec.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace {

constexpr int kNR = kGemmNR;
constexpr int kMR = kGemmMR;

// One MR x panel tile: acc[i][j] += A[i,k] * Bp[k, j-th vector], k = 0..K-1. Thin tiles (MR < 4) keep
// KU independent sets of accumulators over interleaved k so the FMA latency stays hidden.
template <typename T, int MR>
void tile(int K, const T* __restrict A, index_t lda, const T* __restrict Bp, T* __restrict C, index_t ldc, int ncols,
          bool accumulate) {
  using V = typename Vec<T>::type;
  constexpr int PW = panel_width<T>();
  constexpr int KU = MR >= 4 ? 1 : (MR == 1 ? 4 : 2);
  V acc[KU][MR][kNR];
  for (int u = 0; u < KU; ++u)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < kNR; ++j) acc[u][i][j] = V{};
  int k = 0;
  for (; k + KU <= K; k += KU) {
    for (int u = 0; u < KU; ++u) {
      const V* b = reinterpret_cast<const V*>(Bp + index_t(k + u) * PW);
      V bv[kNR];
      for (int j = 0; j < kNR; ++j) bv[j] = b[j];
      for (int i = 0; i < MR; ++i) {
        const T a = A[i * lda + k + u];
        for (int j = 0; j < kNR; ++j) acc[u][i][j] += a * bv[j];
      }
    }
  }
  for (; k < K; ++k) {
    const V* b = reinterpret_cast<const V*>(Bp + index_t(k) * PW);
    for (int i = 0; i < MR; ++i) {
      const T a = A[i * lda + k];
      for (int j = 0; j < kNR; ++j) acc[0][i][j] += a * b[j];
    }
  }
  for (int u = 1; u < KU; ++u)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < kNR; ++j) acc[0][i][j] += acc[u][i][j];
  if (ncols == PW) {
    for (int i = 0; i < MR; ++i) {
      V* c = reinterpret_cast<V*>(C + i * ldc);
      for (int j = 0; j < kNR; ++j) c[j] = accumulate ? c[j] + acc[0][i][j] : acc[0][i][j];
    }
  } else {
    for (int i = 0; i < MR; ++i) {
      alignas(64) T buf[PW];
      std::memcpy(buf, &acc[0][i][0], sizeof(buf));
      T* c = C + i * ldc;
      for (int j = 0; j < ncols; ++j) c[j] = accumulate ? c[j] + buf[j] : buf[j];
    }
  }
}

template <typename T>
void panel(int N, const T* A, index_t lda, const T* Bp, int K, T* C, index_t ldc, int ncols, bool accumulate) {
  int n = 0;
  for (; n + kMR <= N; n += kMR) tile<T, kMR>(K, A + n * lda, lda, Bp, C + n * ldc, ldc, ncols, accumulate);
  const T* a = A + n * lda;
  T* c = C + n * ldc;
  static_assert(kMR <= 8, "the remainder switch below covers tiles of up to 8 rows");
  switch (N - n) {
    case 7:
      if constexpr (kMR > 7) tile<T, 7>(K, a, lda, Bp, c, ldc, ncols, accumulate);
      break;
    case 6:
      if constexpr (kMR > 6) tile<T, 6>(K, a, lda, Bp, c, ldc, ncols, accumulate);
      break;
    case 5:
      if constexpr (kMR > 5) tile<T, 5>(K, a, lda, Bp, c, ldc, ncols, accumulate);
      break;
    case 4:
      if constexpr (kMR > 4) tile<T, 4>(K, a, lda, Bp, c, ldc, ncols, accumulate);
      break;
    case 3: tile<T, 3>(K, a, lda, Bp, c, ldc, ncols, accumulate); break;
    case 2: tile<T, 2>(K, a, lda, Bp, c, ldc, ncols, accumulate); break;
    case 1: tile<T, 1>(K, a, lda, Bp, c, ldc, ncols, accumulate); break;
    default: break;
  }
}

// One panel: dst[k][j] = column j of the panel at row k, j < w (the rest zero). Transposed: the panel's
// columns are the w rows src[j * ld + k]; else they are src[k * ld + j] (src at the panel's first column).
template <typename T>
void pack_panel(T* dst, int K, int w, bool transpose, const T* __restrict src, index_t ld) {
  constexpr int PW = panel_width<T>();
  if (w < PW)  // zero padding of the last panel
    for (int k = 0; k < K; ++k) std::fill(dst + index_t(k) * PW + w, dst + index_t(k) * PW + PW, T(0));
  if (transpose) {  // each row of the panel gathers one column of the w rows
    // (the panel's rows are written whole, in order; its w source rows stay in L1 across 16 k, where
    // writing the panel column by column strides through memory)
    for (int k = 0; k < K; ++k) {
      T* __restrict d = dst + index_t(k) * PW;
      for (int j = 0; j < w; ++j) d[j] = src[index_t(j) * ld + k];
    }
  } else {
    for (int k = 0; k < K; ++k) std::memcpy(dst + index_t(k) * PW, src + index_t(k) * ld, sizeof(T) * w);
  }
}

}  // namespace

template <typename T>
void pack_b(PackedB<T>& out, const T* B, index_t ldb, int K, int M, bool transpose) {
  constexpr int PW = panel_width<T>();
  out.K = K;
  out.M = M;
  out.panels = (M + PW - 1) / PW;
  out.data.resize(index_t(out.panels) * K * PW);
  // panels are independent: split over the engine's threads when the copy is large (W_hh^T is packed at
  // the start of every forward and backward)
  parallel_for(out.panels, double(K) * M >= 65536, [&](int p) {
    const int m0 = p * PW;
    pack_panel(out.data.data() + index_t(p) * K * PW, K, std::min(PW, M - m0), transpose,
               transpose ? B + index_t(m0) * ldb : B + m0, ldb);
  });
}

template <typename T>
void pack_bt_unit_blocks(PackedB<T>& out, const T* W, index_t ldw, int K, int G, int H) {
  constexpr int PW = panel_width<T>();
  const int blocks = (H + PW - 1) / PW;
  out.K = K;
  out.M = blocks * G * PW;
  out.panels = blocks * G;
  out.data.resize(index_t(out.panels) * K * PW);
  parallel_for(out.panels, double(K) * out.M >= 65536, [&](int p) {
    const int b = p / G, g = p % G, u0 = b * PW;
    pack_panel(out.data.data() + index_t(p) * K * PW, K, std::min(PW, H - u0), true, W + (index_t(g) * H + u0) * ldw,
               ldw);
  });
}

constexpr int kRowBlock = 16 * kMR;  // rows of A per task: B's panel is reused across them from L1/L2

template <typename T>
int small_gemm_tasks(int N, const PackedB<T>& B) {
  return B.panels * ((N + kRowBlock - 1) / kRowBlock);
}

template <typename T>
void small_gemm_task(int task, int N, const T* A, index_t lda, const PackedB<T>& B, T* C, index_t ldc, bool accumulate,
                     const T* bias) {
  constexpr int PW = panel_width<T>();
  const int K = B.K, M = B.M, P = B.panels;
  const int p = task % P, r = task / P;
  const int m0 = p * PW, n0 = r * kRowBlock, rows = std::min(kRowBlock, N - n0), cols = std::min(PW, M - m0);
  T* c = C + n0 * ldc + m0;
  if (bias) {
    for (int i = 0; i < rows; ++i) std::memcpy(c + i * ldc, bias + m0, sizeof(T) * cols);
    accumulate = true;
  }
  panel(rows, A + n0 * lda, lda, B.data.data() + index_t(p) * K * PW, K, c, ldc, cols, accumulate);
}

template <typename T>
void small_gemm_panels(int p0, int p1, int N, const T* A, index_t lda, const PackedB<T>& B, T* C, index_t ldc,
                       bool accumulate, const T* bias) {
  const int P = B.panels, tasks = small_gemm_tasks(N, B);
  for (int r = 0; r * P < tasks; ++r)
    for (int p = p0; p < p1; ++p) small_gemm_task(r * P + p, N, A, lda, B, C, ldc, accumulate, bias);
}

template <typename T>
void small_gemm(int N, const T* A, index_t lda, const PackedB<T>& B, T* C, index_t ldc, bool accumulate) {
  const int tasks = small_gemm_tasks(N, B);
  // Threads only when there is enough work to pay for a dispatch (~8 MFLOP: waking a sleeping worker
  // can cost 50-200 us on a virtual machine).
  const bool parallel = double(N) * B.M * B.K > 4e6 && tasks > 1;
  parallel_for(tasks, parallel,
               [&](int task) { small_gemm_task(task, N, A, lda, B, C, ldc, accumulate, (const T*)nullptr); });
}

template void pack_b<float>(PackedB<float>&, const float*, index_t, int, int, bool);
template void pack_b<double>(PackedB<double>&, const double*, index_t, int, int, bool);
template void pack_bt_unit_blocks<float>(PackedB<float>&, const float*, index_t, int, int, int);
template void pack_bt_unit_blocks<double>(PackedB<double>&, const double*, index_t, int, int, int);
template void small_gemm_panels<float>(int, int, int, const float*, index_t, const PackedB<float>&, float*, index_t,
                                       bool, const float*);
template void small_gemm_panels<double>(int, int, int, const double*, index_t, const PackedB<double>&, double*, index_t,
                                        bool, const double*);
template void small_gemm<float>(int, const float*, index_t, const PackedB<float>&, float*, index_t, bool);
template void small_gemm<double>(int, const double*, index_t, const PackedB<double>&, double*, index_t, bool);
template int small_gemm_tasks<float>(int, const PackedB<float>&);
template int small_gemm_tasks<double>(int, const PackedB<double>&);
template void small_gemm_task<float>(int, int, const float*, index_t, const PackedB<float>&, float*, index_t, bool,
                                     const float*);
template void small_gemm_task<double>(int, int, const double*, index_t, const PackedB<double>&, double*, index_t, bool,
                                      const double*);

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
