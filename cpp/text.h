// text.h: builds many strings at once from string columns, literals, integers and grouped joins
// (the JSON text of trajectories and trainer records), with optional JSON string escaping.
//
// A string column is Arrow's large-string layout: byte offsets off[m+1] into UTF-8 data; value
// j is data[off[j]:off[j+1]]; or Arrow's string-view layout (see StrCol). Every row i of the output is the concatenation of the parts:
//   LIT   the same bytes in every row
//   STR   value index[i] of a column (value i without an index), raw or as a JSON string literal
//   INT   the decimal text of ints[i]
//   JOIN  values index[j] (or j) for j in [groups[i], groups[i+1]) joined by sep (raw or JSON
//         literals), followed by one more sep when `trailing` and the group is not empty
// Inputs are checked by validate() (offsets in range and non-decreasing, indices in range,
// lengths); concat() assumes a validated plan and touches no Python object (runs without GIL).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "span.h"

namespace kg2tool {
namespace text {

enum class PartKind { kLit, kStr, kInt, kJoin };

struct StrCol {
  Span<const int64_t> off;   // m + 1 offsets
  Span<const uint8_t> data;  // UTF-8 bytes
  // Or Arrow's string-view layout (Polars' own; `is_view`): 16 bytes per value, its length
  // (u32) then the bytes inline when the length is <= 12, else a 4-byte prefix, the index of a
  // data buffer (u32) and the offset in it (u32).
  bool is_view = false;
  Span<const uint8_t> views;             // 16 * m bytes
  std::vector<Span<const uint8_t>> bufs;  // the data buffers
  size_t size() const {
    if (is_view) return views.size() / 16;
    return off.size() ? off.size() - 1 : 0;
  }
};

struct Part {
  PartKind kind = PartKind::kLit;
  std::string lit;               // kLit; kJoin: the separator
  StrCol col;                    // kStr, kJoin
  Span<const int64_t> index;     // kStr, kJoin (empty with has_index false: identity)
  bool has_index = false;
  bool escape = false;           // kStr, kJoin: write JSON string literals
  bool trailing = false;         // kJoin
  Span<const int64_t> ints;      // kInt
  Span<const int64_t> groups;    // kJoin: n + 1 offsets into the (indexed) values
};

// An output buffer: malloc'd when small, else an anonymous mapping that goes back to a bounded
// per-process pool when released, for the next large buffer to reuse (see text.cpp).
class Bytes {
 public:
  explicit Bytes(size_t size);
  ~Bytes();
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  uint8_t* data() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  uint8_t* ptr_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // length of the mapping, 0 when malloc'd
};

struct Built {
  std::vector<int64_t> off;     // n + 1
  std::unique_ptr<Bytes> data;  // exactly off[n] bytes
};

// Throws std::invalid_argument (ValueError) or std::out_of_range (IndexError) naming the
// broken invariant; `n` is the number of output rows.
void validate(size_t n, const std::vector<Part>& parts);

// The n output strings (call validate first): sized exactly in a first pass, then written.
// JSON literals escape as orjson/serde_json: \" \\ \b \f \n \r \t, other bytes < 0x20 as
// \u00xx, every other byte verbatim.
Built concat(size_t n, const std::vector<Part>& parts);

// The same n rows, each followed by `end`, written to the file descriptor fd from its current
// offset (call validate first) through a reused buffer of about 1 MB instead of one buffer of
// the whole text; returns the bytes written. Throws std::system_error when a write fails.
size_t write_rows(int fd, size_t n, const std::vector<Part>& parts, const std::string& end);

// Per value of `col`: whether two adjacent words repeat (kg2tool.samples.lint's doubled_word
// rule: tokens of the lower-cased text are words [a-z0-9']+ joined by single hyphens, or one
// other non-space character; a token equal to the next one, or equal to it but for one
// trailing "s" with at least 4 characters left, or two tokens repeated right after
// themselves): 1 yes, 0 no, 2 for a value with non-ASCII bytes (Unicode lower-casing and
// white space are left to the caller). Call check_column first.
std::vector<uint8_t> doubled_words(const StrCol& col);

// Throws like validate() when `col` is malformed (offsets out of range, views past buffers).
void check_column(const StrCol& col, const std::string& what);

}  // namespace text
}  // namespace kg2tool
