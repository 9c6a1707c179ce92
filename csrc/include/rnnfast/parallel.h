// The CPU engine's one threading primitive.
//
// - A serial call enters no OpenMP construct at all: even a `parallel if(false)` region costs ~0.3 us,
//   paid twice per time step at small sizes.
// - Engine calls made concurrently from several Python threads (the GIL is released) run serially
//   inside: each call would otherwise start its own team, oversubscribing the cores with spinning threads.
//   EngineCall counts the calls in flight; parallel_for only forks when it is alone.
#pragma once

#include <algorithm>
#include <atomic>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rnnfast {

inline std::atomic<int>& engine_calls_in_flight() {
  static std::atomic<int> count{0};
  return count;
}

// RAII marker around one engine entry point.
struct EngineCall {
  EngineCall() { engine_calls_in_flight().fetch_add(1, std::memory_order_relaxed); }
  ~EngineCall() { engine_calls_in_flight().fetch_sub(1, std::memory_order_relaxed); }
  EngineCall(const EngineCall&) = delete;
  EngineCall& operator=(const EngineCall&) = delete;
};

inline bool may_fork() { return engine_calls_in_flight().load(std::memory_order_relaxed) <= 1; }

template <typename F>
void parallel_for(int count, bool parallel, F&& body) {
  if (parallel && count > 1 && may_fork()) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < count; ++i) body(i);
  } else {
    for (int i = 0; i < count; ++i) body(i);
  }
}

// A barrier for the threads of one parallel region that spans a whole time loop. It spins briefly
// (a step's work is a few microseconds, far below a futex round trip) and then yields, so that a thread
// waiting for a descheduled partner hands it the core instead of burning it.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait() {
    const int gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    for (int spins = 0; gen_.load(std::memory_order_acquire) == gen; ++spins) {
      if (spins < 2000) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> gen_{0};
};

// Runs body(thread_index, thread_count, barrier) on up to max_threads threads (one when another engine
// call is in flight), all entering once for the whole loop the body contains.
template <typename F>
void parallel_region(int max_threads, F&& body) {
#ifdef _OPENMP
  const int want = may_fork() ? std::min(max_threads, omp_get_max_threads()) : 1;
  if (want > 1) {
    SpinBarrier* barrier = nullptr;
#pragma omp parallel num_threads(want)
    {
#pragma omp single
      barrier = new SpinBarrier(omp_get_num_threads());  // the runtime may give fewer than asked
      body(omp_get_thread_num(), omp_get_num_threads(), *barrier);
#pragma omp barrier
#pragma omp single nowait
      delete barrier;
    }
    return;
  }
#endif
  SpinBarrier single(1);
  body(0, 1, single);
}

}  // namespace rnnfast
