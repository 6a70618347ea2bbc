"""Questions from grounded queries: a relation lexicon and plan-driven templates, on Polars columns.

A relation is phrased as a noun phrase around its argument: ``prefix + x + suffix``, one for
each direction ("the birthplace of {x}", "the people born in {x}"), with the lexicon's plural,
predicate ("was born in {x}") and direct question ("Where was {x} born?"). The phrases come
from the resolved relation lexicon (:mod:`kg2tool.tools.lexicon`: shipped lexicons, a user's file,
a grammatical fallback). A question composes these phrases along the compiled plan:
projections nest, intersections become "both A and B" (or one predicate, "Who was born in X
and died in Y?"), differences name the kept set first and whole ("Among A, which are not
B?"), unions "either A or B", and the top op picks one of several templates (interrogative or
imperative, question word from the answer type: "who" for people, "which cities" when the
answers reliably share a type). :func:`verbalize_linted` redraws a template whose question
fails the lint (:mod:`kg2tool.samples.lint`).

Everything is vectorised: one Polars expression per template over all rows of a pattern; the
template is chosen by a hash of (seed, query id), so the same seed gives the same questions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from kg2tool.errors import InputError
from kg2tool.patterns import ANCHOR, DIFFERENCE, INTERSECT, JOIN, PROJECT, UNION, Plan
from kg2tool.samples.phrases import (
    Phrase,
    RelationLexicon,
    all_of,
    anchor_projection,
    bare_noun,
    be_verb,
    build_lexicon,
    expr_join,
    join_clauses,
    lex_column,
    materialise,
    name_list_text,
    name_phrase,
    project_phrase,
    pronoun_phrase,
    set_phrase,
    slot_name,
)
from kg2tool.tools.inflection import with_article
from kg2tool.tools.raw_ids import RAW_ID_PATTERN

__all__ = [
    "RAW_ID_PATTERN",
    "RelationLexicon",
    "build_lexicon",
    "mix_hash",
    "name_list_text",
    "verbalize",
]


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


def _phrases(
    plan: Plan,
    relation_ids: np.ndarray,
    anchor_names: list[pl.Series],
    lexicon: RelationLexicon,
    replace: Mapping[int, Phrase] | None = None,
    probe: bool = False,
    base: list[Phrase | None] | None = None,
) -> list[Phrase | None]:
    """Phrase per op, composed bottom-up; ``replace``: ops whose phrase is given (a staged
    question's anaphor), with ``base`` the phrases without it (an op none of whose inputs
    changed keeps its phrase); ``probe``: the anchor names are the placeholders (a relation
    applied to one comes from :func:`anchor_projection`'s table)."""
    n = relation_ids.shape[0]
    out: list[Phrase | None] = []
    changed: set[int] = set(replace or ())
    for k in range(plan.num_ops):
        kind, arg = int(plan.op_kind[k]), int(plan.op_arg[k])
        ins = plan.inputs(k)
        if changed.intersection(ins):
            changed.add(k)  # and so are the ops above it
        if replace and k in replace:
            out.append(replace[k])
        elif base is not None and k not in changed:
            out.append(base[k])
        elif kind == ANCHOR:
            out.append(name_phrase(anchor_names[arg], n))
        elif kind == PROJECT:
            inner = out[ins[0]]
            rd = relation_ids[:, arg].astype(np.int64) * 2 + int(plan.op_dir[k])
            on_anchor = int(plan.op_kind[ins[0]]) == ANCHOR and not (replace and ins[0] in replace)
            if inner is not None and probe and on_anchor:
                out.append(anchor_projection(lexicon, rd, int(plan.op_arg[ins[0]])))
            else:
                out.append(None if inner is None else project_phrase(lexicon, rd, inner))
        elif kind in (INTERSECT, UNION, DIFFERENCE):
            parts = [out[i] for i in ins]
            out.append(None if any(p is None for p in parts) else set_phrase(kind, parts))  # type: ignore[arg-type]
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
) -> Phrase:
    """Phrase of a JOIN op's answers: the answer variable's path from the anchors along the
    trajectory's spanning tree, then its own conditions ("that are also ...", "but not ...",
    "that are also the occupation of someone"), then the conditions between other variables
    ("where that birthplace is also ..."), a variable named by its path or, once named, by a
    demonstrative of its head noun when no other variable shares it. A condition that only
    repeats the phrase it qualifies is left out (it holds by construction)."""
    from kg2tool.patterns import JOIN_CLOSE as _CLOSE
    from kg2tool.patterns import JOIN_TREE as _TREE
    from kg2tool.patterns import join_steps

    n = relation_ids.shape[0]
    join = plan.joins[int(plan.op_arg[k])]
    f = int(join.answer_var)
    desc: dict[int, Phrase] = {}
    anc: dict[int, set[int]] = {}

    def term(t: int) -> Phrase:
        return name_phrase(anchor_names[-1 - t], n) if t < 0 else desc[t]

    def rel(slot: int, d: int, inner: Phrase) -> Phrase:
        return project_phrase(lexicon, relation_ids[:, slot].astype(np.int64) * 2 + d, inner)

    own: list[tuple[bool, Phrase, int]] = []  # (negated, phrase f is (not) in, var it names)
    other: list[tuple[bool, int, Phrase, int]] = []  # (negated, var, phrase, var it names)
    for role, slot, d, src, dst in join_steps(plan, k):
        if role == _TREE:
            desc[dst] = rel(slot, d, term(src))
            anc[dst] = {dst} | anc.get(src, set())
            if src == f:  # a variable hanging from the answer: f must have such a link
                rd = relation_ids[:, slot].astype(np.int64) * 2 + d
                some = pl.select(
                    pl.when(pl.lit(lex_column(lexicon, rd, "person")))
                    .then(pl.lit("someone"))
                    .otherwise(pl.lit("something"))
                ).to_series()
                own.append((False, rel(slot, 1 - d, name_phrase(some, n)), src))
            continue
        neg = role != _CLOSE
        if dst == f:
            own.append((neg, rel(slot, d, term(src)), src))
        elif src == f:
            own.append((neg, rel(slot, 1 - d, term(dst)), dst))
        else:
            other.append((neg, dst, rel(slot, d, term(src)), src))
    top = desc[f]
    mentioned = set(anc[f])
    mine: dict[bool, list[pl.Expr]] = {False: [], True: []}  # by plural head of the answer
    for neg, body, v in own:
        mentioned |= anc.get(v, set())
        for plural, be in ((False, be_verb(pl.lit(top.many))), (True, pl.lit("are"))):
            if neg:
                mine[plural].append(pl.concat_str(pl.lit("but not "), pl.lit(body.text)))
            else:  # left out when it repeats the answer's own phrase
                mine[plural].append(
                    pl.when(pl.lit(body.text) == pl.lit(top.text))
                    .then(pl.lit(""))
                    .otherwise(
                        pl.concat_str(
                            pl.lit("that "), be, pl.lit(" also among "), pl.lit(body.noun)
                        )
                    )
                )
    where: list[pl.Expr] = []
    for neg, v, body, src in other:
        var = desc[v]
        unique = pl.lit(var.head) != ""
        for w, wp in desc.items():
            if w != v:
                unique = unique & (pl.lit(var.head) != pl.lit(wp.head))
        subject = (
            pl.when(unique).then(pl.lit(var.head)).otherwise(pl.lit(var.text))
            if v in mentioned
            else pl.lit(var.text)
        )
        mentioned |= anc[v] | anc.get(src, set())
        clause = pl.concat_str(
            subject,
            pl.lit(" "),
            be_verb(pl.lit(var.many)),
            pl.lit(" not among " if neg else " also among "),
            pl.lit(body.noun),
        )
        if not neg:
            clause = (
                pl.when(pl.lit(body.text) == pl.lit(var.text)).then(pl.lit("")).otherwise(clause)
            )
        where.append(clause)
    tail = join_clauses(where, ", and ", ", where ")
    return materialise(
        n,
        text=pl.concat_str(pl.lit(top.text), join_clauses(mine[False], ", ", " "), tail),
        many=pl.lit(top.many),
        noun=pl.concat_str(pl.lit(top.noun), join_clauses(mine[True], ", ", " "), tail),
        person=pl.lit(top.person),
        head=pl.lit(top.head).str.slice(0, 0),
        pron=pl.lit(top.pron),
    )


