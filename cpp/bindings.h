// bindings.h: what the per-area binding files share: the Python-facing Graph holder.
#pragma once
#include <pybind11/pybind11.h>

#include <vector>

#include "graph.h"

namespace kg2tool {
namespace py = pybind11;

// The Graph view plus the Python arrays it points into, kept alive as long as it lives.
struct PyGraph {
  Graph g;
  py::dict arrays_;
  PyGraph(int32_t num_entities, int32_t num_relations, int32_t num_types, py::dict arrays,
          bool validate);
  // The graph with its engine-side arrays (relation entry owners, see Adjacency::rel_owner),
  // built on the first call; call with the GIL held.
  const Graph& engine_graph();

 private:
  std::vector<int32_t> owners_[2];
  bool owners_built_ = false;
};

void check_entity(const Graph& g, int64_t u, const char* what);
void check_relation(const Graph& g, int64_t r);

void register_graph(py::module_& m);
void register_engine(py::module_& m);

}  // namespace kg2tool
