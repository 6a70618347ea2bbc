// register_engine.cpp: binds plans, sampling, execution and matching; conversion only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "engine.h"
#include "numpy_util.h"

namespace kg2tool {

// Opaque holder, so pybind11's STL casters do not turn the set into a Python set.
struct SeenBox {
  SeenQueries hashes;
};

namespace {

template <class T>
std::vector<T> vec_of(const py::dict& d, const char* key, bool required = true) {
  if (!d.contains(key)) {
    if (required) throw py::value_error(std::string("plan: missing '") + key + "'");
    return {};
  }
  auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(d[key]);
  if (!a) throw py::value_error(std::string("plan: '") + key + "' is not an integer array");
  return std::vector<T>(a.data(), a.data() + a.size());
}

// An integer setting of a plan spec in [lo, hi]; ValueError when missing, not an int or out of range.
template <class T>
T int_of(const py::dict& d, const char* key, int64_t lo, int64_t hi) {
  if (!d.contains(key)) throw py::value_error(std::string("plan: missing '") + key + "'");
  py::object v = d[key];
  long long x;
  try {
    x = v.cast<long long>();
  } catch (const py::cast_error&) {
    throw py::value_error(std::string("plan: '") + key + "' is not a 64-bit integer");
  }
  if (x < lo || x > hi)
    throw py::value_error(std::string("plan: '") + key + "' = " + std::to_string(x) +
                          " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return T(x);
}

constexpr int64_t kMaxSlots = 1 << 20;  // far above any real pattern; bounds what a spec allocates

std::shared_ptr<Plan> plan_from_dict(const py::dict& d) {
  auto p = std::make_shared<Plan>();
  p->kind = vec_of<int32_t>(d, "op_kind");
  p->arg = vec_of<int32_t>(d, "op_arg");
  p->dir = vec_of<int32_t>(d, "op_dir");
  p->in_off = vec_of<int32_t>(d, "op_in_offsets");
  p->inputs = vec_of<int32_t>(d, "op_inputs");
  p->num_rel_slots = int_of<int32_t>(d, "num_relation_slots", 0, kMaxSlots);
  p->num_anchor_slots = int_of<int32_t>(d, "num_anchor_slots", 0, kMaxSlots);
  p->fixed_rel = vec_of<int32_t>(d, "fixed_relations", false);
  if (p->fixed_rel.empty()) p->fixed_rel.assign(size_t(p->num_rel_slots), -1);
  p->fixed_anchor = vec_of<int32_t>(d, "fixed_entities", false);
  if (p->fixed_anchor.empty()) p->fixed_anchor.assign(size_t(p->num_anchor_slots), -1);
  p->type_ids = vec_of<int32_t>(d, "type_ids", false);
  p->anchor_types = vec_of<int32_t>(d, "anchor_types", false);
  if (p->anchor_types.empty()) p->anchor_types.assign(size_t(p->num_anchor_slots), -1);
  p->key = 0;
  if (d.contains("key")) {
    try {
      p->key = d["key"].cast<uint64_t>();
    } catch (const py::cast_error&) {
      throw py::value_error("plan: 'key' is not an unsigned 64-bit integer");
    }
  }
  if (d.contains("joins")) {
    for (auto item : d["joins"].cast<py::list>()) {
      py::dict jd = item.cast<py::dict>();
      JoinSpec j;
      j.num_vars = int_of<int32_t>(jd, "num_vars", 1, kMaxSlots);
      auto atoms = vec_of<int32_t>(jd, "atoms");
      if (atoms.size() % 3 != 0) throw py::value_error("plan: join atoms must be k x 3");
      for (size_t i = 0; i < atoms.size(); i += 3) j.atoms.push_back({atoms[i], atoms[i + 1], atoms[i + 2]});
      j.negated = vec_of<uint8_t>(jd, "negated", false);
      if (j.negated.empty()) j.negated.assign(j.atoms.size(), 0);
      j.var_order = vec_of<int32_t>(jd, "var_order", false);
      j.var_types = vec_of<int32_t>(jd, "var_types", false);
      if (j.var_types.empty()) j.var_types.assign(size_t(j.num_vars), -1);
      j.exclude_vars = vec_of<int32_t>(jd, "exclude_vars", false);
      j.answer_var = int_of<int32_t>(jd, "answer_var", 0, j.num_vars - 1);
      p->joins.push_back(std::move(j));
    }
  }
  return p;
}

void check_plan(const PyGraph& pg, const Plan& p) {
  try {
    p.validate(pg.g.num_entities, pg.g.num_relations, pg.g.num_types);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

using IntArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

int64_t check_bindings(const PyGraph& pg, const Plan& p, const IntArray& rel, const IntArray& anchor) {
  if (p.num_rel_slots == 0 && p.num_anchor_slots == 0) throw py::value_error("plan has no slots");
  const int64_t n = p.num_rel_slots ? rel.size() / p.num_rel_slots : anchor.size() / p.num_anchor_slots;
  if (rel.size() != n * p.num_rel_slots || anchor.size() != n * p.num_anchor_slots)
    throw py::value_error("bindings: expected n x " + std::to_string(p.num_rel_slots) +
                          " relation ids and n x " + std::to_string(p.num_anchor_slots) + " entity ids");
  const int32_t* r = rel.data();
  for (int64_t i = 0; i < rel.size(); ++i) check_relation(pg.g, r[i]);
  const int32_t* a = anchor.data();
  for (int64_t i = 0; i < anchor.size(); ++i) check_entity(pg.g, a[i], "anchor entity");
  return n;
}

using Int64Array = py::array_t<int64_t, py::array::forcecast>;  // any strides: no copy

// Row spans over ids, every [start, end) checked to lie in ids (IndexError otherwise).
RowSets row_sets(const Int64Array& lo, const Int64Array& hi, const IntArray& ids, int64_t n,
                 const char* name) {
  const std::string nm(name);
  if (lo.ndim() != 1 || hi.ndim() != 1 || lo.size() != n || hi.size() != n)
    throw py::value_error(nm + "_starts / " + nm + "_ends: expected 1-D arrays of " +
                          std::to_string(n) + " rows");
  if (lo.strides(0) % py::ssize_t(sizeof(int64_t)) || hi.strides(0) % py::ssize_t(sizeof(int64_t)))
    throw py::value_error(nm + "_starts / " + nm + "_ends: unaligned strides");
  RowSets r{lo.data(), int64_t(lo.strides(0) / py::ssize_t(sizeof(int64_t))), hi.data(),
            int64_t(hi.strides(0) / py::ssize_t(sizeof(int64_t))), ids.data()};
  const int64_t size = ids.size();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = r.begin(i), e = r.end(i);
    if (b < 0 || b > e || e > size)
      throw py::index_error(nm + ": row " + std::to_string(i) + " spans [" + std::to_string(b) +
                            ", " + std::to_string(e) + ") outside " + std::to_string(size) +
                            " ids");
  }
  return r;
}

}  // namespace

void register_engine(py::module_& m) {
  py::class_<Plan, std::shared_ptr<Plan>>(m, "Plan", "A compiled pattern as the engine runs it.")
      .def(py::init(&plan_from_dict), py::arg("spec"))
      .def_property_readonly("num_ops", &Plan::num_ops)
      .def_readonly("num_relation_slots", &Plan::num_rel_slots)
      .def_readonly("num_anchor_slots", &Plan::num_anchor_slots);

  py::class_<SeenBox>(m, "SeenQueries",
                      "Hashes of grounded queries drawn so far (to continue a sample stream).")
      .def(py::init<>())
      .def("__len__", [](const SeenBox& s) { return s.hashes.size(); });

  m.attr("REJECT_REASONS") = [] {
    py::list l;
    for (int i = 0; i < REJ_COUNT; ++i) l.append(kRejectNames[i]);
    return l;
  }();

  m.def(
      "sample",
      [](PyGraph& pg, const Plan& p, int64_t n, uint64_t seed, int64_t min_answers,
         int64_t max_answers, int64_t max_intermediate, bool distinct_anchors, bool no_backtrack,
         bool nontrivial, bool degree_weighted, int max_tries, int64_t max_candidates,
         int64_t match_steps, int threads, SeenBox* seen, int64_t start_candidate,
         bool answers_only) {
        check_plan(pg, p);
        if (start_candidate < 0) throw py::value_error("start_candidate must be >= 0");
        if (n < 0) throw py::value_error("n must be >= 0");
        if (max_tries < 1) throw py::value_error("max_tries must be >= 1");
        SampleOptions o;
        o.min_answers = min_answers;
        o.max_answers = max_answers;
        o.max_intermediate = max_intermediate;
        o.distinct_anchors = distinct_anchors;
        o.no_backtrack = no_backtrack;
        o.nontrivial = nontrivial;
        o.degree_weighted = degree_weighted;
        o.max_tries = max_tries;
        o.max_candidates = max_candidates;
        o.match_steps = match_steps;
        o.threads = threads;
        o.answers_only = answers_only;
        SampleResult r;
        const Graph g = pg.engine_graph();  // a copy of the view, taken with the GIL held
        {
          py::gil_scoped_release nogil;
          r = sample(g, p, n, seed, o, seen ? &seen->hashes : nullptr, start_candidate);
        }
        py::dict rejected;
        for (int i = 0; i < REJ_COUNT; ++i) rejected[kRejectNames[i]] = r.rejected[size_t(i)];
        py::dict out;
        const int64_t got = int64_t(r.candidate_index.size());
        out["relation_bindings"] = to_numpy(std::move(r.rel_bind)).reshape({got, int64_t(p.num_rel_slots)});
        out["anchor_bindings"] = to_numpy(std::move(r.anchor_bind)).reshape({got, int64_t(p.num_anchor_slots)});
        out["set_offsets"] = to_numpy(std::move(r.set_offsets));
        out["set_ids"] = to_numpy(std::move(r.set_ids));
        out["candidate_index"] = to_numpy(std::move(r.candidate_index));
        out["rejected"] = rejected;
        out["candidates"] = r.candidates;
        out["attempts"] = r.attempts;
        out["exhausted"] = r.exhausted;
        out["next_candidate"] = r.next_candidate;
        return out;
      },
      py::arg("graph"), py::arg("plan"), py::arg("n"), py::arg("seed"), py::arg("min_answers") = 1,
      py::arg("max_answers") = 100, py::arg("max_intermediate") = 100,
      py::arg("distinct_anchors") = true, py::arg("no_backtrack") = true,
      py::arg("nontrivial") = true, py::arg("degree_weighted") = false, py::arg("max_tries") = 8,
      py::arg("max_candidates") = 0, py::arg("match_steps") = 1000000, py::arg("threads") = 0,
      py::arg("seen") = nullptr, py::arg("start_candidate") = 0, py::arg("answers_only") = false,
      "Sample n distinct grounded queries with exact answer and intermediate sets (only the\n"
      "answer sets with answers_only; the others are then empty); pass the same `seen` and the\n"
      "returned next_candidate as start_candidate to continue a stream.");

  m.def(
      "execute",
      [](PyGraph& pg, const Plan& p, IntArray rel, IntArray anchor, int threads, bool answers_only) {
        check_plan(pg, p);
        const int64_t n = check_bindings(pg, p, rel, anchor);
        ExecResult r;
        const Graph g = pg.engine_graph();  // a copy of the view, taken with the GIL held
        {
          py::gil_scoped_release nogil;
          r = execute_batch(g, p, rel.data(), anchor.data(), n, threads, answers_only);
        }
        return py::make_tuple(to_numpy(std::move(r.set_offsets)), to_numpy(std::move(r.set_ids)));
      },
      py::arg("graph"), py::arg("plan"), py::arg("relation_bindings"), py::arg("anchor_bindings"),
      py::arg("threads") = 0, py::arg("answers_only") = false,
      "Exact sets of every op for n groundings: (offsets int64[n*ops+1], ids int32); with\n"
      "answers_only the answer sets alone: (offsets int64[n+1], ids int32).");

  m.def(
      "diff_sets",
      [](Int64Array a_lo, Int64Array a_hi, IntArray a_ids, Int64Array b_lo, Int64Array b_hi,
         IntArray b_ids, int64_t limit, int threads) {
        const int64_t n = a_lo.size();
        const RowSets a = row_sets(a_lo, a_hi, a_ids, n, "a");
        const RowSets b = row_sets(b_lo, b_hi, b_ids, n, "b");
        if (limit < -1) throw py::value_error("limit must be >= 0 (or -1: none)");
        DiffResult r;
        {
          py::gil_scoped_release nogil;
          r = diff_sets(a, b, n, limit, threads);
        }
        return py::make_tuple(to_numpy(std::move(r.offsets)), to_numpy(std::move(r.ids)),
                              to_numpy(std::move(r.added)), to_numpy(std::move(r.lost)));
      },
      py::arg("a_starts"), py::arg("a_ends"), py::arg("a_ids"), py::arg("b_starts"),
      py::arg("b_ends"), py::arg("b_ids"), py::arg("limit") = -1, py::arg("threads") = 0,
      "Row i of a is a_ids[a_starts[i]:a_ends[i]] (sorted), likewise b: per row a minus b as\n"
      "(offsets int64[n+1], ids int32) and both difference sizes (added, lost int64[n]). With\n"
      "limit >= 0, a row whose size gap or either difference exceeds it has counts limit + 1\n"
      "and no ids. Starts/ends may be strided views (no copy); bounds are checked.");

  m.def(
      "match_count",
      [](const PyGraph& pg, const Plan& p, int32_t join, IntArray rel, IntArray anchor,
         int64_t limit, int threads) {
        check_plan(pg, p);
        if (join < 0 || join >= int32_t(p.joins.size())) throw py::index_error("join index out of range");
        const int64_t n = p.num_anchor_slots ? anchor.size() / p.num_anchor_slots : rel.size() / std::max(1, p.num_rel_slots);
        if (rel.size() != n * p.num_rel_slots || anchor.size() != n * p.num_anchor_slots)
          throw py::value_error("bindings: rows of relation and anchor bindings differ");
        const int32_t* rp = rel.data();
        for (int64_t i = 0; i < rel.size(); ++i)
          if (rp[i] != -1) check_relation(pg.g, rp[i]);
        const int32_t* ap = anchor.data();
        for (int64_t i = 0; i < anchor.size(); ++i)
          if (ap[i] != -1) check_entity(pg.g, ap[i], "anchor entity");
        std::vector<int64_t> c;
        {
          py::gil_scoped_release nogil;
          c = match_count(pg.g, p, join, rp, ap, n, limit, threads);
        }
        return to_numpy(std::move(c));
      },
      py::arg("graph"), py::arg("plan"), py::arg("join"), py::arg("relation_bindings"),
      py::arg("anchor_bindings"), py::arg("limit") = -1, py::arg("threads") = 0,
      "Count every grounding of a join per row of bindings (-1 = free slot), up to limit.");
}

}  // namespace kg2tool
