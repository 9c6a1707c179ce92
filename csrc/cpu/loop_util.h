// Small helpers shared by the CPU time loops (recurrent.cpp, mrnn.cpp, rop.cpp): filling, copying and the
// threshold above which a step's element-wise phase splits its batch rows over the engine's threads.
#pragma once

#include <algorithm>
#include <cstring>

#include "rnnfast/common.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace loop {

// Steps with at least this many elements per phase split the batch rows over the threads.
constexpr index_t kParallelElements = 32768;

// Whether an MRNN step (forward, backward or R-op) is long enough to share between threads: 500k
// multiply-adds in its GEMMs, or a phase of kParallelElements elements.
inline bool mrnn_step_is_long(int N, int H, int F) {
  return double(N) * F * H > 5e5 || index_t(N) * std::max(F, H) >= kParallelElements;
}

// rows x cols block with row stride ld: every row set to bias (or zero when bias is null).
template <typename T>
void fill_rows(T* dst, index_t rows, int cols, index_t ld, const T* bias) {
  for (index_t r = 0; r < rows; ++r) {
    T* d = dst + r * ld;
    if (bias) std::memcpy(d, bias, sizeof(T) * cols);
    else std::fill(d, d + cols, T(0));
  }
}

// n elements copied from src, or zeros when src is null (an absent initial state).
template <typename T>
void copy_or_zero(T* dst, const T* src, index_t n) {
  if (src) std::memcpy(dst, src, sizeof(T) * n);
  else std::fill(dst, dst + n, T(0));
}

}  // namespace loop
}  // namespace RNNFAST_TIER
}  // namespace rnnfast
