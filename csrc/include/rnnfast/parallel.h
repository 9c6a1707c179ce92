// The CPU engine's threading: a small pool of its own (not OpenMP).
//
// Why not OpenMP: libgomp's idle threads spin for a long time after every region (its default policy),
// and on a 2-core machine they then fight NumPy's BLAS threads or another process for the cores
// (slowdowns of an order of magnitude); the passive policy fixes that but costs a futex round trip per region,
// and the policy is process-wide: torch uses the same system libgomp, so setting it for us changes torch.
// This pool's workers, after a job, spin briefly and then poll with sched_yield for ~2 ms before they
// block: they stay awake between the calls of a training loop but give the core to any other runnable
// thread, and they sleep when the engine is idle. Inside a call the threads meet at a spin-then-yield
// barrier.
//
// - parallel_region(max_threads, body): body(thread_index, thread_count, barrier) on up to max_threads
//   threads (the caller is thread 0), for loops that run whole time sequences inside one region.
// - parallel_for(count, parallel, body): body(i) for i < count, split statically.
// - Engine calls made concurrently from several Python threads (the GIL is released) run serially
//   inside: EngineCall counts the calls in flight and only a lone call uses the pool.
// - Thread count: RNNFAST_NUM_THREADS, else the CPUs this process may run on.
//
// The pool, the barrier and the call counter are ISA-free (csrc/cpu/parallel.cpp, compiled once); the two
// templates that run a tier's loop bodies are compiled in each tier's namespace (rnnfast/tier.h).
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>

#include "rnnfast/tier.h"

namespace rnnfast {

// RAII marker around one engine entry point.
std::atomic<int>& engine_calls_in_flight();
struct EngineCall {
  EngineCall();
  ~EngineCall();
  EngineCall(const EngineCall&) = delete;
  EngineCall& operator=(const EngineCall&) = delete;
};
// Whether this call is the only one in flight (and so may use the pool).
bool may_fork();

// A barrier for the threads of one region. It spins briefly (a step's work is microseconds, far below a
// futex round trip) and then yields, so a thread waiting for a descheduled partner hands it the core.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait();

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> gen_{0};
};

// Threads the engine may use (>= 1): RNNFAST_NUM_THREADS, else the CPUs this process may run on, unless
// set_engine_threads changed it (clamped to [1, 255]; above the pool's size, made on first use, the size
// is the limit).
int engine_threads();
void set_engine_threads(int n);

// Runs job(thread_index, thread_count) on `threads` threads of the pool (the caller is index 0) and returns
// when all are done. Falls back to job(0, 1) when the pool is busy or threads <= 1.
void run_on_pool(int threads, const std::function<void(int, int)>& job);

RNNFAST_TIER_BEGIN

template <typename F>
void parallel_region(int max_threads, F&& body) {
  const int want = may_fork() ? std::min(max_threads, engine_threads()) : 1;
  if (want <= 1) {
    SpinBarrier single(1);
    body(0, 1, single);
    return;
  }
  SpinBarrier barrier(want);
  run_on_pool(want, [&](int tid, int nt) {
    if (nt != want) {  // fewer threads than the barrier expects (pool busy or smaller): thread 0 does it all
      if (tid == 0) {
        SpinBarrier single(1);
        body(0, 1, single);
      }
      return;
    }
    body(tid, nt, barrier);
  });
}

template <typename F>
void parallel_for(int count, bool parallel, F&& body) {
  if (!parallel || count <= 1 || !may_fork() || engine_threads() <= 1) {
    for (int i = 0; i < count; ++i) body(i);
    return;
  }
  run_on_pool(std::min(count, engine_threads()), [&](int tid, int nt) {
    const int begin = int(static_cast<long long>(count) * tid / nt);
    const int end = int(static_cast<long long>(count) * (tid + 1) / nt);
    for (int i = begin; i < end; ++i) body(i);
  });
}

RNNFAST_TIER_END

}  // namespace rnnfast