def _answer_rd(plan: Plan, relation_ids: np.ndarray) -> np.ndarray | None:
    """Relation/direction code of the projection that produces the answers (first branch)."""
    k = plan.num_ops - 1
    while int(plan.op_kind[k]) in (INTERSECT, UNION, DIFFERENCE):
        k = plan.inputs(k)[0]
    if int(plan.op_kind[k]) == JOIN:  # the tree atom that gives the answer variable
        from kg2tool.patterns import JOIN_TREE as _TREE
        from kg2tool.patterns import join_steps

        f = int(plan.joins[int(plan.op_arg[k])].answer_var)
        for role, slot, d, _, dst in join_steps(plan, k):
            if role == _TREE and dst == f:
                return relation_ids[:, slot].astype(np.int64) * 2 + d
        return None
    if int(plan.op_kind[k]) != PROJECT:
        return None
    return relation_ids[:, int(plan.op_arg[k])].astype(np.int64) * 2 + int(plan.op_dir[k])


# A run of two or more whitespace characters, or one that is not a plain space.
_SPACES = r"\s\s+|[\s&&[^ ]]"


def _finish(expr: pl.Expr, mark: str) -> pl.Expr:
    """Capitalise, single spaces, final punctuation."""
    return _finish_expr(expr, pl.lit(mark))


