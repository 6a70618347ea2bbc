"""Questions from grounded queries: a relation lexicon and plan-driven templates, on Polars columns.

A relation is phrased as a noun phrase around its argument: ``prefix + x + suffix``, one for
each direction ("the birthplace of {x}", "the people born in {x}"). The phrases come from a
curated table for common relation labels, then generic rules on the label, and a user overrides
file (the ``phrasing`` field of :func:`kg2tool.apis.load_overrides`, ``{x}`` marks the argument)
wins over both. A question composes these phrases along the compiled plan: projections nest,
intersections become "both A and B", differences "A but not B", unions "either A or B", and the
top op picks one of several templates (interrogative or imperative, question word from the
answer type: "who" for people, "which cities" when the answers reliably share a type).

Everything is vectorised: one Polars expression per template over all rows of a pattern; the
template is chosen by a hash of (seed, query id), so the same seed gives the same questions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from kg2tool.apis import ApiCatalog, load_overrides, relation_words
from kg2tool.errors import InputError
from kg2tool.patterns import ANCHOR, DIFFERENCE, INTERSECT, JOIN, PROJECT, UNION, Plan

__all__ = [
    "RAW_ID_PATTERN",
    "RelationLexicon",
    "build_lexicon",
    "mix_hash",
    "name_list_text",
    "op_phrases",
    "verbalize",
]

RAW_ID_PATTERN = r"\b[QP]\d+\b|/m/|/g/"
# A type word is used in "Which <types> ..." only when this share of the answers carries it.
TYPE_COVERAGE = 0.95
_PEOPLE_TYPES = {"human", "person", "people"}

# normalised label -> (forward phrase, inverse phrase); {x} the argument, {dom} plural of the
# domain type ("people" for humans), {rng} plural of the range type.
CURATED: dict[str, tuple[str, str]] = {
    "founded by": ("the founders of {x}", "the {dom} founded by {x}"),
    "influenced by": ("the people who influenced {x}", "the people influenced by {x}"),
    "directed by": ("the director of {x}", "the {dom} directed by {x}"),
    "director": ("the director of {x}", "the {dom} directed by {x}"),
    "written by": ("the writer of {x}", "the {dom} written by {x}"),
    "produced by": ("the producer of {x}", "the {dom} produced by {x}"),
    "member of political party": ("the political party of {x}", "the members of {x}"),
    "member of": ("the organizations that {x} is a member of", "the members of {x}"),
    "part of": ("what {x} is part of", "the parts of {x}"),
    "named after": ("the namesake of {x}", "the {dom} named after {x}"),
    "cast member": ("the cast members of {x}", "the {dom} starring {x}"),
    "practiced by": ("the groups that practice {x}", "the {dom} practiced by {x}"),
    "spouse": ("the spouse of {x}", "the people married to {x}"),
    "sibling": ("the siblings of {x}", "the people whose sibling is {x}"),
    "child": ("the children of {x}", "the parents of {x}"),
    "unmarried partner": ("the unmarried partner of {x}", "the people whose partner is {x}"),
    "educated at": ("the schools that {x} attended", "the people educated at {x}"),
    "diplomatic relation": (
        "the countries that {x} has diplomatic relations with",
        "the countries that have diplomatic relations with {x}",
    ),
    "shares border with": ("the neighbours of {x}", "the {dom} bordering {x}"),
    "place of birth": ("the birthplace of {x}", "the people born in {x}"),
    "place of death": ("the place where {x} died", "the people who died in {x}"),
    "place of burial": ("the burial place of {x}", "the people buried in {x}"),
    "headquarters location": ("the headquarters location of {x}", "the {dom} headquartered in {x}"),
    "country of citizenship": ("the country of citizenship of {x}", "the citizens of {x}"),
    "residence": ("the residence of {x}", "the residents of {x}"),
    "languages spoken written or signed": (
        "the languages spoken by {x}",
        "the people who speak {x}",
    ),
    "notable works": ("the notable works of {x}", "the people whose notable works include {x}"),
    "location of formation": ("the place where {x} was formed", "the {dom} formed in {x}"),
    "employer": ("the employers of {x}", "the people employed by {x}"),
    "instrument": ("the instruments played by {x}", "the people who play {x}"),
    "genre": ("the genre of {x}", "the {dom} in the genre {x}"),
    "record label": ("the record label of {x}", "the artists signed to {x}"),
    "occupation": ("the occupation of {x}", "the people whose occupation is {x}"),
    "field of work": ("the field of work of {x}", "the people who work in {x}"),
    "cause of death": ("the cause of death of {x}", "the people who died of {x}"),
    "medical condition": ("the medical conditions of {x}", "the people with {x}"),
    "head of state": ("the head of state of {x}", "the {dom} whose head of state is {x}"),
    "continent": ("the continent of {x}", "the {dom} in {x}"),
    "country": ("the country of {x}", "the {dom} from {x}"),
    "country of origin": ("the country of origin of {x}", "the {dom} from {x}"),
    "official language": ("the official language of {x}", "the {dom} where {x} is official"),
    "parent organization": ("the parent organization of {x}", "the subsidiaries of {x}"),
    "narrative location": ("the setting of {x}", "the {dom} set in {x}"),
    "time period": ("the time period of {x}", "the people of {x}"),
    "ethnic group": ("the ethnic group of {x}", "the people of the {x} ethnic group"),
    "religion": ("the religion of {x}", "the people whose religion is {x}"),
    "movement": ("the movement of {x}", "the people of the {x} movement"),
    "contains administrative territorial entity": (
        "the subdivisions of {x}",
        "the region that contains {x}",
    ),
    "located in the administrative territorial entity": (
        "the region where {x} is located",
        "the places located in {x}",
    ),
    "capital": ("the capital of {x}", "the {dom} whose capital is {x}"),
    "capital of": ("the {rng} whose capital is {x}", "the capital of {x}"),
}


def mix_hash(*parts: np.ndarray | int) -> np.ndarray:
    """splitmix64 of the combined inputs, elementwise (uint64); the one seeded hash used here."""
    h = np.zeros(1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            h = h ^ np.asarray(p).astype(np.uint64)
            h = (h + np.uint64(0x9E3779B97F4A7C15)) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
            h = h * np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(29)
    return h


def _plural(word: str) -> str:
    """English plural of the last word of a type phrase ("city" -> "cities")."""
    if word in _PEOPLE_TYPES:
        return "people"
    head, _, last = word.rpartition(" ")
    if last.endswith("s") and not last.endswith("ss"):
        pass
    elif re.search(r"[^aeiou]y$", last):
        last = last[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", last):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def _split(template: str) -> tuple[str, str]:
    """(prefix, suffix) of a phrase with one ``{x}``."""
    if template.count("{x}") != 1:
        raise InputError(f"phrase {template!r} must contain {{x}} exactly once")
    pre, post = template.split("{x}")
    return pre, post


@dataclass(frozen=True)
class RelationLexicon:
    """Per (relation id, direction): phrase prefix/suffix, answer type word and its reliability.

    ``frame`` columns: ``rd`` (relation id * 2 + direction, 0 forward / 1 inverse), ``prefix``,
    ``suffix``, ``qword`` ("who", "which cities" or "what"), ``person`` (answers are people).
    """

    frame: pl.DataFrame

    def phrase(self, relation_id: int, direction: int, x: str) -> str:
        """One phrase, filled (for tests and debugging)."""
        row = self.frame.row(relation_id * 2 + direction, named=True)
        return f"{row['prefix']}{x}{row['suffix']}"


def _type_coverage(kg: Any) -> dict[tuple[int, int], tuple[str, float]]:
    """Per (relation, direction): the most common type label of the results and its share."""
    out: dict[tuple[int, int], tuple[str, float]] = {}
    if kg.entity_types.height == 0:
        return out
    types = kg.entity_types.join(
        kg.type_labels.select(pl.col("key").alias("type"), "label"), on="type", how="left"
    ).select(pl.col("id").cast(pl.Int32), pl.coalesce("label", "type").alias("tlabel"))
    for d, col in ((0, "tail"), (1, "head")):
        res = kg.triples.select("relation", pl.col(col).alias("id")).unique()
        total = res.group_by("relation").agg(pl.len().alias("n"))
        best = (
            res.join(types, on="id")
            .group_by("relation", "tlabel")
            .agg(pl.len().alias("k"))
            .sort("relation", "k", "tlabel", descending=[False, True, False])
            .group_by("relation", maintain_order=True)
            .first()
            .join(total, on="relation")
        )
        for r, t, k, n in best.select("relation", "tlabel", "k", "n").iter_rows():
            out[(int(r), d)] = (str(t), k / max(n, 1))
    return out


def build_lexicon(
    kg: Any,
    catalog: ApiCatalog | None = None,
    overrides: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> RelationLexicon:
    """The relation lexicon of a KG: curated table, then label rules; ``overrides`` win."""
    catalog = catalog or ApiCatalog.from_graph(kg)
    over = load_overrides(overrides) if overrides is not None else {}
    cover = _type_coverage(kg)
    rows: list[tuple[int, str, str, str, bool]] = []
    keys = kg.relations["key"].to_list()
    labels = kg.relations["label"].to_list()
    for rid, (key, label) in enumerate(zip(keys, labels, strict=True)):
        words = relation_words(key, label)
        norm = " ".join(words)
        try:
            fwd_api = catalog.api_for(key, "forward")
            dom, rng = fwd_api.input_type, fwd_api.output_type
        except Exception:
            dom = rng = "entity"
        dom_pl, rng_pl = _plural(dom) if dom != "entity" else "entities", _plural(rng)
        if norm in CURATED:
            fwd, inv = CURATED[norm]
        elif words[-1] == "by":
            fwd, inv = f"the {rng_pl} that {{x}} was {norm}", f"the {{dom}} {norm} {{x}}"
        elif words[-1] in ("of", "in", "with", "at", "to", "from"):
            fwd, inv = f"the {rng_pl} that {{x}} is {norm}", f"the {{dom}} that are {norm} {{x}}"
        else:
            fwd, inv = f"the {norm} of {{x}}", f"the {{dom}} whose {norm} is {{x}}"
        fwd = fwd.replace("{dom}", dom_pl).replace("{rng}", rng_pl)
        inv = inv.replace("{dom}", dom_pl).replace("{rng}", rng_pl)
        phrasing = (over.get(key) or {}).get("phrasing") or {}
        fwd, inv = phrasing.get("forward", fwd), phrasing.get("inverse", inv)
        for d, text in ((0, fwd), (1, inv)):
            pre, post = _split(text)
            tlabel, share = cover.get((rid, d), ("entity", 0.0))
            person = tlabel in _PEOPLE_TYPES and share >= TYPE_COVERAGE
            if person:
                qword = "who"
            elif share >= TYPE_COVERAGE and not re.search(RAW_ID_PATTERN, tlabel):
                qword = f"which {_plural(tlabel)}"
            else:
                qword = "what"
            head = pre.split()[1] if len(pre.split()) > 1 else ""
            plural = head in ("people", "children") or (
                head.endswith("s") and not head.endswith("ss")
            )
            rows.append((rid * 2 + d, pre, post, qword, person, plural))
    frame = pl.DataFrame(
        rows,
        schema={
            "rd": pl.Int64,
            "prefix": pl.String,
            "suffix": pl.String,
            "qword": pl.String,
            "person": pl.Boolean,
            "plural": pl.Boolean,
        },
        orient="row",
    )
    return RelationLexicon(frame)


def name_list_text(names: pl.Expr, conj: str = "and") -> pl.Expr:
    """ "A", "A and B", "A, B and C" from a List(String) expression."""
    n = names.list.len()
    return (
        pl.when(n <= 1)
        .then(names.list.first().fill_null(""))
        .otherwise(
            pl.concat_str(
                names.list.slice(0, n - 1).list.join(", "),
                pl.lit(f" {conj} "),
                names.list.last(),
            )
        )
    )


def _lex(lexicon: RelationLexicon, rd: np.ndarray, column: str) -> pl.Series:
    """A lexicon column gathered for per-row relation/direction codes."""
    return lexicon.frame.get_column(column).gather(rd)


def op_phrases(
    plan: Plan, relation_ids: np.ndarray, anchor_names: list[pl.Series], lexicon: RelationLexicon
) -> list[pl.Series | None]:
    """Noun phrase per op (per row): what the op's set is, composed along the plan."""
    out: list[pl.Series | None] = []
    for k in range(plan.num_ops):
        kind, arg = int(plan.op_kind[k]), int(plan.op_arg[k])
        ins = plan.inputs(k)
        if kind == ANCHOR:
            out.append(anchor_names[arg])
        elif kind == PROJECT:
            rd = relation_ids[:, arg].astype(np.int64) * 2 + int(plan.op_dir[k])
            inner = out[ins[0]]
            out.append(
                pl.select(
                    pl.concat_str(
                        pl.lit(_lex(lexicon, rd, "prefix")),
                        pl.lit(inner),
                        pl.lit(_lex(lexicon, rd, "suffix")),
                    )
                ).to_series()
            )
        elif kind in (INTERSECT, UNION, DIFFERENCE):
            parts = [out[i] for i in ins]
            if any(p is None for p in parts):
                out.append(None)
                continue
            if kind == INTERSECT:
                expr = _join_parts(parts, " and also ", " and also ")
            elif kind == UNION:
                expr = pl.concat_str(pl.lit("either "), _join_parts(parts, ", ", " or "))
            else:
                expr = pl.concat_str(pl.lit(parts[0]), pl.lit(" but not "), pl.lit(parts[1]))
            out.append(pl.select(expr).to_series())
        elif kind == JOIN:
            out.append(_join_phrase(plan, k, relation_ids, anchor_names, lexicon))
        else:  # TYPE_FILTER: no phrase (the trajectory builder skips such plans)
            out.append(None)
    return out


