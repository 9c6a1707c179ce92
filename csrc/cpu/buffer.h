// Buffers of tier code. `vector<T>` is std::vector with an allocator type of this tier's namespace, so that
// every member function the compiler emits out of line (resize, assign, ...) is this tier's own. A plain
// std::vector<int> would be one function that the linker keeps once for all tiers: possibly the AVX-512
// build's copy, called by the baseline tier on a CPU without AVX-512 (see rnnfast/tier.h).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#if !defined(RNNFAST_TIER)
#error "csrc/cpu/buffer.h is compiled per tier only"
#endif

namespace rnnfast {
namespace RNNFAST_TIER {

template <typename T>
struct TierAllocator {
  using value_type = T;
  TierAllocator() = default;
  template <typename U>
  TierAllocator(const TierAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  template <typename U>
  bool operator==(const TierAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const TierAllocator<U>&) const {
    return false;
  }
};

template <typename T>
using vector = std::vector<T, TierAllocator<T>>;

}  // namespace RNNFAST_TIER
}  // namespace rnnfast
