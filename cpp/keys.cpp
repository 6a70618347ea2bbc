// keys.cpp: see keys.h.
#include "keys.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>

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
    slots_[i] = Slot{len <= 8 ? word : at, id, meta, h};
    if (size() * 2 > slots_.size()) grow();
    return int32_t(id);
  }

  size_t size() const { return offsets_.size() - 1; }
  std::string_view key(size_t id) const {
    return std::string_view(reinterpret_cast<const char*>(arena_.data()) + offsets_[id],
                            size_t(offsets_[id + 1] - offsets_[id]));
  }

  // Ranks of the provisional ids in sorted key order, and the keys in that order.
  std::vector<int32_t> sorted(KeyTable& out, int threads) const {
    size_t k = size();
    std::vector<int32_t> order(k);
    for (size_t i = 0; i < k; ++i) order[i] = int32_t(i);
    auto less = [this](int32_t a, int32_t b) { return key(size_t(a)) < key(size_t(b)); };
    int t = std::max(1, std::min(resolve_threads(threads), 2));
    if (t == 2 && k > (size_t(1) << 16)) {
      auto mid = order.begin() + std::ptrdiff_t(k / 2);
      std::thread other([&] { std::sort(mid, order.end(), less); });
      std::sort(order.begin(), mid, less);
      other.join();
      std::inplace_merge(order.begin(), mid, order.end(), less);
    } else {
      std::sort(order.begin(), order.end(), less);
    }
    std::vector<int32_t> rank(k);
    out.offsets.assign(1, 0);
    out.offsets.reserve(k + 1);
    out.bytes.clear();
    out.bytes.reserve(arena_.size());
    for (size_t r = 0; r < k; ++r) {
      rank[size_t(order[r])] = int32_t(r);
      std::string_view s = key(size_t(order[r]));
      out.bytes.insert(out.bytes.end(), s.begin(), s.end());
      out.offsets.push_back(int64_t(out.bytes.size()));
    }
    return rank;
  }

  void release() {  // the table is not needed once the keys are sorted
    std::vector<Slot>().swap(slots_);
  }

 private:
  struct Slot {
    uint64_t word = 0;     // the key (<= 8 bytes) or its arena offset
    uint32_t id = kEmpty;
    uint32_t meta = 0;     // length << 16 | top 16 bits of the hash
    uint64_t hash = 0;     // for growing without rehashing the key
  };

  void grow() {
    std::vector<Slot> bigger(slots_.size() * 2);
    size_t mask = bigger.size() - 1;
    for (const Slot& s : slots_) {
      if (s.id == kEmpty) continue;
      size_t i = size_t(s.hash) & mask;
      while (bigger[i].id != kEmpty) i = (i + 1) & mask;
      bigger[i] = s;
    }
    slots_.swap(bigger);
    mask_ = mask;
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

}  // namespace

TsvIds read_tsv_ids(const std::string& path, int64_t start, int threads) {
  TsvIds out;
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  int64_t file_bytes = -1;
  if (std::fseek(file.get(), 0, SEEK_END) == 0) file_bytes = int64_t(std::ftell(file.get()));
  if (std::fseek(file.get(), long(std::max<int64_t>(start, 0)), SEEK_SET) != 0)
    throw std::runtime_error(path + ": cannot seek: " + std::strerror(errno));
  bool reserved = false;
  KeyMap entities, relations;
  std::vector<char> buf;
  size_t carry = 0;  // bytes of an unfinished line kept at the front of buf
  int64_t line = 0;
  bool eof = false;
  auto fail = [&](const char* why) {
    out = TsvIds();
    out.ok = false;
    out.reason = why;
    out.line = line;
    return out;
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
      __builtin_prefetch(entities.slot_address(batch[b].h[0]));
      __builtin_prefetch(entities.slot_address(batch[b].h[2]));
    }
    for (int b = 0; b < nb; ++b) {
      const Fields& f = batch[b];
      int32_t h = entities.id(f.p[0], f.n[0], f.h[0]);
      int32_t r = relations.id(f.p[1], f.n[1], f.h[1]);
      int32_t t = entities.id(f.p[2], f.n[2], f.h[2]);
      if (h < 0 || r < 0 || t < 0) return false;
      out.heads.push_back(h);
      out.relations.push_back(r);
      out.tails.push_back(t);
    }
    nb = 0;
    return true;
  };
  while (!eof) {
    buf.resize(carry + kBlock);
    size_t got = std::fread(buf.data() + carry, 1, kBlock, file.get());
    if (got < kBlock) {
      if (std::ferror(file.get())) throw std::runtime_error(path + ": read error");
      eof = true;
    }
    size_t end = carry + got;
    size_t pos = 0;
    while (pos < end) {
      const char* nl = static_cast<const char*>(std::memchr(buf.data() + pos, '\n', end - pos));
      if (!nl && !eof) break;  // an unfinished line: keep it for the next block
      size_t stop = nl ? size_t(nl - buf.data()) : end;
      ++line;
      size_t lend = stop;
      if (lend > pos && buf[lend - 1] == '\r') --lend;
      const char* p = buf.data() + pos;
      size_t n = lend - pos;
      if (n == 0) {
        if (nl) return fail("blank line");
        break;  // the file ends with a newline
      }
      if (!valid_utf8(reinterpret_cast<const unsigned char*>(p), n)) return fail("not UTF-8");
      const char* t1 = static_cast<const char*>(std::memchr(p, '\t', n));
      if (!t1) return fail("field count");
      const char* t2 = static_cast<const char*>(std::memchr(t1 + 1, '\t', size_t(p + n - t1 - 1)));
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
    if (!reserved && file_bytes > 0 && pos > 0 && !out.heads.empty()) {
      // size the id columns once from the first block's bytes per line (no regrowth copies)
      double per_line = double(std::min(pos, end)) / double(out.heads.size());
      size_t guess = size_t(double(file_bytes - start) / per_line * 1.02) + 16;
      out.heads.reserve(guess);
      out.relations.reserve(guess);
      out.tails.reserve(guess);
      reserved = true;
    }
    carry = pos < end ? end - pos : 0;
    if (carry) std::memmove(buf.data(), buf.data() + pos, carry);
  }
  if (out.heads.empty()) return fail("no triples");
  entities.release();
  relations.release();
  std::vector<int32_t> ent_rank = entities.sorted(out.entities, threads);
  std::vector<int32_t> rel_rank = relations.sorted(out.relation_keys, threads);
  int64_t m = int64_t(out.heads.size());
  parallel_ranges(m, threads, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      out.heads[size_t(i)] = ent_rank[size_t(out.heads[size_t(i)])];
      out.tails[size_t(i)] = ent_rank[size_t(out.tails[size_t(i)])];
      out.relations[size_t(i)] = rel_rank[size_t(out.relations[size_t(i)])];
    }
  });
  out.ok = true;
  return out;
}

}  // namespace keys
}  // namespace kg2tool
