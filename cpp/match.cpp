// match.cpp: backtracking join over atoms; see match.h for the contract.
#include "match.h"

#include <algorithm>

namespace kg2tool {

Matcher::Matcher(const Graph& graph, const JoinSpec& spec, const int32_t* rel_bind,
                 int32_t num_rel, const int32_t* anchor_bind, int32_t num_anchor)
    : g(graph), j(spec), rel(rel_bind, rel_bind + num_rel),
      anchor(anchor_bind, anchor_bind + num_anchor), var(size_t(spec.num_vars), -1) {}

bool Matcher::allowed(int32_t term, int32_t v) const {
  if (term < 0) return true;
  if (type_ids && !j.var_types.empty() && j.var_types[size_t(term)] >= 0 &&
      !g.has_type(v, (*type_ids)[size_t(j.var_types[size_t(term)])]))
    return false;
  for (auto& ex : excludes)
    if (ex.first == term && contains(ex.second, v)) return false;
  return true;
}

void Matcher::plan_order() {
  const size_t k = j.atoms.size();
  std::vector<char> used(k, 0), bound_var(var.size(), 0), bound_anchor(anchor.size(), 0);
  for (size_t v = 0; v < var.size(); ++v) bound_var[v] = var[v] >= 0;
  for (size_t a = 0; a < anchor.size(); ++a) bound_anchor[a] = anchor[a] >= 0;
  auto is_bound = [&](int32_t t) { return t >= 0 ? bound_var[t] != 0 : bound_anchor[-1 - t] != 0; };
  auto bind = [&](int32_t t) {
    if (t >= 0) bound_var[t] = 1; else bound_anchor[-1 - t] = 1;
  };
  order.clear();
  for (size_t step = 0; step < k; ++step) {
    int best = -1, best_score = -1;
    for (size_t a = 0; a < k; ++a) {
      if (used[a] || j.negated[a]) continue;
      int s = int(is_bound(j.atoms[a][1])) + int(is_bound(j.atoms[a][2]));
      int score = s * 4 + (rel[j.atoms[a][0]] >= 0 ? 1 : 0);
      if (score > best_score) best = int(a), best_score = score;
    }
    if (best < 0) break;
    used[size_t(best)] = 1;
    order.push_back(best);
    bind(j.atoms[size_t(best)][1]);
    bind(j.atoms[size_t(best)][2]);
  }
  for (size_t a = 0; a < k; ++a)
    if (j.negated[a]) order.push_back(int32_t(a));
}

bool Matcher::rec(size_t idx, const std::function<bool()>& emit) {
  if (max_steps >= 0 && ++steps > max_steps) {
    aborted = true;
    return false;
  }
  if (idx == order.size()) return emit();
  const auto& at = j.atoms[size_t(order[idx])];
  const int32_t rs = at[0], ht = at[1], tt = at[2];
  const int32_t r = rel[rs];
  int32_t h = get(ht), t = get(tt);
  if (j.negated[size_t(order[idx])]) {
    // Unsafe negation never reaches here (the compiler rejects it); be defensive anyway.
    if (h < 0 || t < 0) return true;
    bool holds;
    if (r >= 0) {
      auto s = g.out().neighbors(h, r);
      holds = std::binary_search(s.begin(), s.end(), t);
    } else {
      holds = false;
      const Adjacency& o = g.out();
      for (int64_t e = o.ent_dir[h]; e < o.ent_dir[h + 1] && !holds; ++e) {
        auto s = o.entry(e);
        holds = std::binary_search(s.begin(), s.end(), t);
      }
    }
    return holds ? true : rec(idx + 1, emit);
  }
  // Visit every entry (relation) of entity u in direction d, or only relation r.
  auto each_entry = [&](int32_t u, int d, auto&& fn) -> bool {
    const Adjacency& a = g.adj[d];
    if (r >= 0) {
      int64_t e = a.find(u, r);
      return e < 0 ? true : fn(r, a.entry(e));
    }
    for (int64_t e = a.ent_dir[u]; e < a.ent_dir[u + 1]; ++e) {
      rel[rs] = a.dir_rel[e];
      bool go = fn(a.dir_rel[e], a.entry(e));
      rel[rs] = -1;
      if (!go) return false;
    }
    return true;
  };
  if (h >= 0 && t >= 0) {
    return each_entry(h, 0, [&](int32_t, Span<const int32_t> s) {
      if (!std::binary_search(s.begin(), s.end(), t)) return true;
      return rec(idx + 1, emit);
    });
  }
  if (h < 0 && t < 0) {  // nothing bound: enumerate every entity as the head
    for (int32_t u = 0; u < g.num_entities; ++u) {
      if (!allowed(ht, u)) continue;
      set(ht, u);
      bool go = rec(idx, emit);
      set(ht, -1);
      if (!go) return false;
    }
    return true;
  }
  const bool from_head = h >= 0;
  const int32_t src = from_head ? h : t;
  const int32_t dst_term = from_head ? tt : ht;
  return each_entry(src, from_head ? 0 : 1, [&](int32_t, Span<const int32_t> s) {
    for (int32_t v : s) {
      if (!allowed(dst_term, v)) continue;
      set(dst_term, v);
      bool go = rec(idx + 1, emit);
      set(dst_term, -1);
      if (!go) return false;
    }
    return true;
  });
}

void Matcher::run(const std::function<bool()>& emit) {
  aborted = false;
  steps = 0;
  rec(0, emit);
}

void Matcher::answers(Marks& marks, Set& out) {
  out.clear();
  marks.ensure(g.num_entities);
  const int32_t av = j.answer_var;
  run([&]() {
    const int32_t v = var[size_t(av)];
    if (marks.insert(v)) out.push_back(v);
    return true;
  });
  sort_and_unmark(marks, out);
}

bool Matcher::ground_random(Rng& rng, bool degree_weighted) {
  for (size_t oi = 0; oi < order.size(); ++oi) {
    const int32_t ai = order[oi];
    const auto& at = j.atoms[size_t(ai)];
    const int32_t rs = at[0];
    int32_t h = get(at[1]), t = get(at[2]);
    // A negated atom's free relation is chosen by the caller, which can compare this
    // match with a second one (see engine.cpp, Grounder, OP_JOIN).
    if (j.negated[size_t(ai)]) continue;
    if (h >= 0 && t >= 0) {
      if (rel[rs] >= 0) {
        auto s = g.out().neighbors(h, rel[rs]);
        if (!std::binary_search(s.begin(), s.end(), t)) return false;
      } else {
        const Adjacency& o = g.out();
        std::vector<int32_t> rels;
        // Not the relation of an earlier atom on the same terms: a doubled edge with one
        // relation twice is the same atom twice (a trivial intersection).
        auto repeats = [&](int32_t r) {
          for (size_t q = 0; q < oi; ++q) {
            const auto& bt = j.atoms[size_t(order[q])];
            if (!j.negated[size_t(order[q])] && bt[1] == at[1] && bt[2] == at[2] && rel[bt[0]] == r)
              return true;
          }
          return false;
        };
        for (int64_t e = o.ent_dir[h]; e < o.ent_dir[h + 1]; ++e) {
          auto s = o.entry(e);
          if (std::binary_search(s.begin(), s.end(), t) && !repeats(o.dir_rel[e]))
            rels.push_back(o.dir_rel[e]);
        }
        if (rels.empty()) return false;
        rel[rs] = rels[rng.below(rels.size())];
      }
      continue;
    }
    if (h < 0 && t < 0) {
      // Linked to the rest only through a negated atom: start from a uniform edge.
      const Adjacency& o = g.out();
      int64_t k;
      uint32_t within;
      if (rel[rs] >= 0) {
        const uint32_t m = o.rel_edges(rel[rs]);
        if (m == 0) return false;
        k = o.rel_edge_entry(rel[rs], uint32_t(rng.below(m)), &within);
      } else {
        if (o.nbr.len == 0) return false;
        const uint32_t x = uint32_t(rng.below(o.nbr.len));
        const uint32_t* it = std::upper_bound(o.dir_off.ptr, o.dir_off.ptr + o.dir_off.len, x);
        k = (it - o.dir_off.ptr) - 1;
        within = x - o.dir_off[k];
        rel[rs] = o.dir_rel[k];
      }
      const int32_t hv = o.owner(k), tv = o.nbr[o.dir_off[k] + within];
      if (!allowed(at[1], hv) || !allowed(at[2], tv)) return false;
      set(at[1], hv);
      if (get(at[2]) >= 0 && get(at[2]) != tv) return false;  // the same term on both sides
      set(at[2], tv);
      continue;
    }
    const bool from_head = h >= 0;
    const int32_t u = from_head ? h : t;
    const Adjacency& a = g.adj[from_head ? 0 : 1];
    const int32_t dst = from_head ? at[2] : at[1];
    // A doubled edge (later positive atoms on the same two terms): pick the neighbour among
    // those linked to u by enough distinct relations, else the closing atoms could only
    // repeat this relation. Uniform over such (relation, neighbour) edges.
    size_t need = 1;
    for (size_t q = oi + 1; q < order.size(); ++q) {
      const auto& bt = j.atoms[size_t(order[q])];
      if (!j.negated[size_t(order[q])] && bt[1] == at[1] && bt[2] == at[2]) ++need;
    }
    if (need > 1) {
      std::vector<std::pair<int32_t, int64_t>> pv;  // (neighbour, entry)
      for (int64_t e = a.ent_dir[u]; e < a.ent_dir[u + 1]; ++e)
        for (int32_t v : a.entry(e)) pv.emplace_back(v, e);
      std::sort(pv.begin(), pv.end());
      std::vector<std::pair<int32_t, int64_t>> ok;
      for (size_t b = 0, e = 0; b < pv.size(); b = e) {
        while (e < pv.size() && pv[e].first == pv[b].first) ++e;
        if (e - b < need) continue;
        for (size_t x = b; x < e; ++x)
          if (rel[rs] < 0 || a.dir_rel[pv[x].second] == rel[rs]) ok.push_back(pv[x]);
      }
      if (ok.empty()) return false;
      const auto& pick = ok[rng.below(ok.size())];
      if (!allowed(dst, pick.first)) return false;
      rel[rs] = a.dir_rel[pick.second];
      set(dst, pick.first);
      continue;
    }
    Span<const int32_t> s;
    if (rel[rs] >= 0) {
      s = a.neighbors(u, rel[rs]);
    } else {
      int64_t nent = a.num_entries(u);
      if (nent == 0) return false;
      int64_t e;
      if (degree_weighted) {
        uint32_t x = uint32_t(rng.below(uint64_t(a.degree(u)))) + a.dir_off[a.ent_dir[u]];
        const uint32_t* it = std::upper_bound(a.dir_off.ptr + a.ent_dir[u], a.dir_off.ptr + a.ent_dir[u + 1], x);
        e = (it - a.dir_off.ptr) - 1;
      } else {
        e = a.ent_dir[u] + int64_t(rng.below(uint64_t(nent)));
      }
      rel[rs] = a.dir_rel[e];
      s = a.entry(e);
    }
    if (s.empty()) return false;
    const int32_t v = s[rng.below(s.size())];
    if (!allowed(dst, v)) return false;
    set(dst, v);
  }
  return true;
}

}  // namespace kg2tool
