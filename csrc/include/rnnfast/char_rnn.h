// min-char-rnn's whole training step fused in one engine call, and many steps per call.
//
// The model and update of Karpathy's min-char-rnn (the lecture's character-level vanilla RNN), as
// `rnnfast char train --preset min-char-rnn` runs them through the general layers, one step being:
//   chunk   x = data[pos : pos+T], targets y = data[pos+1 : pos+T+1]; when pos + T + 1 >= data_len and
//           pos > 0, first pos = 0 and h = 0 (the wrap rule of char.py and of min-char-rnn.py)
//   forward h_t = tanh((W_ih[:, x_t] + b_ih) + (W_hh h_{t-1} + b_hh)),  z_t = W_out h_t + b_out
//   loss    mean over t of -log softmax(z_t)[y_t]   (reported per character)
//   grads   dz_t = loss_scale (softmax(z_t) - onehot(y_t)), backpropagated through the T steps (truncated
//           BPTT: no gradient into the carried h); b_hh's gradient is zero when freeze_b_hh
//   clip    every gradient element to [-clip, clip] (clip > 0)
//   Adagrad S += g^2;  p -= lr g / sqrt(S + eps)   (or lr g / (sqrt(S) + eps) without eps_inside_sqrt)
//   carry   h = h_{T-1}, pos += T
//
// Letters: V = vocabulary (one-hot input size and output classes), H = hidden size, T = characters per
// step (seq_len). Parameters are the layers' arrays in PyTorch layouts, row-major, updated in place;
// the Adagrad sums S have their parameters' shapes. Batch 1: every product is a matrix-vector product or a
// GEMM with T rows, small enough (weights ~80 KB at V=96, H=100) to stay in L2; the engine keeps padded
// copies in its workspace for the whole call and writes the arrays back at its end.
#pragma once

#include <cstdint>

#include "rnnfast/common.h"

namespace rnnfast {

template <typename T>
struct CharRnnTrainParams {
  int vocab = 0, hidden = 0, seq_len = 0;  // V, H, T
  int steps = 0;                           // optimizer steps in this call
  T* w_ih = nullptr;     // [H,V]  rnn.weight_ih_l0 (min-char-rnn's W_xh)
  T* w_hh = nullptr;     // [H,H]  rnn.weight_hh_l0
  T* b_ih = nullptr;     // [H]    rnn.bias_ih_l0 (min-char-rnn's b_h)
  T* b_hh = nullptr;     // [H]    rnn.bias_hh_l0
  T* w_out = nullptr;    // [V,H]  out.weight (W_hy)
  T* b_out = nullptr;    // [V]    out.bias (b_y)
  T* s_w_ih = nullptr;   // Adagrad sums, shaped as the parameter above
  T* s_w_hh = nullptr;
  T* s_b_ih = nullptr;
  T* s_b_hh = nullptr;
  T* s_w_out = nullptr;
  T* s_b_out = nullptr;
  T* h = nullptr;                          // [H] the carried hidden state, in and out
  const std::int32_t* data = nullptr;      // [data_len] the encoded training text, values in [0, V)
  index_t data_len = 0;
  index_t pos = 0;                         // position of the next chunk
  T lr = 0, eps = 0, clip = 0, loss_scale = 1;
  bool eps_inside_sqrt = true, freeze_b_hh = true;
  double* losses = nullptr;                // [steps] out: each step's mean loss per character (nats)
  T* work = nullptr;                       // [char_rnn_workspace_size<T>(V, H, T)]
};

enum class CharRnnStatus : int {
  Ok = 0,
  NonFinite = 1,  // a gradient held NaN after clipping; that step changed nothing (detail: which parameter,
                  // 0..5 in the order w_ih, w_hh, b_ih, b_hh, w_out, b_out)
  BadIndex = 2,   // a character of the chunk is outside [0, V); that step changed nothing (detail: its position)
};

struct CharRnnTrainResult {
  int steps_done = 0;  // < steps only when status != Ok
  index_t pos = 0;     // position after the last step done
  int restarts = 0;    // times the wrap rule restarted at 0 (with a zero state)
  CharRnnStatus status = CharRnnStatus::Ok;
  index_t detail = 0;
};

template <typename T>
index_t char_rnn_workspace_size(int vocab, int hidden, int seq_len);

template <typename T>
CharRnnTrainResult char_rnn_train_cpu(const CharRnnTrainParams<T>& p);

}  // namespace rnnfast
