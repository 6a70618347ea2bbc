// text.cpp: see text.h.
#include "text.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <cerrno>
#include <system_error>

#include <sys/mman.h>
#include <unistd.h>

namespace kg2tool {
namespace text {
namespace {

void check_col(const StrCol& c, const std::string& what) {
  if (c.is_view) {
    if (c.views.size() % 16) throw std::invalid_argument(what + ": views must be 16 bytes each");
    for (size_t j = 0; j < c.size(); ++j) {
      const uint8_t* v = c.views.ptr + 16 * j;
      uint32_t len, b, o;
      std::memcpy(&len, v, 4);
      if (len <= 12) continue;
      std::memcpy(&b, v + 8, 4);
      std::memcpy(&o, v + 12, 4);
      if (b >= c.bufs.size())
        throw std::out_of_range(what + ": view " + std::to_string(j) + " names buffer " +
                                std::to_string(b) + " of " + std::to_string(c.bufs.size()));
      if (uint64_t(o) + len > c.bufs[b].size())
        throw std::out_of_range(what + ": view " + std::to_string(j) + " runs past its buffer");
    }
    return;
  }
  if (c.off.size() == 0) throw std::invalid_argument(what + ": offsets must have at least 1 entry");
  if (c.off[0] < 0) throw std::invalid_argument(what + ": negative first offset");
  for (size_t j = 1; j < c.off.size(); ++j)
    if (c.off[j] < c.off[j - 1]) throw std::invalid_argument(what + ": offsets decrease");
  if (uint64_t(c.off[c.off.size() - 1]) > c.data.size())
    throw std::out_of_range(what + ": offsets run past the end of the data (" +
                            std::to_string(c.off[c.off.size() - 1]) + " > " +
                            std::to_string(c.data.size()) + " bytes)");
}

void check_index(const Span<const int64_t>& idx, size_t m, const std::string& what) {
  for (size_t j = 0; j < idx.size(); ++j)
    if (idx[j] < 0 || uint64_t(idx[j]) >= m)
      throw std::out_of_range(what + ": index " + std::to_string(idx[j]) + " out of range [0, " +
                              std::to_string(m) + ")");
}

// JSON string escaping (orjson's): kEsc[b] is 0 for a byte written verbatim, else the
// character after the backslash ('u' for \u00xx); kExtra[b] the bytes it adds (0, 1 or 5).
struct EscTables {
  uint8_t esc[256];
  uint8_t extra[256];
  EscTables() : esc(), extra() {
    for (int b = 0; b < 0x20; ++b) esc[b] = 'u';
    esc['\b'] = 'b';
    esc['\f'] = 'f';
    esc['\n'] = 'n';
    esc['\r'] = 'r';
    esc['\t'] = 't';
    esc['"'] = '"';
    esc['\\'] = '\\';
    for (int b = 0; b < 256; ++b) extra[b] = esc[b] == 0 ? 0 : esc[b] == 'u' ? 5 : 1;
  }
};
const EscTables kTables;

inline uint64_t load8(const uint8_t* p) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  return x;
}

// Bytes of x equal to c, as 0x80 in each such byte and 0 elsewhere (exact: no borrows).
inline uint64_t eq_mask(uint64_t x, uint8_t c) {
  constexpr uint64_t k7f = 0x7f7f7f7f7f7f7f7full;
  uint64_t y = x ^ (0x0101010101010101ull * c);
  return ~(((y & k7f) + k7f) | y | k7f);
}

// Bytes of x below 0x20 (control characters), 0x80 in each: exact as eq_mask.
inline uint64_t ctl_mask(uint64_t x) {
  constexpr uint64_t k7f = 0x7f7f7f7f7f7f7f7full;
  // (b & 0x7f) + 0x60 sets bit 7 iff (b & 0x7f) >= 0x20; bytes >= 0x80 are never control
  return ~(((x & k7f) + 0x6060606060606060ull) | x | k7f);
}

// Output sinks: Count measures the exact size, Write fills a buffer of that size.
struct Count {
  size_t n = 0;
  void raw(const uint8_t*, size_t len) { n += len; }
  void byte(uint8_t) { ++n; }
  void json(const uint8_t* p, size_t len) {
    size_t extra = 0, k = 0;
    for (; k + 8 <= len; k += 8) {
      uint64_t x = load8(p + k);
      uint64_t ctl = ctl_mask(x);
      if (ctl) {  // rare: control characters take 1 or 5 more bytes
        for (size_t j = k; j < k + 8; ++j) extra += kTables.extra[p[j]];
        continue;
      }
      extra += size_t(__builtin_popcountll(eq_mask(x, '"') | eq_mask(x, '\\')));
    }
    for (; k < len; ++k) extra += kTables.extra[p[k]];
    n += len + 2 + extra;
  }
};

struct Write {
  uint8_t* out;
  void raw(const uint8_t* p, size_t len) {
    if (len) std::memcpy(out, p, len);
    out += len;
  }
  void byte(uint8_t b) { *out++ = b; }
  void put(uint8_t b) {
    static const char* hex = "0123456789abcdef";
    uint8_t e = kTables.esc[b];
    if (!e) {
      *out++ = b;
      return;
    }
    *out++ = '\\';
    *out++ = e;
    if (e == 'u') {
      *out++ = '0';
      *out++ = '0';
      *out++ = uint8_t(hex[b >> 4]);
      *out++ = uint8_t(hex[b & 15]);
    }
  }
  void json(const uint8_t* p, size_t len) {
    *out++ = '"';
    size_t k = 0;
    for (; k + 8 <= len; k += 8) {
      uint64_t x = load8(p + k);
      if (!(ctl_mask(x) | eq_mask(x, '"') | eq_mask(x, '\\'))) {  // 8 verbatim bytes
        std::memcpy(out, &x, 8);
        out += 8;
        continue;
      }
      for (size_t j = k; j < k + 8; ++j) put(p[j]);
    }
    for (; k < len; ++k) put(p[k]);
    *out++ = '"';
  }
};

// The bytes of value j of a checked column.
inline void value_bytes(const StrCol& c, size_t j, const uint8_t*& p, size_t& len) {
  if (c.is_view) {
    const uint8_t* v = c.views.ptr + 16 * j;
    uint32_t n;
    std::memcpy(&n, v, 4);
    len = n;
    if (n <= 12) {
      p = v + 4;
    } else {
      uint32_t b, o;
      std::memcpy(&b, v + 8, 4);
      std::memcpy(&o, v + 12, 4);
      p = c.bufs[b].ptr + o;
    }
  } else {
    p = c.data.ptr + c.off[j];
    len = size_t(c.off[j + 1] - c.off[j]);
  }
}

template <class Sink>
inline void put_value(Sink& s, const StrCol& c, int64_t j, bool escape) {
  const uint8_t* p;
  size_t len;
  value_bytes(c, size_t(j), p, len);
  if (escape)
    s.json(p, len);
  else
    s.raw(p, len);
}

template <class Sink>
void put_int(Sink& s, int64_t v) {
  char buf[24];
  char* e = buf + sizeof(buf);
  char* b = e;
  uint64_t u = v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v);
  do {
    *--b = char('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--b = '-';
  s.raw(reinterpret_cast<const uint8_t*>(b), size_t(e - b));
}

// Row i of the output into the sink.
template <class Sink>
void put_row(Sink& s, size_t i, const std::vector<Part>& parts) {
  for (const Part& pt : parts) {
    const uint8_t* lit = reinterpret_cast<const uint8_t*>(pt.lit.data());
    switch (pt.kind) {
      case PartKind::kLit:
        s.raw(lit, pt.lit.size());
        break;
      case PartKind::kInt:
        put_int(s, pt.ints[i]);
        break;
      case PartKind::kStr:
        put_value(s, pt.col, pt.has_index ? pt.index[i] : int64_t(i), pt.escape);
        break;
      case PartKind::kJoin: {
        int64_t g0 = pt.groups[i], g1 = pt.groups[i + 1];
        for (int64_t j = g0; j < g1; ++j) {
          if (j > g0) s.raw(lit, pt.lit.size());
          put_value(s, pt.col, pt.has_index ? pt.index[size_t(j)] : j, pt.escape);
        }
        if (pt.trailing && g1 > g0) s.raw(lit, pt.lit.size());
        break;
      }
    }
  }
}

}  // namespace

void validate(size_t n, const std::vector<Part>& parts) {
  for (size_t k = 0; k < parts.size(); ++k) {
    const Part& pt = parts[k];
    std::string what = "part " + std::to_string(k);
    switch (pt.kind) {
      case PartKind::kLit:
        break;
      case PartKind::kInt:
        if (pt.ints.size() != n)
          throw std::invalid_argument(what + ": expected " + std::to_string(n) + " integers, got " +
                                      std::to_string(pt.ints.size()));
        break;
      case PartKind::kStr:
        check_col(pt.col, what);
        if (pt.has_index) {
          if (pt.index.size() != n)
            throw std::invalid_argument(what + ": expected an index of " + std::to_string(n) +
                                        " rows, got " + std::to_string(pt.index.size()));
          check_index(pt.index, pt.col.size(), what);
        } else if (pt.col.size() != n) {
          throw std::invalid_argument(what + ": expected " + std::to_string(n) + " strings, got " +
                                      std::to_string(pt.col.size()));
        }
        break;
      case PartKind::kJoin: {
        check_col(pt.col, what);
        if (pt.groups.size() != n + 1)
          throw std::invalid_argument(what + ": expected " + std::to_string(n + 1) +
                                      " group offsets, got " + std::to_string(pt.groups.size()));
        size_t values = pt.has_index ? pt.index.size() : pt.col.size();
        if (pt.groups[0] < 0) throw std::invalid_argument(what + ": negative first group offset");
        for (size_t i = 1; i <= n; ++i)
          if (pt.groups[i] < pt.groups[i - 1])
            throw std::invalid_argument(what + ": group offsets decrease");
        if (uint64_t(pt.groups[n]) > values)
          throw std::out_of_range(what + ": group offsets run past the " + std::to_string(values) +
                                  " values");
        if (pt.has_index) check_index(pt.index, pt.col.size(), what);
        break;
      }
    }
  }
}

namespace {

// Large buffers are anonymous mappings kept in a small per-process pool when released: the
// next shard's columns reuse pages that are already mapped instead of faulting in ~50,000 fresh
// pages per 200 MB (a third of the building time). At most kPoolBytes stay cached.
constexpr size_t kMapMin = size_t(4) << 20;
constexpr size_t kPoolBytes = size_t(384) << 20;

struct Pool {
  std::mutex mu;
  std::vector<std::pair<uint8_t*, size_t>> free;  // (mapping, length)
  size_t bytes = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: buffers may be released at exit
  return *p;
}

}  // namespace

Bytes::Bytes(size_t size) : size_(size) {
  if (size >= kMapMin) {
    size_t len = (size + (size_t(1) << 20) - 1) >> 20 << 20;
    {
      Pool& pl = pool();
      std::lock_guard<std::mutex> lock(pl.mu);
      size_t best = pl.free.size();
      for (size_t k = 0; k < pl.free.size(); ++k)
        if (pl.free[k].second >= len &&
            (best == pl.free.size() || pl.free[k].second < pl.free[best].second))
          best = k;
      if (best < pl.free.size() && pl.free[best].second <= 2 * len) {
        ptr_ = pl.free[best].first;
        mapped_ = pl.free[best].second;
        pl.bytes -= mapped_;
        pl.free.erase(pl.free.begin() + std::ptrdiff_t(best));
        return;
      }
    }
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      ptr_ = static_cast<uint8_t*>(p);
      mapped_ = len;
      return;
    }
  }
  ptr_ = static_cast<uint8_t*>(std::malloc(size ? size : 1));
  if (!ptr_) throw std::bad_alloc();
}

Bytes::~Bytes() {
  if (!mapped_) {
    std::free(ptr_);
    return;
  }
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mu);
  while (!pl.free.empty() && pl.bytes + mapped_ > kPoolBytes) {  // drop the oldest
    munmap(pl.free.front().first, pl.free.front().second);
    pl.bytes -= pl.free.front().second;
    pl.free.erase(pl.free.begin());
  }
  if (mapped_ > kPoolBytes) {
    munmap(ptr_, mapped_);
    return;
  }
  pl.free.emplace_back(ptr_, mapped_);
  pl.bytes += mapped_;
}

