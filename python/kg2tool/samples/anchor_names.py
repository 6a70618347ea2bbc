"""Anchor names in questions: each name's forms, and probe questions filled with them.

Questions are written and linted with placeholder anchor names (``Xanchor<j>``, or
``XanchorT<j>`` in a slot that gives a common noun "the"; see
:func:`kg2tool.samples.linted.verbalize_linted`). Filling one puts in each sample's name in
the form its place asks for: "the" where the name takes it (:func:`with_article`), "the"
before a common noun in a slot (:func:`common_noun`), a capital after ". " or at the start.
The forms are computed once per entity (:class:`NameForms`) and the questions are built in
one native pass (:func:`kg2tool.textops.concat`) from the probe texts cut at their
placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from kg2tool.samples.phrases import PLACEHOLDER, SLOT_PLACEHOLDER, common_noun
from kg2tool.samples.questions import _SPACES
from kg2tool.textops import Str, Strings, concat
from kg2tool.tools.inflection import with_article

__all__ = ["FORMS", "FormTable", "NameForms", "fill_names"]

# A name's forms, in this order: as it reads in running text ("a": "the United States"), in a
# slot ("s": "the male body"), and those two starting a sentence ("ca", "cs").
FORMS = ("a", "s", "ca", "cs")


def _forms_frame(names: pl.Series) -> pl.DataFrame:
    """The forms (:data:`FORMS`) of each of ``names`` (null names read as "")."""

    def capital(col: str) -> pl.Expr:
        value = pl.col(col)
        return pl.concat_str(value.str.slice(0, 1).str.to_uppercase(), value.str.slice(1))

    frame = pl.DataFrame({"n": names.cast(pl.String).fill_null("")})
    frame = frame.select(with_article(pl.col("n")).alias("a"))
    a = pl.col("a")
    slot = pl.when(common_noun(a)).then(pl.concat_str(pl.lit("the "), a)).otherwise(a)
    frame = frame.with_columns(slot.alias("s"))
    return frame.with_columns(capital("a").alias("ca"), capital("s").alias("cs"))


# A KG with at most this many entities has the forms of every name computed once, when the
# first question needs one (~3 ms per 1,000 names); a larger one, those of each batch's names.
EVERY_NAME_AT_ONCE = 300_000


@dataclass
class FormTable:
    """Forms of ``count`` names: form ``f`` of name ``r`` at ``f * count + r`` of ``pool`` (an
    empty string last); ``period``: per name, whether it ends with a period."""

    pool: Strings
    period: np.ndarray
    count: int

    @classmethod
    def of(cls, names: pl.Series) -> FormTable:
        table = _forms_frame(names)
        pool = pl.concat([*(table[f] for f in FORMS), pl.Series([""], dtype=pl.String)])
        period = table["a"].str.ends_with(".").to_numpy()
        return cls(Strings(pool.rechunk()), period, table.height)


class NameForms:
    """The forms of the names of a KG's entities (``labels``, by entity id): of every entity
    at once, made at the first question and kept, or for a KG larger than
    :data:`EVERY_NAME_AT_ONCE`, of the entities a batch names."""

    def __init__(self, labels: pl.Series) -> None:
        self.labels = labels
        self._all: FormTable | None = None

    def table(self, ids: list[np.ndarray]) -> tuple[FormTable, list[np.ndarray]]:
        """The forms of the entities of ``ids`` (one array per anchor), and per anchor their
        rows in the table."""
        ids = [np.asarray(i, np.int64) for i in ids]
        m = len(self.labels)
        if any(i.size and (i.min() < 0 or i.max() >= m) for i in ids):
            raise IndexError(f"entity id out of range [0, {m})")
        if m <= EVERY_NAME_AT_ONCE:
            if self._all is None:
                self._all = FormTable.of(self.labels)
            return self._all, ids
        every = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        named, rows = np.unique(every, return_inverse=True)
        rows = np.asarray(rows, np.int64).reshape(-1)
        n = len(ids[0]) if ids else 0
        table = FormTable.of(self.labels.gather(named))
        return table, [rows[j * n : (j + 1) * n] for j in range(len(ids))]

    @staticmethod
    def of_names(names: list[pl.Series]) -> tuple[FormTable, list[np.ndarray]]:
        """The forms of the distinct names among ``names`` (no KG at hand), and per column
        their rows in the table."""
        every = pl.concat([s.cast(pl.String).fill_null("") for s in names])
        distinct = every.unique().sort()
        rows = (every.rank("dense") - 1).cast(pl.Int64).to_numpy()
        n = len(names[0]) if names else 0
        return FormTable.of(distinct), [rows[j * n : (j + 1) * n] for j in range(len(names))]


def _cut(texts: list[str]) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """The probe texts cut at their placeholders, all at once: the pieces of every text in
    turn (literal, placeholder, literal, ...: ``2 h + 1`` for ``h`` placeholders) and then one
    empty string; each text's first piece and its number of placeholders."""
    col = pl.Series("t", texts, dtype=pl.String)
    if col.str.contains("\x00", literal=True).any():
        raise ValueError("a probe question holds a NUL character")
    any_placeholder = rf"({PLACEHOLDER}T?\d)"  # Xanchor<j> or XanchorT<j>
    pieces = col.str.replace_all(any_placeholder, "\x00${1}\x00").str.split("\x00")
    counts = pieces.list.len().to_numpy().astype(np.int64)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    flat = pl.concat([pieces.explode(), pl.Series([""], dtype=pl.String)])
    return flat, first, (counts - 1) // 2


