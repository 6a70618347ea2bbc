// parallel.h: parallel-for over std::thread (static ranges, or dynamic chunks on a pool).
// Work is cut into fixed chunks by index, never by timing, so results that are written
// per index do not depend on the number of threads.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kg2tool {

inline int resolve_threads(int threads) {
  if (threads > 0) return threads;
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : int(hc);
}

// Calls fn(begin, end, worker) on [0, n) split into `threads` contiguous ranges.
template <class Fn>
void parallel_ranges(int64_t n, int threads, Fn&& fn) {
  threads = std::max(1, std::min<int>(resolve_threads(threads), int(std::max<int64_t>(1, n))));
  if (threads == 1) {
    fn(int64_t(0), n, 0);
    return;
  }
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex m;
  for (int t = 0; t < threads; ++t) {
    int64_t b = n * t / threads, e = n * (t + 1) / threads;
    pool.emplace_back([&, b, e, t] {
      try {
        fn(b, e, t);
      } catch (...) {
        std::lock_guard<std::mutex> g(m);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace kg2tool

namespace kg2tool {

// Threads for the length of one call, fed jobs of chunked work. A job's chunks are pulled
// one at a time by the pool's threads (workers 1..n-1) and by the caller (worker 0) while
// it waits for that job, so a caller can queue the next job before it works through the
// results of the last one (the sampler overlaps drawing a batch with de-duplicating the
// one before). Chunks are cut by index: what a chunk computes never depends on who runs it.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

class TaskPool {
 public:
  using Fn = std::function<void(int64_t, int64_t, int)>;  // (begin, end, worker)
  class Job {
   public:
    Job(int64_t n, int64_t chunk, Fn fn)
        : fn_(std::move(fn)), n_(n), chunk_(std::max<int64_t>(1, chunk)),
          nchunks_((n + chunk_ - 1) / chunk_) {}
    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;

   private:
    friend class TaskPool;
    // Runs chunk c, or skips it once the job is cancelled; false when none was left.
    bool run_one(int worker, std::mutex& m) {
      const int64_t c = next_.fetch_add(1);
      if (c >= nchunks_) return false;
      if (!cancel_.load(std::memory_order_relaxed)) {
        try {
          fn_(c * chunk_, std::min(n_, (c + 1) * chunk_), worker);
        } catch (...) {
          std::lock_guard<std::mutex> g(m);
          if (!error_) error_ = std::current_exception();
          cancel_ = true;
        }
      }
      done_.fetch_add(1, std::memory_order_acq_rel);
      return true;
    }
    // Every chunk done and no pool thread still holding the job: safe to destroy.
    bool finished() const {
      return done_.load(std::memory_order_acquire) >= nchunks_ &&
             users_.load(std::memory_order_acquire) == 0;
    }
    bool exhausted() const { return next_.load(std::memory_order_relaxed) >= nchunks_; }
    Fn fn_;
    int64_t n_, chunk_, nchunks_;
    std::atomic<int64_t> next_{0}, done_{0};
    std::atomic<int> users_{0};  // pool threads working on the job (taken under the pool's m_)
    std::atomic<bool> cancel_{false};
    std::exception_ptr error_;
  };

  explicit TaskPool(int threads) {
    for (int w = 1; w < threads; ++w) threads_.emplace_back([this, w] { work(w); });
  }
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;
  ~TaskPool() {
    {
      std::lock_guard<std::mutex> g(m_);
      stop_ = true;
      submitted_.fetch_add(1, std::memory_order_release);
      for (Job* j : queue_) j->cancel_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return int(threads_.size()) + 1; }

  // Queues j (which must outlive its wait() or cancel()).
  void submit(Job& j) {
    if (threads_.empty()) return;  // the caller runs everything in wait()
    {
      std::lock_guard<std::mutex> g(m_);
      queue_.push_back(&j);
      submitted_.fetch_add(1, std::memory_order_release);
    }
    work_cv_.notify_all();
  }
  // Works through j's chunks as worker 0, then waits until the other workers finish
  // theirs; rethrows the first exception a chunk threw.
  void wait(Job& j) {
    while (j.run_one(0, m_)) {
    }
    settle(j);
    if (j.error_) std::rethrow_exception(j.error_);
  }
  // Starts no more of j's chunks and waits for those running.
  void cancel(Job& j) {
    j.cancel_ = true;
    while (j.run_one(0, m_)) {
    }
    settle(j);
  }

 private:
  void settle(Job& j) {
    for (int spin = 0; !j.finished() && spin < (1 << 14); ++spin) cpu_relax();
    if (!j.finished()) {
      std::unique_lock<std::mutex> g(m_);
      done_cv_.wait(g, [&] { return j.finished(); });
    }
    std::lock_guard<std::mutex> g(m_);
    queue_.erase(std::remove(queue_.begin(), queue_.end(), &j), queue_.end());
  }
  // The first queued job with chunks left, or nullptr (under m_).
  Job* pick() {
    for (Job* j : queue_)
      if (!j->exhausted()) return j;
    return nullptr;
  }
  void work(int w) {
    uint64_t seen = 0;  // submissions already looked at
    for (;;) {
      // Waking a sleeping thread takes tens of microseconds (more on a VM, whose idle vCPU
      // halts): spin a while for the next job before sleeping.
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      while (submitted_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < until)
        for (int k = 0; k < 32; ++k) cpu_relax();
      Job* j = nullptr;
      {
        std::unique_lock<std::mutex> g(m_);
        work_cv_.wait(g, [&] { return stop_ || (j = pick()) != nullptr; });
        seen = submitted_.load(std::memory_order_relaxed);
        if (!j) return;
        j->users_.fetch_add(1, std::memory_order_relaxed);
      }
      while (j->run_one(w, m_)) {
      }
      j->users_.fetch_sub(1, std::memory_order_acq_rel);  // the last touch of j
      std::lock_guard<std::mutex> g(m_);  // the waiter checks under m_: no lost wake-up
      done_cv_.notify_all();
    }
  }
  std::vector<std::thread> threads_;
  std::vector<Job*> queue_;
  std::mutex m_;
  std::condition_variable work_cv_, done_cv_;
  std::atomic<uint64_t> submitted_{0};  // jobs submitted (and the stop), for spinning threads
  bool stop_ = false;
  static constexpr int kSpinMicros = 1000;
};

// Dynamic scheduling over chunks of `chunk` indices (for uneven work); fn(begin, end, worker).
template <class Fn>
void parallel_chunks(int64_t n, int64_t chunk, int threads, Fn&& fn) {
  TaskPool::Job job(n, chunk, std::forward<Fn>(fn));
  const int64_t nchunks = (n + std::max<int64_t>(1, chunk) - 1) / std::max<int64_t>(1, chunk);
  TaskPool pool(int(std::min<int64_t>(resolve_threads(threads), std::max<int64_t>(1, nchunks))));
  pool.submit(job);
  pool.wait(job);  // the pool, declared after the job, is stopped before the job goes
}

}  // namespace kg2tool
