// The per-element math of every recurrent cell, forward and backward: one copy, templated on the
// scalar type and callable from the C++ loops (csrc/cpu) and the CUDA kernels (csrc/cuda).
//
// Each function handles one hidden unit of one batch row. "Pre-activations" come in two parts: the
// input projection xp = W_ih x + b_ih and the recurrent projection hp = W_hh h + b_hh (PyTorch keeps
// both biases). Backward returns the gradients of the pre-activations: dgx (multiplies W_ih, x) and
// dgh (multiplies W_hh, h); they differ only for the GRU's n gate.
#pragma once

#include "rnnfast/activations.h"
#include "rnnfast/tier.h"

namespace rnnfast {
RNNFAST_TIER_BEGIN

// ---- vanilla RNN: h = act(xp + hp) -------------------------------------------------------------
template <typename T, bool Relu>
RNNFAST_HD T rnn_unit_forward(T xp, T hp) {
  return Relu ? act_relu(xp + hp) : act_tanh(xp + hp);
}

// dh: gradient w.r.t. the output h; returns the gradient w.r.t. the pre-activation.
template <typename T, bool Relu>
RNNFAST_HD T rnn_unit_backward(T dh, T h) {
  return Relu ? (h > T(0) ? dh : T(0)) : dh * (T(1) - h * h);
}

// ---- LSTM, gates (i, f, g, o): c = f c_prev + i g, h = o tanh(c) -------------------------------
// Scalars in and out (no structs): GCC's vectoriser gives up on loops that pass aggregates around.
template <typename T>
RNNFAST_HD void lstm_unit_forward(T pi, T pf, T pg, T po, T c_prev, T& i, T& f, T& g, T& o, T& c, T& h) {
  i = act_sigmoid(pi);
  f = act_sigmoid(pf);
  g = act_tanh(pg);
  o = act_sigmoid(po);
  c = f * c_prev + i * g;
  h = o * act_tanh(c);
}

// Backward of one unit. In: dh (total gradient on h), dc (gradient on c from the next step), the saved
// activations i, f, g, o and c_prev. Out: the gate pre-activation gradients; returns the gradient on c_prev.
template <typename T>
RNNFAST_HD T lstm_unit_backward(T dh, T dc, T i, T f, T g, T o, T c_prev, T& di, T& df, T& dg, T& do_) {
  const T c = f * c_prev + i * g;
  const T tc = act_tanh(c);
  const T dc_total = dc + dh * o * (T(1) - tc * tc);
  di = dc_total * g * i * (T(1) - i);
  df = dc_total * c_prev * f * (T(1) - f);
  dg = dc_total * i * (T(1) - g * g);
  do_ = dh * tc * o * (T(1) - o);
  return dc_total * f;
}

// ---- GRU, gates (r, z, n): h = (1 - z) n + z h_prev --------------------------------------------
// reset_after=True:  n = tanh(xn + r * hn) with hn = W_hn h_prev + b_hn (saved for backward).
// reset_after=False: n = tanh(xn + hn')    with hn' = W_hn (r * h_prev) + b_hn.
template <typename T>
RNNFAST_HD T gru_unit_output(T z, T n, T h_prev) {
  return (T(1) - z) * n + z * h_prev;
}

// r or z from the two parts of its pre-activation
template <typename T>
RNNFAST_HD T gru_unit_gate(T xg, T hg) {
  return act_sigmoid(xg + hg);
}

// reset_after=True: n from hn = W_hn h_prev + b_hn
template <typename T>
RNNFAST_HD T gru_unit_n_after(T xn, T r, T hn) {
  return act_tanh(xn + r * hn);
}

// reset_after=False: n from hn' = W_hn (r * h_prev) + b_hn
template <typename T>
RNNFAST_HD T gru_unit_n_before(T xn, T hn_r) {
  return act_tanh(xn + hn_r);
}

// reset_after=True, the whole unit: the gates r, z, n and the new h from the pre-activation parts.
template <typename T>
RNNFAST_HD void gru_unit_forward(T xr, T xz, T xn, T hr, T hz, T hn, T h_prev, T& r, T& z, T& n, T& h) {
  r = gru_unit_gate(xr, hr);
  z = gru_unit_gate(xz, hz);
  n = gru_unit_n_after(xn, r, hn);
  h = gru_unit_output(z, n, h_prev);
}

// Backward of the output mix and the n nonlinearity. Returns dn_pre (gradient on n's
// pre-activation); dz_pre and the direct gradient on h_prev (dh z) come out by reference.
template <typename T>
RNNFAST_HD T gru_unit_backward_n(T dh, T z, T n, T h_prev, T& dz_pre, T& dh_prev_direct) {
  dz_pre = dh * (h_prev - n) * z * (T(1) - z);
  dh_prev_direct = dh * z;
  return dh * (T(1) - z) * (T(1) - n * n);
}

// reset_after=True: the gradient on r's pre-activation, from dn_pre and the saved hn.
template <typename T>
RNNFAST_HD T gru_unit_backward_r_after(T dn_pre, T r, T hn) {
  return dn_pre * hn * r * (T(1) - r);
}

// reset_after=False: drh = (W_hn^T dn_pre) for this unit, the gradient on r*h_prev.
template <typename T>
RNNFAST_HD T gru_unit_backward_r_before(T drh, T r, T h_prev) {
  return drh * h_prev * r * (T(1) - r);
}

RNNFAST_TIER_END
}  // namespace rnnfast

namespace rnnfast {
RNNFAST_TIER_BEGIN

// ---- leaky-integrator reservoir (echo state network) unit --------------------------------------
// x = (1 - a) x_prev + a tanh(pre), pre = W x_prev + W_in u + b (reservoirpy's Reservoir equation).
template <typename T>
RNNFAST_HD T leaky_unit(T x_prev, T pre, T a) {
  return (T(1) - a) * x_prev + a * act_tanh(pre);
}

RNNFAST_TIER_END
}  // namespace rnnfast
