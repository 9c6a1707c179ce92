// Shared definitions for the CPU and CUDA engines: the host/device macro, the cell kinds and the
// shape letters used everywhere in csrc/ (as in haste's lib/haste.h):
//   T = time steps, N = batch, C = input size, H = hidden size, G = gates per unit.
//   Row-major, rightmost dimension fastest: x: [T,N,C], h: [N,H], W_ih: [G*H,C], W_hh: [G*H,H].
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define RNNFAST_HD __host__ __device__ __forceinline__
#else
#define RNNFAST_HD inline
#endif

namespace rnnfast {

using index_t = std::int64_t;

// The recurrent cells. Gate order follows PyTorch: LSTM (i, f, g, o), GRU (r, z, n).
enum class Cell : int {
  RnnTanh = 0,
  RnnRelu = 1,
  Lstm = 2,
  Gru = 3,     // reset_after=True: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   (PyTorch, cuDNN)
  GruCho = 4,  // reset_after=False: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)  (Cho et al. 2014)
};

// The cells' Python names, indexed by code: rnnfast._core.CELL_CODES maps name -> code (the one place the
// codes are defined; python/rnnfast reads them from there).
constexpr int kCellCount = 5;
constexpr const char* kCellNames[kCellCount] = {"rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho"};

RNNFAST_HD constexpr int gates_of(Cell cell) {
  return cell == Cell::Lstm ? 4 : (cell == Cell::Gru || cell == Cell::GruCho) ? 3 : 1;
}

inline Cell cell_from_int(int c) {
  if (c < 0 || c >= kCellCount) throw std::invalid_argument("unknown cell kind " + std::to_string(c));
  return static_cast<Cell>(c);
}

}  // namespace rnnfast
