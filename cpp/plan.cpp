// plan.cpp: Plan::validate, so a malformed plan from Python is an error, not a crash.
#include "plan.h"

#include <stdexcept>

namespace kg2tool {
namespace {
[[noreturn]] void bad(const std::string& m) { throw std::invalid_argument("invalid plan: " + m); }
}  // namespace

void Plan::validate(int32_t num_entities, int32_t num_relations, int32_t num_types) const {
  const int32_t n = num_ops();
  if (n == 0) bad("no operations");
  if (arg.size() != size_t(n) || dir.size() != size_t(n) || in_off.size() != size_t(n) + 1)
    bad("op arrays have different lengths");
  if (in_off[0] != 0 || in_off[n] != int32_t(inputs.size())) bad("input offsets do not span inputs");
  for (int32_t i = 0; i < n; ++i)
    if (in_off[i] > in_off[i + 1]) bad("input offsets not monotonic");
  if (fixed_rel.size() != size_t(num_rel_slots) || fixed_anchor.size() != size_t(num_anchor_slots))
    bad("fixed slot arrays do not match the slot counts");
  for (int32_t r : fixed_rel)
    if (r < -1 || r >= num_relations) bad("fixed relation id out of range");
  for (int32_t a : fixed_anchor)
    if (a < -1 || a >= num_entities) bad("fixed entity id out of range");
  for (int32_t t : type_ids)
    if (t < 0 || t >= num_types) bad("type id out of range");
  if (anchor_types.size() != size_t(num_anchor_slots)) bad("anchor types do not match the anchor slots");
  for (int32_t t : anchor_types)
    if (t < -1 || t >= num_types) bad("anchor type id out of range");
  for (int32_t i = 0; i < n; ++i) {
    if (in_off[i] > in_off[i + 1]) bad("input offsets not monotonic");
    for (int32_t j = in_off[i]; j < in_off[i + 1]; ++j)
      if (inputs[j] < 0 || inputs[j] >= i) bad("op " + std::to_string(i) + " has an input that is not earlier");
    const int32_t k = in_off[i + 1] - in_off[i];
    switch (kind[i]) {
      case OP_ANCHOR:
        if (k != 0 || arg[i] < 0 || arg[i] >= num_anchor_slots) bad("bad ANCHOR op " + std::to_string(i));
        break;
      case OP_PROJECT:
        if (k != 1 || arg[i] < 0 || arg[i] >= num_rel_slots || (dir[i] != 0 && dir[i] != 1))
          bad("bad PROJECT op " + std::to_string(i));
        break;
      case OP_INTERSECT:
      case OP_UNION:
        if (k < 1) bad("set operation without inputs at op " + std::to_string(i));
        break;
      case OP_DIFFERENCE:
        if (k != 2) bad("DIFFERENCE needs two inputs at op " + std::to_string(i));
        break;
      case OP_JOIN:
        if (arg[i] < 0 || arg[i] >= int32_t(joins.size()) ||
            size_t(k) != joins[size_t(arg[i])].exclude_vars.size())
          bad("bad JOIN op " + std::to_string(i));
        break;
      case OP_TYPE_FILTER:
        if (k != 1 || arg[i] < 0 || arg[i] >= int32_t(type_ids.size()))
          bad("bad TYPE_FILTER op " + std::to_string(i));
        break;
      default:
        bad("unknown op kind " + std::to_string(kind[i]));
    }
  }
  for (const JoinSpec& j : joins) {
    if (j.num_vars <= 0 || j.answer_var < 0 || j.answer_var >= j.num_vars) bad("join answer variable");
    if (j.negated.size() != j.atoms.size()) bad("join negation flags");
    if (j.var_types.size() != size_t(j.num_vars)) bad("join variable types");
    bool answer_bound = false;  // the matcher reads the answer variable of every match
    for (size_t k = 0; k < j.atoms.size(); ++k)
      if (!j.negated[k] && (j.atoms[k][1] == j.answer_var || j.atoms[k][2] == j.answer_var))
        answer_bound = true;
    if (!answer_bound) bad("join answer variable occurs in no positive atom");
    for (int32_t t : j.var_types)
      if (t < -1 || t >= int32_t(type_ids.size())) bad("join variable type index");
    for (int32_t v : j.exclude_vars)
      if (v < 0 || v >= j.num_vars) bad("join exclusion variable");
    for (auto& a : j.atoms) {
      if (a[0] < 0 || a[0] >= num_rel_slots) bad("join relation slot");
      for (int t = 1; t < 3; ++t)
        if (a[t] >= j.num_vars || a[t] < -num_anchor_slots) bad("join term out of range");
    }
  }
}

}  // namespace kg2tool
