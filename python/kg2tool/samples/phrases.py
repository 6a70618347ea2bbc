"""Relation phrases for questions: the question lexicon of a KG (a phrase around its
argument per relation and direction, with plural forms, question word and head noun) and
the noun phrases that nest them (projections, set operations), on Polars columns.

A relation is phrased as ``prefix + x + suffix`` ("the birthplace of {x}", "the people born
in {x}"), from the resolved relation lexicon (:mod:`kg2tool.tools.lexicon`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from kg2tool.errors import InputError
from kg2tool.patterns import DIFFERENCE, INTERSECT, UNION
from kg2tool.tools.catalog import ApiCatalog
from kg2tool.tools.inflection import (
    PEOPLE_TYPES,
    all_lemmas,
    is_participle,
    is_plural_noun,
    plural_type,
    verb_lemma,
)
from kg2tool.tools.lexicon import resolve_lexicon
from kg2tool.tools.raw_ids import RAW_ID_PATTERN

#: A type word is used in "Which <types> ..." only when this share of the answers has it.
QWORD_TYPE_COVERAGE = 0.95
# Lexicon type words of a side whose answers are people (used when the KG has no types).
_PERSON_WORDS = PEOPLE_TYPES | {"politician", "actor", "writer", "author", "director"}


# Words that end the head noun of a phrase ("the people | who influenced {x}").
_HEAD_STOP = {
    "of", "that", "who", "whose", "where", "which", "in", "from", "by", "with", "to", "at",
    "on", "for", "starring", "bordering", "set", "born", "include", "within", "partly",
    "near", "beside", "alongside", "below", "above", "inside", "outside", "behind", "after",
    "before", "during", "into", "about", "under", "over", "against", "among", "between",
    "through", "like", "as", "whom", "than", "featuring", "containing", "named",
}  # fmt: skip


# Verbs right after the argument, for a plural argument ("{x} is a member of" -> "are members of").
_ARG_VERBS = (
    (" is a member of", " are members of"),
    (" is", " are"),
    (" has", " have"),
    (" was", " were"),
)


# Verbs right after the head, for a plural head ("the region that contains" -> "that contain").
_HEAD_VERBS = {"contains": "contain", "has": "have", "is": "are", "was": "were"}


def _head_span(pre: str) -> tuple[int, int]:
    """(index past the head's last word, index of its noun) in ``pre.split(" ")``: "the record
    labels founded by " -> (3, 2), "the head of state of " -> (4, 1); (0, 0) when the phrase
    does not start with "the <noun>"."""
    words = pre.split(" ")
    if len(words) < 2 or words[0] != "the" or not words[1]:
        return 0, 0
    j = 1
    while j < len(words) and words[j] and words[j] not in _HEAD_STOP:
        if j > 1 and words[j].endswith(("ed", "en")):
            break
        j += 1
    if words[j : j + 1] == ["of"] and j + 2 < len(words) and words[j + 2] == "of" and words[j + 1]:
        return j + 2, j - 1  # "head of state", "country of citizenship"
    return j, j - 1


def _pron_head(head: str) -> str:
    """A plural head as an anaphor's noun ("these programs"): without the words after its
    noun ("the programs broadcast", "the people belonging", "the players currently", "the
    titles Netflix lists")."""
    words = head.split(" ")
    for i in range(1, len(words)):
        if words[i][:1].isupper() and words[i - 1][:1].islower():
            words = words[:i]
            break

    def after_noun(word: str) -> bool:  # a participle, adverb or adjective (a known word)
        if word.endswith("ing") or word == "broadcast" or is_participle(word):
            return True
        lemmas = all_lemmas(word)
        return bool({"ADV", "ADJ"} & lemmas.keys()) and "NOUN" not in lemmas

    while len(words) > 1 and after_noun(words[-1]):
        words.pop()
    return " ".join(words)


def _plural_head_verbs(pre: str) -> str:
    """A plural phrase prefix whose verb right after the head agrees with it ("the regions
    that contains " -> "the regions that contain "); the head noun itself is left alone."""
    j, _ = _head_span(pre)
    if not j:
        return pre
    words = pre.split(" ")
    if j + 1 < len(words) and words[j] in ("that", "who") and words[j + 1] in _HEAD_VERBS:
        words[j + 1] = _HEAD_VERBS[words[j + 1]]
    return " ".join(words)


def _plural_arg(pre: str, post: str) -> tuple[str, str]:
    """Prefix and suffix for a plural argument (a set, "the people who influenced X"), from
    the lexicon's plural phrase (``many``, whose head is plural already: never pluralised
    again, "the places within" stays): verbs after the argument in the plural, "whose Y is"
    -> "whose Y is one of", and a name used as a modifier ("the people of the {x} movement")
    made a plain argument."""
    pre = _plural_head_verbs(pre)
    if pre.endswith(" the ") and post.strip() and not post.startswith((" is", " was", " has")):
        return pre[: -len("the ")], ""
    if pre.endswith(" is "):
        pre += "one of "
    role = re.fullmatch(r" as an? ([a-z][a-z ]*)", post)
    if role:  # "that have {x} as a member" -> "that have {xs} as members"
        post = f" as {plural_type(role.group(1))}"
    for one, many in _ARG_VERBS:
        if post == one or post.startswith(one + " "):
            post = many + post[len(one) :]
            break
    return pre, post


def _plural_verb_after(post: str) -> str:
    """A phrase suffix whose first word is a 3rd-person verb, made plural for a plural
    argument (" interacts" -> " interact")."""
    words = post.split(" ")
    if len(words) >= 2 and words[0] == "":
        lemma = verb_lemma(words[1])
        if lemma is not None:
            words[1] = lemma
    return " ".join(words)


def _split(template: str) -> tuple[str, str]:
    """(prefix, suffix) of a phrase with one ``{x}``."""
    if template.count("{x}") != 1:
        raise InputError(f"phrase {template!r} must contain {{x}} exactly once")
    pre, post = template.split("{x}")
    return pre, post


@dataclass(frozen=True, eq=False)  # identity: a key of per-lexicon memos
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


# A relation side is functional when at least this share of its sources has exactly one
# result ("the birthplace of X"); else a question asks for the plural ("the children of X").
FUNCTIONAL_SHARE = 0.9


def _functional(kg: Any) -> dict[tuple[int, int], bool]:
    """Per (relation, direction): whether nearly every source has exactly one result."""
    out: dict[tuple[int, int], bool] = {}
    for d, (src, dst) in enumerate((("head", "tail"), ("tail", "head"))):
        per = (
            kg.triples.group_by("relation", src)
            .agg(pl.col(dst).n_unique().alias("k"))
            .group_by("relation")
            .agg(((pl.col("k") == 1).sum() / pl.len()).alias("share"))
        )
        for r, share in per.iter_rows():
            out[(int(r), d)] = share >= FUNCTIONAL_SHARE
    return out


def build_lexicon(
    kg: Any,
    catalog: ApiCatalog | None = None,
    overrides: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> RelationLexicon:
    """The question lexicon of a KG, from the catalogue's resolved relation lexicon (shipped
    lexicons, user overrides, grammatical fallback; :mod:`kg2tool.tools.lexicon`); ``overrides``
    given here win over the catalogue's."""
    catalog = catalog or ApiCatalog.from_graph(kg, overrides=overrides)
    entries = catalog.lexicon
    if overrides is not None or not entries:
        keys = kg.relations["key"].to_list()
        types = {}
        for key in keys:
            try:
                api = catalog.api_for(key, "forward")
                types[key] = (api.input_type, api.output_type)
            except Exception:
                types[key] = ("entity", "entity")
        entries = resolve_lexicon(
            zip(keys, kg.relations["label"], kg.relations["description"], strict=True),
            types=types,
            overrides=overrides,
        )
    cover = _type_coverage(kg)
    functional = _functional(kg)
    rows: list[tuple[Any, ...]] = []
    keys = kg.relations["key"].to_list()
    for rid, key in enumerate(keys):
        entry = entries[key]
        for d, side in ((0, entry.forward), (1, entry.inverse)):
            pre, post = _split(side.one)
            pre_many, post_many = _split(side.many)
            tlabel, share = cover.get((rid, d), ("entity", 0.0))
            person = tlabel in PEOPLE_TYPES and share >= QWORD_TYPE_COVERAGE
            if not cover:  # a KG without entity types: the lexicon's type word of the side
                person = (entry.range if d == 0 else entry.domain) in _PERSON_WORDS
            if person:
                qword = "who"
            elif share >= QWORD_TYPE_COVERAGE and not re.search(RAW_ID_PATTERN, tlabel):
                qword = f"which {plural_type(tlabel)}"
            else:
                qword = "what"
            qword_one = f"which {tlabel}" if qword.startswith("which ") else qword
            # the type word of "list each <type> that is ...": the data's when reliable,
            # else the lexicon's when it is one plain word (not a person word: answers the
            # data does not type as people may be bands)
            tword = tlabel if qword.startswith("which ") else "entity"
            lex_word = entry.range if d == 0 else entry.domain
            plain = re.fullmatch(r"[a-z]+", lex_word) and not lex_word.endswith("s")
            if tword == "entity" and plain and (not cover or lex_word not in _PERSON_WORDS):
                tword = lex_word
            j, noun = _head_span(pre)
            head = " ".join(pre.split(" ")[1:j]) if j else ""
            plural_ = bool(head) and is_plural_noun(pre.split(" ")[noun])
            jp, _ = _head_span(pre_many)
            head_pl = " ".join(pre_many.split(" ")[1:jp]) if jp else ""
            pron_head = _pron_head(head_pl)
            pre_m, post_m = _plural_arg(pre_many, post_many)
            # the side names its answers as words ("the words derived from ...", "the more
            # general terms for ..."): a relation between things takes them as what they name
            words = bool(re.search(r"\b(?:words|terms|senses|adjectives)\b", head_pl))
            if post_m == post_many and post == post_many:
                post_m = _plural_verb_after(post_m)
            rows.append(
                (
                    rid * 2 + d, pre, post, qword, person, plural_, qword_one, pre_many, pre_m,
                    post_m, head, head_pl, side.verb, side.question, tword, pron_head,
                    functional.get((rid, d), True), entry.the_before_common_nouns,
                    side.name_prefix, words,
                )
            )  # fmt: skip
    frame = pl.DataFrame(
        rows,
        schema={
            "rd": pl.Int64,
            "prefix": pl.String,
            "suffix": pl.String,
            "qword": pl.String,
            "person": pl.Boolean,
            "plural": pl.Boolean,
            "qword_one": pl.String,
            "prefix_p": pl.String,
            "prefix_m": pl.String,
            "suffix_m": pl.String,
            "head": pl.String,
            "head_pl": pl.String,
            "verb": pl.String,
            "question": pl.String,
            "tword": pl.String,
            "pron_head": pl.String,
            "functional": pl.Boolean,
            "the_before_common_nouns": pl.Boolean,
            "name_prefix": pl.String,
            "words": pl.Boolean,
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


def lex_column(lexicon: RelationLexicon, rd: np.ndarray, column: str) -> pl.Series:
    """A lexicon column gathered for per-row relation/direction codes."""
    return lexicon.frame.get_column(column).gather(rd)


@dataclass(frozen=True)
class Phrase:
    """What an op's set is, per row. ``text``: the natural phrase ("the spouse of X", or for a
    set op the bare "both A and B"); ``many``: it is grammatically plural; ``noun``: a noun
    phrase with a plural head ("the spouses of X", "those that are both A and B");
    ``person``: the answers are people; ``head``: the demonstrative ("that spouse", "those
    people"), empty when the phrase has no simple head noun; ``arg``: the phrase as the
    argument of a relation ("the spouse of X", "those that are both A and B"); ``pron``: the
    set named again in a later sentence of a staged question ("these awards", "these");
    ``name``: the phrase is an entity's name (not a phrase around one); ``words``: the set is
    named as words ("the words derived from ...", "these more general terms")."""

    text: pl.Series
    many: pl.Series
    noun: pl.Series
    person: pl.Series
    head: pl.Series
    arg: pl.Series
    pron: pl.Series
    name: pl.Series | bool = False
    words: pl.Series | bool = False


def materialise(n: int, **cols: pl.Expr) -> Phrase:
    frame = pl.select(**cols)
    assert frame.height == n, (frame.height, n)
    if "arg" not in cols:
        frame = frame.with_columns(pl.col("text").alias("arg"))
    if "pron" not in cols:
        frame = frame.with_columns(pl.lit("these", pl.String).alias("pron"))
    return Phrase(
        *(frame.get_column(c) for c in ("text", "many", "noun", "person", "head", "arg", "pron")),
        words=frame.get_column("words") if "words" in cols else False,
    )


def name_phrase(names: pl.Series | str, n: int) -> Phrase:
    """An anchor (or a fixed word such as "someone"): singular, no head."""
    text = names if isinstance(names, pl.Series) else pl.Series([names] * n, dtype=pl.String)
    return Phrase(
        text,
        pl.Series(np.zeros(n, bool)),
        text,
        pl.Series(np.zeros(n, bool)),
        pl.Series([""] * n, dtype=pl.String),
        text,
        text,
        name=True,
    )


def pronoun_phrase(inner: Phrase) -> Phrase:
    """A set named again by its anaphor ("these awards"): plural, as in a staged question's
    second sentence."""
    n = len(inner.text)
    pron = inner.pron
    return Phrase(
        pron,
        pl.Series(np.ones(n, bool)),
        pron,
        inner.person,
        pl.Series([""] * n, dtype=pl.String),
        pron,
        pron,
        words=inner.words,
    )


# A name that is a common noun starts lower case and not with a determiner of its own
# (nested phrases do: "the parts of ...", "those that ...", "both ...", a staged question's
# "these").
_DETERMINERS = r"^(?:the|a|an|those|these|both|either|each|one|someone|something|any)(?: |$)"


def slot_name(
    lexicon: RelationLexicon, rd: np.ndarray, name: pl.Expr, is_name: pl.Series | bool = True
) -> pl.Expr:
    """A name (or phrase) as it stands in a relation's ``{x}``: a name takes the side's
    ``name_prefix`` ("the subject field of the term caramelize"); a common-noun name takes
    "the" where the relation speaks of things ("a part of the male body"). ``is_name``: the
    argument is an entity's name, not a phrase around one."""
    article = pl.lit(lex_column(lexicon, rd, "the_before_common_nouns"))
    prefix = pl.lit(lex_column(lexicon, rd, "name_prefix"))
    slot = name.str.contains(PLACEHOLDER_RE)  # a probe's placeholder: mark the slot
    return (
        pl.when(pl.lit(is_name) & (prefix != ""))
        .then(pl.concat_str(prefix, pl.lit(" "), name))
        .when(article & slot)
        .then(name.str.replace(PLACEHOLDER, SLOT_PLACEHOLDER, literal=True))
        .when(article & common_noun(name))
        .then(pl.concat_str(pl.lit("the "), name))
        .otherwise(name)
    )


def common_noun(name: pl.Expr) -> pl.Expr:
    """A name that is a common noun: lower case, not a phrase with its own determiner; a
    lower-case noun after capitalised words ("Beaufort scale", "African bee"), not after a
    possessive ("Fanconi's anemia"); or a plural head named of something ("Pillars of
    Hercules")."""
    lower = name.str.contains(r"^[a-z]") & ~name.str.contains(_DETERMINERS)
    proper_modifier = name.str.contains(r"^[A-Z][\w.-]*(?: [A-Z][\w.-]*)* [a-z][\w-]*$")
    plural_of = name.str.contains(r"^[A-Z][a-z]+s of [A-Z]")
    return lower | (proper_modifier & ~name.str.contains("'s ")) | plural_of


# Questions are first written with placeholder anchor names (linted once per relation row,
# then filled with each row's names): ``Xanchor<j>``, or ``XanchorT<j>`` where the name
# stands in a slot that gives a common noun "the" (:func:`slot_name`).
PLACEHOLDER = "Xanchor"
SLOT_PLACEHOLDER = "XanchorT"
PLACEHOLDER_RE = r"^XanchorT?\d$"


def project_phrase(lexicon: RelationLexicon, rd: np.ndarray, inner: Phrase) -> Phrase:
    """The phrase of a relation applied to ``inner`` (a plural inner takes the plural forms:
    "the organizations that the people who influenced X are members of"); a relation that is
    not functional is read in the plural ("the children of X", not "a child of X", which one
    of them would satisfy)."""
    g = lexicon.frame[rd]
    arg = slot_name(lexicon, rd, pl.lit(inner.arg), inner.name)
    if not isinstance(inner.words, bool) or inner.words:
        # a relation between things over a set named as words: the things they name ("the
        # parts of the things named by the words derived from ...")
        named = pl.when(pl.lit(inner.many)).then(pl.lit("the things named by "))
        arg = (
            pl.when(pl.lit(g["the_before_common_nouns"]) & pl.lit(inner.words))
            .then(pl.concat_str(named.otherwise(pl.lit("the thing named by ")), arg))
            .otherwise(arg)
        )
    many_in = pl.lit(inner.many)
    single = pl.lit(g["functional"])
    suffix = pl.when(many_in).then(pl.lit(g["suffix_m"])).otherwise(pl.lit(g["suffix"]))
    many = many_in | pl.lit(g["plural"]) | ~single
    head_one = pl.when(pl.lit(g["head"]) == "").then(pl.lit(""))
    noun = pl.concat_str(
        pl.when(many_in).then(pl.lit(g["prefix_m"])).otherwise(pl.lit(g["prefix_p"])),
        arg,
        suffix,
    )
    return materialise(
        len(rd),
        text=pl.when(many_in | ~single)
        .then(noun)
        .otherwise(pl.concat_str(pl.lit(g["prefix"]), arg, suffix)),
        many=many,
        noun=noun,
        person=pl.lit(g["person"]),
        head=head_one.when(many)
        .then(pl.concat_str(pl.lit("those "), pl.lit(g["head_pl"])))
        .otherwise(pl.concat_str(pl.lit("that "), pl.lit(g["head"]))),
        pron=pl.when(pl.lit(g["head_pl"]) == "")
        .then(pl.lit("these"))
        .otherwise(pl.concat_str(pl.lit("these "), pl.lit(g["pron_head"]))),
        words=pl.lit(g["words"]),
    )


# Placeholders a probe question can hold (``Xanchor0`` .. ``Xanchor8``).
MAX_PLACEHOLDERS = 9
# Per lexicon: the phrase of every relation direction applied to every placeholder, made once
# (:func:`anchor_projection`); most projections of a pattern start from an anchor.
_ANCHOR_PHRASES: weakref.WeakKeyDictionary[RelationLexicon, Phrase] = weakref.WeakKeyDictionary()


def anchor_projection(lexicon: RelationLexicon, rd: np.ndarray, j: int) -> Phrase:
    """``project_phrase(lexicon, rd, name_phrase(placeholder j))``, gathered from a table of
    every relation direction and placeholder built once per lexicon: the same phrases, without
    evaluating the phrase expressions again for every batch of probe rows."""
    if not 0 <= j < MAX_PLACEHOLDERS:
        raise ValueError(f"placeholder {j} out of range")
    m = lexicon.frame.height
    table = _ANCHOR_PHRASES.get(lexicon)
    if table is None:
        rds = np.tile(np.arange(m, dtype=np.int64), MAX_PLACEHOLDERS)
        names = pl.Series([f"{PLACEHOLDER}{k}" for k in range(MAX_PLACEHOLDERS) for _ in range(m)])
        table = project_phrase(lexicon, rds, name_phrase(names, len(rds)))
        _ANCHOR_PHRASES[lexicon] = table
    idx = pl.Series(np.asarray(rd, np.int64) + j * m)

    def pick(field: pl.Series | bool) -> pl.Series | bool:
        return field if isinstance(field, bool) else field.gather(idx)

    return Phrase(*(pick(getattr(table, f.name)) for f in dataclasses.fields(Phrase)))


def set_phrase(kind: int, parts: list[Phrase]) -> Phrase:
    """Intersection "both A and B", union "either A or B", difference "A but not B"; as a
    noun phrase "those that are ..." ("those who are ..." for people) over the parts' plural
    nouns, so the plural pronoun agrees ("those that are both genres of X and genres of Y")."""
    texts = [pl.lit(p.text) for p in parts]
    nouns = [bare_noun(pl.lit(p.noun)) for p in parts]
    if kind == INTERSECT:
        bare = all_of(texts)
        plural = all_of(nouns)
    elif kind == UNION:
        bare = pl.concat_str(pl.lit("either "), expr_join(texts, ", ", " or "))
        plural = pl.concat_str(pl.lit("either "), expr_join(nouns, ", ", " or "))
    else:  # scope made explicit: "those among A that are not among B"
        bare = pl.concat_str(texts[0], pl.lit(" but not "), texts[1])
        plural = bare
    person = pl.lit(parts[0].person)
    that = pl.when(person).then(pl.lit(" who ")).otherwise(pl.lit(" that "))
    if kind == DIFFERENCE:
        noun = pl.concat_str(
            pl.lit("those among "),
            pl.lit(parts[0].noun),
            that,
            pl.lit("are not among "),
            pl.lit(parts[1].noun),
        )
    else:
        noun = pl.concat_str(
            pl.when(person).then(pl.lit("those who are ")).otherwise(pl.lit("those that are ")),
            plural,
        )
    return materialise(
        len(parts[0].text),
        text=bare,
        many=pl.lit(parts[0].person).is_not_null(),
        noun=noun,
        person=person,
        head=pl.lit(parts[0].head).str.slice(0, 0),
        arg=noun,
        pron=pl.when(person).then(pl.lit("these people")).otherwise(pl.lit(parts[0].pron)),
    )


def all_of(parts: list[pl.Expr]) -> pl.Expr:
    """ "both A and B", "simultaneously A, B and C"."""
    if len(parts) == 2:
        return pl.concat_str(pl.lit("both "), parts[0], pl.lit(" and "), parts[1])
    return pl.concat_str(pl.lit("simultaneously "), expr_join(parts, ", ", " and "))


def be_verb(many: pl.Expr) -> pl.Expr:
    return pl.when(many).then(pl.lit("are")).otherwise(pl.lit("is"))


def join_clauses(clauses: list[pl.Expr], sep: str, lead: str = "") -> pl.Expr:
    """The non-empty clauses joined by ``sep`` after ``lead`` ("" when there are none)."""
    if not clauses:
        return pl.lit("")
    joined = (
        pl.concat_list(clauses).list.eval(pl.element().filter(pl.element() != "")).list.join(sep)
    )
    return pl.when(joined == "").then(joined).otherwise(pl.concat_str(pl.lit(lead), joined))


def bare_noun(noun: pl.Expr) -> pl.Expr:
    """A plural noun phrase without its article, after "are also" ("occupations of X")."""
    return noun.str.replace(r"^the ", "")


def expr_join(parts: list[pl.Expr], sep: str, last: str) -> pl.Expr:
    """Expressions joined as "A, B and C"."""
    items: list[pl.Expr] = []
    for i, p in enumerate(parts):
        if i:
            items.append(pl.lit(last if i == len(parts) - 1 else sep))
        items.append(p)
    return pl.concat_str(items)
