// The recurrent GEMM of one time step, C[N,M] (+)= A[N,K] · B[K,M], with B packed once per call.
//
// Why not BLAS: inside the time loop the same weight matrix multiplies a thin A (N = batch rows) at
// every step. A BLAS call re-packs B each time, which at small N costs as much as the multiply. Here B
// is packed once (PackedB: panels of kGemmNR vectors, zero-padded) and each step streams it through a
// register-blocked kernel (kGemmMR rows x kGemmNR vectors of accumulators, sized per tier in
// simd/tiles.h), parallel over panels. The packed layout depends on the tier: pack and multiply with the
// same one.
#pragma once

#include <vector>

#include "buffer.h"
#include "rnnfast/common.h"
#include "simd/tiles.h"

namespace rnnfast {
namespace RNNFAST_TIER {

template <typename T>
struct PackedB {
  int K = 0, M = 0, panels = 0;
  vector<T> data;  // [panels][K][panel_width]
};

// Packs B[K,M] (row stride ldb), or its transpose when `transpose` (then B is given as [M,K]).
template <typename T>
void pack_b(PackedB<T>& out, const T* B, index_t ldb, int K, int M, bool transpose);

// C[N,M] = (accumulate ? C : 0) + A[N,K] · B, A with row stride lda, C with row stride ldc.
// Runs on the engine's threads when the product is large enough.
template <typename T>
void small_gemm(int N, const T* A, index_t lda, const PackedB<T>& B, T* C, index_t ldc, bool accumulate);

// The same product cut into independent tasks (blocks of C), for callers that already run inside a
// parallel region: task i of small_gemm_tasks(N, B). With bias, C's block is set to bias (broadcast
// over rows) first, and then accumulated into.
template <typename T>
int small_gemm_tasks(int N, const PackedB<T>& B);
template <typename T>
void small_gemm_task(int task, int N, const T* A, index_t lda, const PackedB<T>& B, T* C, index_t ldc,
                     bool accumulate, const T* bias);

// Row blocks that start at multiples of this are summed exactly as on one thread (a thinner tile sums in
// another order): callers that split the rows of a product over threads cut at multiples of it.
constexpr int kGemmRowAlign = kGemmMR;

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
