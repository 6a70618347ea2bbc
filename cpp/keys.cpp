// keys.cpp: see keys.h.
#include "keys.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

#include <sys/mman.h>

#include "parallel.h"

namespace kg2tool {
namespace keys {
namespace {

constexpr size_t kBlock = size_t(1) << 24;  // bytes read per block
constexpr int64_t kMaxKeys = std::numeric_limits<int32_t>::max();

inline uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t(n) * 0xFF51AFD7ED558CCDULL);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  if (n) std::memcpy(&w, p, n);
  h = (h ^ w) * 0x94D049BB133111EBULL;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ULL;
  return h ^ (h >> 32);
}

// Open addressing (linear probing) from key bytes to a provisional id (order of first
// appearance); owns a copy of every distinct key in one arena. A slot holds the key's
// length and hash tag, and the key itself when it fits in 8 bytes (Wikidata's Q-ids do),
// else its arena offset: a probe that hits usually touches one cache line.
class KeyMap {
 public:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  static constexpr size_t kMaxLen = 0xFFFF;

  KeyMap() : slots_(size_t(1) << 12), mask_((size_t(1) << 12) - 1) {}

  size_t slot_of(uint64_t h) const { return size_t(h) & mask_; }
  const void* slot_address(uint64_t h) const { return &slots_[slot_of(h)]; }

  // The id of `key` (hash `h`), inserting it; -1 when there are more keys than int32 ids.
  int32_t id(const char* key, size_t len, uint64_t h) {
    uint32_t meta = uint32_t(len << 16) | uint32_t(h >> 48);
    uint64_t word = 0;
    if (len <= 8) std::memcpy(&word, key, len);
    size_t i = slot_of(h);
    while (true) {
      const Slot& s = slots_[i];
      if (s.id == kEmpty) break;
      if (s.meta == meta) {
        if (len <= 8 ? s.word == word
                     : std::memcmp(arena_.data() + s.word, key, len) == 0)
          return int32_t(s.id);
      }
      i = (i + 1) & mask_;
    }
    if (int64_t(offsets_.size() - 1) >= kMaxKeys) return -1;
    uint32_t id = uint32_t(offsets_.size() - 1);
    uint64_t at = uint64_t(arena_.size());
    arena_.insert(arena_.end(), reinterpret_cast<const uint8_t*>(key),
                  reinterpret_cast<const uint8_t*>(key) + len);
    offsets_.push_back(int64_t(arena_.size()));
    slots_[i] = Slot{len <= 8 ? word : at, id, meta};
    if (size() * 2 > slots_.size()) grow();
    return int32_t(id);
  }

  size_t size() const { return offsets_.size() - 1; }
  size_t arena_bytes() const { return arena_.size(); }
  std::string_view key(size_t id) const {
    return std::string_view(reinterpret_cast<const char*>(arena_.data()) + offsets_[id],
                            size_t(offsets_[id + 1] - offsets_[id]));
  }

  // (first 8 bytes big-endian, id) of every key, sorted by key: the prefix decides almost
  // every comparison from contiguous memory; only equal prefixes look at the whole keys.
  std::vector<std::pair<uint64_t, int32_t>> sorted_keys() const {
    size_t k = size();
    std::vector<std::pair<uint64_t, int32_t>> order(k);
    for (size_t i = 0; i < k; ++i) order[i] = {prefix(key(i)), int32_t(i)};
    std::sort(order.begin(), order.end(), [this](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first < b.first;
      return key(size_t(a.second)) < key(size_t(b.second));
    });
    return order;
  }

  static uint64_t prefix(std::string_view s) {
    uint64_t w = 0;
    for (size_t j = 0; j < 8; ++j)
      w = (w << 8) | (j < s.size() ? uint64_t(static_cast<unsigned char>(s[j])) : 0);
    return w;
  }

  void release() {  // the table is not needed once the keys are sorted
    std::vector<Slot>().swap(slots_);
  }

 private:
  struct Slot {
    uint64_t word = 0;     // the key (<= 8 bytes) or its arena offset
    uint32_t id = kEmpty;
    uint32_t meta = 0;     // length << 16 | top 16 bits of the hash
  };

