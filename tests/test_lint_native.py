"""The question lint's native parts: the doubled-word check (``_core.doubled_words``) agrees
with the Polars implementation and with plain Python ``re`` on texts of words, punctuation,
hyphens, cases and white space (non-ASCII texts go to Polars); the one-pass prefilter of
:func:`lint_texts` gives each text the first rule it fails, as the rules in turn do; and
malformed buffers raise instead of reading out of bounds."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kg2tool import _core
from kg2tool.samples.lint import (
    RULES,
    _doubled_batch,
    _doubled_polars,
    lint_texts,
    rule_matches,
)

_TOKENS = [
    "of", "Of", "the", "The", "cat", "cats", "Cats", "house", "houses", "co-occurs",
    "Co-Occurs", "it's", "its", "a", "A", "an", "X0", "x0", ".", ",", "?", "-", "--", "'",
    "(", ")", "Xanchor0", "XanchorT1", "e", "é", "É", "İ", "naïve",
]  # fmt: skip
_SPACES = [" ", " ", " ", "", "  ", "\t", "\n", "\u00a0", "\x0b"]

texts = st.lists(
    st.tuples(st.sampled_from(_TOKENS), st.sampled_from(_SPACES)), min_size=0, max_size=9
).map(lambda parts: "".join(t + s for t, s in parts))


@settings(max_examples=400, deadline=None)
@given(st.lists(texts, min_size=1, max_size=12))
def test_native_doubled_words_agree_with_polars_and_re(batch: list[str]) -> None:
    col = pl.Series(batch, dtype=pl.String)
    native = _doubled_batch(col).to_list()
    assert native == _doubled_polars(col).to_list()
    for text, got in zip(batch, native, strict=True):
        if text.isascii():
            assert got == rule_matches("doubled_word", text), text


def test_native_doubled_words_on_known_texts() -> None:
    cases = {
        "What is the the capital?": 1,
        "Which olympics olympic sports?": 1,  # the same stem but for a plural s
        "the cats cat": 0,  # a stem of 3 letters
        "co-occurs co-occurs with X": 1,
        "the position the position of X": 1,  # two words repeated
        "the position of the position of X": 0,
        "relations. Relation": 0,  # a period between
        "What?? Who": 1,  # punctuation tokens too
        "naïve naïve": 2,  # non-ASCII: left to Polars
        "": 0,
    }
    col = pl.Series(list(cases), dtype=pl.String)
    from kg2tool.textops import Strings

    assert _core.doubled_words(*Strings(col).native()).tolist() == list(cases.values())
    assert _doubled_batch(pl.Series([None, "of of"], dtype=pl.String)).to_list() == [False, True]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(texts, st.none()), min_size=1, max_size=12))
def test_prefiltered_lint_names_the_first_failing_rule(batch: list[str | None]) -> None:
    got = lint_texts(pl.Series(batch, dtype=pl.String)).to_list()
    for text, reason in zip(batch, got, strict=True):
        if text is None:
            assert reason == "missing"
            continue
        if not text.isascii():  # Python's re and the regex crate differ on some Unicode
            continue
        fired = [r for r in RULES if rule_matches(r, text)]
        assert reason == (fired[0] if fired else None), text


def test_malformed_columns_raise() -> None:
    data = np.array(list(b"of ofthe"), np.uint8)
    assert _core.doubled_words(np.array([0, 5, 8], np.int64), data).tolist() == [1, 0]
    with pytest.raises(ValueError, match="offsets decrease"):
        _core.doubled_words(np.array([0, 5, 3], np.int64), data)
    with pytest.raises(IndexError, match="past the end"):
        _core.doubled_words(np.array([0, 5, 99], np.int64), data)
    with pytest.raises(ValueError, match="16 bytes"):
        _core.doubled_words(None, (np.zeros(15, np.uint8), []))
    with pytest.raises(IndexError, match="names buffer"):
        view = np.zeros(16, np.uint8)
        view[0] = 20  # 20 bytes: in buffer 0, which is not given
        _core.doubled_words(None, (view, []))
    with pytest.raises(ValueError, match="expected a numpy array"):
        _core.doubled_words(np.array([0, 1], np.int64), "x")