def _join_phrase(
    plan: Plan,
    k: int,
    relation_ids: np.ndarray,
    anchor_names: list[pl.Series],
    lexicon: RelationLexicon,
) -> pl.Series:
    """Noun phrase of a JOIN op's answers: the answer variable's path from the anchors along
    the trajectory's spanning tree, then one clause per other atom ("that are also ...",
    "but not ...", "where <x> is also <phrase of y>"), each variable named by its own path."""
    from kg2tool.trajectories import _CLOSE, _TREE, join_steps

    join = plan.joins[int(plan.op_arg[k])]
    f = int(join.answer_var)
    desc: dict[int, pl.Expr] = {}

    def term(t: int) -> pl.Expr:
        return pl.lit(anchor_names[-1 - t]) if t < 0 else desc[t]

    def rel(slot: int, d: int, inner: pl.Expr) -> pl.Expr:
        rd = relation_ids[:, slot].astype(np.int64) * 2 + d
        return pl.concat_str(
            pl.lit(_lex(lexicon, rd, "prefix")), inner, pl.lit(_lex(lexicon, rd, "suffix"))
        )

    clauses: list[pl.Expr] = []
    for role, slot, d, src, dst in join_steps(plan, k):
        if role == _TREE:
            desc[dst] = rel(slot, d, term(src))
            if dst != f and src >= 0 and src != f:
                continue
            if src == f:  # a variable hanging from the answer: f must have such a link
                clauses.append(pl.concat_str(pl.lit("that have "), rel(slot, d, pl.lit("them"))))
            continue
        neg = role != _CLOSE
        if dst == f:
            body = rel(slot, d, term(src))
            clauses.append(pl.concat_str(pl.lit("but not " if neg else "that are also "), body))
        elif src == f:
            body = rel(slot, 1 - d, term(dst))
            clauses.append(pl.concat_str(pl.lit("but not " if neg else "that are also "), body))
        else:
            clauses.append(
                pl.concat_str(
                    pl.lit("where "),
                    term(dst),
                    pl.lit(" is not " if neg else " is also "),
                    rel(slot, d, term(src)),
                )
            )
    parts = [desc[f], *clauses]
    items: list[pl.Expr] = []
    for i, p in enumerate(parts):
        if i:
            items.append(pl.lit(", " if i > 1 else " "))
        items.append(p)
    return pl.select(pl.concat_str(items)).to_series()


