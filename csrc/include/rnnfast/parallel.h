// The CPU engine's one threading primitive.
//
// - A serial call enters no OpenMP construct at all: even a `parallel if(false)` region costs ~0.3 us,
//   paid twice per time step at small sizes.
// - Engine calls made concurrently from several Python threads (the GIL is released) run serially
//   inside: each call would otherwise start its own team, oversubscribing the cores with spinning threads.
//   EngineCall counts the calls in flight; parallel_for only forks when it is alone.
#pragma once

#include <atomic>

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

}  // namespace rnnfast
