// match.h: join-based matching of one conjunction (JoinSpec) over the graph.
//
// Atoms are visited in an order where each has a term bound before it (anchors, or the
// variables of earlier atoms): an atom with one bound term enumerates that entity's
// neighbour slice (all of its relations when the relation slot is free), an atom with both
// terms bound is a binary-search check, a negated atom is checked once its terms are bound.
// This handles cycles (the closing atom is a check) and free relation slots alike; the
// set-operator executor (execute.h) is the fast path for tree-shaped patterns.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "graph.h"
#include "plan.h"
#include "rng.h"
#include "setops.h"

namespace kg2tool {

struct Matcher {
  const Graph& g;
  const JoinSpec& j;
  std::vector<int32_t> rel;     // relation slot bindings (-1 free)
  std::vector<int32_t> anchor;  // anchor slot bindings (-1 free)
  std::vector<int32_t> var;     // variable bindings (-1 free)
  std::vector<int32_t> order;   // atom visiting order
  const std::vector<int32_t>* type_ids = nullptr;          // Plan::type_ids
  std::vector<std::pair<int32_t, View>> excludes;   // (variable, values it must avoid)
  int64_t steps = 0, max_steps = -1;
  bool aborted = false;

  Matcher(const Graph& graph, const JoinSpec& spec, const int32_t* rel_bind, int32_t num_rel,
          const int32_t* anchor_bind, int32_t num_anchor);
  int32_t get(int32_t term) const { return term >= 0 ? var[term] : anchor[-1 - term]; }
  // May variable `term` take value v (its type constraint and exclusions)? Anchors: always.
  bool allowed(int32_t term, int32_t v) const;
  void set(int32_t term, int32_t v) {
    if (term >= 0) var[term] = v; else anchor[-1 - term] = v;
  }
  // Fixes the atom order given what is bound now (call after binding, before running).
  void plan_order();
  // Calls emit() for every full assignment; stops early when emit returns false.
  void run(const std::function<bool()>& emit);
  // Distinct values of the answer variable, sorted, into out.
  void answers(Marks& marks, Set& out);
  // Random grounding: one random edge per atom in order; false when a check fails.
  bool ground_random(Rng& rng, bool degree_weighted);

 private:
  bool rec(size_t idx, const std::function<bool()>& emit);
};

}  // namespace kg2tool