def fill_names(
    texts: list[str], back: np.ndarray, rows: list[np.ndarray], forms: FormTable
) -> pl.Series:
    """Question ``i``: probe text ``texts[back[i]]`` with placeholder ``j`` replaced by the
    form its place asks for of the name at row ``rows[j][i]`` of ``forms``. A name that
    ends with a period takes no second one ("Jr.." -> "Jr."), and a name's own white space
    reads as the templates' (one plain space)."""
    n = len(back)
    flat, first, holes = _cut(texts)
    width = int(holes.max()) if len(holes) else 0
    empty = len(flat) - 1
    # per piece: as a placeholder, its anchor and whether it is a slot's ("XanchorT<j>"); as a
    # literal, whether it ends a sentence (". ") or is a lone space
    digit = flat.str.slice(-1).str.to_integer(strict=False).fill_null(-1).to_numpy()
    is_slot = (flat.str.len_bytes() == len(SLOT_PLACEHOLDER) + 1).to_numpy()
    stop = flat.str.ends_with(". ").to_numpy()
    space = (flat == " ").to_numpy()
    blank = (flat == "").to_numpy()
    pool, period, count = forms.pool, forms.period, forms.count
    by_row = np.stack(rows) if rows else np.zeros((0, n), np.int64)
    start, h = first[back], holes[back]
    pieces = Strings(flat)
    parts: list[object] = []
    prev_row = np.full(n, -1, np.int64)
    prev_anchor = np.full(n, -1, np.int64)
    for p in range(width + 1):
        lit = np.where(p <= h, start + 2 * p, empty)
        parts.append(Str(pieces, index=lit))
        if p == width:
            break
        has = p < h
        at = np.where(has, start + 2 * p + 1, empty)
        j = np.where(has, digit[at], -1)
        if has.any() and int(j.max()) >= len(rows):
            raise ValueError(f"a probe question names anchor {int(j.max())} of {len(rows)}")
        row = np.where(has, by_row[np.maximum(j, 0), np.arange(n)], -1)
        # capital after ". " or at the very start; and after a lone space that follows an
        # earlier anchor's name ending with a period (the placeholders were replaced one
        # anchor after the other, so that one read as starting a sentence: ". X")
        cap = stop[lit] | ((p == 0) & blank[lit])
        cap |= space[lit] & (prev_row >= 0) & (prev_anchor < j) & period[np.maximum(prev_row, 0)]
        f = np.where(cap, 2, 0) + np.where(is_slot[at], 1, 0)
        parts.append(Str(pool, index=np.where(has, f * count + row, len(pool) - 1)))
        prev_row = np.where(has, row, prev_row)
        prev_anchor = np.where(has, j, prev_anchor)
    out = concat(n, *parts, name="question")
    q = pl.col("question").str.replace_all(_SPACES, " ").str.strip_chars()
    q = q.str.replace_all(r"\.\. ", ". ").str.replace(r"\.\.$", ".")
    return out.to_frame().select(q).to_series()
