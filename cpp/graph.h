// graph.h: the KG as CSR adjacency, one block per direction, viewed over flat arrays.
//
// Contract (checked by Graph::validate, which every constructor from outside data runs):
// for direction d (0 = out: head -> tails, 1 = in: tail -> heads)
//   ent_dir[N+1]  int64   directory entries of entity u are [ent_dir[u], ent_dir[u+1])
//   dir_rel[D]    int32   relation of a directory entry, strictly increasing within an entity
//   dir_off[D+1]  uint32  neighbours of entry k are nbr[dir_off[k] .. dir_off[k+1])
//   nbr[E]        int32   neighbour ids, strictly increasing within an entry (no duplicates)
//   rel_dir_off[R+1] int64, rel_dir[D] uint32: entries of relation r, by entity
//   rel_cum[D]    uint32  running edge count over rel_dir within a relation (inclusive)
// so the (entity, relation) slice is found by a binary search over the entity's few
// relations, and a uniform edge of relation r by a binary search over rel_cum.
// Entity types (optional): type_off[N+1] int64, types[...] int32 sorted per entity;
// type_ent_off[T+1] int64, type_ent[...] int32 sorted: entities of each type.
// The Graph never owns memory: arrays come from the builder (numpy capsules) or from a
// memory-mapped snapshot, and the Python object keeps them alive.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "span.h"

namespace kg2tool {

struct Adjacency {
  Span<const int64_t> ent_dir;
  Span<const int32_t> dir_rel;
  Span<const uint32_t> dir_off;
  Span<const int32_t> nbr;
  Span<const int64_t> rel_dir_off;
  Span<const uint32_t> rel_dir;
  Span<const uint32_t> rel_cum;
  // Optional (built by the engine on first use, not stored): rel_owner[j] is the entity of
  // entry rel_dir[j], so a relation's entries can be walked in entity order.
  Span<const int32_t> rel_owner;

  // Directory entry of (u, r), or -1 when u has no r-edge in this direction.
  int64_t find(int32_t u, int32_t r) const { return find_in(ent_dir[u], ent_dir[u + 1], r); }
  // Entry of relation r among entries [b, e) of one entity, or -1. Branchless binary
  // search (conditional moves): relation ids are random, so a branchy search mispredicts
  // about once per step.
  int64_t find_in(int64_t b, int64_t e, int32_t r) const {
    size_t n = size_t(e - b);
    if (n == 0) return -1;
    const int32_t* base = dir_rel.ptr + b;
    while (n > 1) {
      const size_t half = n / 2;
      base = base[half] <= r ? base + half : base;
      n -= half;
    }
    return *base == r ? base - dir_rel.ptr : -1;
  }
  Span<const int32_t> entry(int64_t k) const {
    return Span<const int32_t>(nbr.ptr + dir_off[k], dir_off[k + 1] - dir_off[k]);
  }
  Span<const int32_t> neighbors(int32_t u, int32_t r) const {
    int64_t k = find(u, r);
    if (k < 0) return Span<const int32_t>(nbr.ptr, 0);
    return entry(k);
  }
  // Entity owning directory entry k.
  int32_t owner(int64_t k) const {
    const int64_t* it = std::upper_bound(ent_dir.ptr, ent_dir.ptr + ent_dir.len, k);
    return static_cast<int32_t>((it - ent_dir.ptr) - 1);
  }
  int64_t num_entries(int32_t u) const { return ent_dir[u + 1] - ent_dir[u]; }
  int64_t degree(int32_t u) const {  // all relations
    if (ent_dir[u + 1] == ent_dir[u]) return 0;
    return int64_t(dir_off[ent_dir[u + 1]]) - int64_t(dir_off[ent_dir[u]]);
  }
  uint32_t rel_edges(int32_t r) const {
    int64_t b = rel_dir_off[r], e = rel_dir_off[r + 1];
    return b == e ? 0u : rel_cum[e - 1];
  }
  int64_t rel_entities(int32_t r) const { return rel_dir_off[r + 1] - rel_dir_off[r]; }
  // The x-th edge of relation r (0 <= x < rel_edges(r)): returns entry k and offset in it.
  int64_t rel_edge_entry(int32_t r, uint32_t x, uint32_t* within) const {
    const uint32_t* b = rel_cum.ptr + rel_dir_off[r];
    const uint32_t* e = rel_cum.ptr + rel_dir_off[r + 1];
    const uint32_t* it = std::upper_bound(b, e, x);
    uint32_t before = (it == b) ? 0u : *(it - 1);
    *within = x - before;
    return rel_dir[it - rel_cum.ptr];
  }
};

struct Graph {
  int32_t num_entities = 0;
  int32_t num_relations = 0;
  int32_t num_types = 0;
  Adjacency adj[2];  // 0: out (head -> tail), 1: in (tail -> head)
  Span<const int64_t> type_off;
  Span<const int32_t> types;
  Span<const int64_t> type_ent_off;
  Span<const int32_t> type_ent;

  const Adjacency& out() const { return adj[0]; }
  const Adjacency& in() const { return adj[1]; }
  int64_t num_edges() const { return int64_t(adj[0].nbr.len); }
  bool has_types() const { return type_off.len == size_t(num_entities) + 1; }
  bool has_type(int32_t u, int32_t t) const {
    if (!has_types()) return false;
    const int32_t* b = types.ptr + type_off[u];
    const int32_t* e = types.ptr + type_off[u + 1];
    return std::binary_search(b, e, t);
  }
  // Throws std::invalid_argument naming the first broken invariant; never reads out of bounds.
  void validate() const;
  // The rel_owner arrays of both directions (for the span of the Graph's arrays), or
  // std::invalid_argument when an index is out of range.
  void build_owners(std::vector<int32_t> (&owners)[2]) const;
};

}  // namespace kg2tool
