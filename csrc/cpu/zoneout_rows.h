// Zoneout (rnnfast/zoneout.h) on one row's units in the CPU time loops: separate never-inlined functions
// with restrict pointers, as recurrent.cpp's other row functions (inlined into the loop GCC leaves them
// scalar).
#pragma once

#include "rnnfast/zoneout.h"

namespace rnnfast {
namespace RNNFAST_TIER {

// h = prev + m * (h - prev), y = h; m: the mask's row, or nullptr for the constant m_eval
template <typename T>
__attribute__((noinline)) void zoneout_row_forward(int w, const T* __restrict prev, const T* __restrict m, T m_eval,
                                                   T* __restrict h, T* __restrict y) {
  if (m) {
    for (int j = 0; j < w; ++j) {
      const T v = zoneout_forward(prev[j], h[j], m[j]);
      h[j] = v;
      y[j] = v;
    }
  } else {
    for (int j = 0; j < w; ++j) {
      const T v = zoneout_forward(prev[j], h[j], m_eval);
      h[j] = v;
      y[j] = v;
    }
  }
}

// dh (in: dL/dh_t, out: dL/dh_new); carry: the direct share of dL/dh_{t-1}
template <typename T>
__attribute__((noinline)) void zoneout_row_backward(int w, const T* __restrict m, T* __restrict dh,
                                                    T* __restrict carry) {
  for (int j = 0; j < w; ++j) dh[j] = zoneout_backward(dh[j], m[j], carry[j]);
}

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
