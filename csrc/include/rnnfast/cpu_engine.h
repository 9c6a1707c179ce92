// The CPU engine's instruction-set tiers and the table that dispatches to one of them.
//
// The engine's sources (csrc/cpu) are compiled once per tier, each build in its own namespace
// (rnnfast::baseline, rnnfast::avx2, rnnfast::avx512 on x86-64; rnnfast::neon on aarch64; rnnfast::generic
// elsewhere), and each build fills one CpuEngine table with its entry points (csrc/cpu/engine_table.cpp).
// The public entry points declared in recurrent.h, reservoir.h, ... (rnnfast::recurrent_forward_cpu<T> and
// the others) forward to the table of the tier chosen once per process (csrc/cpu/dispatch.cpp):
// RNNFAST_CPU_ISA=<tier> if set (a tier this CPU cannot run, or one not compiled, is an error), else the
// best tier the CPU runs, by cpuid and the OS's saved register state (XCR0).
#pragma once

#include <string>
#include <vector>

#include "rnnfast/adam.h"
#include "rnnfast/char_rnn.h"
#include "rnnfast/common.h"
#include "rnnfast/mrnn.h"
#include "rnnfast/online_readout.h"
#include "rnnfast/readout.h"
#include "rnnfast/ridge_stats.h"
#include "rnnfast/recurrent.h"
#include "rnnfast/reservoir.h"
#include "rnnfast/rop.h"
#include "rnnfast/statespace.h"

namespace rnnfast {

// The entry points of one tier for one scalar type.
template <typename T>
struct CpuKernels {
  void (*recurrent_forward)(const RecurrentForwardParams<T>&);
  void (*recurrent_backward)(const RecurrentBackwardParams<T>&);
  void (*mrnn_forward)(const MrnnForwardParams<T>&);
  void (*mrnn_backward)(const MrnnBackwardParams<T>&);
  void (*rnn_rop)(const RnnRopParams<T>&);
  void (*mrnn_rop)(const MrnnRopParams<T>&);
  void (*reservoir_run)(const ReservoirParams<T>&);
  CharRnnTrainResult (*char_rnn_train)(const CharRnnTrainParams<T>&);
  index_t (*char_rnn_workspace_size)(int vocab, int hidden, int seq_len);  // the padding follows the tier
  double (*readout_xent)(const ReadoutXentParams<T>&);
  void (*adam_update)(const AdamParams<T>&);
  double (*sum_squares)(const T*, index_t);
  bool (*all_finite)(const T*, index_t);
  void (*hmm_forward_backward)(const HmmForwardBackwardParams<T>&);
  void (*hmm_viterbi)(const HmmViterbiParams<T>&);
  void (*kalman)(const KalmanParams<T>&);
  void (*online_readout)(const OnlineReadoutParams<T>&);
  void (*ridge_stats_add)(const RidgeStatsParams<T>&);
};

struct CpuEngine {
  const char* tier;  // "baseline", "avx2", "avx512", "neon" or "generic"
  CpuKernels<float> f32;
  CpuKernels<double> f64;
  index_t (*recurrent_workspace_size)(Cell, int, int, int, bool);
  index_t (*mrnn_workspace_size)(int, int, int, int, bool, bool);
  index_t (*mrnn_rop_workspace_size)(int, int, int, bool);
};

// The tier in use (chosen on first call; throws std::runtime_error when RNNFAST_CPU_ISA asks for a tier
// that is unknown, not compiled in this build, or not supported by this CPU).
const CpuEngine& cpu_engine();
// The tiers compiled into this build, lowest first, and those of them this CPU can run.
std::vector<std::string> cpu_tiers_compiled();
std::vector<std::string> cpu_tiers_supported();
// What the CPU offers, in words (e.g. "x86-64: sse4.2 avx2 fma avx512f ..."), for build_info.
std::string cpu_features();

// The BLAS the engine links (scipy-openblas32): its kernel name, and one thread for its own calls (the
// engine's threads split the work; see rnnfast/parallel.h).
const char* blas_core_name();
void blas_single_threaded();

}  // namespace rnnfast
