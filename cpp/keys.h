// keys.h: a plain triples TSV straight to dense int32 ids, keys numbered by sorted order.
//
// The fast path of loading a large string-keyed KG: one pass over the file in fixed-size
// blocks (memory does not grow with the file), each key hashed once into an open-addressing
// table that owns a copy of each distinct key, then the distinct keys sorted (bytewise, as
// Polars sorts strings) and the provisional ids remapped to their rank. A large file is
// cut at a line start into two halves parsed by two threads, whose sorted keys are merged. Anything but the
// plain case (a line without exactly three non-empty tab-separated fields, a stray CR,
// blank lines, bytes that are not UTF-8) stops it with `ok = false`; the caller then takes
// the general reader, which names the problem.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kg2tool {
namespace keys {

struct KeyTable {
  std::vector<int64_t> offsets;  // k + 1 offsets into `bytes`, keys in sorted order
  std::vector<uint8_t> bytes;
};

struct TsvIds {
  bool ok = false;
  std::string reason;    // why the fast path gave up (for tests and debugging)
  int64_t line = 0;      // 1-based line where it gave up, 0 if not line-specific
  std::vector<int32_t> heads, relations, tails;
  KeyTable entities, relation_keys;
};

// Read `path` from byte `start` (after a header line the caller skipped). With 2+ `threads`
// (0: hardware concurrency) a file of at least `split_bytes` is parsed as two halves in
// parallel, their keys merged; the result is the same either way. Throws
// std::runtime_error on I/O errors.
TsvIds read_tsv_ids(const std::string& path, int64_t start, int threads,
                    int64_t split_bytes = int64_t(1) << 26);

}  // namespace keys
}  // namespace kg2tool
