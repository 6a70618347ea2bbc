// setops.h: operations on sorted, duplicate-free int32 sets.
// Intersections gallop when one side is much smaller; a union of many neighbour slices
// uses per-thread dense marks so it costs O(output log output), not a k-way merge.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <sys/mman.h>
#include <mutex>
#include <utility>
#include <vector>

#include "span.h"

namespace kg2tool {

// Anonymous memory with transparent huge pages requested: for big buffers written once,
// faulting them in by 4 KiB pages costs more than the writes. Released with munmap.
// `small_head` bytes at the start keep 4 KiB pages: a buffer that often stays small does
// not fault in (and zero) a whole 2 MiB page for a few ids.
inline void* map_huge(size_t bytes, int extra_flags = 0, size_t small_head = 0) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  if (small_head < bytes) madvise(static_cast<char*>(p) + small_head, bytes - small_head, MADV_HUGEPAGE);
  return p;
}

// An allocator whose resize() leaves new ints uninitialised: big outputs that are filled
// in parallel afterwards are not first zeroed by one thread.
template <class T>
struct UninitAlloc : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAlloc<U>;
  };
  UninitAlloc() = default;
  template <class U>
  UninitAlloc(const UninitAlloc<U>&) {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  // Blocks of kHugeBytes or more come from map_huge (big results are written once).
  static constexpr size_t kHugeBytes = size_t(8) << 20;
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugeBytes) return std::allocator<T>::allocate(n);
    return static_cast<T*>(map_huge(bytes));
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugeBytes) return std::allocator<T>::deallocate(p, n);
    munmap(p, bytes);
  }
};
template <class T>
using RawVector = std::vector<T, UninitAlloc<T>>;
// A set's storage: resize() does not zero what is about to be overwritten.
using Set = RawVector<int32_t>;
using View = Span<const int32_t>;  // a set held elsewhere (a workspace, or a KG slice)
inline View view_of(const Set& s) { return View(s.data(), s.size()); }

// Ids appended by one worker up to a fixed capacity, in one anonymous mapping reserved
// at first use (address space only: pages are faulted in as written, with transparent
// huge pages requested past the first 2 MiB). Never reallocates, so nothing is copied or
// faulted twice as it fills, and worker threads do not grow (and trim) heaps of their own.
// A released buffer that stayed small keeps its mapping, faulted in, for the next one
// (a few are kept per process): a call then starts without page faults.
class IdBuffer {
 public:
  explicit IdBuffer(size_t capacity) : cap_(capacity) {}
  IdBuffer(const IdBuffer&) = delete;
  IdBuffer& operator=(const IdBuffer&) = delete;
  IdBuffer(IdBuffer&& o) noexcept : data_(o.data_), size_(o.size_), high_(o.high_), cap_(o.cap_) {
    o.data_ = nullptr;
  }
  ~IdBuffer() {
    if (!data_) return;
    const size_t used = std::max(high_, size_) * sizeof(int32_t);
    if (!Spare::get().put(data_, cap_, used)) munmap(data_, cap_ * sizeof(int32_t));
  }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }
  const int32_t* data() const { return data_; }
  void clear() {
    high_ = std::max(high_, size_);
    size_ = 0;
  }
  // Appends [b, e); the caller keeps size() + (e - b) <= capacity().
  void append(const int32_t* b, const int32_t* e) {
    if (!data_) {
      data_ = Spare::get().take(cap_);
      if (!data_)
        data_ = static_cast<int32_t*>(map_huge(cap_ * sizeof(int32_t), MAP_NORESERVE, size_t(2) << 20));
    }
    std::memcpy(data_ + size_, b, size_t(e - b) * sizeof(int32_t));
    size_ += size_t(e - b);
  }

 private:
  // Released mappings of at most kKeptBytes written, at most kKept of them.
  class Spare {
   public:
    static Spare& get() {
      static Spare* s = new Spare;  // never destroyed: buffers may outlive static teardown
      return *s;
    }
    int32_t* take(size_t cap) {
      std::lock_guard<std::mutex> g(m_);
      for (size_t i = 0; i < kept_.size(); ++i)
        if (kept_[i].second == cap) {
          int32_t* p = kept_[i].first;
          kept_.erase(kept_.begin() + std::ptrdiff_t(i));
          return p;
        }
      return nullptr;
    }
    bool put(int32_t* p, size_t cap, size_t used_bytes) {
      if (used_bytes > kKeptBytes) return false;
      std::lock_guard<std::mutex> g(m_);
      if (kept_.size() >= kKept) return false;
      kept_.emplace_back(p, cap);
      return true;
    }

   private:
    static constexpr size_t kKept = 8, kKeptBytes = size_t(8) << 20;  // <= 64 MB held
    std::mutex m_;
    std::vector<std::pair<int32_t*, size_t>> kept_;
  };
  int32_t* data_ = nullptr;
  size_t size_ = 0, high_ = 0;  // high_: the most ids held before a clear()
  size_t cap_;
};