def _finish_expr(expr: pl.Expr, mark: pl.Expr) -> pl.Expr:
    """:func:`_finish` with the punctuation mark as an expression; a name that ends the
    sentence with its own period ("Sammy Davis Jr.") takes no second one."""
    # = replace_all(r"\s+", " "), but a lone space matches nothing: the regex leaves most
    # questions untouched instead of rebuilding each one (half the question time)
    text = expr.str.replace_all(_SPACES, " ").str.strip_chars()
    mark = pl.when(text.str.ends_with(".") & (mark == ".")).then(pl.lit("")).otherwise(mark)
    return pl.concat_str(text.str.slice(0, 1).str.to_uppercase(), text.str.slice(1), mark)


def verbalize(
    plan: Plan,
    relation_ids: np.ndarray,
    anchor_names: list[pl.Series],
    query_ids: np.ndarray,
    lexicon: RelationLexicon,
    *,
    seed: int = 0,
) -> pl.Series:
    """One question per row, from the plan's phrases and a seeded template choice (never
    from the number of answers, which the question must not give away)."""
    templates = _templates(plan, relation_ids, anchor_names, lexicon)
    choice = (mix_hash(seed, query_ids) % np.uint64(len(templates))).astype(np.int64)
    return _render(templates, choice, len(query_ids))


def _render(templates: list[tuple[pl.Expr, str]], choice: np.ndarray, n: int) -> pl.Series:
    """The question of every row from its chosen template, finished."""
    chosen = pl.lit(pl.Series(choice.astype(np.int64)))
    # the chosen template's body first, then one _finish pass (not one per template)
    body_expr: Any = None
    mark_expr: Any = None
    for t, (body, mark) in enumerate(templates):
        if body_expr is None:
            body_expr = pl.when(chosen == t).then(body)
            mark_expr = pl.when(chosen == t).then(pl.lit(mark))
        else:
            body_expr = body_expr.when(chosen == t).then(body)
            mark_expr = mark_expr.when(chosen == t).then(pl.lit(mark))
    expr = _finish_expr(
        body_expr.otherwise(pl.lit(None, pl.String)), mark_expr.otherwise(pl.lit(None, pl.String))
    )
    out = pl.select(expr.alias("question")).to_series()
    if out.len() != n:
        out = pl.Series("question", [None] * n, dtype=pl.String)
    return out


# Openers of a staged question's first sentence, by template.
_STAGE_OPENERS = ("take ", "consider ")


# A phrase prefix with a relative clause ("the area that contains {x}").
_RELATIVE = r" (?:that|who|whom|whose|which|where) "


