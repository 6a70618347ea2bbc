// builder.cpp: counting sort by source entity, then a per-entity sort of packed
// (relation, neighbour) keys; duplicates fall out as equal neighbouring keys.
// Every pass is either a scatter in input order or per-entity work on disjoint ranges,
// so the arrays are identical whatever the thread count.
#include "builder.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "parallel.h"

namespace kg2tool {
namespace {

void check_ids(const int32_t* a, int64_t n, int32_t limit, const char* what, int threads) {
  std::vector<int64_t> bad(resolve_threads(threads) + 1, -1);
  parallel_ranges(n, threads, [&](int64_t b, int64_t e, int t) {
    for (int64_t i = b; i < e; ++i)
      if (a[i] < 0 || a[i] >= limit) {
        bad[t] = i;
        return;
      }
  });
  for (int64_t i : bad)
    if (i >= 0)
      throw std::invalid_argument(std::string(what) + " id " + std::to_string(a[i]) +
                                  " at row " + std::to_string(i) + " is out of range [0, " +
                                  std::to_string(limit) + ")");
}

// Returns number of duplicates removed.
int64_t build_direction(BuiltAdjacency& out, const int32_t* src, const int32_t* rel,
                        const int32_t* dst, int64_t n, int32_t N, int32_t R, int threads) {
  std::vector<int64_t> start(size_t(N) + 1, 0);
  for (int64_t i = 0; i < n; ++i) start[size_t(src[i]) + 1]++;
  for (int32_t u = 0; u < N; ++u) start[size_t(u) + 1] += start[u];
  std::vector<uint64_t> keys(static_cast<size_t>(n));
  {
    std::vector<int64_t> pos(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; ++i)
      keys[size_t(pos[src[i]]++)] = (uint64_t(uint32_t(rel[i])) << 32) | uint32_t(dst[i]);
  }
  // Per entity: sort, unique; count unique edges and distinct relations.
  std::vector<int64_t> uniq(size_t(N) + 1, 0), nrel(size_t(N) + 1, 0);
  parallel_chunks(N, 4096, threads, [&](int64_t b, int64_t e, int) {
    for (int64_t u = b; u < e; ++u) {
      uint64_t* kb = keys.data() + start[u];
      uint64_t* ke = keys.data() + start[u + 1];
      std::sort(kb, ke);
      uint64_t* kend = std::unique(kb, ke);
      uniq[u + 1] = kend - kb;
      int64_t c = 0;
      for (uint64_t* k = kb; k < kend; ++k)
        if (k == kb || (*k >> 32) != (*(k - 1) >> 32)) ++c;
      nrel[u + 1] = c;
    }
  });
  for (int32_t u = 0; u < N; ++u) {
    uniq[size_t(u) + 1] += uniq[u];
    nrel[size_t(u) + 1] += nrel[u];
  }
  const int64_t E = uniq[N], D = nrel[N];
  out.ent_dir.assign(nrel.begin(), nrel.end());
  out.dir_rel.resize(size_t(D));
  out.dir_off.resize(size_t(D) + 1);
  out.nbr.resize(size_t(E));
  parallel_chunks(N, 4096, threads, [&](int64_t b, int64_t e, int) {
    for (int64_t u = b; u < e; ++u) {
      const uint64_t* kb = keys.data() + start[u];
      const int64_t m = uniq[u + 1] - uniq[u];
      int64_t w = uniq[u], d = nrel[u];
      for (int64_t j = 0; j < m; ++j, ++w) {
        uint64_t k = kb[j];
        if (j == 0 || (k >> 32) != (kb[j - 1] >> 32)) {
          out.dir_rel[size_t(d)] = int32_t(k >> 32);
          out.dir_off[size_t(d)] = uint32_t(w);
          ++d;
        }
        out.nbr[size_t(w)] = int32_t(uint32_t(k));
      }
    }
  });
  out.dir_off[size_t(D)] = uint32_t(E);
  std::vector<uint64_t>().swap(keys);
  // Relation index: stable counting sort of directory entries by relation.
  out.rel_dir_off.assign(size_t(R) + 1, 0);
  for (int64_t k = 0; k < D; ++k) out.rel_dir_off[size_t(out.dir_rel[k]) + 1]++;
  for (int32_t r = 0; r < R; ++r) out.rel_dir_off[size_t(r) + 1] += out.rel_dir_off[r];
  out.rel_dir.resize(size_t(D));
  out.rel_cum.resize(size_t(D));
  {
    std::vector<int64_t> pos(out.rel_dir_off.begin(), out.rel_dir_off.end() - 1);
    for (int64_t k = 0; k < D; ++k) out.rel_dir[size_t(pos[out.dir_rel[k]]++)] = uint32_t(k);
  }
  for (int32_t r = 0; r < R; ++r) {
    uint32_t run = 0;
    for (int64_t j = out.rel_dir_off[r]; j < out.rel_dir_off[size_t(r) + 1]; ++j) {
      uint32_t k = out.rel_dir[j];
      run += out.dir_off[k + 1] - out.dir_off[k];
      out.rel_cum[size_t(j)] = run;
    }
  }
  return n - E;
}

}  // namespace

std::unique_ptr<BuiltGraph> build_graph(const int32_t* heads, const int32_t* relations,
                                        const int32_t* tails, int64_t n, int32_t num_entities,
                                        int32_t num_relations, int threads) {
  if (num_entities < 0 || num_relations < 0)
    throw std::invalid_argument("negative entity or relation count");
  if (n >= int64_t(std::numeric_limits<uint32_t>::max()))
    throw std::invalid_argument("at most 4,294,967,294 triples per graph are supported, got " +
                                std::to_string(n));
  check_ids(heads, n, num_entities, "head", threads);
  check_ids(relations, n, num_relations, "relation", threads);
  check_ids(tails, n, num_entities, "tail", threads);
  auto g = std::make_unique<BuiltGraph>();
  g->duplicates =
      build_direction(g->adj[0], heads, relations, tails, n, num_entities, num_relations, threads);
  build_direction(g->adj[1], tails, relations, heads, n, num_entities, num_relations, threads);
  g->type_off.assign(1, 0);
  g->type_ent_off.assign(1, 0);
  return g;
}

void build_types(BuiltGraph& g, const int32_t* ents, const int32_t* tys, int64_t n,
                 int32_t num_entities, int32_t num_types) {
  check_ids(ents, n, num_entities, "entity", 1);
  check_ids(tys, n, num_types, "type", 1);
  auto csr = [n](const int32_t* a, const int32_t* b, int32_t na, std::vector<int64_t>& off,
                 std::vector<int32_t>& val) {
    off.assign(size_t(na) + 1, 0);
    for (int64_t i = 0; i < n; ++i) off[size_t(a[i]) + 1]++;
    for (int32_t u = 0; u < na; ++u) off[size_t(u) + 1] += off[u];
    std::vector<int32_t> tmp(static_cast<size_t>(n));
    std::vector<int64_t> pos(off.begin(), off.end() - 1);
    for (int64_t i = 0; i < n; ++i) tmp[size_t(pos[a[i]]++)] = b[i];
    // sort + unique per row, then compact
    std::vector<int64_t> noff(size_t(na) + 1, 0);
    int64_t w = 0;
    for (int32_t u = 0; u < na; ++u) {
      auto rb = tmp.begin() + off[u], re = tmp.begin() + off[size_t(u) + 1];
      std::sort(rb, re);
      auto ue = std::unique(rb, re);
      for (auto it = rb; it != ue; ++it) tmp[size_t(w++)] = *it;
      noff[size_t(u) + 1] = w;
    }
    tmp.resize(size_t(w));
    off.swap(noff);
    val.swap(tmp);
  };
  csr(ents, tys, num_entities, g.type_off, g.types);
  csr(tys, ents, num_types, g.type_ent_off, g.type_ent);
}

}  // namespace kg2tool