inline void intersect_into(const int32_t* a, size_t na, const int32_t* b, size_t nb, Set& out) {
  out.clear();
  if (na > nb) {
    std::swap(a, b);
    std::swap(na, nb);
  }
  if (na == 0) return;
  if (nb > 16 * na) {  // gallop: binary search each element of the small side
    const int32_t* lo = b;
    const int32_t* end = b + nb;
    for (size_t i = 0; i < na && lo < end; ++i) {
      lo = std::lower_bound(lo, end, a[i]);
      if (lo < end && *lo == a[i]) out.push_back(a[i]);
    }
    return;
  }
  // Branchless merge: the comparisons of random ids mispredict half the time.
  out.resize(na);
  int32_t* o = out.data();
  size_t i = 0, j = 0, k = 0;
  while (i < na && j < nb) {
    const int32_t x = a[i], y = b[j];
    o[k] = x;
    k += size_t(x == y);
    i += size_t(x <= y);
    j += size_t(y <= x);
  }
  out.resize(k);
}

// out = a \ b (sorted). Branchless merge for similar sizes; when one side is much
// smaller, binary searches: each element of a small a is looked up in b, or each element
// of a small b cuts a out of a large a (the runs between are copied whole).
inline void difference_into(const int32_t* a, size_t na, const int32_t* b, size_t nb, Set& out) {
  out.clear();
  if (na == 0) return;
  if (nb == 0) {
    out.assign(a, a + na);
    return;
  }
  if (nb > 16 * na) {
    const int32_t* lo = b;
    const int32_t* end = b + nb;
    for (size_t i = 0; i < na; ++i) {
      lo = std::lower_bound(lo, end, a[i]);
      if (lo == end || *lo != a[i]) out.push_back(a[i]);
    }
    return;
  }
  out.resize(na);
  int32_t* o = out.data();
  size_t k = 0;
  if (na > 16 * nb) {
    const int32_t* from = a;
    const int32_t* end = a + na;
    for (size_t j = 0; j < nb && from < end; ++j) {
      const int32_t* at = std::lower_bound(from, end, b[j]);
      std::memcpy(o + k, from, size_t(at - from) * sizeof(int32_t));
      k += size_t(at - from);
      from = at < end && *at == b[j] ? at + 1 : at;
    }
    std::memcpy(o + k, from, size_t(end - from) * sizeof(int32_t));
    k += size_t(end - from);
    out.resize(k);
    return;
  }
  size_t i = 0, j = 0;
  while (i < na && j < nb) {
    const int32_t x = a[i], y = b[j];
    o[k] = x;
    k += size_t(x < y);
    i += size_t(x <= y);
    j += size_t(y <= x);
  }
  while (i < na) o[k++] = a[i++];
  out.resize(k);
}

// True when |a ∩ b| > limit; stops as soon as it is (counts, writes nothing).
inline bool intersection_exceeds(const int32_t* a, size_t na, const int32_t* b, size_t nb,
                                 size_t limit) {
  if (na > nb) {
    std::swap(a, b);
    std::swap(na, nb);
  }
  if (na <= limit) return false;
  size_t k = 0;
  if (nb > 16 * na) {
    const int32_t* lo = b;
    const int32_t* end = b + nb;
    for (size_t i = 0; i < na && lo < end; ++i) {
      lo = std::lower_bound(lo, end, a[i]);
      if (lo < end && *lo == a[i] && ++k > limit) return true;
    }
    return false;
  }
  size_t i = 0, j = 0;
  while (i < na && j < nb) {
    const int32_t x = a[i], y = b[j];
    k += size_t(x == y);
    i += size_t(x <= y);
    j += size_t(y <= x);
    if (k > limit) return true;
  }
  return false;
}

