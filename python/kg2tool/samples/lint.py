"""A lint for generated text (questions, API descriptions): what a careful reader would reject.

Each rule is a regular expression over the whole text, so one vectorised pass checks a
column of millions of questions; :func:`lint_texts` gives the first failing rule's name per
row (null when the text passes) and :func:`lint_text` the same for one string. Anchor names
are not linted: questions are checked with placeholder names (see
:func:`kg2tool.samples.linted.verbalize_linted`).
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import polars as pl

__all__ = ["PROSE_RULES", "RULES", "lint_distinct", "lint_text", "lint_texts", "rule_matches"]

# a hyphenated word is one token ("co-occurs co-occurs" is a doubled word)
_TOKEN = r"[a-z0-9']+(?:-[a-z0-9']+)*|[^\sa-z0-9']"
_PREP = r"(?:of|in|by|with|to|from|at|on|for|into|about|as)"
# rule name -> pattern (Rust regex syntax, also valid for Python's re)
RULES: dict[str, str] = {
    "placeholder": r"\{x\}|\{\w*\}|\bNone\b|\bnull\b",
    "raw_key": r"\b[QP]\d+\b|/m/|/g/|\b[a-z]+:[A-Za-z]\w*",
    "underscore": r"_",
    "path_word": r"(?:^|\s)/\w+/|\w/\w+/",
    "doubled_word": "",  # checked by _doubled (the regex crate has no back-references)
    "a_an": r"\b[Aa] [AEIOaeio]\w|\b[Aa]n [B-DF-GJ-NP-TV-Zb-df-gj-np-tv-z]\w",
    "dangling_preposition": rf"\b{_PREP}(?:\s*[.,;:!]|\s*$|\s+{_PREP}\b)",
    "empty_phrase": r"\b(?:the|a|an) (?:of|is|are|that|who|whose|which)\b|\s[,.?]|^\W",
    "number_agreement": r"\b(?:the|these|those) (?:people|children) (?:is|was|has)\b",
}


def _doubled(texts: pl.Expr) -> pl.Expr:
    """A word or a two-word phrase repeated right after itself ("of of", "the the",
    "olympics olympic", "co-occurs co-occurs", "the position the position")."""
    return texts.map_batches(_doubled_batch, return_dtype=pl.Boolean)


def _doubled_batch(texts: pl.Series) -> pl.Series:
    """Per text: whether two adjacent words are the same (or the same stem of 4+ letters
    with a plural "s"). Natively (``_core.doubled_words``) for ASCII texts, by
    :func:`_doubled_polars` for the others (Unicode lower case and white space)."""
    from kg2tool import _core
    from kg2tool.textops import Strings

    got = _core.doubled_words(*Strings(texts.cast(pl.String).fill_null("")).native())
    out = got == 1
    rest = np.flatnonzero(got == 2)
    if len(rest):
        out[rest] = _doubled_polars(texts.gather(rest)).to_numpy()
    return pl.Series(out)


def _doubled_polars(texts: pl.Series) -> pl.Series:
    """:func:`_doubled_batch` by Polars string functions (any text)."""
    # punctuation marks are tokens too, so "relations. Relation" is no repetition
    words = texts.str.to_lowercase().str.extract_all(_TOKEN)
    # one row per word with its text's row (empty and null texts give none, whatever an
    # empty list explodes into)
    exploded = pl.DataFrame({"w": words, "row": np.arange(len(texts))}).explode("w").drop_nulls("w")
    flat = exploded.get_column("w")
    row = exploded.get_column("row").to_numpy()
    out = np.zeros(len(texts), bool)
    if len(flat) < 2:
        return pl.Series(out)
    a, b = flat.slice(0, len(flat) - 1), flat.slice(1)
    sa, sb = a.str.strip_suffix("s"), b.str.strip_suffix("s")
    hit = ((a == b) | ((sa == sb) & (sa.str.len_chars() >= 4))).fill_null(False).to_numpy()
    hit &= row[:-1] == row[1:]
    out[row[:-1][hit]] = True
    if len(flat) >= 4:  # "w1 w2 w1 w2" within one text
        n = len(flat) - 3
        same = (
            (flat.slice(0, n) == flat.slice(2, n)) & (flat.slice(1, n) == flat.slice(3, n))
        ).fill_null(False).to_numpy() & (row[:n] == row[3:])
        out[row[:n][same]] = True
    return pl.Series(out)


# In prose (API descriptions) a preposition may end a relative clause ("the parties a person
# is a member of."); two prepositions in a row ("majored in at") are still a defect.
PROSE_RULES: dict[str, str] = {**RULES, "dangling_preposition": rf"\b{_PREP}\s+{_PREP}\b"}


def lint_texts(texts: pl.Series, *, prose: bool = False) -> pl.Series:
    """Name of the first rule each text fails, null when it passes (null texts fail).
    ``prose``: the rules for descriptions (:data:`PROSE_RULES`), not for questions.

    Most texts pass: one pass of all the expressions at once finds those that fail one, and
    only they go through the rules in turn for the first one's name."""
    rules = PROSE_RULES if prose else RULES
    frame = pl.DataFrame({"t": texts.cast(pl.String)})
    col = pl.col("t")
    any_rule = "|".join(f"(?:{p})" for p in rules.values() if p)
    fails = frame.select(
        (col.is_null() | col.str.contains(any_rule) | _doubled(col)).fill_null(True)
    ).to_series()
    out = pl.Series("lint", [None] * len(frame), dtype=pl.String)
    if not fails.any():
        return out
    expr = pl.when(col.is_null()).then(pl.lit("missing"))
    for name, pattern in rules.items():
        if name == "doubled_word":
            expr = expr.when(_doubled(col)).then(pl.lit(name))
        else:
            expr = expr.when(col.str.contains(pattern)).then(pl.lit(name))
    rows = np.flatnonzero(fails.to_numpy())
    named = frame[rows].select(expr.otherwise(pl.lit(None, pl.String)).alias("lint")).to_series()
    return out.scatter(rows, named)


# Verdicts on question texts already linted in this process: generated questions repeat
# across batches and shards (placeholder anchor names), so most are linted once per process.
_VERDICTS: dict[str, str | None] = {}
_VERDICTS_MAX = 1 << 20


def lint_distinct(texts: pl.Series) -> pl.Series:
    """:func:`lint_texts` (question rules) for a column of distinct non-null texts, each
    text's verdict remembered for the rest of the process."""
    fresh = [t for t in texts.to_list() if t not in _VERDICTS]
    if fresh:
        if len(_VERDICTS) + len(fresh) > _VERDICTS_MAX:
            _VERDICTS.clear()
        verdicts = lint_texts(pl.Series(fresh, dtype=pl.String)).to_list()
        _VERDICTS.update(zip(fresh, verdicts, strict=True))
    return pl.Series([_VERDICTS[t] for t in texts.to_list()], dtype=pl.String)


def lint_text(text: str, *, prose: bool = False) -> str | None:
    """:func:`lint_texts` for one string."""
    return lint_texts(pl.Series([text], dtype=pl.String), prose=prose)[0]


def rule_matches(name: str, text: str) -> bool:
    """Whether one rule fires on a text (for tests and debugging)."""
    if name == "doubled_word":
        words = re.findall(_TOKEN, text.lower())
        return any(
            a == b or (a.rstrip("s") == b.rstrip("s") and len(a.rstrip("s")) >= 4)
            for a, b in itertools.pairwise(words)
        ) or any(words[i : i + 2] == words[i + 2 : i + 4] for i in range(len(words) - 3))
    return re.search(RULES[name], text) is not None