  void grow() {
    std::vector<Slot> bigger(slots_.size() * 2);
    advise_huge(bigger);
    size_t mask = bigger.size() - 1;
    for (const Slot& s : slots_) {
      if (s.id == kEmpty) continue;
      std::string_view k = key(s.id);
      size_t i = size_t(hash_bytes(k.data(), k.size())) & mask;
      while (bigger[i].id != kEmpty) i = (i + 1) & mask;
      bigger[i] = s;
    }
    slots_.swap(bigger);
    mask_ = mask;
  }

  template <class V>
  static void advise_huge(V& v) {
#ifdef MADV_HUGEPAGE
    // a large table is probed at random: huge pages spare most TLB misses (a hint only)
    size_t bytes = v.size() * sizeof(typename V::value_type);
    if (bytes >= (size_t(1) << 22)) {
      uintptr_t b = (reinterpret_cast<uintptr_t>(v.data()) + 4095) & ~uintptr_t(4095);
      uintptr_t e = (reinterpret_cast<uintptr_t>(v.data()) + bytes) & ~uintptr_t(4095);
      if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
    }
#endif
  }

  std::vector<Slot> slots_;
  size_t mask_;
  std::vector<int64_t> offsets_{0};
  std::vector<uint8_t> arena_;
};

// Length of the valid UTF-8 prefix check: true when [p, p+n) is well-formed UTF-8.
bool valid_utf8(const unsigned char* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t j = 1; j < len; ++j) {
      if ((p[i + j] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + j] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};

// One contiguous byte range of the file, parsed by one thread with its own key tables.
struct Part {
  KeyMap entities, relations;
  std::vector<int32_t> heads, relations_col, tails;
  bool ok = true;
  std::string reason;
  int64_t line = 0;  // lines read (on failure: the failing line, counted from the range)
};

// Parse [begin, end) of `path` (end < 0: to the end of the file); `begin` is a line start.
void parse_range(const std::string& path, int64_t begin, int64_t end, int64_t file_bytes,
                 Part& part) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  if (std::fseek(file.get(), long(begin), SEEK_SET) != 0)
    throw std::runtime_error(path + ": cannot seek: " + std::strerror(errno));
  int64_t left = end < 0 ? std::numeric_limits<int64_t>::max() : end - begin;
  int64_t span = (end < 0 ? file_bytes : end) - begin;
  bool reserved = false;
  std::vector<char> buf;
  size_t carry = 0;
  bool eof = false;
  auto fail = [&](const char* why) {
    part.ok = false;
    part.reason = why;
  };
  // Lines are parsed in batches: hash the keys of a batch, prefetch their slots, then look
  // them up, so the table's cache misses overlap instead of queueing one after another.
  constexpr int kBatch = 32;
  struct Fields {
    const char* p[3];
    size_t n[3];
    uint64_t h[3];
  };
  Fields batch[kBatch];
  int nb = 0;
  auto flush = [&]() -> bool {
    for (int b = 0; b < nb; ++b) {
      __builtin_prefetch(part.entities.slot_address(batch[b].h[0]));
      __builtin_prefetch(part.entities.slot_address(batch[b].h[2]));
    }
    for (int b = 0; b < nb; ++b) {
      const Fields& f = batch[b];
      int32_t h = part.entities.id(f.p[0], f.n[0], f.h[0]);
      int32_t r = part.relations.id(f.p[1], f.n[1], f.h[1]);
      int32_t t = part.entities.id(f.p[2], f.n[2], f.h[2]);
      if (h < 0 || r < 0 || t < 0) return false;
      part.heads.push_back(h);
      part.relations_col.push_back(r);
      part.tails.push_back(t);
    }
    nb = 0;
    return true;
  };
  while (!eof) {
    size_t want = size_t(std::min<int64_t>(int64_t(kBlock), left));
    buf.resize(carry + want);
    size_t got = want ? std::fread(buf.data() + carry, 1, want, file.get()) : 0;
    left -= int64_t(got);
    if (got < want || left == 0) {
      if (std::ferror(file.get())) throw std::runtime_error(path + ": read error");
      eof = true;
    }
    size_t stop_at = carry + got;
    size_t pos = 0;
    while (pos < stop_at) {
      const char* nl =
          static_cast<const char*>(std::memchr(buf.data() + pos, '\n', stop_at - pos));
      if (!nl && !eof) break;  // an unfinished line: keep it for the next block
      size_t stop = nl ? size_t(nl - buf.data()) : stop_at;
      ++part.line;
      size_t lend = stop;
      if (lend > pos && buf[lend - 1] == '\r') --lend;
      const char* p = buf.data() + pos;
      size_t n = lend - pos;
      if (n == 0) return fail("blank line");
      if (!valid_utf8(reinterpret_cast<const unsigned char*>(p), n)) return fail("not UTF-8");
      const char* t1 = static_cast<const char*>(std::memchr(p, '\t', n));
      if (!t1) return fail("field count");
      const char* t2 =
          static_cast<const char*>(std::memchr(t1 + 1, '\t', size_t(p + n - t1 - 1)));
      if (!t2) return fail("field count");
      if (std::memchr(t2 + 1, '\t', size_t(p + n - t2 - 1))) return fail("field count");
      size_t lh = size_t(t1 - p), lr = size_t(t2 - t1 - 1), lt = size_t(p + n - t2 - 1);
      if (lh == 0 || lr == 0 || lt == 0) return fail("empty field");
      if (lh > KeyMap::kMaxLen || lr > KeyMap::kMaxLen || lt > KeyMap::kMaxLen)
        return fail("key longer than 65535 bytes");
      if (std::memchr(p, '\r', n)) return fail("carriage return inside a line");
      Fields& f = batch[nb++];
      f.p[0] = p;
      f.n[0] = lh;
      f.p[1] = t1 + 1;
      f.n[1] = lr;
      f.p[2] = t2 + 1;
      f.n[2] = lt;
      for (int k = 0; k < 3; ++k) f.h[k] = hash_bytes(f.p[k], f.n[k]);
      if (nb == kBatch && !flush()) return fail("more than 2^31-1 keys");
      pos = stop + 1;
    }
    // the batch points into buf: finish it before the block is moved or overwritten
    if (nb && !flush()) return fail("more than 2^31-1 keys");
    if (!reserved && span > 0 && pos > 0 && !part.heads.empty()) {
      // size the id columns once from the first block's bytes per line (no regrowth copies)
      double per_line = double(std::min(pos, stop_at)) / double(part.heads.size());
      size_t guess = size_t(double(span) / per_line * 1.02) + 16;
      part.heads.reserve(guess);
      part.relations_col.reserve(guess);
      part.tails.reserve(guess);
      reserved = true;
    }
    carry = pos < stop_at ? stop_at - pos : 0;
    if (carry) std::memmove(buf.data(), buf.data() + pos, carry);
  }
}

// Merge the sorted keys of the parts into one table; ranks[p][local id] = global id.
std::vector<std::vector<int32_t>> merge_keys(std::vector<const KeyMap*> maps, KeyTable& out) {
  std::vector<std::vector<std::pair<uint64_t, int32_t>>> sorted(maps.size());
  {
    std::vector<std::thread> pool;
    for (size_t m = 1; m < maps.size(); ++m)
      pool.emplace_back([&, m] { sorted[m] = maps[m]->sorted_keys(); });
    sorted[0] = maps[0]->sorted_keys();
    for (auto& th : pool) th.join();
  }
  std::vector<std::vector<int32_t>> ranks(maps.size());
  size_t bytes = 0;
  for (size_t m = 0; m < maps.size(); ++m) ranks[m].assign(maps[m]->size(), -1);
  for (const KeyMap* m : maps) bytes = std::max(bytes, m->arena_bytes());
  out.offsets.assign(1, 0);
  out.bytes.clear();
  out.bytes.reserve(bytes);
  std::vector<size_t> at(maps.size(), 0);
  int32_t next = 0;
  while (true) {
    // the smallest key at the heads of the sorted lists; every list holding it advances
    int best = -1;
    for (size_t m = 0; m < maps.size(); ++m) {
      if (at[m] == sorted[m].size()) continue;
      if (best < 0) {
        best = int(m);
        continue;
      }
      const auto& a = sorted[m][at[m]];
      const auto& b = sorted[size_t(best)][at[size_t(best)]];
      if (a.first < b.first ||
          (a.first == b.first &&
           maps[m]->key(size_t(a.second)) < maps[size_t(best)]->key(size_t(b.second))))
        best = int(m);
    }
    if (best < 0) break;
    std::string_view k = maps[size_t(best)]->key(size_t(sorted[size_t(best)][at[size_t(best)]].second));
    uint64_t pre = sorted[size_t(best)][at[size_t(best)]].first;
    for (size_t m = 0; m < maps.size(); ++m) {
      if (at[m] == sorted[m].size()) continue;
      const auto& a = sorted[m][at[m]];
      if (a.first == pre && maps[m]->key(size_t(a.second)) == k) {
        ranks[m][size_t(a.second)] = next;
        ++at[m];
      }
    }
    out.bytes.insert(out.bytes.end(), k.begin(), k.end());
    out.offsets.push_back(int64_t(out.bytes.size()));
    ++next;
  }
  return ranks;
}


// Ids by sorted key for every part's columns, concatenated in file order.
TsvIds finish(std::vector<Part>& parts, int threads) {
  TsvIds out;
  int64_t lines_before = 0;
  for (Part& p : parts) {
    if (!p.ok) {
      out.reason = p.reason;
      out.line = lines_before + p.line;
      return out;
    }
    lines_before += p.line;
  }
  size_t total = 0;
  for (Part& p : parts) total += p.heads.size();
  if (total == 0) {
    out.reason = "no triples";
    return out;
  }
  std::vector<const KeyMap*> ents, rels;
  for (Part& p : parts) {
    p.entities.release();
    p.relations.release();
    ents.push_back(&p.entities);
    rels.push_back(&p.relations);
  }
  auto ent_rank = merge_keys(ents, out.entities);
  auto rel_rank = merge_keys(rels, out.relation_keys);
  // Remap in place, part by part, then append the later parts to the first one's columns.
  for (size_t k = 0; k < parts.size(); ++k) {
    Part& p = parts[k];
    const auto& er = ent_rank[k];
    const auto& rr = rel_rank[k];
    parallel_ranges(int64_t(p.heads.size()), threads, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) {
        p.heads[size_t(i)] = er[size_t(p.heads[size_t(i)])];
        p.tails[size_t(i)] = er[size_t(p.tails[size_t(i)])];
        p.relations_col[size_t(i)] = rr[size_t(p.relations_col[size_t(i)])];
      }
    });
  }
  out.heads = std::move(parts[0].heads);
  out.relations = std::move(parts[0].relations_col);
  out.tails = std::move(parts[0].tails);
  for (size_t k = 1; k < parts.size(); ++k) {
    auto append = [](std::vector<int32_t>& to, std::vector<int32_t>& from) {
      to.insert(to.end(), from.begin(), from.end());
      std::vector<int32_t>().swap(from);
    };
    append(out.heads, parts[k].heads);
    append(out.relations, parts[k].relations_col);
    append(out.tails, parts[k].tails);
  }
  out.ok = true;
  return out;
}

}  // namespace

