// engine.h: executing compiled plans and sampling grounded queries (answer-first).
//
// execute(): for one grounding (relation slot and anchor slot bindings) computes the
// exact set of every op: no neighbour truncation, negation as a sorted difference.
// sample(): draws candidates i = 0, 1, 2, ... each from its own random stream
// (seed, plan, i, attempt): backward grounding from a random answer entity, then exact
// forward execution and the constraint checks; accepted candidates are de-duplicated in
// index order, so the output depends only on (seed, plan, options), never on threads.
#pragma once
#include <array>
#include <memory>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "graph.h"
#include "plan.h"
#include "rng.h"
#include "setops.h"

namespace kg2tool {

enum Reject : int {
  REJ_NO_EDGE = 0,          // backward grounding found no edge to follow
  REJ_ANCHOR_CLASH,         // a shared anchor or fixed entity did not match
  REJ_REPEATED_ANCHOR,      // anchors not distinct
  REJ_BACKTRACK,            // immediate inverse back-track
  REJ_TYPE,                 // a type constraint failed
  REJ_NOTHING_TO_NEGATE,    // negated branch had nothing to remove
  REJ_INTERMEDIATE_LARGE,   // an intermediate set exceeded max_intermediate
  REJ_TARGET_LOST,          // the sampled answer is not an answer after all
  REJ_TOO_FEW_ANSWERS,
  REJ_TOO_MANY_ANSWERS,
  REJ_TRIVIAL_INTERSECTION,
  REJ_TRIVIAL_UNION,
  REJ_TRIVIAL_NEGATION,
  REJ_MATCH_BUDGET,         // a cyclic match ran over its step budget
  REJ_DUPLICATE,
  REJ_COUNT
};
extern const char* const kRejectNames[REJ_COUNT];

struct SampleOptions {
  int64_t min_answers = 1;
  int64_t max_answers = 100;
  int64_t max_intermediate = 100;  // every non-answer set; bounds the calls of a trajectory
  bool distinct_anchors = true;
  bool no_backtrack = true;
  bool nontrivial = true;
  bool degree_weighted = false;    // relation choice: uniform over relations, or over edges
  int max_tries = 8;               // attempts per candidate index
  int64_t max_candidates = 0;      // 0: 20 * n + 10000, and at most 2^20 + 20 * accepted
  int64_t match_steps = 1000000;   // step budget of one cyclic match while sampling
  bool answers_only = false;       // return only the answer sets (other sets left empty)
  int threads = 0;
};

// The sets of one executed query: sets[op] for every op.
// sets[op] views the set of op: its own storage in store[op], or, for a projection of a
// single entity, the KG's neighbour slice itself (no copy).
struct alignas(64) Workspace {  // one per thread: no false sharing
  std::vector<View> sets;
  std::vector<Set> store;
  std::vector<char> done;
  Marks marks;
  Marks src_marks;  // the sources of a projection that walks a relation's entries
  std::vector<uint32_t> hits;  // its entries that belong to a source
  Set tmp;
  int32_t skip_diff = -1;     // DIFFERENCE op evaluated as its kept input (for the checks)
  int32_t skip_join_negations = -1;  // JOIN op evaluated without its negations (checks)
  int64_t max_set = -1;       // abort when a non-answer set exceeds this (-1: never)
  int64_t match_steps = -1;
  bool over_budget = false;
  bool match_aborted = false;
  std::vector<int32_t> rel_buf, anchor_buf, tmp_ids;  // reused per attempt (no allocation)
  Set acc, acc2;
  // A second workspace for the non-triviality re-evaluations, kept to reuse its buffers.
  std::unique_ptr<Workspace> alt;
  Workspace& alternate() {
    if (!alt) alt = std::make_unique<Workspace>();
    return *alt;
  }
};

// Evaluates op (and what it needs) into ws.sets; false when a budget was exceeded.
bool eval_op(const Graph& g, const Plan& p, const int32_t* rel, const int32_t* anchor, int32_t op,
             Workspace& ws);
bool execute_all(const Graph& g, const Plan& p, const int32_t* rel, const int32_t* anchor,
                 Workspace& ws);

struct ExecResult {
  std::vector<int64_t> set_offsets;  // n * num_ops + 1
  std::vector<int32_t> set_ids;
};
// Every op's set (n * num_ops + 1 offsets), or with answers_only the answer sets alone
// (n + 1 offsets): intermediate sets are computed in the workspace but never copied out.
ExecResult execute_batch(const Graph& g, const Plan& p, const int32_t* rel, const int32_t* anchor,
                         int64_t n, int threads, bool answers_only = false);

// n sorted sets over one id array: row i is ids[lo[i * lo_step], hi[i * hi_step]) (steps in
// elements, so strided views of an offsets array need no copy). Bounds are checked by the
// caller (the binding).
struct RowSets {
  const int64_t* lo;
  int64_t lo_step;
  const int64_t* hi;
  int64_t hi_step;
  const int32_t* ids;
  int64_t begin(int64_t i) const { return lo[i * lo_step]; }
  int64_t end(int64_t i) const { return hi[i * hi_step]; }
};

struct DiffResult {
  std::vector<int64_t> offsets;       // n + 1: row i of ids is a[i] minus b[i]
  std::vector<int32_t> ids;
  std::vector<int64_t> added, lost;   // |a[i] - b[i]|, |b[i] - a[i]| (limit + 1 when over)
};
// Per row, the members of a[i] not in b[i] (sorted) and both difference sizes. With
// limit >= 0 a row whose size gap or either difference exceeds limit is "over": both
// counts are limit + 1 and its row of ids is empty (its merge stops early).
DiffResult diff_sets(const RowSets& a, const RowSets& b, int64_t n, int64_t limit, int threads);

struct SampleResult {
  std::vector<int32_t> rel_bind;     // n * num_rel_slots
  std::vector<int32_t> anchor_bind;  // n * num_anchor_slots
  std::vector<int64_t> set_offsets;  // n * num_ops + 1
  RawVector<int32_t> set_ids;        // every id written by the (parallel) copy
  std::vector<int64_t> candidate_index;  // which candidate index each query came from
  std::array<int64_t, REJ_COUNT> rejected{};
  int64_t candidates = 0, attempts = 0;
  int64_t next_candidate = 0;  // where a continuing call starts: one past the last used
  bool exhausted = false;  // stopped at max_candidates before reaching n
};
// Hashes of the grounded queries already drawn; pass the same set (and next_candidate)
// to continue one stream over several calls: the concatenated output is the same as one
// call's, whatever the chunk sizes.
// An open-addressing set of 64-bit hashes (linear probing, load <= 1/2): the sequential
// de-duplication pass does one probe per candidate and no allocation per insert.
class SeenQueries {
 public:
  size_t size() const { return count_ + (has_zero_ ? 1 : 0); }
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    if (cap > slots_.size()) rehash(cap);
  }
  // May run while another thread inserts, as long as no insert rehashes meanwhile (see
  // fits()): slots are read and written whole, so a concurrent lookup of h sees either
  // all of h or none of it.
  bool contains(uint64_t h) const {
    if (h == 0) return __atomic_load_n(&has_zero_, __ATOMIC_RELAXED);
    if (slots_.empty()) return false;
    const size_t mask = slots_.size() - 1;
    for (size_t i = slot(h);; i = (i + 1) & mask) {
      const uint64_t v = __atomic_load_n(slots_.data() + i, __ATOMIC_RELAXED);
      if (v == h) return true;
      if (v == 0) return false;
    }
  }
  // True when k more inserts cannot rehash (move the slots under a concurrent lookup).
  bool fits(size_t k) const { return !slots_.empty() && 2 * (count_ + k) <= slots_.size(); }
  // Starts loading h's slot (the sequential de-duplication pass runs a few ahead).
  void prefetch(uint64_t h) const {
    if (!slots_.empty()) __builtin_prefetch(slots_.data() + slot(h));
  }
  // True when h was not in the set (and is now).
  bool insert(uint64_t h) {
    if (h == 0) {
      const bool fresh = !has_zero_;
      __atomic_store_n(&has_zero_, true, __ATOMIC_RELAXED);
      return fresh;
    }
    if (2 * (count_ + 1) > slots_.size()) rehash(slots_.empty() ? 16 : 2 * slots_.size());
    const size_t mask = slots_.size() - 1;
    for (size_t i = slot(h);; i = (i + 1) & mask) {
      if (slots_[i] == h) return false;
      if (slots_[i] == 0) {
        __atomic_store_n(slots_.data() + i, h, __ATOMIC_RELAXED);
        ++count_;
        return true;
      }
    }
  }

 private:
  size_t slot(uint64_t h) const { return size_t((h * 0x9E3779B97F4A7C15ull) >> shift_); }
  void rehash(size_t cap) {
    std::vector<uint64_t> old;
    old.swap(slots_);
    slots_.assign(cap, 0);
    shift_ = 64;
    for (size_t c = cap; c > 1; c >>= 1) --shift_;
    const size_t mask = cap - 1;
    for (uint64_t h : old)
      if (h) {
        size_t i = slot(h);
        while (slots_[i]) i = (i + 1) & mask;
        slots_[i] = h;
      }
  }
  std::vector<uint64_t> slots_;
  size_t count_ = 0;
  int shift_ = 64;
  bool has_zero_ = false;
};
SampleResult sample(const Graph& g, const Plan& p, int64_t n, uint64_t seed,
                    const SampleOptions& opt, SeenQueries* seen = nullptr,
                    int64_t start_candidate = 0);

// Number of full groundings of join j of plan p per row of anchor bindings (-1 free).
std::vector<int64_t> match_count(const Graph& g, const Plan& p, int32_t join, const int32_t* rel,
                                 const int32_t* anchor, int64_t n, int64_t limit, int threads);

}  // namespace kg2tool