# Words of a phrase before its argument from which the phrase counts as long.
_LONG_PREFIX_WORDS = 7


def _long_prefix(lexicon: RelationLexicon, rd: np.ndarray) -> np.ndarray:
    """Per row, whether the relation's plural phrase has many words before its argument
    ("the words derived from the same root as {x}")."""
    words = lex_column(lexicon, rd, "prefix_m").str.strip_chars().str.count_matches(" ") + 1
    return (words >= _LONG_PREFIX_WORDS).to_numpy()


def _stage_points(
    plan: Plan, relation_ids: np.ndarray, lexicon: RelationLexicon
) -> list[tuple[int, int, np.ndarray]]:
    """Where a question is better told in two sentences, highest op first: (op whose set the
    first sentence names, the projection of it, rows). A projection of a set is split off
    when its phrase has words after the argument ("the ceremony at which {x} was presented")
    and the set is long (a set operation, or a phrase with a clause or nesting of its own):
    "... at which the award for which X was nominated was presented" would center-embed; and
    the question's own projection of a projection of a projection ("a word derived from the
    same root as a word derived from the same root as a word derived ...")."""
    spine = {plan.num_ops - 1}
    k = plan.num_ops - 1
    while int(plan.op_kind[k]) == PROJECT:
        k = plan.inputs(k)[0]
        spine.add(k)

    def rd_of(op: int) -> np.ndarray:
        return relation_ids[:, int(plan.op_arg[op])].astype(np.int64) * 2 + int(plan.op_dir[op])

    out: list[tuple[int, int, np.ndarray]] = []
    deep_points: list[tuple[int, int, np.ndarray]] = []  # after every center-embedding one
    for k in range(plan.num_ops - 1, -1, -1):
        if int(plan.op_kind[k]) != PROJECT:
            continue
        i = plan.inputs(k)[0]
        inner_kind = int(plan.op_kind[i])
        if inner_kind not in (PROJECT, INTERSECT, UNION, DIFFERENCE):
            continue
        rows = (lex_column(lexicon, rd_of(k), "suffix") != "").to_numpy()
        # a long phrase around a set ("the words derived from the same root as those that
        # are both ..."): the set first, then the phrase around "these"
        wordy = _long_prefix(lexicon, rd_of(k))
        if inner_kind == PROJECT:
            deep = int(plan.op_kind[plan.inputs(i)[0]]) != ANCHOR
            long = (
                (lex_column(lexicon, rd_of(i), "suffix") != "")
                | lex_column(lexicon, rd_of(i), "prefix").str.contains(_RELATIVE)
            ).to_numpy() | deep
            rows = rows & long
            if deep and k in spine:
                deep_points.append((i, k, ~rows))
            # a long phrase repeated around itself, inside a set operation
            rows = rows | (wordy & _long_prefix(lexicon, rd_of(i)) & (k not in spine))
        else:
            rows = rows | wordy
        if rows.any():
            out.append((i, k, rows))
    return out + [p for p in deep_points if p[2].any()]


