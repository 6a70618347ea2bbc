"""The named pattern library (BetaE's 14 types plus DAG, FIT-style and cyclic extras).

Pattern lists for the CLI (:func:`parse_patterns`): items separated by top-level commas
(commas inside ``( )``, ``[ ]`` or quotes do not split), each a library name or formula
with optional bracketed constraints, then an optional weight ``:W`` or ``*W`` (a number)::

    1p,2p:3,r1(s1,f)&r2(s2,f)*0.5,2p[r1=P19, s1:Q5]:2

A formula never contains ``:`` or ``*`` outside brackets, so the weight is unambiguous.
The ``where`` form of :func:`kg2tool.patterns.syntax.parse_spec` is not allowed in lists
(its commas would split the item); use brackets there.
"""

from __future__ import annotations

import difflib
import re

import numpy as np

from kg2tool.errors import PatternError, UnknownNameError
from kg2tool.patterns.syntax import PatternSpec, parse_spec, pattern_error

__all__ = [
    "BETAE_TYPES",
    "LIBRARY",
    "UnknownPatternError",
    "get_pattern",
    "list_patterns",
    "parse_patterns",
]


class UnknownPatternError(UnknownNameError, PatternError):
    """A pattern name is not in the library (both a KeyError and a PatternError)."""


# name -> (formula, description)
_ENTRIES: dict[str, tuple[str, str]] = {
    # BetaE (Ren & Leskovec, 2020): exactly the formulas of docs/CONTRACTS.md
    "1p": ("r1(s1,f)", "one hop"),
    "2p": ("r1(s1,e1)&r2(e1,f)", "two-hop path"),
    "3p": ("r1(s1,e1)&r2(e1,e2)&r3(e2,f)", "three-hop path"),
    "2i": ("r1(s1,f)&r2(s2,f)", "intersection of two hops"),
    "3i": ("r1(s1,f)&r2(s2,f)&r3(s3,f)", "intersection of three hops"),
    "ip": ("r1(s1,e1)&r2(s2,e1)&r3(e1,f)", "intersection, then a hop"),
    "pi": ("r1(s1,e1)&r2(e1,f)&r3(s2,f)", "two-hop path intersected with a hop"),
    "2in": ("r1(s1,f)&!r2(s2,f)", "hop minus hop"),
    "3in": ("r1(s1,f)&r2(s2,f)&!r3(s3,f)", "2i minus a hop"),
    "inp": ("r1(s1,e1)&!r2(s2,e1)&r3(e1,f)", "2in, then a hop"),
    "pin": ("r1(s1,e1)&r2(e1,f)&!r3(s2,f)", "two-hop path minus a hop"),
    "pni": ("r3(s2,f)&!(r1(s1,e1)&r2(e1,f))", "hop minus a two-hop path (BetaE set semantics)"),
    "2u": ("(r1(s1,f))|(r2(s2,f))", "union of two hops"),
    "up": ("(r1(s1,e1)&r3(e1,f))|(r2(s2,e1)&r3(e1,f))", "union, then a hop"),
    # DAG extras
    "ipp": ("r1(s1,e1)&r2(s2,e1)&r3(e1,e2)&r4(e2,f)", "intersection, then two hops"),
    "pip": ("r1(s1,e1)&r2(e1,e2)&r3(s2,e2)&r4(e2,f)", "pi, then a hop"),
    "3ip": ("r1(s1,e1)&r2(s2,e1)&r3(s3,e1)&r4(e1,f)", "3i, then a hop"),
    "2pi": ("r1(s1,e1)&r2(e1,f)&r3(s2,e2)&r4(e2,f)", "intersection of two two-hop paths"),
    # FIT-style (Yin et al., 2024): existential leaves, multi-edges, atom-level negation
    "pni_fit": (
        "r1(s1,e1)&!r2(e1,f)&r3(s2,f)",
        "FIT reading of pni: some e1 of r1(s1) is not linked to f",
    ),
    "2il": ("r1(s1,f)&r2(e1,f)", "hop, and f has some incoming r2 edge"),
    "3il": ("r1(s1,f)&r2(s2,f)&r3(e1,f)", "2i, and f has some incoming r3 edge"),
    "2m": ("r1(s1,e1)&r2(e1,f)&r3(e1,f)", "two-hop path whose last step holds for two relations"),
    "2nm": ("r1(s1,e1)&r2(e1,f)&!r3(e1,f)", "two-hop path whose last step lacks a relation"),
    "3mp": ("r1(s1,e1)&r2(e1,e2)&r3(e2,f)&r4(e1,e2)", "3p with a doubled middle step"),
    "3pm": ("r1(s1,e1)&r2(e1,e2)&r3(e2,f)&r4(e2,f)", "3p with a doubled last step"),
    "im": ("r1(s1,e1)&r2(s2,e1)&r3(e1,f)&r4(e1,f)", "ip with a doubled last step"),
    "3c": ("r1(s1,e1)&r2(e1,f)&r3(s2,e2)&r4(e2,f)&r5(e1,e2)", "4-cycle e1-f-e2 with a chord"),
    "3cm": (
        "r1(s1,e1)&r2(e1,f)&r3(s2,e2)&r4(e2,f)&r5(e1,e2)&r6(e1,f)",
        "3c with a doubled edge",
    ),
    # cycles
    "triangle": ("r1(s1,e1)&r2(e1,f)&r3(s1,f)", "cycle through the anchor s1 (3 terms)"),
    "square": ("r1(s1,e1)&r2(e1,f)&r3(s1,e2)&r4(e2,f)", "cycle through the anchor s1 (4 terms)"),
    "lollipop": (
        "r1(s1,e1)&r2(e1,e2)&r3(e2,f)&r4(e1,f)",
        "a hop into a triangle of variables",
    ),
}

