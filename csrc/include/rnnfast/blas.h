// Row-major GEMM through the BLAS the CPU engine links (scipy-openblas32, symbols prefixed scipy_).
//   C[M,N] = alpha * op(A) op(B) + beta * C, op = transpose when the flag is set.
#pragma once

#include <cblas.h>

namespace rnnfast {

inline void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, long lda,
                 const float* B, long ldb, float beta, float* C, long ldc) {
  if (M == 0 || N == 0) return;
  scipy_cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                    alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

inline void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, long lda,
                 const double* B, long ldb, double beta, double* C, long ldc) {
  if (M == 0 || N == 0) return;
  scipy_cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                    alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

}  // namespace rnnfast