def _templates(
    plan: Plan,
    relation_ids: np.ndarray,
    anchor_names: list[pl.Series],
    lexicon: RelationLexicon,
    *,
    probe: bool = False,
) -> list[tuple[pl.Expr, str]]:
    """The question templates of a pattern over its rows (body expression, final mark). Where
    a nested set would be center-embedded or a phrase repeated (:func:`_stage_points`), the
    question comes in two sentences: the set first, then the question about it by its
    anaphor ("Take the awards for which X was nominated. Name the ceremonies at which these
    awards were presented."). ``probe``: the anchor names are the placeholders (which take no
    article)."""
    if not probe:
        anchor_names = [with_article(names) for names in anchor_names]  # "the United States"
    phrases = _phrases(plan, relation_ids, anchor_names, lexicon, probe=probe)
    plain = _templates_of(plan, relation_ids, anchor_names, lexicon, phrases)
    staged: list[tuple[pl.Expr, pl.Expr, list[tuple[pl.Expr, str]]]] = []
    for i, k, rows in _stage_points(plan, relation_ids, lexicon):
        inner = phrases[i]
        if inner is None:
            continue
        # "these" alone where the projection's head would repeat ("the members of these")
        rd = relation_ids[:, int(plan.op_arg[k])].astype(np.int64) * 2 + int(plan.op_dir[k])
        head = pl.concat_str(pl.lit("these "), pl.lit(lex_column(lexicon, rd, "pron_head")))
        last = pl.lit(lex_column(lexicon, rd, "suffix_m")) == ""
        pron = pl.select(
            pl.when(last & (head == pl.lit(inner.pron)))
            .then(pl.lit("these"))
            .otherwise(pl.lit(inner.pron))
        ).to_series()
        again = _phrases(
            plan,
            relation_ids,
            anchor_names,
            lexicon,
            replace={i: pronoun_phrase(replace(inner, pron=pron))},
            probe=probe,
            base=phrases,
        )
        first = pl.lit(inner.noun)
        stop = pl.when(first.str.ends_with(".")).then(pl.lit(" ")).otherwise(pl.lit(". "))
        staged.append(
            (
                pl.lit(pl.Series(rows)),
                pl.concat_str(first, stop),
                _templates_of(plan, relation_ids, anchor_names, lexicon, again),
            )
        )
    if not staged:
        return plain
    out: list[tuple[pl.Expr, str]] = []
    for t, (body, mark) in enumerate(plain):
        expr: Any = None
        for rows, first, templates in staged:
            second = templates[t][0]
            text = pl.concat_str(
                pl.lit(_STAGE_OPENERS[t % len(_STAGE_OPENERS)]),
                first,
                second.str.slice(0, 1).str.to_uppercase(),
                second.str.slice(1),
            )
            expr = (pl.when(rows) if expr is None else expr.when(rows)).then(text)
        out.append((expr.otherwise(body), mark))
    return out


