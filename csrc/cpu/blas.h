// Row-major GEMM through the BLAS the CPU engine links (scipy-openblas32, symbols prefixed scipy_).
//   C[M,N] = alpha * op(A) op(B) + beta * C, op = transpose when the flag is set.
#pragma once

#include <cblas.h>

#include <algorithm>

#include "rnnfast/parallel.h"

#if !defined(RNNFAST_TIER)
#error "csrc/cpu/blas.h is compiled per tier only"
#endif

namespace rnnfast {
namespace RNNFAST_TIER {

inline void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, long lda, const float* B, long ldb,
                 float beta, float* C, long ldc) {
  if (M == 0 || N == 0) return;
  scipy_cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                    static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

inline void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, long lda, const double* B,
                 long ldb, double beta, double* C, long ldc) {
  if (M == 0 || N == 0) return;
  scipy_cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                    static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

// The same GEMM split over the engine's threads by rows of C, each block one single-threaded BLAS
// call. The engine owns all threading: OpenBLAS is set to one thread when the module loads (its own pool
// would otherwise spin against the engine's between calls on a 2-core machine).
template <typename T>
void gemm_parallel(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, long lda, const T* B, long ldb, T beta,
                   T* C, long ldc) {
  const bool parallel = double(M) * N * K > 4e6 && M >= 32;
  constexpr int kChunks = 2;
  parallel_for(kChunks, parallel, [&](int id) {
    const int chunk = ((M + kChunks - 1) / kChunks + 7) / 8 * 8;
    const int m0 = std::min(M, id * chunk), m1 = std::min(M, m0 + chunk);
    if (m1 > m0) {
      const T* a = ta ? A + m0 : A + long(m0) * lda;
      gemm(ta, tb, m1 - m0, N, K, alpha, a, lda, B, ldb, beta, C + long(m0) * ldc, ldc);
    }
  });
}

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
