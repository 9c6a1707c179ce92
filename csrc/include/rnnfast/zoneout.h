// Zoneout (Krueger et al. 2016; haste's `zoneout`) on the hidden state, one element, for every engine:
//   h_t = h_{t-1} + m * (h_new - h_{t-1})
// with m the unit's keep-new weight: in training a 0/1 mask (m = 0 with probability p: the unit keeps its
// previous value), in eval the expectation m = 1 - p. h_new is the cell's own update (LSTM: o * tanh(c);
// c itself is not zoned out). Backward: dh_new = m * dh_t, and h_{t-1} gets (1 - m) * dh_t besides its
// share through the cell.
#pragma once

#include "rnnfast/common.h"

namespace rnnfast {

template <typename T>
RNNFAST_HD T zoneout_forward(T h_prev, T h_new, T m) {
  return h_prev + m * (h_new - h_prev);
}

// dh (in): dL/dh_t; returns dL/dh_new and sets carry = the direct share of dL/dh_{t-1}
template <typename T>
RNNFAST_HD T zoneout_backward(T dh, T m, T& carry) {
  carry = (T(1) - m) * dh;
  return m * dh;
}

}  // namespace rnnfast