def _join_parts(parts: list[pl.Series], sep: str, last: str) -> pl.Expr:
    """Phrases joined: "A, B and C"-style with given separators."""
    items: list[pl.Expr] = []
    for i, p in enumerate(parts):
        if i:
            items.append(pl.lit(last if i == len(parts) - 1 else sep))
        items.append(pl.lit(p))
    return pl.concat_str(items)


def _answer_rd(plan: Plan, relation_ids: np.ndarray) -> np.ndarray | None:
    """Relation/direction code of the projection that produces the answers (first branch)."""
    k = plan.num_ops - 1
    while int(plan.op_kind[k]) in (INTERSECT, UNION, DIFFERENCE):
        k = plan.inputs(k)[0]
    if int(plan.op_kind[k]) == JOIN:  # the tree atom that gives the answer variable
        from kg2tool.trajectories import _TREE, join_steps

        f = int(plan.joins[int(plan.op_arg[k])].answer_var)
        for role, slot, d, _, dst in join_steps(plan, k):
            if role == _TREE and dst == f:
                return relation_ids[:, slot].astype(np.int64) * 2 + d
        return None
    if int(plan.op_kind[k]) != PROJECT:
        return None
    return relation_ids[:, int(plan.op_arg[k])].astype(np.int64) * 2 + int(plan.op_dir[k])


