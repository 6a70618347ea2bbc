// setops.h: operations on sorted, duplicate-free int32 sets.
// Intersections gallop when one side is much smaller; a union of many neighbour slices
// uses per-thread dense marks so it costs O(output log output), not a k-way merge.
#pragma once
#include <algorithm>
#include <cstdint>
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
  std::set_intersection(a, a + na, b, b + nb, std::back_inserter(out));
}

inline bool contains(const Set& s, int32_t v) { return std::binary_search(s.begin(), s.end(), v); }

// Dense membership marks reused across queries by one thread.
struct Marks {
  std::vector<uint8_t> mark;
  void ensure(int32_t n) {
    if (mark.size() < size_t(n)) mark.assign(size_t(n), 0);
  }
};

}  // namespace kg2tool
