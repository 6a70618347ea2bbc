"""Raw KG identifiers (Wikidata Q/P ids, Freebase mids) kept out of every text a model reads.

One pattern finds them in running text; :func:`clean_description` strips them from a KG's
relation descriptions before those become tool glosses.
"""

from __future__ import annotations

import re

__all__ = ["RAW_ID_PATTERN", "RAW_ID_RE", "clean_description"]

#: Raw KG identifiers in running text: Wikidata items/properties, Freebase mids.
RAW_ID_PATTERN = r"\b[QP]\d+\b|/m/|/g/"
RAW_ID_RE = re.compile(RAW_ID_PATTERN)


def clean_description(text: str | None, limit: int = 240) -> str:
    """Relation description without raw ids (Q5, P355, /m/..), trimmed to a sentence."""
    if not text:
        return ""
    text = re.sub(r"\(\s*(?:see\s+|Property:|Item:)?[PQ]\d+\s*\)", "", text)
    text = re.sub(r"\((?:[^()]*?)\b[PQ]\d+\b[^()]*\)", "", text)
    text = re.sub(r"(?:Property:|Item:)?\b[PQ]\d+\b|/[mg]/\w+", "", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", "", text)
    text = re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s+", " ", text)).strip(" ;,")
    if len(text) > limit:
        cut = text[:limit]
        stop = cut.rfind(". ")
        text = cut[: stop + 1] if stop > limit // 3 else cut.rsplit(" ", 1)[0] + "..."
    return text
