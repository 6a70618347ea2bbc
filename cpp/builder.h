// builder.h: builds the CSR arrays of graph.h from id columns (head, relation, tail).
// Exact duplicate triples are dropped and counted. Arrays are owned by BuiltGraph until
// handed to Python without copying.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "graph.h"

namespace kg2tool {

struct BuiltAdjacency {
  std::vector<int64_t> ent_dir;
  std::vector<int32_t> dir_rel;
  std::vector<uint32_t> dir_off;
  std::vector<int32_t> nbr;
  std::vector<int64_t> rel_dir_off;
  std::vector<uint32_t> rel_dir;
  std::vector<uint32_t> rel_cum;
};

struct BuiltGraph {
  BuiltAdjacency adj[2];
  std::vector<int64_t> type_off, type_ent_off;
  std::vector<int32_t> types, type_ent;
  int64_t duplicates = 0;
};

// heads/relations/tails have n entries; ids must be in range (checked, throws).
std::unique_ptr<BuiltGraph> build_graph(const int32_t* heads, const int32_t* relations,
                                        const int32_t* tails, int64_t n, int32_t num_entities,
                                        int32_t num_relations, int threads);

// Entity -> types and type -> entities CSR from (entity, type) pairs (duplicates dropped).
void build_types(BuiltGraph& g, const int32_t* ents, const int32_t* tys, int64_t n,
                 int32_t num_entities, int32_t num_types);

}  // namespace kg2tool
