// A CPU stand-in for <cuda_runtime.h>, for tests only: it lets g++ compile csrc/cuda/*.cu as C++ and run
// the kernels on the host, so their indexing, barriers and orchestration are checked where no GPU exists
// (tests/test_cuda_emulation.py). Each CUDA thread of a block is a fiber (ucontext) on one OS thread.
// __syncthreads waits until every thread of the block is at a __syncthreads; warp shuffles and __syncwarp
// wait until the 32 lanes of the warp are at one; a barrier that some threads can never reach (they exited,
// or wait at the other kind) throws, where the device would hang or be undefined. Blocks run one after
// another; "device memory" is host memory, streams are ignored and every call completes before it returns.
//
// Also emulated, for the tests of the engine's error path and of graph replay:
// * an asynchronous kernel fault (emu::fail_at, set from Python): the kernel runs, then the stream is
//   "broken" as after an illegal address: cudaStreamSynchronize and every later API call return the error,
//   cudaGetLastError only from the next launch on (as on the device, where the fault surfaces once the
//   kernel has run, after its launch has returned), and later kernels do not run;
// * stream capture: between emu::begin_capture and emu::end_capture launches, copies and memsets are
//   recorded (arguments by value, as in a CUDA graph) instead of run; emu::graph_launch replays them;
//   cudaStreamSynchronize fails meanwhile, as on the device.
#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __restrict__
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};

enum cudaError_t { cudaSuccess = 0, cudaErrorIllegalAddress = 700, cudaErrorStreamCaptureUnsupported = 900 };
enum cudaMemcpyKind { cudaMemcpyDeviceToDevice = 3 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1 };
using cudaStream_t = void*;

inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

namespace emu {

enum class Wait { none, block, warp };

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  unsigned tid = 0;
  bool done = false;
  Wait wait = Wait::none;
};

inline ucontext_t scheduler;
inline Fiber* current = nullptr;
inline std::function<void()> body;
inline std::vector<unsigned char> shuffle_buffer;  // 32 lanes x 8 bytes per warp

inline cudaError_t fault = cudaSuccess;  // the stream's sticky error
inline bool fault_seen = false;          // visible to cudaGetLastError (a launch came after the fault)
inline long launches = 0;                // kernels run so far
inline long fail_at = -1;                // the kernel (by that count) that faults
inline bool capturing = false;
inline std::vector<std::function<void()>> recorded;
inline std::vector<std::vector<std::function<void()>>> graphs;

inline void wait_at(Wait w) {
  current->wait = w;
  swapcontext(&current->ctx, &scheduler);
}

inline void trampoline() {
  body();
  current->done = true;
  swapcontext(&current->ctx, &scheduler);
}

[[noreturn]] inline void divergence(const std::string& what) {
  throw std::runtime_error("CUDA emulation: block (" + std::to_string(blockIdx.x) + ", " +
                           std::to_string(blockIdx.y) + "): " + what);
}

// After every runnable fiber has run to a barrier or its end: release the warps whose 32 lanes all wait at
// a warp barrier, else the block if every thread waits at __syncthreads. False when all are done.
inline bool release(std::vector<Fiber>& fibers, unsigned threads) {
  bool released = false, any_done = false, any_waiting = false;
  for (unsigned w0 = 0; w0 < threads; w0 += 32) {
    const unsigned w1 = std::min(threads, w0 + 32);
    unsigned at_warp = 0, done = 0;
    for (unsigned t = w0; t < w1; ++t) {
      at_warp += fibers[t].wait == Wait::warp;
      done += fibers[t].done;
    }
    any_done = any_done || done > 0;
    any_waiting = any_waiting || done < w1 - w0;
    if (at_warp == 0) continue;
    if (at_warp != w1 - w0)
      divergence("warp " + std::to_string(w0 / 32) + ": " + std::to_string(at_warp) + " lanes wait at a shuffle or " +
                 "__syncwarp that the others (exited or at __syncthreads) do not reach");
    for (unsigned t = w0; t < w1; ++t) fibers[t].wait = Wait::none;
    released = true;
  }
  if (released || !any_waiting) return released;
  if (any_done) divergence("__syncthreads that exited threads never reach");
  for (unsigned t = 0; t < threads; ++t) fibers[t].wait = Wait::none;
  return true;
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
        f.wait = Wait::none;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data();
        f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, trampoline, 0);
      }
      do {  // rounds: each runnable fiber runs to its next barrier or its end
        for (unsigned t = 0; t < block.x; ++t) {
          Fiber& f = fibers[t];
          if (f.done || f.wait != Wait::none) continue;
          current = &f;
          threadIdx = {f.tid, 0, 0};
          swapcontext(&scheduler, &f.ctx);
        }
      } while (release(fibers, block.x));
    }
}

// Run `op` now, or record it for a graph while capturing; a broken stream runs nothing more.
inline void enqueue(std::function<void()> op) {
  if (capturing) recorded.push_back(std::move(op));
  else op();
}

template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, const A&... args) {
  enqueue([=]() {
    if (fault != cudaSuccess) {
      fault_seen = true;
      return;
    }
    body = [&]() { kernel(args...); };
    run_grid(grid, block);
    if (launches++ == fail_at) fault = cudaErrorIllegalAddress;
  });
}

inline void begin_capture() {
  recorded.clear();
  capturing = true;
}

inline int end_capture() {
  capturing = false;
  graphs.push_back(std::move(recorded));
  recorded.clear();
  return int(graphs.size()) - 1;
}

inline void graph_launch(int id) {
  for (auto& op : graphs.at(std::size_t(id))) op();
}

inline void reset() {
  fault = cudaSuccess;
  fault_seen = false;
  fail_at = -1;
  capturing = false;
  recorded.clear();
}

}  // namespace emu

inline cudaError_t cudaGetLastError() { return emu::fault_seen ? emu::fault : cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error" : e == cudaErrorIllegalAddress ? "an illegal memory access was encountered"
       : e == cudaErrorStreamCaptureUnsupported ? "operation not permitted when stream is capturing" : "unknown error";
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) {  // as on the device: not while capturing
  return emu::capturing ? cudaErrorStreamCaptureUnsupported : emu::fault;
}
inline cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus* status) {
  *status = emu::capturing ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t n, cudaMemcpyKind, cudaStream_t) {
  if (emu::fault != cudaSuccess) return emu::fault;
  emu::enqueue([=] { std::memmove(dst, src, n); });
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* dst, int v, std::size_t n, cudaStream_t) {
  if (emu::fault != cudaSuccess) return emu::fault;
  emu::enqueue([=] { std::memset(dst, v, n); });
  return cudaSuccess;
}
inline int min(int a, int b) { return a < b ? a : b; }

inline void __syncthreads() { emu::wait_at(emu::Wait::block); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::wait_at(emu::Wait::warp); }

template <typename T>
T __shfl_down_sync(unsigned, T v, int offset) {
  const unsigned lane = threadIdx.x & 31, warp0 = threadIdx.x & ~31u;
  T* buf = reinterpret_cast<T*>(emu::shuffle_buffer.data()) + warp0;
  buf[lane] = v;
  emu::wait_at(emu::Wait::warp);  // every lane of the warp has written
  const T r = lane + offset < 32 ? buf[lane + offset] : v;
  emu::wait_at(emu::Wait::warp);  // every lane has read before the buffer is reused
  return r;
}

#define RNNFAST_LAUNCH(kernel, grid, block, stream, ...) emu::launch(kernel, dim3(grid), dim3(block), __VA_ARGS__)
