// setops.h: operations on sorted, duplicate-free int32 sets.
// Intersections gallop when one side is much smaller; a union of many neighbour slices
// uses per-thread dense marks so it costs O(output log output), not a k-way merge.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "span.h"

namespace kg2tool {

using Set = std::vector<int32_t>;

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

inline bool contains(const Set& s, int32_t v) { return std::binary_search(s.begin(), s.end(), v); }

// Dense membership marks reused across queries by one thread.
struct Marks {
  std::vector<uint8_t> mark;
  void ensure(int32_t n) {
    if (mark.size() < size_t(n)) mark.assign((size_t(n) + 7) & ~size_t(7), 0);
  }
};

// out holds the distinct marked ids (in any order): clears their marks and leaves out
// sorted. When out is dense relative to the id space, scanning the marks in id order
// (8 at a time) is cheaper than sorting.
inline void sort_and_unmark(Marks& marks, Set& out) {
  const size_t n = out.size();
  if (n <= 1) {
    for (int32_t v : out) marks.mark[size_t(v)] = 0;
    return;
  }
  if (n * 64 >= marks.mark.size()) {
    uint8_t* m = marks.mark.data();
    const size_t words = marks.mark.size() / 8;
    out.clear();
    out.resize(n);
    int32_t* o = out.data();
    size_t k = 0, w = 0;
    for (; w + 4 <= words; w += 4) {  // 32 marks at a time; most blocks are empty
      uint64_t x[4];
      std::memcpy(x, m + 8 * w, 32);
      if (!(x[0] | x[1] | x[2] | x[3])) continue;
      for (size_t j = 0; j < 4; ++j)
        for (uint64_t y = x[j]; y; y &= y - 1)  // marks are 0/1: one bit per marked byte
          o[k++] = int32_t(8 * (w + j) + size_t(__builtin_ctzll(y) >> 3));
      std::memset(m + 8 * w, 0, 32);
    }
    for (; w < words; ++w) {
      uint64_t y;
      std::memcpy(&y, m + 8 * w, 8);
      for (; y; y &= y - 1) o[k++] = int32_t(8 * w + size_t(__builtin_ctzll(y) >> 3));
      std::memset(m + 8 * w, 0, 8);
    }
    return;
  }
  for (int32_t v : out) marks.mark[size_t(v)] = 0;
  std::sort(out.begin(), out.end());
}

}  // namespace kg2tool
