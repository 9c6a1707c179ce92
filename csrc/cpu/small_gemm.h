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

// Columns per panel: the kernel's tile width.
template <typename T>
constexpr int panel_width() {
  return kGemmNR * lanes<T>();
}

// Packs B[K,M] (row stride ldb), or its transpose when `transpose` (then B is given as [M,K]).
template <typename T>
void pack_b(PackedB<T>& out, const T* B, index_t ldb, int K, int M, bool transpose);

// Packs W^T with its columns grouped in blocks of units: W is [G*H, K] (G gates of H units each, rows
// g*H + j, row stride ldw), and panel b*G + g holds gate g of the units [b*PW, b*PW + PW), PW =
// panel_width (zero columns past H). A thread that owns blocks of units then owns whole panels: all the
// gates of its units (recurrent.cpp's by-units schedule). M = blocks * G * PW.
template <typename T>
void pack_bt_unit_blocks(PackedB<T>& out, const T* W, index_t ldw, int K, int G, int H);

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
void small_gemm_task(int task, int N, const T* A, index_t lda, const PackedB<T>& B, T* C, index_t ldc, bool accumulate,
                     const T* bias);
// The tasks of panels [p0, p1) for all N rows (the columns [p0 * PW, p1 * PW) of C), on the calling thread.
template <typename T>
void small_gemm_panels(int p0, int p1, int N, const T* A, index_t lda, const PackedB<T>& B, T* C, index_t ldc,
                       bool accumulate, const T* bias);

// Row blocks that start at multiples of this are summed exactly as on one thread (a thinner tile sums in
// another order): callers that split the rows of a product over threads cut at multiples of it.
constexpr int kGemmRowAlign = kGemmMR;

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
