// graph.cpp: Graph::validate, run on every array set that comes from outside
// (a snapshot on disk, a user's arrays), so that no later look-up can read out of bounds.
#include "graph.h"

#include <string>

#include "parallel.h"

namespace kg2tool {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument(what); }

void validate_adjacency(const Adjacency& a, const char* name, int64_t N, int64_t R) {
  const std::string p = std::string(name) + ": ";
  if (a.ent_dir.len != size_t(N) + 1) fail(p + "entity directory has wrong length");
  if (a.ent_dir[0] != 0) fail(p + "entity directory does not start at 0");
  const int64_t D = int64_t(a.dir_rel.len);
  if (a.ent_dir[N] != D) fail(p + "entity directory does not end at the number of entries");
  if (a.dir_off.len != size_t(D) + 1) fail(p + "entry offsets have wrong length");
  const int64_t E = int64_t(a.nbr.len);
  if (a.dir_off[0] != 0 || int64_t(a.dir_off[D]) != E)
    fail(p + "entry offsets do not span the neighbour array");
  if (a.rel_dir_off.len != size_t(R) + 1 || a.rel_dir.len != size_t(D) || a.rel_cum.len != size_t(D))
    fail(p + "relation index has wrong length");
  for (int64_t u = 0; u < N; ++u) {
    int64_t b = a.ent_dir[u], e = a.ent_dir[u + 1];
    if (b > e || e > D) fail(p + "entity directory not monotonic at entity " + std::to_string(u));
  }
  for (int64_t u = 0; u < N; ++u)
    for (int64_t k = a.ent_dir[u]; k < a.ent_dir[u + 1]; ++k) {
      int32_t r = a.dir_rel[k];
      if (r < 0 || r >= R) fail(p + "relation id out of range in entry " + std::to_string(k));
      if (k > a.ent_dir[u] && a.dir_rel[k - 1] >= r)
        fail(p + "relations not strictly increasing at entry " + std::to_string(k));
    }
  for (int64_t k = 0; k < D; ++k)
    if (a.dir_off[k] >= a.dir_off[k + 1])
      fail(p + "empty or decreasing entry at " + std::to_string(k));
  for (int64_t k = 0; k < D; ++k)
    for (uint32_t j = a.dir_off[k]; j < a.dir_off[k + 1]; ++j) {
      int32_t v = a.nbr[j];
      if (v < 0 || v >= N) fail(p + "neighbour id out of range at edge " + std::to_string(j));
      if (j > a.dir_off[k] && a.nbr[j - 1] >= v)
        fail(p + "neighbours not strictly increasing at edge " + std::to_string(j));
    }
  if (a.rel_dir_off[0] != 0 || a.rel_dir_off[R] != D) fail(p + "relation index does not span entries");
  for (int64_t r = 0; r < R; ++r) {
    if (a.rel_dir_off[r] > a.rel_dir_off[r + 1] || a.rel_dir_off[r + 1] > D)
      fail(p + "relation index not monotonic at relation " + std::to_string(r));
    uint32_t run = 0;
    for (int64_t j = a.rel_dir_off[r]; j < a.rel_dir_off[r + 1]; ++j) {
      uint32_t k = a.rel_dir[j];
      if (int64_t(k) >= D || a.dir_rel[k] != r)
        fail(p + "relation index entry " + std::to_string(j) + " is wrong");
      run += a.dir_off[k + 1] - a.dir_off[k];
      if (a.rel_cum[j] != run) fail(p + "relation edge counts wrong at " + std::to_string(j));
    }
  }
}

void validate_csr(Span<const int64_t> off, Span<const int32_t> val, int64_t rows, int64_t limit,
                  const char* name) {
  const std::string p = std::string(name) + ": ";
  if (off.len != size_t(rows) + 1 || off[0] != 0 || off[rows] != int64_t(val.len))
    fail(p + "offsets do not span the values");
  for (int64_t u = 0; u < rows; ++u) {
    if (off[u] > off[u + 1] || off[u + 1] > int64_t(val.len))
      fail(p + "offsets not monotonic at " + std::to_string(u));
    for (int64_t j = off[u]; j < off[u + 1]; ++j) {
      if (val[j] < 0 || val[j] >= limit) fail(p + "value out of range at " + std::to_string(j));
      if (j > off[u] && val[j - 1] >= val[j]) fail(p + "values not sorted at " + std::to_string(j));
    }
  }
}

}  // namespace

void Graph::validate() const {
  if (num_entities < 0 || num_relations < 0 || num_types < 0) fail("negative counts");
  validate_adjacency(adj[0], "out-adjacency", num_entities, num_relations);
  validate_adjacency(adj[1], "in-adjacency", num_entities, num_relations);
  if (adj[0].nbr.len != adj[1].nbr.len) fail("out- and in-adjacency hold different edge counts");
  if (type_off.len > 1 || types.len > 0) {
    validate_csr(type_off, types, num_entities, num_types, "entity types");
    validate_csr(type_ent_off, type_ent, num_types, num_entities, "type members");
  }
}

}  // namespace kg2tool

namespace kg2tool {

void Graph::build_owners(std::vector<int32_t> (&owners)[2]) const {
  for (int dir = 0; dir < 2; ++dir) {
    const Adjacency& a = adj[dir];
    const size_t D = a.dir_rel.len;
    std::vector<int32_t> entry_owner(D);
    for (int32_t u = 0; u < num_entities; ++u) {
      const int64_t b = a.ent_dir[size_t(u)], e = a.ent_dir[size_t(u) + 1];
      if (b < 0 || e < b || size_t(e) > D) throw std::invalid_argument("entity directory out of range");
      for (int64_t k = b; k < e; ++k) entry_owner[size_t(k)] = u;
    }
    owners[dir].resize(a.rel_dir.len);
    for (size_t j = 0; j < a.rel_dir.len; ++j) {
      if (a.rel_dir[j] >= D) throw std::invalid_argument("relation index out of range");
      owners[dir][j] = entry_owner[a.rel_dir[j]];
    }
  }
}

}  // namespace kg2tool
