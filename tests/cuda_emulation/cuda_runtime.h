// A CPU stand-in for <cuda_runtime.h>, for tests only: it lets g++ compile csrc/cuda/*.cu as C++ and run
// the kernels on the host, so their indexing, barriers and orchestration are checked where no GPU exists
// (tests/test_cuda_emulation.py). Each CUDA thread of a block is a fiber (ucontext) on one OS thread;
// __syncthreads and warp shuffles yield to a round-robin scheduler, so every thread of the block reaches
// the barrier before any passes it, as on the device. Blocks run one after another; "device memory" is
// host memory, streams are ignored and every call completes before it returns.
#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __restrict__

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};

enum cudaError_t { cudaSuccess = 0 };
enum cudaMemcpyKind { cudaMemcpyDeviceToDevice = 3 };
using cudaStream_t = void*;
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "no error"; }
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t n, cudaMemcpyKind, cudaStream_t) {
  std::memmove(dst, src, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* dst, int v, std::size_t n, cudaStream_t) {
  std::memset(dst, v, n);
  return cudaSuccess;
}
inline int min(int a, int b) { return a < b ? a : b; }

inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

namespace emu {

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  unsigned tid = 0;
  bool done = false;
};

inline ucontext_t scheduler;
inline Fiber* current = nullptr;
inline std::function<void()> body;
inline std::vector<unsigned char> shuffle_buffer;  // 32 lanes x 8 bytes per warp

inline void yield() { swapcontext(&current->ctx, &scheduler); }

inline void trampoline() {
  body();
  current->done = true;
  swapcontext(&current->ctx, &scheduler);
}

// Run body() as blockDim.x fibers for each block of the grid.
inline void run_grid(dim3 grid, dim3 block) {
  if (block.y != 1 || block.z != 1 || grid.z != 1) throw std::runtime_error("emulation: 1-D blocks only");
  static std::vector<Fiber> fibers;  // kept across launches: allocating stacks dominates otherwise
  if (fibers.size() < block.x) fibers.resize(block.x);
  for (auto& f : fibers)
    if (f.stack.empty()) f.stack.resize(64 * 1024);
  shuffle_buffer.assign(std::size_t(block.x) * 8, 0);
  gridDim = grid;
  blockDim = block;
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      blockIdx = {bx, by, 0};
      for (unsigned t = 0; t < block.x; ++t) {
        Fiber& f = fibers[t];
        f.tid = t;
        f.done = false;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data();
        f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, trampoline, 0);
      }
      for (bool any = true; any;) {  // rounds: each live fiber runs to its next barrier or its end
        any = false;
        for (unsigned t = 0; t < block.x; ++t) {
          Fiber& f = fibers[t];
          if (f.done) continue;
          current = &f;
          threadIdx = {f.tid, 0, 0};
          swapcontext(&scheduler, &f.ctx);
          any = any || !f.done;
        }
      }
    }
}

template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, A&&... args) {
  body = [&]() { kernel(args...); };
  run_grid(grid, block);
}

}  // namespace emu

inline void __syncthreads() { emu::yield(); }

template <typename T>
T __shfl_down_sync(unsigned, T v, int offset) {
  const unsigned lane = threadIdx.x & 31, warp0 = threadIdx.x & ~31u;
  T* buf = reinterpret_cast<T*>(emu::shuffle_buffer.data()) + warp0;
  buf[lane] = v;
  emu::yield();  // every lane of the warp has written
  const T r = lane + offset < 32 ? buf[lane + offset] : v;
  emu::yield();  // every lane has read before the buffer is reused
  return r;
}

#define RNNFAST_LAUNCH(kernel, grid, block, stream, ...) emu::launch(kernel, dim3(grid), dim3(block), __VA_ARGS__)
