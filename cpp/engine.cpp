// engine.cpp: plan execution, answer-first sampling with constraint checks, match counts.
#include "engine.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <unordered_set>

#include "match.h"
#include "parallel.h"

namespace kg2tool {

const char* const kRejectNames[REJ_COUNT] = {
    "no_edge",          "anchor_clash",         "repeated_anchor",   "backtrack",
    "type_mismatch",    "nothing_to_negate",    "intermediate_too_large", "target_lost",
    "too_few_answers",  "too_many_answers",     "trivial_intersection", "trivial_union",
    "trivial_negation", "match_budget",         "duplicate"};

namespace {

// A projection walks its relation's entries when they are fewer than this many per source
// (a walked entry costs a sequential load and a bit test; a source, a relation search).
constexpr int64_t kRelWalkRatio = 8;

// Adds neighbour slices to a projection's output. Sparse mode writes every neighbour and
// counts the fresh ones (whether an id was seen is random: a branch on it mispredicts
// about half the time). Dense mode only sets mark bits, and the sorted output is read off
// the marks at the end: no output writes, no dependency on the running count.
struct SliceSink {
  Marks& marks;
  Set& out;
  bool dense;
  size_t visits = 0;  // neighbours seen (dense mode: an upper bound of the output size)
  void add(const int32_t* b, const int32_t* e) {
    visits += size_t(e - b);
    if (dense) {
      for (const int32_t* x = b; x < e; ++x) marks.set(*x);
      return;
    }
    size_t w = out.size();
    out.resize(w + size_t(e - b));
    int32_t* o = out.data();
    for (const int32_t* x = b; x < e; ++x) {
      o[w] = *x;
      w += size_t(marks.insert(*x));
    }
    out.resize(w);
  }
  void finish() {
    if (dense) {
      collect_and_unmark(marks, out, visits);
    } else {
      sort_and_unmark(marks, out);
    }
  }
};

// Union of neighbour slices of every entity in `from` (relation r, adjacency a) into out.
// Dense marks when the mark words are few for the sources (reading them all off is then
// cheaper than tracking fresh ids one by one).
__attribute__((noinline)) void project(const Adjacency& a, View from, int32_t r, Marks& marks, Marks& src_marks,
             std::vector<uint32_t>& hits, Set& out) {
  out.clear();
  const size_t n = from.size();
  SliceSink sink{marks, out, marks.bits.size() <= 4 * n};
  const uint32_t* dir_off = a.dir_off.ptr;
  const int32_t* nbr = a.nbr.ptr;
  // Many sources against a relation held by few entities: walk the relation's entries in
  // entity order (sequential memory) and keep those whose entity is a source, instead of
  // one relation search per source (a chain of dependent cache misses each).
  if (a.rel_owner.len) {
    const int64_t rb = a.rel_dir_off[r], re = a.rel_dir_off[size_t(r) + 1];
    if (re - rb < kRelWalkRatio * int64_t(n)) {
      for (int32_t u : from) src_marks.insert(u);
      const int32_t* owner = a.rel_owner.ptr;
      const uint32_t* entries = a.rel_dir.ptr;
      // The entries whose entity is a source, found without a branch per entry.
      hits.resize(size_t(re - rb));
      size_t nh = 0;
      for (int64_t j = rb; j < re; ++j) {
        hits[nh] = entries[j];
        nh += size_t(src_marks.test(owner[j]));
      }
      for (int32_t u : from) src_marks.erase(u);
      for (size_t h = 0; h < nh; ++h) sink.add(nbr + dir_off[hits[h]], nbr + dir_off[hits[h] + 1]);
      sink.finish();
      return;
    }
  }
  // Otherwise sources are taken in groups and every stage prefetches the next stage's
  // memory for the whole group (directory range, relation entry, slice bounds, slice): the
  // cache misses of a group overlap instead of queueing one after another.
  constexpr size_t G = 32;
  int64_t lo[G], hi[G];
  uint32_t sb[G], se[G];
  const int64_t* ent_dir = a.ent_dir.ptr;
  for (size_t base = 0; base < n; base += G) {
    const size_t m = std::min(G, n - base);
    const int32_t* f = from.data() + base;
    for (size_t i = 0; i < m; ++i) __builtin_prefetch(ent_dir + f[i]);
    for (size_t i = 0; i < m; ++i) {
      lo[i] = ent_dir[f[i]];
      hi[i] = ent_dir[f[i] + 1];
      __builtin_prefetch(a.dir_rel.ptr + lo[i]);
    }
    for (size_t i = 0; i < m; ++i) {
      lo[i] = a.find_in(lo[i], hi[i], r);
      if (lo[i] >= 0) __builtin_prefetch(dir_off + lo[i]);
    }
    for (size_t i = 0; i < m; ++i) {
      if (lo[i] < 0) {
        sb[i] = se[i] = 0;
        continue;
      }
      sb[i] = dir_off[lo[i]];
      se[i] = dir_off[lo[i] + 1];
      __builtin_prefetch(nbr + sb[i]);
    }
    for (size_t i = 0; i < m; ++i) sink.add(nbr + sb[i], nbr + se[i]);
  }
  sink.finish();
}

}  // namespace

bool eval_op(const Graph& g, const Plan& p, const int32_t* rel, const int32_t* anchor, int32_t op,
             Workspace& ws) {
  if (ws.done[size_t(op)]) return true;
  const int32_t k = p.num_inputs(op);
  for (int32_t j = 0; j < k; ++j) {
    int32_t in = p.input(op, j);
    if (p.kind[size_t(op)] == OP_DIFFERENCE && op == ws.skip_diff && j == 1) continue;
    if (!eval_op(g, p, rel, anchor, in, ws)) return false;
  }
  Set& out = ws.store[size_t(op)];
  out.clear();
  View res;
  bool own = true;  // res is out (set at the end), else res was set to another view
  const int32_t arg = p.arg[size_t(op)];
  switch (p.kind[size_t(op)]) {
    case OP_ANCHOR:
      out.push_back(anchor[arg]);
      break;
    case OP_PROJECT: {
      const Adjacency& a = g.adj[p.dir[size_t(op)] == 0 ? 0 : 1];
      const View from = ws.sets[size_t(p.input(op, 0))];
      if (from.size() == 1) {
        res = a.neighbors(from[0], rel[arg]);
        own = false;
      } else {
        project(a, from, rel[arg], ws.marks, ws.src_marks, ws.hits, out);
      }
      break;
    }
    case OP_INTERSECT: {
      int32_t small[8];
      std::vector<int32_t> big;
      int32_t* ins = small;
      if (k > 8) {
        big.resize(size_t(k));
        ins = big.data();
      }
      for (int32_t j = 0; j < k; ++j) ins[j] = p.input(op, j);
      std::sort(ins, ins + k, [&](int32_t a, int32_t b) {
        return ws.sets[size_t(a)].size() < ws.sets[size_t(b)].size();
      });
      if (k == 1) {
        res = ws.sets[size_t(ins[0])];
        own = false;
        break;
      }
      {
        const View a = ws.sets[size_t(ins[0])];
        const View b = ws.sets[size_t(ins[1])];
        intersect_into(a.data(), a.size(), b.data(), b.size(), out);
      }
      for (int32_t j = 2; j < k && !out.empty(); ++j) {
        const View o = ws.sets[size_t(ins[j])];
        intersect_into(out.data(), out.size(), o.data(), o.size(), ws.tmp);
        out.swap(ws.tmp);
      }
      break;
    }
    case OP_UNION:
      if (k == 2) {
        const View a = ws.sets[size_t(p.input(op, 0))];
        const View b = ws.sets[size_t(p.input(op, 1))];
        union_into(a.data(), a.size(), b.data(), b.size(), out);
        break;
      }
      for (int32_t j = 0; j < k; ++j)
        for (int32_t v : ws.sets[size_t(p.input(op, j))])
          if (ws.marks.insert(v)) out.push_back(v);
      sort_and_unmark(ws.marks, out);
      break;
    case OP_DIFFERENCE: {
      const View kept = ws.sets[size_t(p.input(op, 0))];
      if (op == ws.skip_diff) {
        res = kept;
        own = false;
      } else {
        const View removed = ws.sets[size_t(p.input(op, 1))];
        difference_into(kept.data(), kept.size(), removed.data(), removed.size(), out);
      }
      break;
    }
    case OP_TYPE_FILTER: {
      const int32_t t = p.type_ids[size_t(arg)];
      for (int32_t v : ws.sets[size_t(p.input(op, 0))])
        if (g.has_type(v, t)) out.push_back(v);
      break;
    }
    case OP_JOIN: {
      JoinSpec positive;  // the join without its negations, for the non-triviality check
      const bool drop_negations = op == ws.skip_join_negations;
      if (drop_negations) {
        const JoinSpec& full = p.joins[size_t(arg)];
        positive = full;
        positive.atoms.clear();
        positive.negated.clear();
        positive.exclude_vars.clear();
        for (size_t a = 0; a < full.atoms.size(); ++a)
          if (!full.negated[a]) {
            positive.atoms.push_back(full.atoms[a]);
            positive.negated.push_back(0);
          }
      }
      const JoinSpec& js = drop_negations ? positive : p.joins[size_t(arg)];
      Matcher m(g, js, rel, p.num_rel_slots, anchor, p.num_anchor_slots);
      m.type_ids = &p.type_ids;
      for (int32_t j = 0; j < k && !drop_negations; ++j)
        m.excludes.emplace_back(js.exclude_vars[size_t(j)], ws.sets[size_t(p.input(op, j))]);
      m.plan_order();
      m.max_steps = ws.match_steps;
      m.answers(ws.marks, out);
      if (m.aborted) {
        ws.match_aborted = true;
        return false;
      }
      break;
    }
  }
  if (own) res = view_of(out);
  ws.sets[size_t(op)] = res;
  if (ws.max_set >= 0 && op != p.num_ops() - 1 && int64_t(res.size()) > ws.max_set) {
    ws.over_budget = true;
    return false;
  }
  ws.done[size_t(op)] = 1;
  return true;
}

static void reset(Workspace& ws, const Graph& g, const Plan& p) {
  ws.sets.assign(size_t(p.num_ops()), View());
  ws.store.resize(size_t(p.num_ops()));
  ws.done.assign(size_t(p.num_ops()), 0);
  ws.marks.ensure(g.num_entities);
  ws.src_marks.ensure(g.num_entities);
  ws.over_budget = ws.match_aborted = false;
}

bool execute_all(const Graph& g, const Plan& p, const int32_t* rel, const int32_t* anchor,
                 Workspace& ws) {
  reset(ws, g, p);
  return eval_op(g, p, rel, anchor, p.num_ops() - 1, ws);
}

ExecResult execute_batch(const Graph& g, const Plan& p, const int32_t* rel, const int32_t* anchor,
                         int64_t n, int threads, bool answers_only) {
  const int32_t nops = p.num_ops();
  const int32_t first = answers_only ? nops - 1 : 0;  // the ops whose sets are copied out
  const int nt = std::max(1, std::min<int>(resolve_threads(threads), int(std::max<int64_t>(1, n))));
  std::vector<ExecResult> parts(static_cast<size_t>(nt));
  parallel_ranges(n, nt, [&](int64_t b, int64_t e, int t) {
    Workspace ws;
    ExecResult& part = parts[size_t(t)];
    part.set_offsets.reserve(size_t((e - b) * (nops - first)));
    for (int64_t i = b; i < e; ++i) {
      execute_all(g, p, rel + i * p.num_rel_slots, anchor + i * p.num_anchor_slots, ws);
      for (int32_t o = first; o < nops; ++o) {
        // A DIFFERENCE's removed branch is always evaluated here (skip_diff = -1).
        const View s = ws.sets[size_t(o)];
        part.set_ids.insert(part.set_ids.end(), s.begin(), s.end());
        part.set_offsets.push_back(int64_t(part.set_ids.size()));
      }
    }
  });
  ExecResult res;
  res.set_offsets.reserve(size_t(n * (nops - first)) + 1);
  res.set_offsets.push_back(0);
  for (auto& part : parts) {
    const int64_t base = int64_t(res.set_ids.size());
    for (int64_t off : part.set_offsets) res.set_offsets.push_back(base + off);
    res.set_ids.insert(res.set_ids.end(), part.set_ids.begin(), part.set_ids.end());
  }
  return res;
}

DiffResult diff_sets(const RowSets& a, const RowSets& b, int64_t n, int64_t limit, int threads) {
  const int nt = std::max(1, std::min<int>(resolve_threads(threads), int(std::max<int64_t>(1, n))));
  DiffResult res;
  res.added.assign(size_t(n), 0);
  res.lost.assign(size_t(n), 0);
  std::vector<std::vector<int32_t>> ids(static_cast<size_t>(nt));
  std::vector<int64_t> ends(size_t(n), 0);  // per row: end of its ids within its thread's part
  std::vector<std::pair<int64_t, int64_t>> ranges(size_t(nt), {0, 0});  // rows of each part
  parallel_ranges(n, nt, [&](int64_t rb, int64_t re, int t) {
    ranges[size_t(t)] = {rb, re};
    std::vector<int32_t>& out = ids[size_t(t)];
    for (int64_t i = rb; i < re; ++i) {
      const int32_t* x = a.ids + a.begin(i);
      const int32_t* xe = a.ids + a.end(i);
      const int32_t* y = b.ids + b.begin(i);
      const int32_t* ye = b.ids + b.end(i);
      const size_t mark = out.size();
      int64_t added = 0, lost = 0;
      bool over = limit >= 0 && std::abs((xe - x) - (ye - y)) > limit;
      while (!over && x < xe && y < ye) {
        if (*x < *y) {
          out.push_back(*x++);
          over = ++added > limit && limit >= 0;
        } else if (*y < *x) {
          ++y;
          over = ++lost > limit && limit >= 0;
        } else {
          ++x;
          ++y;
        }
      }
      if (!over) {
        added += xe - x;
        lost += ye - y;
        out.insert(out.end(), x, xe);
        over = limit >= 0 && (added > limit || lost > limit);
      }
      if (over) {
        out.resize(mark);
        added = lost = limit + 1;
      }
      res.added[size_t(i)] = added;
      res.lost[size_t(i)] = lost;
      ends[size_t(i)] = int64_t(out.size());
    }
  });
  res.offsets.resize(size_t(n) + 1);
  res.offsets[0] = 0;
  int64_t base = 0;
  for (int t = 0; t < nt; ++t) {
    for (int64_t i = ranges[size_t(t)].first; i < ranges[size_t(t)].second; ++i) res.offsets[size_t(i) + 1] = base + ends[size_t(i)];
    base += int64_t(ids[size_t(t)].size());
  }
  res.ids.reserve(size_t(base));
  for (auto& part : ids) res.ids.insert(res.ids.end(), part.begin(), part.end());
  return res;
}

namespace {

inline uint64_t mix(uint64_t a, uint64_t b) { return splitmix64(a * 0x9E3779B97F4A7C15ull ^ b); }

// Hash of the grounded query that is the same for branch orders of commutative ops.
uint64_t canonical_hash(const Plan& p, const int32_t* rel, const int32_t* anchor, int32_t op) {
  const int32_t kind = p.kind[size_t(op)], arg = p.arg[size_t(op)];
  uint64_t h = mix(uint64_t(kind) + 1, 0);
  switch (kind) {
    case OP_ANCHOR:
      return mix(h, uint64_t(uint32_t(anchor[arg])));
    case OP_PROJECT:
      return mix(mix(mix(h, uint64_t(uint32_t(rel[arg]))), uint64_t(p.dir[size_t(op)])),
                 canonical_hash(p, rel, anchor, p.input(op, 0)));
    case OP_INTERSECT:
    case OP_UNION: {
      uint64_t acc = 0;
      for (int32_t j = 0; j < p.num_inputs(op); ++j)
        acc += splitmix64(canonical_hash(p, rel, anchor, p.input(op, j)));
      return mix(h, acc);
    }
    case OP_DIFFERENCE:
      return mix(mix(h, canonical_hash(p, rel, anchor, p.input(op, 0))),
                 canonical_hash(p, rel, anchor, p.input(op, 1)));
    case OP_TYPE_FILTER:
      return mix(mix(h, uint64_t(p.type_ids[size_t(arg)])), canonical_hash(p, rel, anchor, p.input(op, 0)));
    case OP_JOIN: {
      // The grounded conjunction up to renaming its non-answer variables: the minimum,
      // over permutations of those variables, of its sorted grounded atoms (so the order
      // of atoms or symmetric branches, e.g. square's two paths, does not matter).
      const JoinSpec& js = p.joins[size_t(arg)];
      h = mix(h, uint64_t(arg));
      std::vector<int32_t> others;
      for (int32_t v = 0; v < js.num_vars; ++v)
        if (v != js.answer_var) others.push_back(v);
      const bool permute = others.size() <= 6;  // at most 720 renamings
      std::vector<int64_t> code(size_t(js.num_vars), 0), best, cur;
      std::vector<uint64_t> in_hash;
      for (int32_t j = 0; j < p.num_inputs(op); ++j)
        in_hash.push_back(canonical_hash(p, rel, anchor, p.input(op, j)));
      auto term = [&](int32_t t) -> int64_t {
        return t < 0 ? int64_t(uint32_t(anchor[-1 - t])) : -1 - code[size_t(t)];
      };
      do {
        for (size_t i = 0; i < others.size(); ++i) code[size_t(others[i])] = int64_t(i) + 1;
        std::vector<std::array<int64_t, 4>> rows;
        for (size_t a = 0; a < js.atoms.size(); ++a) {
          const auto& at = js.atoms[a];
          rows.push_back({int64_t(js.negated[a]), int64_t(rel[at[0]]), term(at[1]), term(at[2])});
        }
        for (int32_t v = 0; v < js.num_vars; ++v)
          if (!js.var_types.empty() && js.var_types[size_t(v)] >= 0)
            rows.push_back({2, int64_t(p.type_ids[size_t(js.var_types[size_t(v)])]), term(v), 0});
        for (size_t j = 0; j < in_hash.size(); ++j)
          rows.push_back({3, int64_t(in_hash[j] >> 1), term(js.exclude_vars[j]), 0});
        std::sort(rows.begin(), rows.end());
        cur.clear();
        for (auto& r : rows) cur.insert(cur.end(), r.begin(), r.end());
        if (best.empty() || cur < best) best.swap(cur);
      } while (permute && std::next_permutation(others.begin(), others.end()));
      for (int64_t x : best) h = mix(h, uint64_t(x));
      return h;
    }
  }
  return h;
}

// Whether t is in op's set, evaluating only op's inputs where that is enough: t is in a
// projection of X iff t's reverse slice meets X (two small sorted sets; no projection of
// X). 1/0, or -1 when an input's evaluation hit a budget (as eval_op would).
int member(const Graph& g, const Plan& p, const int32_t* rel, const int32_t* anchor, int32_t op,
           int32_t t, Workspace& ws) {
  if (ws.done[size_t(op)]) return contains(ws.sets[size_t(op)], t) ? 1 : 0;
  const int32_t arg = p.arg[size_t(op)], k = p.num_inputs(op);
  switch (p.kind[size_t(op)]) {
    case OP_ANCHOR:
      return anchor[arg] == t ? 1 : 0;
    case OP_PROJECT: {
      const int32_t in = p.input(op, 0);
      if (!eval_op(g, p, rel, anchor, in, ws)) return -1;
      const View from = ws.sets[size_t(in)];
      const View back = g.adj[p.dir[size_t(op)] == 0 ? 1 : 0].neighbors(t, rel[arg]);
      return intersection_exceeds(back.data(), back.size(), from.data(), from.size(), 0) ? 1 : 0;
    }
    case OP_INTERSECT:
    case OP_UNION: {
      const bool all = p.kind[size_t(op)] == OP_INTERSECT;
      for (int32_t j = 0; j < k; ++j) {
        const int m = member(g, p, rel, anchor, p.input(op, j), t, ws);
        if (m < 0) return -1;
        if (all != bool(m)) return m;
      }
      return all ? 1 : 0;
    }
    case OP_DIFFERENCE: {
      if (op == ws.skip_diff) return member(g, p, rel, anchor, p.input(op, 0), t, ws);
      const int m = member(g, p, rel, anchor, p.input(op, 0), t, ws);
      if (m <= 0) return m;
      const int r = member(g, p, rel, anchor, p.input(op, 1), t, ws);
      return r < 0 ? -1 : 1 - r;
    }
    case OP_TYPE_FILTER:
      if (!g.has_type(t, p.type_ids[size_t(arg)])) return 0;
      return member(g, p, rel, anchor, p.input(op, 0), t, ws);
    default:  // a join: evaluate it
      if (!eval_op(g, p, rel, anchor, op, ws)) return -1;
      return contains(ws.sets[size_t(op)], t) ? 1 : 0;
  }
}

// A union of two projections by the same relation is trivial when one projected set holds
// the other (projection is monotone): found from the inputs, before projecting them.
// 1 trivial, 0 not known to be, -1 an input hit a budget.
int union_trivial_early(const Graph& g, const Plan& p, const int32_t* rel, const int32_t* anchor,
                        int32_t op, Workspace& ws) {
  if (p.kind[size_t(op)] != OP_UNION || p.num_inputs(op) != 2) return 0;
  const int32_t a = p.input(op, 0), b = p.input(op, 1);
  if (p.kind[size_t(a)] != OP_PROJECT || p.kind[size_t(b)] != OP_PROJECT ||
      p.dir[size_t(a)] != p.dir[size_t(b)] || rel[p.arg[size_t(a)]] != rel[p.arg[size_t(b)]] ||
      ws.done[size_t(a)] || ws.done[size_t(b)])
    return 0;
  const int32_t xa = p.input(a, 0), xb = p.input(b, 0);
  if (!eval_op(g, p, rel, anchor, xa, ws) || !eval_op(g, p, rel, anchor, xb, ws)) return -1;
  View x = ws.sets[size_t(xa)], y = ws.sets[size_t(xb)];
  if (x.size() > y.size()) std::swap(x, y);
  return std::includes(y.begin(), y.end(), x.begin(), x.end()) ? 1 : 0;
}

// An intersection with a small anchor slice S and a costly other input (e.g. pi's 2-hop
// branch) is trivial when S lies in every other input: the result is S. Probed element by
// element through member() before the costly input is computed. 1 trivial, 0 not known to
// be, -1 an input hit a budget.
int intersection_trivial_early(const Graph& g, const Plan& p, const int32_t* rel,
                               const int32_t* anchor, int32_t op, Workspace& ws) {
  constexpr size_t kProbe = 32;  // beyond this many elements, computing the input is cheaper
  if (p.kind[size_t(op)] != OP_INTERSECT || ws.done[size_t(op)]) return 0;
  const int32_t k = p.num_inputs(op);
  auto slice_of_anchor = [&](int32_t in) {
    return p.kind[size_t(in)] == OP_PROJECT && p.kind[size_t(p.input(in, 0))] == OP_ANCHOR;
  };
  bool costly = false;
  for (int32_t j = 0; j < k; ++j) costly |= !slice_of_anchor(p.input(op, j)) && !ws.done[size_t(p.input(op, j))];
  if (!costly) return 0;
  for (int32_t j = 0; j < k; ++j) {
    const int32_t in = p.input(op, j);
    if (!slice_of_anchor(in)) continue;
    if (!eval_op(g, p, rel, anchor, in, ws)) return -1;
    const View s = ws.sets[size_t(in)];
    if (s.size() > kProbe) continue;
    bool inside = true;
    for (size_t i = 0; i < s.size() && inside; ++i)
      for (int32_t o = 0; o < k && inside; ++o) {
        if (o == j) continue;
        const int m = member(g, p, rel, anchor, p.input(op, o), s[i], ws);
        if (m < 0) return -1;
        inside = m == 1;
      }
    if (inside) return 1;
  }
  return 0;
}

// Why an evaluation stopped early: a join's step budget, or an intermediate set's cap.
inline int budget_reason(const Workspace& ws) {
  return ws.match_aborted ? REJ_MATCH_BUDGET : REJ_INTERMEDIATE_LARGE;
}

struct Grounder {
  const Graph& g;
  const Plan& p;
  const SampleOptions& opt;
  Rng& rng;
  Workspace& ws;
  std::vector<int32_t>& rel;     // slot bindings, in the workspace's reused buffers
  std::vector<int32_t>& anchor;
  int reason = REJ_NO_EDGE;

