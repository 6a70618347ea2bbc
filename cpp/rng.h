// rng.h: a counter-based random stream. Stream (seed, key, index, attempt) is fixed by
// those numbers alone, so query i comes out the same whichever thread draws it.
#pragma once
#include <cstdint>

namespace kg2tool {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t s[4];
  Rng(uint64_t seed, uint64_t key, uint64_t index, uint64_t attempt) {
    uint64_t x = splitmix64(seed ^ splitmix64(key ^ splitmix64(index ^ splitmix64(attempt))));
    for (auto& v : s) v = x = splitmix64(x);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {  // xoshiro256**
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift with rejection).
  uint64_t below(uint64_t n) {
    __uint128_t m = __uint128_t(next()) * n;
    uint64_t l = uint64_t(m);
    if (l < n) {
      uint64_t t = (0 - n) % n;
      while (l < t) {
        m = __uint128_t(next()) * n;
        l = uint64_t(m);
      }
    }
    return uint64_t(m >> 64);
  }
};

}  // namespace kg2tool