BETAE_TYPES: tuple[str, ...] = (
    "1p", "2p", "3p", "2i", "3i", "ip", "pi", "2in", "3in", "inp", "pin", "pni", "2u", "up",
)  # fmt: skip

LIBRARY: dict[str, PatternSpec] = {
    name: PatternSpec(name=name, formula=formula, description=desc)
    for name, (formula, desc) in _ENTRIES.items()
}


def list_patterns() -> list[str]:
    """Names in the library, BetaE types first, in a stable order."""
    return list(LIBRARY)


def get_pattern(name: str) -> PatternSpec:
    """The library pattern ``name``; unknown names raise with close matches suggested."""
    spec = LIBRARY.get(name.strip())
    if spec is None:
        close = difflib.get_close_matches(name.strip(), list(LIBRARY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownPatternError(
            f"unknown pattern {name.strip()!r}{hint} (known: {', '.join(LIBRARY)}; "
            "or write a formula like r1(s1,e1)&r2(e1,f))"
        )
    return spec


_WEIGHT = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*\Z")


def _split_top_level(text: str) -> list[tuple[str, int]]:
    items: list[tuple[str, int]] = []
    depth, start, quoted = 0, 0, False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append((text[start:i], start))
            start = i + 1
    items.append((text[start:], start))
    return items


def parse_patterns(text: str) -> list[tuple[PatternSpec, float]]:
    """Parse a CLI pattern list (module docstring) into (spec, weight) pairs, weight 1 by default."""
    if re.search(r"\swhere\s", text):
        raise pattern_error(
            text,
            text.index("where"),
            "'where' is not allowed in a pattern list; write constraints in brackets: 2p[r1=P19]",
        )
    result: list[tuple[PatternSpec, float]] = []
    for item, start in _split_top_level(text):
        if not item.strip():
            raise pattern_error(text, start, "empty item in the pattern list")
        weight = 1.0
        depth, cut = 0, -1
        for i, ch in enumerate(item):
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif ch in ":*" and depth == 0:
                cut = i
        body = item
        if cut >= 0:
            m = _WEIGHT.match(item, cut + 1)
            if not m:
                raise pattern_error(
                    text, start + cut + 1, "expected a weight (a number) after ':' or '*'"
                )
            weight = float(m.group(1))
            if weight <= 0:
                raise pattern_error(text, start + cut + 1, "a weight must be positive")
            body = item[:cut]
        try:
            spec = parse_spec(body.strip())
        except UnknownPatternError:
            raise
        except PatternError as exc:
            col = getattr(exc, "column", None)
            msg = str(exc).split(" (at ", 1)[0]
            lead = len(body) - len(body.lstrip())
            pos = start + lead + (col - 1 if col else 0)
            raise pattern_error(text, pos, msg) from None
        result.append((spec, weight))
    return result


def pattern_counts(weights: list[float], total: int) -> list[int]:
    """Split ``total`` by ``weights`` with the largest-remainder rule (deterministic)."""
    w = np.asarray(weights, dtype=float)
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(np.int64)
    rest = total - int(counts.sum())
    order = np.lexsort((np.arange(len(w)), -(exact - counts)))
    counts[order[:rest]] += 1
    return counts.tolist()