size_t write_rows(int fd, size_t n, const std::vector<Part>& parts, const std::string& end) {
  constexpr size_t kChunk = size_t(1) << 20;
  std::vector<uint8_t> buf(kChunk);
  size_t used = 0, total = 0;
  auto flush = [&]() {
    const uint8_t* p = buf.data();
    size_t left = used;
    while (left) {
      ssize_t w = ::write(fd, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "write");
      }
      p += w;
      left -= size_t(w);
    }
    total += used;
    used = 0;
  };
  const uint8_t* e = reinterpret_cast<const uint8_t*>(end.data());
  for (size_t i = 0; i < n; ++i) {
    Count count;
    put_row(count, i, parts);
    size_t need = count.n + end.size();
    if (used + need > buf.size()) {
      flush();
      if (need > buf.size()) buf.resize(need);  // a row longer than the buffer
    }
    Write w{buf.data() + used};
    put_row(w, i, parts);
    w.raw(e, end.size());
    if (size_t(w.out - buf.data()) != used + need) throw std::logic_error("text size mismatch");
    used += need;
  }
  flush();
  return total;
}

void check_column(const StrCol& col, const std::string& what) { check_col(col, what); }

namespace {

inline uint8_t lower(uint8_t b) { return (b >= 'A' && b <= 'Z') ? uint8_t(b + 32) : b; }
inline bool is_word(uint8_t b) {
  return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '\'';
}
// ASCII white space as Unicode's White_Space has it (the regex's \s): \t \n \v \f \r and space
inline bool is_space(uint8_t b) { return b == ' ' || (b >= 0x09 && b <= 0x0d); }

struct Tok {
  size_t start, len;
};

inline bool same(const uint8_t* s, const Tok& a, const Tok& b, size_t cut_a = 0, size_t cut_b = 0) {
  size_t la = a.len - cut_a, lb = b.len - cut_b;
  if (la != lb) return false;
  for (size_t k = 0; k < la; ++k)
    if (lower(s[a.start + k]) != lower(s[b.start + k])) return false;
  return true;
}

inline size_t plural_cut(const uint8_t* s, const Tok& t) {
  return t.len && lower(s[t.start + t.len - 1]) == 's' ? 1 : 0;
}

uint8_t doubled_in(const uint8_t* s, size_t len, std::vector<Tok>& toks) {
  for (size_t k = 0; k < len; ++k)
    if (s[k] >= 0x80) return 2;
  toks.clear();
  size_t i = 0;
  while (i < len) {
    uint8_t c = lower(s[i]);
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (!is_word(c)) {  // one other character
      toks.push_back({i, 1});
      ++i;
      continue;
    }
    size_t j = i;
    while (j < len && is_word(lower(s[j]))) ++j;
    while (j + 1 < len && s[j] == '-' && is_word(lower(s[j + 1]))) {
      ++j;
      while (j < len && is_word(lower(s[j]))) ++j;
    }
    toks.push_back({i, j - i});
    i = j;
  }
  for (size_t k = 0; k + 1 < toks.size(); ++k) {
    const Tok &a = toks[k], &b = toks[k + 1];
    if (same(s, a, b)) return 1;
    size_t ca = plural_cut(s, a), cb = plural_cut(s, b);
    if (a.len - ca >= 4 && same(s, a, b, ca, cb)) return 1;
  }
  for (size_t k = 0; k + 3 < toks.size(); ++k)
    if (same(s, toks[k], toks[k + 2]) && same(s, toks[k + 1], toks[k + 3])) return 1;
  return 0;
}

}  // namespace

std::vector<uint8_t> doubled_words(const StrCol& col) {
  size_t m = col.size();
  std::vector<uint8_t> out(m, 0);
  std::vector<Tok> toks;
  for (size_t j = 0; j < m; ++j) {
    const uint8_t* p;
    size_t len;
    value_bytes(col, j, p, len);
    out[j] = doubled_in(p, len, toks);
  }
  return out;
}

Built concat(size_t n, const std::vector<Part>& parts) {
  Built b;
  b.off.resize(n + 1);
  b.off[0] = 0;
  Count count;
  for (size_t i = 0; i < n; ++i) {
    put_row(count, i, parts);
    b.off[i + 1] = int64_t(count.n);
  }
  b.data = std::make_unique<Bytes>(count.n);
  Write w{b.data->data()};
  for (size_t i = 0; i < n; ++i) put_row(w, i, parts);
  if (size_t(w.out - b.data->data()) != count.n) throw std::logic_error("text size mismatch");
  return b;
}

}  // namespace text
}  // namespace kg2tool
