// plan.h: a compiled query pattern as the engine runs it (see docs/CONTRACTS.md).
// Ops are in topological order; the last op's set is the answer set. PROJECT follows one
// relation slot from every entity of its input; JOIN evaluates a cyclic conjunction by
// the matcher (match.h) and yields the set of its answer variable.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace kg2tool {

enum OpKind : int32_t {
  OP_ANCHOR = 0,
  OP_PROJECT = 1,
  OP_INTERSECT = 2,
  OP_UNION = 3,
  OP_DIFFERENCE = 4,
  OP_JOIN = 5,
  OP_TYPE_FILTER = 6,
};

// One conjunction evaluated by matching. Terms: >= 0 a variable, < 0 anchor slot -1-term.
struct JoinSpec {
  int32_t num_vars = 0;
  std::vector<std::array<int32_t, 3>> atoms;  // (relation slot, head term, tail term)
  std::vector<uint8_t> negated;               // per atom: 1 = must not hold
  std::vector<int32_t> var_order;
  int32_t answer_var = 0;
  std::vector<int32_t> var_types;     // per variable: index into Plan::type_ids, or -1
  std::vector<int32_t> exclude_vars;  // input j of the JOIN op: values variable j must not take
};

struct Plan {
  std::vector<int32_t> kind, arg, dir, in_off, inputs;
  int32_t num_rel_slots = 0, num_anchor_slots = 0;
  std::vector<int32_t> fixed_rel;     // per relation slot: relation id or -1
  std::vector<int32_t> fixed_anchor;  // per anchor slot: entity id or -1
  std::vector<int32_t> type_ids;      // per type constraint: type id
  std::vector<int32_t> anchor_types;  // per anchor slot: type id the sampler requires, or -1
  std::vector<JoinSpec> joins;
  uint64_t key = 0;  // hash of the plan, mixed into every random stream

  int32_t num_ops() const { return int32_t(kind.size()); }
  int32_t num_inputs(int32_t op) const { return in_off[op + 1] - in_off[op]; }
  int32_t input(int32_t op, int32_t j) const { return inputs[in_off[op] + j]; }
  // Throws std::invalid_argument when an index is out of range or the order is not topological.
  void validate(int32_t num_entities, int32_t num_relations, int32_t num_types) const;
};

}  // namespace kg2tool
