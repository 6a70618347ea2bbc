// register_graph.cpp: binds graph building and neighbour look-ups; conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "builder.h"
#include "numpy_util.h"

namespace kg2tool {
namespace {

const char* kAdjNames[] = {"ent_dir", "dir_rel", "dir_off", "nbr", "rel_dir_off", "rel_dir", "rel_cum"};

py::dict arrays_of(BuiltGraph& g) {
  py::dict d;
  for (int dir = 0; dir < 2; ++dir) {
    std::string p = dir == 0 ? "out." : "in.";
    BuiltAdjacency& a = g.adj[dir];
    d[py::str(p + "ent_dir")] = to_numpy(std::move(a.ent_dir));
    d[py::str(p + "dir_rel")] = to_numpy(std::move(a.dir_rel));
    d[py::str(p + "dir_off")] = to_numpy(std::move(a.dir_off));
    d[py::str(p + "nbr")] = to_numpy(std::move(a.nbr));
    d[py::str(p + "rel_dir_off")] = to_numpy(std::move(a.rel_dir_off));
    d[py::str(p + "rel_dir")] = to_numpy(std::move(a.rel_dir));
    d[py::str(p + "rel_cum")] = to_numpy(std::move(a.rel_cum));
  }
  return d;
}

}  // namespace

const Graph& PyGraph::engine_graph() {
  if (!owners_built_) {
    // Built without the GIL into local arrays; installed with it held (another thread may
    // have installed them meanwhile; engine calls copy the Graph view while holding it).
    std::vector<int32_t> built[2];
    std::string err;
    {
      py::gil_scoped_release nogil;
      try {
        g.build_owners(built);
      } catch (const std::invalid_argument& e) {
        err = e.what();
      }
    }
    if (!err.empty()) throw py::value_error("invalid graph arrays: " + err);
    if (!owners_built_) {
      for (int d = 0; d < 2; ++d) {
        owners_[d] = std::move(built[d]);
        g.adj[d].rel_owner = Span<const int32_t>(owners_[d].data(), owners_[d].size());
      }
      owners_built_ = true;
    }
  }
  return g;
}

PyGraph::PyGraph(int32_t num_entities, int32_t num_relations, int32_t num_types, py::dict arrays,
                 bool validate)
    : arrays_(arrays) {
  if (num_entities < 0 || num_relations < 0 || num_types < 0)
    throw py::value_error("invalid graph arrays: negative entity, relation or type count");
  g.num_entities = num_entities;
  g.num_relations = num_relations;
  g.num_types = num_types;
  for (int dir = 0; dir < 2; ++dir) {
    std::string p = dir == 0 ? "out." : "in.";
    auto get = [&](const char* n) -> py::handle {
      py::str key(p + n);
      if (!arrays.contains(key)) throw py::value_error("graph arrays: missing '" + p + n + "'");
      return arrays[key];
    };
    Adjacency& a = g.adj[dir];
    a.ent_dir = as_span<int64_t>(get("ent_dir"), p + "ent_dir");
    a.dir_rel = as_span<int32_t>(get("dir_rel"), p + "dir_rel");
    a.dir_off = as_span<uint32_t>(get("dir_off"), p + "dir_off");
    a.nbr = as_span<int32_t>(get("nbr"), p + "nbr");
    a.rel_dir_off = as_span<int64_t>(get("rel_dir_off"), p + "rel_dir_off");
    a.rel_dir = as_span<uint32_t>(get("rel_dir"), p + "rel_dir");
    a.rel_cum = as_span<uint32_t>(get("rel_cum"), p + "rel_cum");
  }
  if (arrays.contains("type_off")) {
    g.type_off = as_span<int64_t>(arrays["type_off"], "type_off");
    g.types = as_span<int32_t>(arrays["types"], "types");
    g.type_ent_off = as_span<int64_t>(arrays["type_ent_off"], "type_ent_off");
    g.type_ent = as_span<int32_t>(arrays["type_ent"], "type_ent");
  }
  if (validate) {
    std::string err;
    {
      py::gil_scoped_release nogil;
      try {
        g.validate();
      } catch (const std::invalid_argument& e) {
        err = e.what();
      }
    }
    if (!err.empty()) throw py::value_error("invalid graph arrays: " + err);
  } else if (g.adj[0].ent_dir.len != size_t(num_entities) + 1 ||
             g.adj[1].ent_dir.len != size_t(num_entities) + 1) {
    throw py::value_error("invalid graph arrays: entity directory length does not match");
  }
}

void check_entity(const Graph& g, int64_t u, const char* what) {
  if (u < 0 || u >= g.num_entities)
    throw py::index_error(std::string(what) + " id " + std::to_string(u) + " out of range [0, " +
                          std::to_string(g.num_entities) + ")");
}
void check_relation(const Graph& g, int64_t r) {
  if (r < 0 || r >= g.num_relations)
    throw py::index_error("relation id " + std::to_string(r) + " out of range [0, " +
                          std::to_string(g.num_relations) + ")");
}

void register_graph(py::module_& m) {
  m.def(
      "build_arrays",
      [](py::array_t<int32_t, py::array::c_style> heads,
         py::array_t<int32_t, py::array::c_style> relations,
         py::array_t<int32_t, py::array::c_style> tails, int32_t num_entities,
         int32_t num_relations, int threads) {
        if (heads.ndim() != 1 || relations.ndim() != 1 || tails.ndim() != 1 ||
            heads.size() != relations.size() || heads.size() != tails.size())
          throw py::value_error("heads, relations and tails must be 1-D arrays of equal length");
        std::unique_ptr<BuiltGraph> g;
        {
          py::gil_scoped_release nogil;
          g = build_graph(heads.data(), relations.data(), tails.data(), heads.size(), num_entities,
                          num_relations, threads);
        }
        int64_t dups = g->duplicates;
        return py::make_tuple(arrays_of(*g), dups);
      },
      py::arg("heads"), py::arg("relations"), py::arg("tails"), py::arg("num_entities"),
      py::arg("num_relations"), py::arg("threads") = 0,
      "Build the CSR arrays of both directions from id columns; returns (arrays, duplicates).");
  m.def(
      "build_type_arrays",
      [](py::array_t<int32_t, py::array::c_style> ents, py::array_t<int32_t, py::array::c_style> tys,
         int32_t num_entities, int32_t num_types) {
        if (ents.ndim() != 1 || tys.ndim() != 1 || ents.size() != tys.size())
          throw py::value_error("entity and type id arrays must be 1-D of equal length");
        BuiltGraph g;
        {
          py::gil_scoped_release nogil;
          build_types(g, ents.data(), tys.data(), ents.size(), num_entities, num_types);
        }
        py::dict d;
        d["type_off"] = to_numpy(std::move(g.type_off));
        d["types"] = to_numpy(std::move(g.types));
        d["type_ent_off"] = to_numpy(std::move(g.type_ent_off));
        d["type_ent"] = to_numpy(std::move(g.type_ent));
        return d;
      },
      py::arg("entities"), py::arg("types"), py::arg("num_entities"), py::arg("num_types"),
      "Entity->types and type->entities CSR arrays from (entity, type) id pairs.");

  py::class_<PyGraph>(m, "Graph", "A read-only CSR view over arrays it keeps alive.")
      .def(py::init<int32_t, int32_t, int32_t, py::dict, bool>(), py::arg("num_entities"),
           py::arg("num_relations"), py::arg("num_types"), py::arg("arrays"),
           py::arg("validate") = true)
      .def_property_readonly("num_entities", [](const PyGraph& p) { return p.g.num_entities; })
      .def_property_readonly("num_relations", [](const PyGraph& p) { return p.g.num_relations; })
      .def_property_readonly("num_types", [](const PyGraph& p) { return p.g.num_types; })
      .def_property_readonly("num_edges", [](const PyGraph& p) { return p.g.num_edges(); })
      .def_property_readonly("arrays", [](const PyGraph& p) { return p.arrays_; })
      .def_property_readonly("nbytes",
                             [](const PyGraph& p) {
                               int64_t total = 0;
                               for (auto item : p.arrays_)
                                 total += py::reinterpret_borrow<py::array>(item.second).nbytes();
                               return total;
                             })
      .def(
          "neighbors",
          [](const PyGraph& p, py::array_t<int32_t, py::array::c_style | py::array::forcecast> ids,
             py::array_t<int32_t, py::array::c_style | py::array::forcecast> rels, bool inverse) {
            const Graph& g = p.g;
            const int64_t n = ids.size();
            const bool one_rel = rels.size() == 1;
            if (!one_rel && rels.size() != n)
              throw py::value_error("relations must be one id or one per entity");
            const int32_t* ip = ids.data();
            const int32_t* rp = rels.data();
            for (int64_t i = 0; i < n; ++i) check_entity(g, ip[i], "entity");
            for (int64_t i = 0; i < rels.size(); ++i) check_relation(g, rp[i]);
            std::vector<int64_t> offsets(size_t(n) + 1, 0);
            std::vector<int32_t> out;
            {
              py::gil_scoped_release nogil;
              const Adjacency& a = g.adj[inverse ? 1 : 0];
              for (int64_t i = 0; i < n; ++i) {
                auto s = a.neighbors(ip[i], one_rel ? rp[0] : rp[i]);
                offsets[size_t(i) + 1] = offsets[size_t(i)] + int64_t(s.len);
              }
              out.resize(size_t(offsets[size_t(n)]));
              for (int64_t i = 0; i < n; ++i) {
                auto s = a.neighbors(ip[i], one_rel ? rp[0] : rp[i]);
                std::copy(s.begin(), s.end(), out.begin() + offsets[size_t(i)]);
              }
            }
            return py::make_tuple(to_numpy(std::move(offsets)), to_numpy(std::move(out)));
          },
          py::arg("entities"), py::arg("relations"), py::arg("inverse") = false,
          "Batched (entity, relation) neighbour sets: (offsets int64[n+1], ids int32).")
      .def(
          "neighbor_view",
          [](py::object self, int64_t u, int64_t r, bool inverse) {
            const PyGraph& p = self.cast<const PyGraph&>();
            check_entity(p.g, u, "entity");
            check_relation(p.g, r);
            auto s = p.g.adj[inverse ? 1 : 0].neighbors(int32_t(u), int32_t(r));
            py::array_t<int32_t> view({py::ssize_t(s.len)}, {py::ssize_t(sizeof(int32_t))}, s.ptr,
                                      self);
            py::detail::array_proxy(view.ptr())->flags &=
                ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
            return view;
          },
          py::arg("entity"), py::arg("relation"), py::arg("inverse") = false,
          "The sorted neighbour slice of one (entity, relation), as a read-only view (no copy).")
      .def(
          "degrees",
          [](const PyGraph& p, bool inverse) {
            const Adjacency& a = p.g.adj[inverse ? 1 : 0];
            std::vector<int64_t> d(size_t(p.g.num_entities));
            for (int32_t u = 0; u < p.g.num_entities; ++u) d[size_t(u)] = a.degree(u);
            return to_numpy(std::move(d));
          },
          py::arg("inverse") = false, "Out-degree (or in-degree) of every entity, all relations.")
      .def(
          "relation_edge_counts",
          [](const PyGraph& p) {
            std::vector<int64_t> c(size_t(p.g.num_relations));
            for (int32_t r = 0; r < p.g.num_relations; ++r) c[size_t(r)] = p.g.out().rel_edges(r);
            return to_numpy(std::move(c));
          },
          "Number of edges of every relation.");
}

}  // namespace kg2tool