  bool fail(int r) {
    reason = r;
    return false;
  }

  bool ground(int32_t op, int32_t t, int32_t avoid) {
    const int32_t arg = p.arg[size_t(op)];
    switch (p.kind[size_t(op)]) {
      case OP_ANCHOR:
        if (anchor[size_t(arg)] >= 0) return anchor[size_t(arg)] == t ? true : fail(REJ_ANCHOR_CLASH);
        if (p.anchor_types[size_t(arg)] >= 0 && !g.has_type(t, p.anchor_types[size_t(arg)]))
          return fail(REJ_TYPE);
        anchor[size_t(arg)] = t;
        return true;
      case OP_PROJECT: {
        // Forward projection reaches t along an in-edge of t; inverse along an out-edge.
        const Adjacency& a = g.adj[p.dir[size_t(op)] == 0 ? 1 : 0];
        Span<const int32_t> s;
        if (rel[size_t(arg)] >= 0) {
          s = a.neighbors(t, rel[size_t(arg)]);
        } else {
          const int64_t nent = a.num_entries(t);
          if (nent == 0) return fail(REJ_NO_EDGE);
          int64_t e;
          if (opt.degree_weighted) {
            uint32_t x = uint32_t(rng.below(uint64_t(a.degree(t)))) + a.dir_off[a.ent_dir[t]];
            const uint32_t* it = std::upper_bound(a.dir_off.ptr + a.ent_dir[t],
                                                  a.dir_off.ptr + a.ent_dir[t + 1], x);
            e = (it - a.dir_off.ptr) - 1;
          } else {
            e = a.ent_dir[t] + int64_t(rng.below(uint64_t(nent)));
          }
          rel[size_t(arg)] = a.dir_rel[e];
          s = a.entry(e);
        }
        if (s.empty()) return fail(REJ_NO_EDGE);
        int32_t x;
        const int32_t* at = opt.no_backtrack && avoid >= 0 ? lower_bound_bl(s.begin(), s.end(), avoid)
                                                            : s.end();
        if (at != s.end() && *at == avoid) {
          if (s.size() == 1) return fail(REJ_BACKTRACK);
          const size_t pos = size_t(at - s.begin());
          size_t i = size_t(rng.below(s.size() - 1));
          x = s[i >= pos ? i + 1 : i];
        } else {
          x = s[rng.below(s.size())];
        }
        return ground(p.input(op, 0), x, t);
      }
      case OP_INTERSECT:
      case OP_UNION:
        for (int32_t j = 0; j < p.num_inputs(op); ++j)
          if (!ground(p.input(op, j), t, avoid)) return false;
        return true;
      case OP_DIFFERENCE: {
        const int32_t kept = p.input(op, 0), removed = p.input(op, 1);
        if (!ground(kept, t, avoid)) return false;
        if (!eval_op(g, p, rel.data(), anchor.data(), kept, ws))
          return fail(budget_reason(ws));
        const View K = ws.sets[size_t(kept)];
        const bool has_t = contains(K, t);
        const size_t others = K.size() - (has_t ? 1 : 0);
        if (others == 0) return fail(REJ_NOTHING_TO_NEGATE);
        size_t i = size_t(rng.below(others));
        if (has_t) {
          size_t pos = size_t(std::lower_bound(K.begin(), K.end(), t) - K.begin());
          if (i >= pos) ++i;
        }
        return ground(removed, K[i], -1);
      }
      case OP_TYPE_FILTER:
        if (!g.has_type(t, p.type_ids[size_t(arg)])) return fail(REJ_TYPE);
        return ground(p.input(op, 0), t, avoid);
      case OP_JOIN: {
        const JoinSpec& js = p.joins[size_t(arg)];
        Matcher m(g, js, rel.data(), p.num_rel_slots, anchor.data(), p.num_anchor_slots);
        m.type_ids = &p.type_ids;
        m.var[size_t(js.answer_var)] = t;
        m.plan_order();
        if (!m.ground_random(rng, opt.degree_weighted)) return fail(REJ_NO_EDGE);
        for (size_t a = 0; a < anchor.size(); ++a) {
          if (anchor[a] >= 0 && m.anchor[a] != anchor[a]) return fail(REJ_ANCHOR_CLASH);
          if (anchor[a] < 0 && p.anchor_types[a] >= 0 && !g.has_type(m.anchor[a], p.anchor_types[a]))
            return fail(REJ_TYPE);
          anchor[a] = m.anchor[a];
        }
        rel = m.rel;
        // Free relations of negated atoms: one that links the atom's terms in a second
        // random match but not in this one, so the negation removes another answer.
        bool deferred = false;
        for (size_t a = 0; a < js.atoms.size(); ++a)
          if (js.negated[a] && rel[size_t(js.atoms[a][0])] < 0) deferred = true;
        if (deferred) {
          // A few second matches: pairs linked by two relations are rare in sparse KGs.
          const Adjacency& o = g.out();
          std::vector<int32_t> rels;
          std::vector<int32_t> chosen(rel.size(), -1);
          bool found = false;
          for (int tries = 0; tries < 8 && !found; ++tries) {
            Matcher m2(g, js, rel.data(), p.num_rel_slots, anchor.data(), p.num_anchor_slots);
            m2.type_ids = &p.type_ids;
            m2.plan_order();
            if (!m2.ground_random(rng, opt.degree_weighted)) continue;
            found = true;
            for (size_t a = 0; a < js.atoms.size() && found; ++a) {
              const int32_t rs = js.atoms[a][0];
              if (!js.negated[a] || rel[size_t(rs)] >= 0) continue;
              const int32_t h1 = m.get(js.atoms[a][1]), t1 = m.get(js.atoms[a][2]);
              const int32_t h2 = m2.get(js.atoms[a][1]), t2 = m2.get(js.atoms[a][2]);
              rels.clear();
              if (h1 >= 0 && t1 >= 0 && h2 >= 0 && t2 >= 0)
                for (int64_t e = o.ent_dir[h2]; e < o.ent_dir[h2 + 1]; ++e) {
                  auto s = o.entry(e);
                  if (!std::binary_search(s.begin(), s.end(), t2)) continue;
                  auto s1 = o.neighbors(h1, o.dir_rel[e]);
                  if (!std::binary_search(s1.begin(), s1.end(), t1)) rels.push_back(o.dir_rel[e]);
                }
              if (rels.empty()) found = false;
              else chosen[size_t(rs)] = rels[rng.below(rels.size())];
            }
          }
          if (!found) return fail(REJ_NOTHING_TO_NEGATE);
          for (size_t s = 0; s < rel.size(); ++s)
            if (chosen[s] >= 0) rel[s] = chosen[s];
        }
        // A negated conjunction attached at variable v: ground it from the value v takes
        // in a second random match, so that it has something to exclude.
        for (int32_t j = 0; j < p.num_inputs(op); ++j) {
          const int32_t v = js.exclude_vars[size_t(j)];
          Matcher m2(g, js, rel.data(), p.num_rel_slots, anchor.data(), p.num_anchor_slots);
          m2.type_ids = &p.type_ids;
          m2.var[size_t(js.answer_var)] = t;
          m2.plan_order();
          if (!m2.ground_random(rng, opt.degree_weighted) || m2.var[size_t(v)] == m.var[size_t(v)])
            return fail(REJ_NOTHING_TO_NEGATE);
          if (!ground(p.input(op, j), m2.var[size_t(v)], -1)) return false;
        }
        return true;
      }
    }
    return fail(REJ_NO_EDGE);
  }
};

// Sets of accepted candidates are kept (one copy) up to this many ids per worker and
// batch; past it, a candidate that survives de-duplication is executed again instead
// (same bindings, same sets), so memory stays bounded on huge answer sets.
constexpr size_t kArenaIds = size_t(1) << 24;
// What the workers of one batch wrote: per worker, the failed attempts' reasons and the
// accepted candidates' bindings and set sizes, appended in the order drawn. The sets
// themselves are not kept: the candidates that survive de-duplication are executed again
// straight into the result (cheaper than writing every set to memory twice).
struct alignas(64) Arena {
  std::vector<uint8_t> fails;
  std::vector<int32_t> binds;    // num_rel_slots + num_anchor_slots per accepted candidate
  std::vector<int64_t> sizes;    // num_ops set sizes per accepted candidate
  IdBuffer ids{kArenaIds};      // accepted candidates' sets, while under kArenaIds
  void clear() {
    fails.clear();
    binds.clear();
    sizes.clear();
    ids.clear();
  }
};
constexpr int64_t kBatch = 8192;

// A candidate index's outcome; its data lives in arena `worker`.
struct Candidate {
  uint64_t hash;
  int64_t fail_begin;  // into arena.fails
  int64_t item;        // accepted: its number in the arena (binds, sizes)
  int64_t ids_len;     // accepted: total size of its sets
  int64_t ids_begin;   // accepted: its sets in arena.ids, or -1 (execute again)
  int32_t nfails;
  int32_t worker;
  bool ok;
};

// The first grounding step of a candidate (target t, a random in-edge of t, the source
// at its end) is a chain of dependent cache misses. Replaying its first random draws a few
// candidates ahead (the stream is a function of the candidate index) prefetches that chain
// stage by stage: read what an earlier stage brought in, prefetch the next. Only loads.
struct GroundAhead {
  const Graph& g;
  const Adjacency* a = nullptr;
  uint64_t seed, key;
  int32_t op = -1;  // the projection the target is grounded through first, or -1
  GroundAhead(const Graph& g_, const Plan& p, const SampleOptions& opt, uint64_t seed_)
      : g(g_), seed(seed_), key(p.key) {
    int32_t o = p.num_ops() - 1;
    while (o >= 0) {
      const int32_t k = p.kind[size_t(o)];
      if (k == OP_INTERSECT || k == OP_UNION || k == OP_DIFFERENCE || k == OP_TYPE_FILTER) {
        o = p.input(o, 0);
        continue;
      }
      break;
    }
    if (o >= 0 && p.kind[size_t(o)] == OP_PROJECT && p.fixed_rel[size_t(p.arg[size_t(o)])] < 0 &&
        !opt.degree_weighted && g.num_entities > 0) {
      op = o;
      a = &g.adj[p.dir[size_t(o)] == 0 ? 1 : 0];
    }
  }
  // stage 0: the target's directory; 1: the drawn entry; 2: the drawn neighbour.
  void fetch(uint64_t index, int stage) const {
    Rng rng(seed, key, index, 0);
    const int32_t t = int32_t(rng.below(uint64_t(g.num_entities)));
    if (stage == 0) {
      __builtin_prefetch(a->ent_dir.ptr + t);
      return;
    }
    const int64_t lo = a->ent_dir[size_t(t)], nent = a->ent_dir[size_t(t) + 1] - lo;
    if (nent <= 0) return;
    const int64_t e = lo + int64_t(rng.below(uint64_t(nent)));
    if (stage == 1) {
      __builtin_prefetch(a->dir_off.ptr + e);
      __builtin_prefetch(a->dir_rel.ptr + e);
      return;
    }
    const uint32_t sb = a->dir_off[size_t(e)], se = a->dir_off[size_t(e) + 1];
    if (se > sb) __builtin_prefetch(a->nbr.ptr + sb + rng.below(se - sb));
  }
};

// One attempt: ground, execute, check. Appends the candidate to the arena on success.
bool attempt(const Graph& g, const Plan& p, const SampleOptions& opt, Rng& rng, Workspace& ws,
             Arena& arena, Candidate& cand, int& reason, const SeenQueries* known, bool store,
             bool known_positive) {
  const int32_t nops = p.num_ops(), last = nops - 1;
  reset(ws, g, p);
  ws.max_set = opt.max_intermediate;
  ws.match_steps = opt.match_steps;
  ws.skip_diff = -1;
  ws.rel_buf = p.fixed_rel;
  ws.anchor_buf = p.fixed_anchor;
  Grounder gr{g, p, opt, rng, ws, ws.rel_buf, ws.anchor_buf};
  const int32_t t = int32_t(rng.below(uint64_t(g.num_entities)));
  if (!gr.ground(last, t, -1)) {
    reason = gr.reason;
    return false;
  }
  for (int32_t a : gr.anchor)
    if (a < 0) {
      reason = REJ_NO_EDGE;
      return false;
    }
  for (int32_t r : gr.rel)
    if (r < 0) {
      reason = REJ_NO_EDGE;
      return false;
    }
  if (opt.distinct_anchors) {
    std::vector<int32_t>& an = ws.tmp_ids;
    an.assign(gr.anchor.begin(), gr.anchor.end());
    std::sort(an.begin(), an.end());
    if (std::adjacent_find(an.begin(), an.end()) != an.end()) {
      reason = REJ_REPEATED_ANCHOR;
      return false;
    }
  }
  const int32_t* rel = gr.rel.data();
  const int32_t* anchor = gr.anchor.data();
  if (known) {
    // A query drawn in an earlier batch passed every check (checks depend on the query
    // only, and the target is always an answer of a plan without negation): it is a
    // duplicate, with no need to execute it. (Read-only: `seen` changes between batches.)
    cand.hash = canonical_hash(p, rel, anchor, last);
    if (known->contains(cand.hash)) {
      cand.ok = true;
      cand.item = cand.ids_len = 0;
      cand.ids_begin = -1;
      return true;
    }
  }
  // Cheap rejections first, from the inputs of the expensive projections: a lost target
  // (plans with negation) and unions whose branches are known to nest. They reject exactly
  // the queries the checks below would (possibly under another of their reasons).
  if (!known_positive) {
    const int m = member(g, p, rel, anchor, last, t, ws);
    if (m <= 0) {
      reason = m < 0 ? budget_reason(ws) : REJ_TARGET_LOST;
      return false;
    }
  }
  if (opt.nontrivial) {
    for (int32_t op = 0; op < nops; ++op) {
      const int u = union_trivial_early(g, p, rel, anchor, op, ws);
      if (u != 0) {
        reason = u < 0 ? budget_reason(ws) : REJ_TRIVIAL_UNION;
        return false;
      }
      const int x = intersection_trivial_early(g, p, rel, anchor, op, ws);
      if (x != 0) {
        reason = x < 0 ? budget_reason(ws) : REJ_TRIVIAL_INTERSECTION;
        return false;
      }
    }
  }
  if (opt.nontrivial && p.kind[size_t(last)] == OP_PROJECT &&
      p.kind[size_t(p.input(last, 0))] == OP_DIFFERENCE) {
    // The answers project a difference D = K \ R: the negation removes an answer iff an
    // entity of K ∩ R reaches some y that no entity of D reaches (y's reverse slice misses
    // D), which is found before D is projected.
    const int32_t d = p.input(last, 0);
    if (!eval_op(g, p, rel, anchor, d, ws)) {
      reason = budget_reason(ws);
      return false;
    }
    const View kept = ws.sets[size_t(p.input(d, 0))];
    const View left = ws.sets[size_t(d)];
    Set& removed = ws.acc;
    difference_into(kept.data(), kept.size(), left.data(), left.size(), removed);
    const int32_t r = rel[p.arg[size_t(last)]];
    const Adjacency& fwd = g.adj[p.dir[size_t(last)] == 0 ? 0 : 1];
    const Adjacency& back = g.adj[p.dir[size_t(last)] == 0 ? 1 : 0];
    bool removes = false;
    for (size_t i = 0; i < removed.size() && !removes; ++i)
      for (int32_t y : fwd.neighbors(removed[i], r)) {
        const View b = back.neighbors(y, r);
        if (!intersection_exceeds(b.data(), b.size(), left.data(), left.size(), 0)) {
          removes = true;
          break;
        }
      }
    if (!removes) {
      reason = REJ_TRIVIAL_NEGATION;
      return false;
    }
  }
  // Not execute_all: sets the grounding already evaluated (a difference's kept branch)
  // stay valid, since grounding later branches binds none of their slots.
  if (!eval_op(g, p, rel, anchor, last, ws)) {
    reason = budget_reason(ws);
    return false;
  }
  const View answers = ws.sets[size_t(last)];
  if (!known_positive && !contains(answers, t)) {  // a plan without negation keeps t
    reason = REJ_TARGET_LOST;
    return false;
  }
  if (int64_t(answers.size()) < opt.min_answers) {
    reason = REJ_TOO_FEW_ANSWERS;
    return false;
  }
  if (opt.max_answers >= 0 && int64_t(answers.size()) > opt.max_answers) {
    reason = REJ_TOO_MANY_ANSWERS;
    return false;
  }
  if (opt.nontrivial) {
    for (int32_t op = 0; op < nops; ++op) {
      const int32_t k = p.num_inputs(op), kind = p.kind[size_t(op)];
      if (kind == OP_INTERSECT && k >= 2) {
        for (int32_t i = 0; i < k; ++i) {  // without input i the result must be larger
          if (k == 2) {  // without input i the result is the other input
            if (ws.sets[size_t(p.input(op, 1 - i))].size() <= ws.sets[size_t(op)].size()) {
              reason = REJ_TRIVIAL_INTERSECTION;
              return false;
            }
            continue;
          }
          // Intersect all other inputs but the last one, then count against that one.
          Set& acc = ws.acc;
          Set& tmp = ws.acc2;
          View cur;
          bool have = false;
          const int32_t last_other = k - 1 == i ? k - 2 : k - 1;
          for (int32_t j = 0; j < k; ++j) {
            if (j == i || j == last_other) continue;
            const View s = ws.sets[size_t(p.input(op, j))];
            if (!have) {
              cur = s;
              have = true;
            } else {
              intersect_into(cur.data(), cur.size(), s.data(), s.size(), tmp);
              acc.swap(tmp);
              cur = view_of(acc);
            }
          }
          const View l = ws.sets[size_t(p.input(op, last_other))];
          if (!intersection_exceeds(cur.data(), cur.size(), l.data(), l.size(),
                                    ws.sets[size_t(op)].size())) {
            reason = REJ_TRIVIAL_INTERSECTION;
            return false;
          }
        }
      } else if (kind == OP_UNION && k == 2) {  // each input adds: the union beats both
        const size_t u = ws.sets[size_t(op)].size();
        if (u <= ws.sets[size_t(p.input(op, 0))].size() ||
            u <= ws.sets[size_t(p.input(op, 1))].size()) {
          reason = REJ_TRIVIAL_UNION;
          return false;
        }
      } else if (kind == OP_UNION && k > 2) {
        for (int32_t i = 0; i < k; ++i) {  // input i must add an element no other input has
          bool adds = false;
          for (int32_t v : ws.sets[size_t(p.input(op, i))]) {
            bool elsewhere = false;
            for (int32_t j = 0; j < k && !elsewhere; ++j)
              if (j != i && contains(ws.sets[size_t(p.input(op, j))], v)) elsewhere = true;
            if (!elsewhere) {
              adds = true;
              break;
            }
          }
          if (!adds) {
            reason = REJ_TRIVIAL_UNION;
            return false;
          }
        }
      }
    }
    for (int32_t op = 0; op < nops; ++op) {  // a join must not repeat a grounded atom
      if (p.kind[size_t(op)] != OP_JOIN) continue;
      const JoinSpec& js = p.joins[size_t(p.arg[size_t(op)])];
      for (size_t a = 0; a < js.atoms.size(); ++a)
        for (size_t b = a + 1; b < js.atoms.size(); ++b)
          if (!js.negated[a] && !js.negated[b] && js.atoms[a][1] == js.atoms[b][1] &&
              js.atoms[a][2] == js.atoms[b][2] && rel[js.atoms[a][0]] == rel[js.atoms[b][0]]) {
            reason = REJ_TRIVIAL_INTERSECTION;
            return false;
          }
    }
    for (int32_t op = 0; op < nops; ++op) {
      const int32_t kind = p.kind[size_t(op)];
      bool negates = kind == OP_DIFFERENCE;
      if (kind == OP_JOIN) {
        const JoinSpec& js = p.joins[size_t(p.arg[size_t(op)])];
        negates = !js.exclude_vars.empty() ||
                  std::find(js.negated.begin(), js.negated.end(), 1) != js.negated.end();
      }
      if (!negates) continue;
      if (kind == OP_DIFFERENCE && op == last) {  // without it the answers are its kept input
        if (ws.sets[size_t(p.input(op, 0))].size() == answers.size()) {
          reason = REJ_TRIVIAL_NEGATION;
          return false;
        }
        continue;
      }
      if (kind == OP_DIFFERENCE && p.kind[size_t(last)] == OP_PROJECT && p.input(last, 0) == op)
        continue;  // checked before the final projection
      Workspace& alt = ws.alternate();
      reset(alt, g, p);
      alt.skip_diff = alt.skip_join_negations = -1;
      (kind == OP_DIFFERENCE ? alt.skip_diff : alt.skip_join_negations) = op;
      alt.max_set = -1;
      alt.match_steps = opt.match_steps;
      if (!eval_op(g, p, rel, anchor, last, alt)) {
        reason = REJ_MATCH_BUDGET;
        return false;
      }
      if (equal(alt.sets[size_t(last)], answers)) {
        reason = REJ_TRIVIAL_NEGATION;
        return false;
      }
    }
  }
  cand.ok = true;
  if (!known) cand.hash = canonical_hash(p, rel, anchor, last);
  cand.item = int64_t(arena.sizes.size()) / std::max<int32_t>(nops, 1);
  arena.binds.insert(arena.binds.end(), gr.rel.begin(), gr.rel.end());
  arena.binds.insert(arena.binds.end(), gr.anchor.begin(), gr.anchor.end());
  cand.ids_len = 0;
  const int32_t first_kept = opt.answers_only ? last : 0;  // ops whose sets are returned
  for (int32_t op = 0; op < nops; ++op) {
    const int64_t sz = op < first_kept ? 0 : int64_t(ws.sets[size_t(op)].size());
    arena.sizes.push_back(sz);
    cand.ids_len += sz;
  }
  cand.ids_begin = -1;
  if (store && arena.ids.size() + size_t(cand.ids_len) <= arena.ids.capacity()) {
    cand.ids_begin = int64_t(arena.ids.size());
    for (int32_t op = first_kept; op < nops; ++op) {
      const View s = ws.sets[size_t(op)];
      arena.ids.append(s.begin(), s.end());
    }
  }
  return true;
}

}  // namespace

SampleResult sample(const Graph& g, const Plan& p, int64_t n, uint64_t seed,
                    const SampleOptions& opt, SeenQueries* seen_in, int64_t start_candidate) {
  SampleResult res;
  res.set_offsets.push_back(0);
  res.next_candidate = start_candidate;
  if (n <= 0 || g.num_entities == 0) return res;
  const int32_t nops = p.num_ops();
  // Candidate budget: max_candidates, or by default 20 * n + 10000 (saturating) and, so a
  // huge n on a small KG stops instead of running for days, at most 2^20 + 20 * accepted
  // (an acceptance rate below 5% after a million candidates). Checked per candidate, so
  // where it stops does not depend on threads or batch sizes.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const bool by_default = opt.max_candidates <= 0;
  int64_t max_cand = by_default ? (n > (kMax - 10000) / 20 ? kMax : 20 * n + 10000)
                                : opt.max_candidates;
  max_cand = std::min(max_cand, kMax - std::max<int64_t>(start_candidate, 0));
  auto budget = [&](int64_t acc) {
    if (!by_default) return max_cand;
    const int64_t stall = acc > (kMax - (int64_t(1) << 20)) / 20 ? kMax : (int64_t(1) << 20) + 20 * acc;
    return std::min(max_cand, stall);
  };
  SeenQueries local;
  SeenQueries& seen = seen_in ? *seen_in : local;
  int64_t accepted = 0, next = start_candidate;
  const int nt = resolve_threads(opt.threads);
  const int32_t nrel = p.num_rel_slots, nanc = p.num_anchor_slots, nb = nrel + nanc;
  seen.reserve(seen.size() + size_t(std::min<int64_t>(n, int64_t(1) << 22)));
  std::vector<Workspace> workspaces(static_cast<size_t>(nt));  // per worker, reused
  // Two batches in flight: while the caller de-duplicates and copies out one batch, the
  // other workers already draw the next (double-buffered candidates and arenas).
  std::vector<Candidate> cands[2];
  std::vector<Arena> arenas[2] = {std::vector<Arena>(static_cast<size_t>(nt)),
                                  std::vector<Arena>(static_cast<size_t>(nt))};
  std::vector<int64_t> taken;  // candidate numbers (within the batch) accepted, in order
  std::vector<int64_t> dest;   // their first set id in res.set_ids
  bool positive = true;  // no negation: every candidate's target is one of its answers
  // Keep accepted candidates' sets when executing them again would cost more than a copy:
  // a projection of a computed set (a multi-hop path) or a join. Plans of anchor
  // projections only (1p, 2i, 2in, 2u...) re-execute (slice copies): most of their
  // candidates are duplicates, whose sets would be copied for nothing.
  bool store = opt.answers_only;  // answers alone are small: always keep them
  for (int32_t op = 0; op < nops; ++op) {
    const int32_t kind = p.kind[size_t(op)];
    if (kind == OP_JOIN || (kind == OP_PROJECT && p.kind[size_t(p.input(op, 0))] != OP_ANCHOR))
      store = true;
  }
  for (int32_t op = 0; op < nops; ++op) {
    const int32_t kind = p.kind[size_t(op)];
    if (kind != OP_ANCHOR && kind != OP_PROJECT && kind != OP_INTERSECT && kind != OP_UNION &&
        kind != OP_TYPE_FILTER)
      positive = false;
  }
  const GroundAhead ahead(g, p, opt, seed);
  // A batch: candidates [start, start + size) drawn into buffer buf.
  struct Batch {
    int64_t start = 0, size = 0;
    int buf = 0;
    std::unique_ptr<TaskPool::Job> job;
  };
  // The batch size for `want` more acceptances at `rate` (+10%, so the last queries do not
  // take a tail of ever smaller batches), within the candidate budget past `used`.
  auto batch_size = [&](int64_t want, double rate, int64_t used) {
    const double guess = double(want) * 1.1 / std::max(rate, 1e-3) + 64;
    return std::min<int64_t>(budget(accepted) - used,
                             std::min<int64_t>(kBatch, int64_t(std::min(guess, 1e18))));
  };
  auto draw = [&](Batch& bt, const SeenQueries* known) {
    const int buf = bt.buf;
    const int64_t start = bt.start;
    if (int64_t(cands[buf].size()) < bt.size) cands[buf].resize(static_cast<size_t>(bt.size));
    for (auto& a : arenas[buf]) a.clear();
    bt.job = std::make_unique<TaskPool::Job>(bt.size, 64, [&, buf, start, known](int64_t b, int64_t e, int w) {
      Workspace& ws = workspaces[size_t(w)];
      Arena& arena = arenas[buf][size_t(w)];
      for (int64_t i = b; i < e; ++i) {
        if (ahead.op >= 0) {
          if (i + 12 < e) ahead.fetch(uint64_t(start + i + 12), 0);
          if (i + 6 < e) ahead.fetch(uint64_t(start + i + 6), 1);
          if (i + 3 < e) ahead.fetch(uint64_t(start + i + 3), 2);
        }
        Candidate& c = cands[buf][size_t(i)];
        c.ok = false;
        c.worker = w;
        c.fail_begin = int64_t(arena.fails.size());
        c.nfails = 0;
        for (int a = 0; a < opt.max_tries; ++a) {
          Rng rng(seed, p.key, uint64_t(start + i), uint64_t(a));
          int reason = REJ_NO_EDGE;
          if (attempt(g, p, opt, rng, ws, arena, c, reason, known, store, positive)) break;
          arena.fails.push_back(uint8_t(reason));
          ++c.nfails;
        }
      }
    });
  };
  Batch cur, ahead_batch;
  // Declared after everything its jobs touch: on an exception it stops and joins first.
  TaskPool pool(nt);
  double last_rate = 1.0;  // acceptances per consumed candidate in the last batch
  // (the lower of the overall rate and the last batch's: duplicates grow as a pattern's
  // distinct queries run out)
  auto current_rate = [&] {
    const int64_t used = next - start_candidate;
    return accepted > 0 ? std::min(double(accepted) / double(used), last_rate) : 0.8;
  };
  if (accepted < n && next - start_candidate < budget(accepted)) {
    cur.start = next;
    cur.size = batch_size(n - accepted, current_rate(), next - start_candidate);
    draw(cur, positive && seen.size() > 0 ? &seen : nullptr);
    pool.submit(*cur.job);
  }
  while (cur.job) {
    const int64_t batch = cur.size;
    // Queue the next batch at once, unless this one is expected to finish the job, so no
    // worker waits between batches: from the candidate after this batch (consumption stops
    // inside a batch only at the end). It runs while this batch is de-duplicated, and
    // looks its candidates up in `seen` meanwhile, which is safe while no insert rehashes
    // (else its duplicates are found at its own de-duplication).
    if (pool.size() > 1) {
      const double rate = current_rate();
      const int64_t expect = n - accepted - int64_t(double(batch) * rate);
      const int64_t used = cur.start + batch - start_candidate;
      if (expect > 0 && used < budget(accepted)) {
        ahead_batch.start = cur.start + batch;
        ahead_batch.size = batch_size(expect, rate, used);
        ahead_batch.buf = 1 - cur.buf;
        draw(ahead_batch, positive && seen.fits(size_t(batch)) ? &seen : nullptr);
        pool.submit(*ahead_batch.job);
      }
    }
    pool.wait(*cur.job);
    const std::vector<Candidate>& cb = cands[cur.buf];
    const std::vector<Arena>& ab = arenas[cur.buf];
    // Consume candidates in index order; counts cover only the candidates consumed, so
    // they too are the same however the stream is cut into calls. Only the de-duplication
    // is sequential: the accepted candidates' data is copied afterwards.
    taken.clear();
    int64_t i = 0;
    for (; i < batch && accepted < n && next + i - start_candidate < budget(accepted); ++i) {
      const Candidate& c = cb[size_t(i)];
      if (i + 8 < batch && cb[size_t(i + 8)].ok) seen.prefetch(cb[size_t(i + 8)].hash);
      res.attempts += int64_t(c.nfails) + (c.ok ? 1 : 0);
      if (c.nfails) {
        const uint8_t* f = ab[size_t(c.worker)].fails.data() + c.fail_begin;
        for (int32_t k = 0; k < c.nfails; ++k) ++res.rejected[f[k]];
      }
      if (!c.ok) continue;
      if (!seen.insert(c.hash)) {
        ++res.rejected[REJ_DUPLICATE];
        continue;
      }
      taken.push_back(i);
      ++accepted;
    }
    const int64_t m = int64_t(taken.size());
    if (m > 0) {
      const int64_t q0 = int64_t(res.candidate_index.size());
      dest.resize(size_t(m));
      int64_t total = int64_t(res.set_ids.size());
      for (int64_t k = 0; k < m; ++k) {
        dest[size_t(k)] = total;
        total += cb[size_t(taken[size_t(k)])].ids_len;
      }
      if (size_t(total) > res.set_ids.capacity()) {
        // Reserve for the queries still to come at the mean size so far (+5%), so the
        // result is not regrown (copied, and its fresh pages zeroed) batch after batch.
        const double per = double(total) / double(accepted);
        const double want_ids = double(total) + 1.05 * per * double(n - accepted) + 1024;
        const double most = std::max(2.0 * double(total), double(total) + double(1 << 28));
        res.set_ids.reserve(size_t(std::min(want_ids, most)));
      }
      res.set_ids.resize(size_t(total));
      res.set_offsets.resize(size_t((q0 + m) * nops + 1));
      res.rel_bind.resize(size_t((q0 + m) * nrel));
      res.anchor_bind.resize(size_t((q0 + m) * nanc));
      res.candidate_index.resize(size_t(q0 + m));
      const int64_t first = cur.start;
      auto copy_out = [&, q0, first](int64_t b, int64_t e, int w) {
        Workspace& ws = workspaces[size_t(w)];
        for (int64_t k = b; k < e; ++k) {
          const int64_t ci = taken[size_t(k)];
          const Candidate& c = cb[size_t(ci)];
          const Arena& a = ab[size_t(c.worker)];
          const int64_t q = q0 + k;
          const int32_t* bd = a.binds.data() + c.item * nb;
          std::copy(bd, bd + nrel, res.rel_bind.data() + q * nrel);
          std::copy(bd + nrel, bd + nb, res.anchor_bind.data() + q * nanc);
          const int64_t* sz = a.sizes.data() + c.item * nops;
          int64_t off = dest[size_t(k)];
          int64_t* so = res.set_offsets.data() + q * nops + 1;
          res.candidate_index[size_t(q)] = first + ci;
          if (c.ids_begin >= 0) {
            const int32_t* src = a.ids.data() + c.ids_begin;
            std::copy(src, src + c.ids_len, res.set_ids.data() + off);
            for (int32_t o = 0; o < nops; ++o) so[o] = (off += sz[o]);
            continue;
          }
          // The same bindings give the same sets (execution is exact and deterministic).
          ws.max_set = -1;
          ws.match_steps = opt.match_steps;
          ws.skip_diff = ws.skip_join_negations = -1;
          if (!execute_all(g, p, bd, bd + nrel, ws))
            throw std::logic_error("sample: re-execution of an accepted query failed");
          for (int32_t o = 0; o < nops; ++o) {
            if (opt.answers_only && o < nops - 1) {
              so[o] = off;
              continue;
            }
            const View s = ws.sets[size_t(o)];
            if (int64_t(s.size()) != sz[o])
              throw std::logic_error("sample: re-execution of an accepted query differs");
            std::copy(s.begin(), s.end(), res.set_ids.data() + off);
            so[o] = (off += sz[o]);
          }
        }
      };
      // Copies alone (no re-execution) of less than ~1 MB are done here; the rest is a
      // job the other workers join once they are done drawing the next batch.
      bool copies_only = true;
      for (int64_t k = 0; k < m && copies_only; ++k) copies_only = cb[size_t(taken[size_t(k)])].ids_begin >= 0;
      if (pool.size() == 1 || (copies_only && total - dest[0] < (int64_t(1) << 18))) {
        copy_out(0, m, 0);
      } else {
        TaskPool::Job copy(m, 64, copy_out);
        pool.submit(copy);
        pool.wait(copy);
      }
    }
    const bool more = i == batch && accepted < n && next + i - start_candidate < budget(accepted);
    last_rate = i > 0 ? double(m) / double(i) : last_rate;
    next += i;
    if (!more) {
      if (ahead_batch.job) pool.cancel(*ahead_batch.job);
      break;
    }
    if (!ahead_batch.job) {
      ahead_batch.start = next;
      ahead_batch.size = batch_size(n - accepted, current_rate(), next - start_candidate);
      ahead_batch.buf = 1 - cur.buf;
      draw(ahead_batch, positive && seen.size() > 0 ? &seen : nullptr);
      pool.submit(*ahead_batch.job);
    }
    cur = std::move(ahead_batch);
    ahead_batch = Batch{};
  }
  res.candidates = next - start_candidate;
  res.next_candidate = next;
  res.exhausted = accepted < n;
  return res;
}

std::vector<int64_t> match_count(const Graph& g, const Plan& p, int32_t join, const int32_t* rel,
                                 const int32_t* anchor, int64_t n, int64_t limit, int threads) {
  std::vector<int64_t> counts(size_t(n), 0);
  const JoinSpec& js = p.joins[size_t(join)];
  parallel_chunks(n, 1, threads, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      Matcher m(g, js, rel + i * p.num_rel_slots, p.num_rel_slots, anchor + i * p.num_anchor_slots,
                p.num_anchor_slots);
      m.plan_order();
      int64_t c = 0;
      m.run([&]() {
        ++c;
        return limit < 0 || c < limit;
      });
      counts[size_t(i)] = c;
    }
  });
  return counts;
}

}  // namespace kg2tool
