// The CPU engine's public entry points, dispatched to the tier chosen once per process (see
// rnnfast/cpu_engine.h). ISA-free: compiled once, with the module's baseline flags.
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <cblas.h>

#include "rnnfast/cpu_engine.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define RNNFAST_X86 1
#endif

namespace rnnfast {

// Each tier's table (csrc/cpu/engine_table.cpp compiled in that tier's namespace).
#define RNNFAST_DECLARE_TIER(name) \
  namespace name {                 \
  extern const CpuEngine kEngine;  \
  }
#ifdef RNNFAST_HAS_TIER_baseline
RNNFAST_DECLARE_TIER(baseline)
#endif
#ifdef RNNFAST_HAS_TIER_avx2
RNNFAST_DECLARE_TIER(avx2)
#endif
#ifdef RNNFAST_HAS_TIER_avx512
RNNFAST_DECLARE_TIER(avx512)
#endif
#ifdef RNNFAST_HAS_TIER_neon
RNNFAST_DECLARE_TIER(neon)
#endif
#ifdef RNNFAST_HAS_TIER_generic
RNNFAST_DECLARE_TIER(generic)
#endif

namespace {

// ---- what the CPU can run ----------------------------------------------------------------------------
struct Features {
  std::vector<std::string> names;  // for build_info
  bool v2 = false;                 // x86-64-v2: SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CMPXCHG16B
  bool v3 = false;  // x86-64-v3: + AVX, AVX2, FMA, BMI1, BMI2, F16C, LZCNT, MOVBE (and the OS saves ymm)
  bool v4 = false;  // x86-64-v4: + AVX-512 F, BW, CD, DQ, VL (and the OS saves zmm and k)
};

Features detect() {
  Features f;
#if defined(RNNFAST_X86)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const auto bit = [](unsigned r, int i) { return ((r >> i) & 1u) != 0; };
  const bool sse3 = bit(c, 0), ssse3 = bit(c, 9), fma = bit(c, 12), cx16 = bit(c, 13), sse41 = bit(c, 19),
             sse42 = bit(c, 20), movbe = bit(c, 22), popcnt = bit(c, 23), osxsave = bit(c, 27), avx = bit(c, 28),
             f16c = bit(c, 29);
  // XCR0: which register state the OS saves on a context switch (AVX needs xmm+ymm, AVX-512 also k, zmm)
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  const bool os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = (xcr0 & 0xe6) == 0xe6;
  bool bmi1 = false, avx2 = false, bmi2 = false, a512f = false, dq = false, cd = false, bw = false, vl = false;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    bmi1 = bit(b, 3);
    avx2 = bit(b, 5);
    bmi2 = bit(b, 8);
    a512f = bit(b, 16);
    dq = bit(b, 17);
    cd = bit(b, 28);
    bw = bit(b, 30);
    vl = bit(b, 31);
  }
  bool lzcnt = false;
  if (__get_cpuid(0x80000001, &a, &b, &c, &d)) lzcnt = bit(c, 5);
  const std::pair<const char*, bool> named[] = {{"sse4.2", sse42},
                                                {"popcnt", popcnt},
                                                {"avx", avx && os_ymm},
                                                {"avx2", avx2 && os_ymm},
                                                {"fma", fma && os_ymm},
                                                {"bmi2", bmi2},
                                                {"avx512f", a512f && os_zmm},
                                                {"avx512bw", bw && os_zmm},
                                                {"avx512dq", dq && os_zmm},
                                                {"avx512vl", vl && os_zmm}};
  for (const auto& [name, has] : named)
    if (has) f.names.push_back(name);
  f.v2 = sse3 && ssse3 && sse41 && sse42 && popcnt && cx16;
  f.v3 = f.v2 && os_ymm && avx && avx2 && fma && bmi1 && bmi2 && f16c && lzcnt && movbe;
  f.v4 = f.v3 && os_zmm && a512f && bw && cd && dq && vl;
#endif
  return f;
}

struct Tier {
  const char* name;
  const CpuEngine* engine;  // nullptr: not compiled in this build
  int level;  // x86: 2, 3, 4 (x86-64-v2 .. v4); other targets: 0 (always runs)
};

// Every tier of the target, lowest first.
std::vector<Tier> all_tiers() {
  std::vector<Tier> t;
#if defined(__x86_64__) || defined(__i386__)
  t.push_back({"baseline", nullptr, 2});
  t.push_back({"avx2", nullptr, 3});
  t.push_back({"avx512", nullptr, 4});
#ifdef RNNFAST_HAS_TIER_baseline
  t[0].engine = &baseline::kEngine;
#endif
#ifdef RNNFAST_HAS_TIER_avx2
  t[1].engine = &avx2::kEngine;
#endif
#ifdef RNNFAST_HAS_TIER_avx512
  t[2].engine = &avx512::kEngine;
#endif
#elif defined(__aarch64__)
  t.push_back({"neon", nullptr, 0});
#ifdef RNNFAST_HAS_TIER_neon
  t[0].engine = &neon::kEngine;
#endif
#else
  t.push_back({"generic", nullptr, 0});
#ifdef RNNFAST_HAS_TIER_generic
  t[0].engine = &generic::kEngine;
#endif
#endif
  return t;
}

// The highest x86-64 level this CPU runs, lowered by RNNFAST_CPU_ISA_MAX=<tier> (to keep the engine below
// a tier, e.g. to compare tiers on one machine).
int cpu_level(std::string* limited_by) {
  const Features f = detect();
  int level = f.v4 ? 4 : f.v3 ? 3 : f.v2 ? 2 : 1;
  const char* cap = std::getenv("RNNFAST_CPU_ISA_MAX");
  if (cap && *cap) {
    bool known = false;
    std::string names;
    for (const Tier& t : all_tiers()) {
      names += (names.empty() ? "" : ", ") + std::string(t.name);
      if (t.name != std::string(cap)) continue;
      known = true;
      if (t.level < level) {
        level = t.level;
        if (limited_by) *limited_by = std::string(" (limited to ") + cap + " by RNNFAST_CPU_ISA_MAX)";
      }
    }
    if (!known)
      throw std::runtime_error(std::string("RNNFAST_CPU_ISA_MAX=") + cap + ": unknown tier (expected one of " + names +
                               ")");
  }
  return level;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

const CpuEngine& choose() {
  std::string limited;
  const int level = cpu_level(&limited);
  const char* want = std::getenv("RNNFAST_CPU_ISA");
  const std::vector<Tier> tiers = all_tiers();
  std::vector<std::string> names;
  for (const Tier& t : tiers) names.push_back(t.name);
  if (want && *want) {
    for (const Tier& t : tiers) {
      if (t.name != std::string(want)) continue;
      if (!t.engine)
        throw std::runtime_error(std::string("RNNFAST_CPU_ISA=") + want +
                                 ": this build of rnnfast does not include that tier "
                                 "(compiled: " +
                                 joined(cpu_tiers_compiled()) + ")");
      if (t.level > level)
        throw std::runtime_error(std::string("RNNFAST_CPU_ISA=") + want + ": this CPU cannot run that tier" + limited +
                                 " (supported: " + joined(cpu_tiers_supported()) + ")");
      return *t.engine;
    }
    throw std::runtime_error(std::string("RNNFAST_CPU_ISA=") + want + ": unknown tier (expected one of " +
                             joined(names) + ")");
  }
  for (auto it = tiers.rbegin(); it != tiers.rend(); ++it)
    if (it->engine && it->level <= level) return *it->engine;
  throw std::runtime_error("rnnfast: this CPU runs none of the compiled CPU tiers (" + joined(cpu_tiers_compiled()) +
                           "); the x86-64 build needs SSE4.2 and POPCNT (x86-64-v2)");
}

template <typename T>
const CpuKernels<T>& kernels() {
  if constexpr (sizeof(T) == 4) return cpu_engine().f32;
  else return cpu_engine().f64;
}

}  // namespace

const CpuEngine& cpu_engine() {
  static const CpuEngine& engine = choose();
  return engine;
}

std::vector<std::string> cpu_tiers_compiled() {
  std::vector<std::string> out;
  for (const Tier& t : all_tiers())
    if (t.engine) out.push_back(t.name);
  return out;
}

std::vector<std::string> cpu_tiers_supported() {
  const int level = cpu_level(nullptr);
  std::vector<std::string> out;
  for (const Tier& t : all_tiers())
    if (t.engine && t.level <= level) out.push_back(t.name);
  return out;
}

std::string cpu_features() {
  std::string s;
#if defined(__x86_64__)
  s = "x86-64:";
#elif defined(__aarch64__)
  s = "aarch64: neon";
#else
  s = "other:";
#endif
  for (const auto& n : detect().names) s += " " + n;
  return s;
}

const char* blas_core_name() { return scipy_openblas_get_corename(); }
void blas_single_threaded() { scipy_openblas_set_num_threads(1); }

// ---- the public entry points ---------------------------------------------------------------------------
template <typename T>
void recurrent_forward_cpu(const RecurrentForwardParams<T>& p) {
  kernels<T>().recurrent_forward(p);
}
template <typename T>
void recurrent_backward_cpu(const RecurrentBackwardParams<T>& p) {
  kernels<T>().recurrent_backward(p);
}
template <typename T>
void mrnn_forward_cpu(const MrnnForwardParams<T>& p) {
  kernels<T>().mrnn_forward(p);
}
template <typename T>
void mrnn_backward_cpu(const MrnnBackwardParams<T>& p) {
  kernels<T>().mrnn_backward(p);
}
template <typename T>
void rnn_rop_cpu(const RnnRopParams<T>& p) {
  kernels<T>().rnn_rop(p);
}
template <typename T>
void mrnn_rop_cpu(const MrnnRopParams<T>& p) {
  kernels<T>().mrnn_rop(p);
}
template <typename T>
void reservoir_run_cpu(const ReservoirParams<T>& p) {
  kernels<T>().reservoir_run(p);
}
template <typename T>
CharRnnTrainResult char_rnn_train_cpu(const CharRnnTrainParams<T>& p) {
  return kernels<T>().char_rnn_train(p);
}
template <typename T>
index_t char_rnn_workspace_size(int vocab, int hidden, int seq_len) {
  return kernels<T>().char_rnn_workspace_size(vocab, hidden, seq_len);
}
template <typename T>
double readout_xent_cpu(const ReadoutXentParams<T>& p) {
  return kernels<T>().readout_xent(p);
}
template <typename T>
void adam_update_cpu(const AdamParams<T>& a) {
  kernels<T>().adam_update(a);
}
template <typename T>
double sum_squares_cpu(const T* g, index_t n) {
  return kernels<T>().sum_squares(g, n);
}
template <typename T>
bool all_finite_cpu(const T* g, index_t n) {
  return kernels<T>().all_finite(g, n);
}
template <typename T>
void hmm_forward_backward_cpu(const HmmForwardBackwardParams<T>& p) {
  kernels<T>().hmm_forward_backward(p);
}
template <typename T>
void hmm_viterbi_cpu(const HmmViterbiParams<T>& p) {
  kernels<T>().hmm_viterbi(p);
}
template <typename T>
void kalman_cpu(const KalmanParams<T>& p) {
  kernels<T>().kalman(p);
}
template <typename T>
void online_readout_cpu(const OnlineReadoutParams<T>& p) {
  kernels<T>().online_readout(p);
}
template <typename T>
void ridge_stats_add_cpu(const RidgeStatsParams<T>& p) {
  kernels<T>().ridge_stats_add(p);
}

index_t recurrent_workspace_size(Cell cell, int steps, int batch, int hidden, bool backward) {
  return cpu_engine().recurrent_workspace_size(cell, steps, batch, hidden, backward);
}
index_t mrnn_workspace_size(int steps, int batch, int hidden, int factors, bool training, bool backward) {
  return cpu_engine().mrnn_workspace_size(steps, batch, hidden, factors, training, backward);
}
index_t mrnn_rop_workspace_size(int steps, int batch, int factors, bool have_factors) {
  return cpu_engine().mrnn_rop_workspace_size(steps, batch, factors, have_factors);
}

#define RNNFAST_INSTANTIATE(T)                                                     \
  template void recurrent_forward_cpu<T>(const RecurrentForwardParams<T>&);        \
  template void recurrent_backward_cpu<T>(const RecurrentBackwardParams<T>&);      \
  template void mrnn_forward_cpu<T>(const MrnnForwardParams<T>&);                  \
  template void mrnn_backward_cpu<T>(const MrnnBackwardParams<T>&);                \
  template void rnn_rop_cpu<T>(const RnnRopParams<T>&);                            \
  template void mrnn_rop_cpu<T>(const MrnnRopParams<T>&);                          \
  template void reservoir_run_cpu<T>(const ReservoirParams<T>&);                   \
  template CharRnnTrainResult char_rnn_train_cpu<T>(const CharRnnTrainParams<T>&); \
  template index_t char_rnn_workspace_size<T>(int, int, int);                      \
  template double readout_xent_cpu<T>(const ReadoutXentParams<T>&);                \
  template void adam_update_cpu<T>(const AdamParams<T>&);                          \
  template double sum_squares_cpu<T>(const T*, index_t);                           \
  template bool all_finite_cpu<T>(const T*, index_t);                              \
  template void hmm_forward_backward_cpu<T>(const HmmForwardBackwardParams<T>&);   \
  template void hmm_viterbi_cpu<T>(const HmmViterbiParams<T>&);                    \
  template void kalman_cpu<T>(const KalmanParams<T>&);                             \
  template void online_readout_cpu<T>(const OnlineReadoutParams<T>&);              \
  template void ridge_stats_add_cpu<T>(const RidgeStatsParams<T>&);
RNNFAST_INSTANTIATE(float)
RNNFAST_INSTANTIATE(double)

}  // namespace rnnfast