def _finish(expr: pl.Expr, mark: str) -> pl.Expr:
    """Capitalise, single spaces, final punctuation."""
    return _finish_expr(expr, pl.lit(mark))


def _finish_expr(expr: pl.Expr, mark: pl.Expr) -> pl.Expr:
    """:func:`_finish` with the punctuation mark as an expression."""
    text = expr.str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.concat_str(text.str.slice(0, 1).str.to_uppercase(), text.str.slice(1), mark)


def verbalize(
    plan: Plan,
    relation_ids: np.ndarray,
    anchor_names: list[pl.Series],
    num_answers: np.ndarray,
    query_ids: np.ndarray,
    lexicon: RelationLexicon,
    *,
    seed: int = 0,
) -> pl.Series:
    """One question per row, from the plan's phrases and a seeded template choice."""
    n = len(query_ids)
    phrases = op_phrases(plan, relation_ids, anchor_names, lexicon)
    last = plan.num_ops - 1
    kind = int(plan.op_kind[last])
    rd = _answer_rd(plan, relation_ids)
    if rd is None or phrases[last] is None:
        raise InputError(f"pattern {plan.name or plan.formula!r}: no question template (JOIN op)")
    qword = pl.lit(_lex(lexicon, rd, "qword"))
    person = pl.lit(_lex(lexicon, rd, "person"))
    # The verb agrees with the question word, never with the number of answers (which it
    # would otherwise give away): "which cities are", "who are", "what is".
    del num_answers
    many = pl.lit(_lex(lexicon, rd, "plural")) | qword.str.starts_with("which ") | (qword == "who")
    be = pl.when(many).then(pl.lit("are")).otherwise(pl.lit("is"))
    what = pl.when(qword == "who").then(pl.lit("who")).otherwise(qword)
    thing = pl.when(person).then(pl.lit("people")).otherwise(pl.lit("entities"))
    whole = pl.lit(phrases[last])
    templates: list[tuple[pl.Expr, str]]
    if kind in (PROJECT, JOIN):
        templates = [
            (pl.concat_str(what, pl.lit(" "), be, pl.lit(" "), whole), "?"),
            (pl.concat_str(pl.lit("name "), whole), "."),
            (pl.concat_str(pl.lit("can you tell me "), whole), "?"),
            (pl.concat_str(pl.lit("I would like to know "), whole), "."),
        ]
    elif kind == INTERSECT:
        parts = [pl.lit(phrases[i]) for i in plan.inputs(last)]
        both = _expr_join(parts, ", ", " and ")
        templates = [
            (
                pl.concat_str(
                    what,
                    pl.lit(" "),
                    be,
                    pl.lit(" both ") if len(parts) == 2 else pl.lit(" "),
                    both,
                ),
                "?",
            ),
            (
                pl.concat_str(
                    pl.lit("list the "),
                    thing,
                    pl.lit(" that are "),
                    _expr_join(parts, ", ", " and also "),
                ),
                ".",
            ),
            (
                pl.concat_str(
                    pl.lit("find "),
                    parts[0],
                    pl.lit(" that are also "),
                    _expr_join(parts[1:], ", ", " and "),
                ),
                ".",
            ),
            (
                pl.concat_str(
                    pl.lit("which of "),
                    parts[0],
                    pl.lit(" are also "),
                    _expr_join(parts[1:], ", ", " and "),
                ),
                "?",
            ),
        ]
    elif kind == DIFFERENCE:
        keep, drop = (pl.lit(phrases[i]) for i in plan.inputs(last))
        templates = [
            (
                pl.concat_str(what, pl.lit(" "), be, pl.lit(" "), keep, pl.lit(" but not "), drop),
                "?",
            ),
            (pl.concat_str(pl.lit("list "), keep, pl.lit(", except those that are "), drop), "."),
            (pl.concat_str(pl.lit("name "), keep, pl.lit(" that are not "), drop), "."),
            (pl.concat_str(pl.lit("among "), keep, pl.lit(", which are not "), drop), "?"),
        ]
    elif kind == UNION:
        parts = [pl.lit(phrases[i]) for i in plan.inputs(last)]
        templates = [
            (
                pl.concat_str(what, pl.lit(" "), be, pl.lit(" "), _expr_join(parts, ", ", " or ")),
                "?",
            ),
            (
                pl.concat_str(
                    pl.lit("list everything that is either "), _expr_join(parts, ", ", " or ")
                ),
                ".",
            ),
            (
                pl.concat_str(
                    pl.lit("name all "),
                    thing,
                    pl.lit(" that are "),
                    _expr_join(parts, ", ", " or "),
                    pl.lit(" (or both)"),
                ),
                ".",
            ),
        ]
    else:
        templates = [(pl.concat_str(pl.lit("what are "), whole), "?")]
    choice = pl.lit(
        pl.Series((mix_hash(seed, query_ids) % np.uint64(len(templates))).astype(np.int64))
    )
    # the chosen template's body first, then one _finish pass (not one per template)
    body_expr: Any = None
    mark_expr: Any = None
    for t, (body, mark) in enumerate(templates):
        if body_expr is None:
            body_expr = pl.when(choice == t).then(body)
            mark_expr = pl.when(choice == t).then(pl.lit(mark))
        else:
            body_expr = body_expr.when(choice == t).then(body)
            mark_expr = mark_expr.when(choice == t).then(pl.lit(mark))
    expr = _finish_expr(
        body_expr.otherwise(pl.lit(None, pl.String)), mark_expr.otherwise(pl.lit(None, pl.String))
    )
    out = pl.select(expr.alias("question")).to_series()
    if out.len() != n:
        out = pl.Series("question", [None] * n, dtype=pl.String)
    return out


def _expr_join(parts: list[pl.Expr], sep: str, last: str) -> pl.Expr:
    """Expressions joined as "A, B and C"."""
    items: list[pl.Expr] = []
    for i, p in enumerate(parts):
        if i:
            items.append(pl.lit(last if i == len(parts) - 1 else sep))
        items.append(p)
    return pl.concat_str(items)