def _templates_of(
    plan: Plan,
    relation_ids: np.ndarray,
    anchor_names: list[pl.Series],
    lexicon: RelationLexicon,
    phrases: list[Phrase | None],
) -> list[tuple[pl.Expr, str]]:
    """:func:`_templates` over given op phrases, in one sentence."""
    last = plan.num_ops - 1
    kind = int(plan.op_kind[last])
    rd = _answer_rd(plan, relation_ids)
    top = phrases[last]
    if rd is None or top is None:
        raise InputError(f"pattern {plan.name or plan.formula!r}: no question template (JOIN op)")
    # The verb agrees with the question word and the phrase, never with the number of
    # answers (which it would otherwise give away): "which cities are the birthplaces of
    # ...", "which city is the birthplace of X", "who are the people ...", "what is the ...".
    ins = [p for p in (phrases[i] for i in plan.inputs(last)) if p is not None]
    lead = ins[0] if kind in (INTERSECT, UNION, DIFFERENCE) else top
    # a question asks for one thing only where the relation gives one ("What is the
    # birthplace of X?"); else for the plural ("Who are the children of X?", not "Who is a
    # child of X?", which one answer would satisfy)
    single = pl.lit(lex_column(lexicon, rd, "functional"))
    many = pl.lit(lead.many) | ~single
    what = (
        pl.when(many)
        .then(pl.lit(lex_column(lexicon, rd, "qword")))
        .otherwise(pl.lit(lex_column(lexicon, rd, "qword_one")))
    )
    be = be_verb(many)
    person = pl.lit(lead.person)
    each = (
        pl.when(person)
        .then(pl.lit("each person who is "))
        .otherwise(
            pl.concat_str(
                pl.lit("each "), pl.lit(lex_column(lexicon, rd, "tword")), pl.lit(" that is ")
            )
        )
    )
    noun = pl.lit(top.noun)
    whole = pl.when(single | pl.lit(top.many)).then(pl.lit(top.text)).otherwise(noun)
    templates: list[tuple[pl.Expr, str]]
    if kind in (PROJECT, JOIN):
        templates = [
            (pl.concat_str(what, pl.lit(" "), be, pl.lit(" "), whole), "?"),
            (pl.concat_str(pl.lit("name "), whole), "."),
            (pl.concat_str(pl.lit("list "), noun), "."),
            (pl.concat_str(pl.lit("can you tell me "), whole), "?"),
            (pl.concat_str(pl.lit("I would like to know "), whole), "."),
        ]
        direct = _direct_question(plan, relation_ids, anchor_names, lexicon)
        if direct is not None:  # the lexicon's one-hop question, where it has one
            templates.append((pl.when(direct != "").then(direct).otherwise(templates[0][0]), "?"))
    elif kind == INTERSECT:
        # a plural part (a staged question's anaphor) makes every part a plural noun
        plural = ~single | pl.any_horizontal(
            [pl.lit(p.many) & (pl.lit(p.text) == pl.lit(p.noun)) for p in ins]
        )
        texts = [
            pl.when(plural).then(bare_noun(pl.lit(p.noun))).otherwise(pl.lit(p.text)) for p in ins
        ]
        others = expr_join([bare_noun(pl.lit(p.noun)) for p in ins[1:]], ", ", " and ")
        templates = [
            (
                pl.concat_str(
                    what,
                    pl.lit(" "),
                    pl.when(plural).then(pl.lit("are")).otherwise(be),
                    pl.lit(" "),
                    all_of(texts),
                ),
                "?",
            ),
            (pl.concat_str(pl.lit("list "), each, _one_of(ins, " and also ")), "."),
            (
                pl.concat_str(
                    pl.lit("which of "), pl.lit(ins[0].noun), pl.lit(" are also "), others
                ),
                "?",
            ),
        ]
        frames = _verb_frames(plan, relation_ids, anchor_names, lexicon)
        if frames is not None:  # "Who was born in Paris and died in London?"
            verbs, shared = frames
            one = pl.lit(lex_column(lexicon, rd, "qword_one"))
            frame_q = pl.concat_str(one, pl.lit(" "), expr_join(verbs, ", ", " and "))
            if shared is not None:  # one relation: "Who influenced each of A and B?"
                frame_q = pl.when(shared != "").then(pl.concat_str(one, pl.lit(" "), shared))
                frame_q = frame_q.otherwise(
                    pl.concat_str(one, pl.lit(" "), expr_join(verbs, ", ", " and "))
                )
            # a frame asks for one thing ("What is an occupation of each of A and B?"): kept
            # for "who" and for relations that give one answer
            missing = pl.any_horizontal([v == "" for v in verbs]) | (~single & ~person)
            plain = templates[0][0]
            templates.append((pl.when(missing).then(plain).otherwise(frame_q), "?"))
            if len(ins) > 2:  # "Who was nominated together with each of A, B and C?" reads
                # better than "Who is simultaneously the person nominated together with A, ..."
                templates[0] = templates[-1]
    elif kind == DIFFERENCE:
        # the kept set is named first and whole, so "not" cannot reach into it
        keep, drop = ins
        kn, dn = pl.lit(keep.noun), bare_noun(pl.lit(drop.noun))
        templates = [
            (pl.concat_str(pl.lit("among "), kn, pl.lit(", which are not "), dn), "?"),
            (pl.concat_str(pl.lit("list "), kn, pl.lit(", except those that are also "), dn), "."),
            (pl.concat_str(pl.lit("of "), kn, pl.lit(", name those that are not "), dn), "."),
        ]
    elif kind == UNION:
        # "What are the genres of A, together with those of B?": a set and more, never the
        # "either ... or" of one thing
        who = pl.when(person).then(pl.lit("who")).otherwise(pl.lit("what"))
        together = pl.concat_str(
            who,
            pl.lit(" are "),
            pl.lit(ins[0].noun),
            pl.lit(", together with "),
            expr_join([_those(ins[0], p) for p in ins[1:]], ", ", " and "),
        )
        templates = [
            (together, "?"),
            (pl.concat_str(pl.lit("name "), each, _one_of(ins, " or ")), "."),
        ]
    else:
        templates = [(pl.concat_str(what, pl.lit(" "), be, pl.lit(" "), whole), "?")]
    return templates


