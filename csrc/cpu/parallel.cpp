// The engine's thread pool (see rnnfast/parallel.h).
#include "rnnfast/parallel.h"

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace rnnfast {

std::atomic<int>& engine_calls_in_flight() {
  static std::atomic<int> count{0};
  return count;
}
EngineCall::EngineCall() { engine_calls_in_flight().fetch_add(1, std::memory_order_relaxed); }
EngineCall::~EngineCall() { engine_calls_in_flight().fetch_sub(1, std::memory_order_relaxed); }
bool may_fork() { return engine_calls_in_flight().load(std::memory_order_relaxed) <= 1; }

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

void SpinBarrier::wait() {
  if (n_ == 1) return;
  const int gen = gen_.load(std::memory_order_acquire);
  if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    count_.store(0, std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_acq_rel);
    return;
  }
  for (int spins = 0; gen_.load(std::memory_order_acquire) == gen; ++spins) {
    if (spins < 4000) cpu_relax();
    else std::this_thread::yield();
  }
}

namespace {

int default_threads() {
  if (const char* env = std::getenv("RNNFAST_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return std::min(n, 255);
  }
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::min(255, std::max(1, CPU_COUNT(&set)));
#endif
  return static_cast<int>(std::min(255u, std::max(1u, std::thread::hardware_concurrency())));
}

class Pool {
 public:
  explicit Pool(int threads) : size_(threads) {
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i] { worker(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1 << 8, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return size_; }

  // Caller holds busy_. Runs job on threads 0..nt-1 (nt <= size), the caller being thread 0.
  void run(int nt, const std::function<void(int, int)>& job) {
    job_ = &job;
    pending_.store(nt - 1, std::memory_order_relaxed);
    {
      // The word carries the job's thread count (low 8 bits) with its sequence number, so a worker acts
      // on the count of the job it saw: one that skipped an earlier job can never read a later job's count
      // (it would then run a job nobody waits for, or run one twice).
      std::lock_guard<std::mutex> lock(mutex_);
      const unsigned long long next = ((generation_.load(std::memory_order_relaxed) >> 8) + 1) << 8;
      generation_.store(next | static_cast<unsigned long long>(nt), std::memory_order_release);
    }
    if (sleeping_.load(std::memory_order_acquire) > 0) wake_.notify_all();
    job(0, nt);
    for (int spins = 0; pending_.load(std::memory_order_acquire) > 0; ++spins) {
      if (spins < 4000) cpu_relax();
      else std::this_thread::yield();
    }
  }

  std::mutex busy_;

 private:
  void worker(int index) {
    unsigned long long seen = 0;
    for (;;) {
      // Wait for the next job: spin, then keep polling with sched_yield for ~2 ms (the next engine call of
      // a training loop comes within that; waking a sleeping thread costs 50-200 us on a virtual machine,
      // more than a small step), then sleep. Yielding hands the core to any other runnable thread.
      unsigned long long gen = generation_.load(std::memory_order_acquire);
      for (int spins = 0; gen == seen && spins < 2000; ++spins) {
        cpu_relax();
        gen = generation_.load(std::memory_order_acquire);
      }
      if (gen == seen) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(2000);
        for (int polls = 0; gen == seen; ++polls) {
          std::this_thread::yield();
          gen = generation_.load(std::memory_order_acquire);
          if ((polls & 63) == 63 && std::chrono::steady_clock::now() > until) break;
        }
      }
      if (gen == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1, std::memory_order_acq_rel);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        sleeping_.fetch_sub(1, std::memory_order_acq_rel);
        gen = generation_.load(std::memory_order_acquire);
      }
      seen = gen;
      if (stop_) return;
      const int nt = static_cast<int>(gen & 0xff);
      if (index < nt) {  // counted in pending_: the caller waits for us, so *job_ is this job and alive
        (*job_)(index, nt);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  const int size_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<unsigned long long> generation_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<int> pending_{0};
  const std::function<void(int, int)>* job_ = nullptr;
  bool stop_ = false;
};

// The pool is created on first use. After fork() the child has none of the parent's threads: it starts
// a new pool (the parent's object is abandoned in the child, not destroyed).
Pool* g_pool = nullptr;
std::mutex g_pool_mutex;
std::once_flag g_atfork_once;

Pool* pool() {
  std::call_once(g_atfork_once, [] {
    pthread_atfork(nullptr, nullptr, [] {
      g_pool = nullptr;
      new (&g_pool_mutex) std::mutex();
    });
  });
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = new Pool(engine_threads());  // lives for the process (threads joined at exit is unsafe)
  return g_pool;
}

}  // namespace

// The limit is read at every call (set_engine_threads may lower it at run time: a search worker that shares
// its machine with others); the pool, made on first use, has the limit of that moment as its size.
std::atomic<int>& thread_limit() {
  static std::atomic<int> n{default_threads()};
  return n;
}

int engine_threads() { return thread_limit().load(std::memory_order_relaxed); }

void set_engine_threads(int n) { thread_limit().store(std::min(255, std::max(1, n)), std::memory_order_relaxed); }

void run_on_pool(int threads, const std::function<void(int, int)>& job) {
  Pool* p = pool();
  const int nt = std::min(threads, p->size());
  if (nt <= 1 || !p->busy_.try_lock()) {
    job(0, 1);
    return;
  }
  p->run(nt, job);
  p->busy_.unlock();
}

}  // namespace rnnfast
