// parallel.h: a static-partition parallel-for over std::thread.
// Work is cut into fixed chunks by index, never by timing, so results that are written
// per index do not depend on the number of threads.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
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

// Dynamic scheduling over chunks of `chunk` indices (for uneven work); fn(begin, end, worker).
template <class Fn>
void parallel_chunks(int64_t n, int64_t chunk, int threads, Fn&& fn) {
  threads = std::max(1, resolve_threads(threads));
  int64_t nchunks = (n + chunk - 1) / chunk;
  threads = int(std::min<int64_t>(threads, std::max<int64_t>(1, nchunks)));
  if (threads == 1) {
    for (int64_t c = 0; c < nchunks; ++c) fn(c * chunk, std::min(n, (c + 1) * chunk), 0);
    return;
  }
  std::atomic<int64_t> next{0};
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex m;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        for (;;) {
          int64_t c = next.fetch_add(1);
          if (c >= nchunks) break;
          fn(c * chunk, std::min(n, (c + 1) * chunk), t);
        }
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