TsvIds read_tsv_ids(const std::string& path, int64_t start, int threads, int64_t split_bytes) {
  int64_t file_bytes = 0;
  {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
    if (std::fseek(file.get(), 0, SEEK_END) != 0)
      throw std::runtime_error(path + ": cannot seek: " + std::strerror(errno));
    file_bytes = int64_t(std::ftell(file.get()));
    start = std::min(std::max<int64_t>(start, 0), file_bytes);
    // Two ranges split at a line start, parsed in parallel, when the file is large enough.
    if (resolve_threads(threads) >= 2 && split_bytes > 0 && file_bytes - start >= split_bytes) {
      int64_t mid = start + (file_bytes - start) / 2;
      if (std::fseek(file.get(), long(mid), SEEK_SET) != 0)
        throw std::runtime_error(path + ": cannot seek: " + std::strerror(errno));
      int c;
      while ((c = std::fgetc(file.get())) != EOF && c != '\n') ++mid;
      ++mid;  // just after the newline
      if (c != EOF && mid < file_bytes) {
        std::vector<Part> parts(2);
        std::exception_ptr error;
        std::thread second([&] {
          try {
            parse_range(path, mid, -1, file_bytes, parts[1]);
          } catch (...) {
            error = std::current_exception();
          }
        });
        try {
          parse_range(path, start, mid, file_bytes, parts[0]);
        } catch (...) {
          second.join();
          throw;
        }
        second.join();
        if (error) std::rethrow_exception(error);
        return finish(parts, threads);
      }
    }
  }
  std::vector<Part> parts(1);
  parse_range(path, start, -1, file_bytes, parts[0]);
  return finish(parts, threads);
}

}  // namespace keys
}  // namespace kg2tool
