// The CPU engine's one threading primitive. A serial call enters no OpenMP construct at all: even a
// `parallel if(false)` region costs ~0.3 us, paid twice per time step at small sizes.
#pragma once

namespace rnnfast {

template <typename F>
void parallel_for(int count, bool parallel, F&& body) {
  if (parallel && count > 1) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < count; ++i) body(i);
  } else {
    for (int i = 0; i < count; ++i) body(i);
  }
}

}  // namespace rnnfast