def _verb_frames(
    plan: Plan, relation_ids: np.ndarray, anchor_names: list[pl.Series], lexicon: RelationLexicon
) -> tuple[list[pl.Expr], pl.Expr | None] | None:
    """Per input of the last op (an intersection of projections from anchors): the lexicon's
    predicate with the anchor's name ("was born in Paris"), "" where the relation has none;
    and, where every input is the same relation, its predicate over all the names ("influenced
    each of A and B"; "" on other rows). None when an input is not such a projection."""
    last = plan.num_ops - 1
    out: list[pl.Expr] = []
    rds: list[np.ndarray] = []
    names: list[pl.Expr] = []
    for k in plan.inputs(last):
        if int(plan.op_kind[k]) != PROJECT:
            return None
        inner = plan.inputs(k)[0]
        if int(plan.op_kind[inner]) != ANCHOR:
            return None
        rd = relation_ids[:, int(plan.op_arg[k])].astype(np.int64) * 2 + int(plan.op_dir[k])
        name = pl.lit(anchor_names[int(plan.op_arg[inner])])
        out.append(_fill(lex_column(lexicon, rd, "verb"), slot_name(lexicon, rd, name)))
        rds.append(rd)
        names.append(name)
    same = np.all([r == rds[0] for r in rds], axis=0)
    if not same.any():
        return out, None
    each = pl.concat_str(pl.lit("each of "), expr_join(names, ", ", " and "))
    shared = pl.when(pl.lit(pl.Series(same))).then(_fill(lex_column(lexicon, rds[0], "verb"), each))
    return out, shared.otherwise(pl.lit(""))


def _fill(template: pl.Series, x: pl.Expr) -> pl.Expr:
    """Per row, a lexicon phrase with ``{x}`` filled ("" where the phrase is empty)."""
    parts = template.str.split_exact("{x}", 1)
    return (
        pl.when(pl.lit(template) == "")
        .then(pl.lit(""))
        .otherwise(
            pl.concat_str(
                pl.lit(parts.struct.field("field_0")), x, pl.lit(parts.struct.field("field_1"))
            )
        )
    )


def _direct_question(
    plan: Plan, relation_ids: np.ndarray, anchor_names: list[pl.Series], lexicon: RelationLexicon
) -> pl.Expr | None:
    """The lexicon's one-hop question ("Where was X born?") of a projection from an anchor, per
    row ("" where the relation has none); None when the last op is not such a projection."""
    last = plan.num_ops - 1
    if int(plan.op_kind[last]) != PROJECT:
        return None
    inner = plan.inputs(last)[0]
    if int(plan.op_kind[inner]) != ANCHOR:
        return None
    rd = relation_ids[:, int(plan.op_arg[last])].astype(np.int64) * 2 + int(plan.op_dir[last])
    q = lex_column(lexicon, rd, "question")
    parts = q.str.split_exact("{x}", 1)
    name = slot_name(lexicon, rd, pl.lit(anchor_names[int(plan.op_arg[inner])]))
    pre = pl.lit(parts.struct.field("field_0"))
    post = pl.lit(parts.struct.field("field_1"))
    # a trailing "?" is put back by the template's mark
    return (
        pl.when(pl.lit(q) == "")
        .then(pl.lit(""))
        .otherwise(pl.concat_str(pre, name, post.str.strip_suffix("?")))
    )


def _those(first: Phrase, other: Phrase) -> pl.Expr:
    """``other``'s plural noun, its head said by "those" where it is ``first``'s head ("the
    genres of B" after "the genres of A" -> "those of B")."""
    head = pl.lit(other.pron).str.strip_prefix("these")
    same = (head != "") & (head == pl.lit(first.pron).str.strip_prefix("these"))
    lead = pl.concat_str(pl.lit("the"), head, pl.lit(" "))
    noun = pl.lit(other.noun)
    return (
        pl.when(same & noun.str.starts_with(lead))
        .then(pl.concat_str(pl.lit("those "), noun.str.strip_prefix(lead)))
        .otherwise(noun)
    )


def _one_of(parts: list[Phrase], last: str) -> pl.Expr:
    """ "one of A, one of B<last>one of C" over the plural noun phrases."""
    return expr_join([pl.concat_str(pl.lit("one of "), pl.lit(p.noun)) for p in parts], ", ", last)
