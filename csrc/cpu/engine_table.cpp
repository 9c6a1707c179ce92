// This tier's CpuEngine table (see rnnfast/cpu_engine.h): its entry points, for the dispatcher.
// Constant-initialised (function addresses only), so loading the module runs no code compiled for the tier.
#include "rnnfast/cpu_engine.h"

namespace rnnfast {
namespace RNNFAST_TIER {

// The entry points of this tier (defined in recurrent.cpp, mrnn.cpp, hmm.cpp, ... of the same build).
template <typename T>
void recurrent_forward_cpu(const RecurrentForwardParams<T>&);
template <typename T>
void recurrent_backward_cpu(const RecurrentBackwardParams<T>&);
template <typename T>
void mrnn_forward_cpu(const MrnnForwardParams<T>&);
template <typename T>
void mrnn_backward_cpu(const MrnnBackwardParams<T>&);
template <typename T>
void rnn_rop_cpu(const RnnRopParams<T>&);
template <typename T>
void mrnn_rop_cpu(const MrnnRopParams<T>&);
template <typename T>
void reservoir_run_cpu(const ReservoirParams<T>&);
template <typename T>
CharRnnTrainResult char_rnn_train_cpu(const CharRnnTrainParams<T>&);
template <typename T>
index_t char_rnn_workspace_size(int, int, int);
template <typename T>
double readout_xent_cpu(const ReadoutXentParams<T>&);
template <typename T>
void adam_update_cpu(const AdamParams<T>&);
template <typename T>
double sum_squares_cpu(const T*, index_t);
template <typename T>
bool all_finite_cpu(const T*, index_t);
template <typename T>
void hmm_forward_backward_cpu(const HmmForwardBackwardParams<T>&);
template <typename T>
void hmm_viterbi_cpu(const HmmViterbiParams<T>&);
template <typename T>
void kalman_cpu(const KalmanParams<T>&);
template <typename T>
void online_readout_cpu(const OnlineReadoutParams<T>&);
template <typename T>
void ridge_stats_add_cpu(const RidgeStatsParams<T>&);
index_t recurrent_workspace_size(Cell, int, int, int, bool);
index_t mrnn_workspace_size(int, int, int, int, bool, bool);
index_t mrnn_rop_workspace_size(int, int, int, bool);

#define RNNFAST_STR2(x) #x
#define RNNFAST_STR(x) RNNFAST_STR2(x)

template <typename T>
constexpr CpuKernels<T> kernels() {
  return {recurrent_forward_cpu<T>,
          recurrent_backward_cpu<T>,
          mrnn_forward_cpu<T>,
          mrnn_backward_cpu<T>,
          rnn_rop_cpu<T>,
          mrnn_rop_cpu<T>,
          reservoir_run_cpu<T>,
          char_rnn_train_cpu<T>,
          char_rnn_workspace_size<T>,
          readout_xent_cpu<T>,
          adam_update_cpu<T>,
          sum_squares_cpu<T>,
          all_finite_cpu<T>,
          hmm_forward_backward_cpu<T>,
          hmm_viterbi_cpu<T>,
          kalman_cpu<T>,
          online_readout_cpu<T>,
          ridge_stats_add_cpu<T>};
}

extern const CpuEngine kEngine;
constexpr CpuEngine kEngine = {RNNFAST_STR(RNNFAST_TIER), kernels<float>(),    kernels<double>(),
                               recurrent_workspace_size,  mrnn_workspace_size, mrnn_rop_workspace_size};

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
