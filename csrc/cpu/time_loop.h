// The one time-loop skeleton of the CPU engine: the recurrent (recurrent.cpp), MRNN (mrnn.cpp), R-op
// (rop.cpp) and reservoir (reservoir.cpp) loops plug their step into it.
//
//   time_loop(TimeLoop{steps, reverse, Walk::Forward, threads},
//             [&](const LoopThread& th) { return State{...}; },            // once per thread
//             [&](const LoopThread& th, State& s, int t, int i) { ... });  // once per step, in order
//
// - One parallel region for the whole loop: the threads are woken once per call, not once per step, and
//   meet at th.sync() (a spin-then-yield barrier) between the phases of a step that read what another
//   thread wrote.
// - Direction: step i of the recurrence is time step t = i, or T-1-i when `reverse`. Walk::Forward visits
//   i = 0..T-1 (a forward pass, an R-op); Walk::Backward visits i = T-1..0 (backward through time).
// - Threads: loop_threads(parallel, useful) is 1 unless the loop's own rule says a step is long enough to
//   share (`parallel`, decided from the shapes alone, so the results never depend on the machine), and
//   then the engine's thread count (RNNFAST_NUM_THREADS, else the CPUs this process may run on, see
//   rnnfast/parallel.h) up to `useful`, the most threads the loop's split can give work to. Every split
//   is made so that each product is summed in the same order on any number of threads.
// - The per-thread state (this thread's rows or units, its copies of double-buffer pointers) lives in the
//   State the first function returns, so that nothing a step keeps outlives the region.
#pragma once

#include <algorithm>

#include "rnnfast/common.h"
#include "rnnfast/parallel.h"

namespace rnnfast {
namespace RNNFAST_TIER {
namespace loop {

enum class Walk { Forward, Backward };

struct TimeLoop {
  int steps;
  bool reverse;
  Walk walk;
  int threads;  // from loop_threads
};

// One thread of a time loop's region.
struct LoopThread {
  int tid, nt;
  SpinBarrier& barrier;
  void sync() const { barrier.wait(); }
  // This thread's part [begin, end) of `count` items cut into nt nearly equal parts.
  int begin(int count) const { return int(index_t(count) * tid / nt); }
  int end(int count) const { return int(index_t(count) * (tid + 1) / nt); }
};

// A thread's share of the batch rows, for loops that split the rows evenly.
struct RowShare {
  int n0, n1;
};

inline int loop_threads(bool parallel, int useful) {
  return parallel ? std::max(1, std::min(engine_threads(), useful)) : 1;
}

template <typename Setup, typename Step>
void time_loop(const TimeLoop& loop, Setup&& setup, Step&& step) {
  const int Ts = loop.steps;
  parallel_region(loop.threads, [&](int tid, int nt, SpinBarrier& barrier) {
    const LoopThread th{tid, nt, barrier};
    auto state = setup(th);
    for (int k = 0; k < Ts; ++k) {
      const int i = loop.walk == Walk::Forward ? k : Ts - 1 - k;
      step(th, state, loop.reverse ? Ts - 1 - i : i, i);
    }
  });
}

}  // namespace loop
}  // namespace RNNFAST_TIER
}  // namespace rnnfast