// First position of a sorted range whose value is >= v (branchless binary search).
inline const int32_t* lower_bound_bl(const int32_t* b, const int32_t* e, int32_t v) {
  size_t n = size_t(e - b);
  if (n == 0) return b;
  while (n > 1) {
    const size_t half = n / 2;
    b = b[half - 1] < v ? b + half : b;
    n -= half;
  }
  return b + size_t(*b < v);
}

inline bool contains(View s, int32_t v) {
  const int32_t* it = lower_bound_bl(s.begin(), s.end(), v);
  return it != s.end() && *it == v;
}
inline bool equal(View a, View b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

// Dense membership marks reused across queries by one thread: one bit per entity, so
// turning marks back into a sorted set scans N/64 words (cache-resident for N up to a
// few million) instead of N bytes.
struct Marks {
  std::vector<uint64_t> bits;
  void ensure(int32_t n) {
    const size_t words = ((size_t(n) + 255) / 256) * 4;  // whole 256-bit blocks
    if (bits.size() < words) bits.assign(words, 0);
  }
  // Marks v; true when it was not marked before.
  bool insert(int32_t v) {
    uint64_t& w = bits[size_t(v) >> 6];
    const uint64_t b = uint64_t(1) << (uint32_t(v) & 63);
    const bool fresh = !(w & b);
    w |= b;
    return fresh;
  }
  void set(int32_t v) { bits[size_t(v) >> 6] |= uint64_t(1) << (uint32_t(v) & 63); }
  bool test(int32_t v) const { return (bits[size_t(v) >> 6] >> (uint32_t(v) & 63)) & 1; }
  void erase(int32_t v) { bits[size_t(v) >> 6] &= ~(uint64_t(1) << (uint32_t(v) & 63)); }
};

// out = the marked ids, sorted (at most `upper` of them); clears the marks.
inline void collect_and_unmark(Marks& marks, Set& out, size_t upper) {
  out.resize(upper);
  uint64_t* m = marks.bits.data();
  int32_t* o = out.data();
  size_t k = 0;
  const size_t words = marks.bits.size();
  for (size_t w = 0; w < words; w += 4) {  // most 256-bit blocks are empty
    if (!(m[w] | m[w + 1] | m[w + 2] | m[w + 3])) continue;
    for (size_t j = w; j < w + 4; ++j) {
      for (uint64_t y = m[j]; y; y &= y - 1) o[k++] = int32_t(64 * j + size_t(__builtin_ctzll(y)));
      m[j] = 0;
    }
  }
  out.resize(k);
}

// out holds the distinct marked ids (in any order): clears their marks and leaves out
// sorted. When out is dense relative to the id space, scanning the mark words in id order
// is cheaper than sorting.
inline void sort_and_unmark(Marks& marks, Set& out) {
  const size_t n = out.size();
  if (n <= 1) {
    for (int32_t v : out) marks.erase(v);
    return;
  }
  const size_t words = marks.bits.size();
  // Scanning costs ~1 cycle a word, sorting ~5 cycles per element and level.
  const size_t levels = size_t(64 - __builtin_clzll(uint64_t(n)));
  if (n * levels * 5 >= words) {
    collect_and_unmark(marks, out, n);
    return;
  }
  for (int32_t v : out) marks.erase(v);
  std::sort(out.begin(), out.end());
}

// Sorted union of two sorted sets.
inline void union_into(const int32_t* a, size_t na, const int32_t* b, size_t nb, Set& out) {
  out.resize(na + nb);
  int32_t* o = out.data();
  size_t i = 0, j = 0, k = 0;
  while (i < na && j < nb) {  // branchless: advance the side(s) holding the minimum
    const int32_t x = a[i], y = b[j];
    o[k++] = x < y ? x : y;
    i += size_t(x <= y);
    j += size_t(y <= x);
  }
  while (i < na) o[k++] = a[i++];
  while (j < nb) o[k++] = b[j++];
  out.resize(k);
}

}  // namespace kg2tool
