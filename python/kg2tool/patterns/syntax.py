"""Pattern formulas: the lark grammar, the AST, validation, and the compact spec syntax.

Formulas are DNF in the EFO-k / FIT notation:

- atom ``r1(s1,e1)``: ``rN`` relation slot, ``sN`` anchor (constant) slot, ``eN``
  existential variable, ``f`` the answer variable;
- ``&`` conjunction, ``!r1(s1,f)`` negated atom, ``!( conj )`` negated conjunction whose
  own new variables are existential inside the negation;
- ``(conj)|(conj)`` union; every branch is parenthesised, so ``a&b|c`` is an error
  rather than a precedence puzzle. Whitespace is ignored.

Scoping: an existential belongs to its union branch (``e1`` of two branches are two
variables); inside ``!( ... )`` a variable that also occurs in the positive atoms of the
enclosing conjunction is *shared*, the others are local to the negation.

Validation (every rule gives a :class:`PatternError` with the column and a caret):
every branch has ``f`` in a positive atom; every atom has a variable; the variables of a
negated atom occur in the positive part (safety); a negated conjunction shares exactly
one variable with the positive part (its *attach* variable, where the set difference
happens) and contains it in a positive atom; the query graph (positive + negated atoms,
anchors as nodes) is connected and every component of the positive part has an anchor;
a negated atom may not repeat a positive one.

Compact spec syntax (one CLI-friendly string, see :func:`parse_spec`)::

    FORMULA_OR_NAME [where C, C, ...]      or      FORMULA_OR_NAME[C, C, ...]
    C :=  rN=RELATION_KEY       fix a relation slot
       |  sN=ENTITY_KEY         fix an anchor slot
       |  TERM:TYPE_KEY         entity type of an anchor sN or a variable eN / f
       |  sN=ENTITY_KEY:TYPE    both at once

Keys are bare (no whitespace, ``, [ ] = : "``) or double-quoted (``r1="/film/film/genre"``).
Example: ``r1(s1,e1)&r2(e1,f) where r1=P19, s1:Q5`` or ``2p[r1=P19, s1:Q5]``. The
bracket form is the one to use inside comma-separated pattern lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import rustworkx as rx
from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from kg2tool.errors import PatternError

__all__ = [
    "Atom",
    "Conjunction",
    "Formula",
    "PatternSpec",
    "is_anchor",
    "is_variable",
    "parse_formula",
    "parse_spec",
    "pattern_error",
]

GRAMMAR = r"""
start: conj                    -> single
     | branch ("|" branch)*    -> union
branch: "(" conj ")"
conj: literal ("&" literal)*
literal: atom                  -> pos
       | "!" atom              -> neg_atom
       | "!" "(" conj ")"      -> neg_conj
atom: NAME "(" NAME "," NAME ")"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr", propagate_positions=True)
_REL_RE = re.compile(r"r[0-9]+\Z")
_TERM_RE = re.compile(r"(?:s[0-9]+|e[0-9]+|f)\Z")
_MAX_DEPTH = 32
_READABLE = {
    "NAME": "a name like r1 or e1",
    "LPAR": "'('",
    "RPAR": "')'",
    "AMPERSAND": "'&'",
    "VBAR": "'|'",
    "BANG": "'!'",
    "COMMA": "','",
    "$END": "end of formula",
}


def is_anchor(term: str) -> bool:
    """True for anchor (constant) slots ``sN``."""
    return term.startswith("s")


def is_variable(term: str) -> bool:
    """True for ``f`` and existential variables ``eN``."""
    return not term.startswith("s")


def slot_sort_key(name: str) -> tuple[str, int, str]:
    """Order slots numerically (r2 before r10)."""
    digits = name[1:]
    return (name[:1], int(digits) if digits.isdigit() else -1, name)


def pattern_error(text: str, pos: int, message: str) -> PatternError:
    """A PatternError whose message shows the formula and a caret under 0-based ``pos``."""
    pos = max(0, min(pos, len(text)))
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line_end = len(text) if line_end < 0 else line_end
    line_no = text.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    where = f"column {column}" if line_no == 1 else f"line {line_no}, column {column}"
    err = PatternError(
        f"{message} (at {where})\n  {text[line_start:line_end]}\n  {' ' * (column - 1)}^"
    )
    err.column = column  # type: ignore[attr-defined]
    err.line = line_no  # type: ignore[attr-defined]
    return err


@dataclass(frozen=True)
class Atom:
    """One atom ``relation(head, tail)``; ``pos`` is its 0-based offset in the text."""

    relation: str
    head: str
    tail: str
    pos: int = field(default=0, compare=False)

    @property
    def terms(self) -> tuple[str, str]:
        """(head, tail)."""
        return (self.head, self.tail)

    @property
    def variables(self) -> set[str]:
        """The variable terms of the atom."""
        return {t for t in self.terms if is_variable(t)}

    def __str__(self) -> str:
        return f"{self.relation}({self.head},{self.tail})"


@dataclass(frozen=True)
class Conjunction:
    """Positive atoms, negated atoms and negated sub-conjunctions, all joined by ``&``."""

    atoms: tuple[Atom, ...]
    negated_atoms: tuple[Atom, ...] = ()
    negations: tuple[Conjunction, ...] = ()
    pos: int = field(default=0, compare=False)

    @property
    def positive_variables(self) -> set[str]:
        """Variables that occur in a positive atom (the ones this conjunction binds)."""
        return {v for a in self.atoms for v in a.variables}

    def attach_variable(self, outer: Conjunction) -> str:
        """For a negation of ``outer``: the single variable it shares with ``outer``."""
        shared = self.positive_variables & outer.positive_variables
        return next(iter(shared))

    def iter_atoms(self) -> Iterator[tuple[Atom, bool]]:
        """Every atom (with its negated flag) of this conjunction and its negations."""
        for a in self.atoms:
            yield a, False
        for a in self.negated_atoms:
            yield a, True
        for d in self.negations:
            yield from d.iter_atoms()

    def __str__(self) -> str:
        parts = [str(a) for a in self.atoms]
        parts += [f"!{a}" for a in self.negated_atoms]
        parts += [f"!({d})" for d in self.negations]
        return "&".join(parts)


@dataclass(frozen=True)
class Formula:
    """A validated DNF formula: a union of conjunctions (one branch when there is no ``|``)."""

    branches: tuple[Conjunction, ...]
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        if len(self.branches) == 1:
            return str(self.branches[0])
        return "|".join(f"({b})" for b in self.branches)

    def iter_atoms(self) -> Iterator[tuple[Atom, bool]]:
        """Every atom of the formula in textual order of branches (with negated flag)."""
        for b in self.branches:
            yield from b.iter_atoms()

    @property
    def relation_slots(self) -> list[str]:
        """Relation slot names, numerically sorted."""
        return sorted({a.relation for a, _ in self.iter_atoms()}, key=slot_sort_key)

    @property
    def anchor_slots(self) -> list[str]:
        """Anchor slot names, numerically sorted."""
        names = {t for a, _ in self.iter_atoms() for t in a.terms if is_anchor(t)}
        return sorted(names, key=slot_sort_key)

    @property
    def variables(self) -> list[str]:
        """Variable names (f and every eN), sorted."""
        names = {t for a, _ in self.iter_atoms() for t in a.terms if is_variable(t)}
        return sorted(names, key=slot_sort_key)


# ---------------------------------------------------------------------------- parsing


def _describe_expected(expected: set[str]) -> str:
    names = sorted({_READABLE.get(e, repr(e)) for e in expected})
    return ", ".join(names)


def _syntax_error(text: str, exc: UnexpectedInput) -> PatternError:
    pos = getattr(exc, "pos_in_stream", None)
    token = getattr(exc, "token", None)
    at_end = token is not None and getattr(token, "type", "") == "$END"
    if isinstance(exc, UnexpectedEOF) or pos is None or at_end:
        pos = len(text.rstrip())
    if isinstance(exc, UnexpectedCharacters):
        char = text[pos] if pos < len(text) else ""
        msg = f"unexpected character {char!r}"
        if char in "∧∨¬":
            msg += "; write & for and, | for or, ! for not"
        return pattern_error(text, pos, msg)
    expected = set(getattr(exc, "expected", set()) or set())
    got = "end of formula" if token is None or token.type == "$END" else repr(str(token))
    msg = f"unexpected {got}"
    if expected:
        msg += f"; expected {_describe_expected(expected)}"
    if token is not None and str(token) == "|":
        msg += "; put each union branch in parentheses: (r1(s1,f))|(r2(s2,f))"
    return pattern_error(text, pos, msg)


def _atom_from_tree(text: str, tree: Tree) -> Atom:
    rel, head, tail = (tok for tok in tree.children if isinstance(tok, Token))
    if not _REL_RE.match(rel):
        hint = " (terms go inside the parentheses)" if _TERM_RE.match(rel) else ""
        raise pattern_error(
            text, rel.start_pos, f"{rel!s} is not a relation slot; use r1, r2, ...{hint}"
        )
    for tok in (head, tail):
        if not _TERM_RE.match(tok):
            what = "a relation slot" if _REL_RE.match(tok) else "not a term"
            raise pattern_error(
                text,
                tok.start_pos,
                f"{tok!s} is {what}; terms are anchors s1, s2, ..., existentials e1, e2, ..., "
                "or the answer variable f",
            )
    return Atom(str(rel), str(head), str(tail), rel.start_pos)


def _conj_from_tree(text: str, tree: Tree, depth: int = 0) -> Conjunction:
    if depth > _MAX_DEPTH:
        raise pattern_error(text, tree.meta.start_pos, "negations nested too deeply")
    atoms: list[Atom] = []
    negated: list[Atom] = []
    negations: list[Conjunction] = []
    for lit in tree.children:
        child = lit.children[0]
        if lit.data == "pos":
            atoms.append(_atom_from_tree(text, child))
        elif lit.data == "neg_atom":
            negated.append(_atom_from_tree(text, child))
        else:
            inner = _conj_from_tree(text, child, depth + 1)
            negations.append(replace(inner, pos=lit.meta.start_pos))  # point at the '!'
    return Conjunction(tuple(atoms), tuple(negated), tuple(negations), tree.meta.start_pos)


def parse_formula(text: str) -> Formula:
    """Parse and validate a DNF formula string; raise PatternError pointing at the column."""
    if not isinstance(text, str):
        raise PatternError(f"a formula is a string, not {type(text).__name__}")
    if not text.strip():
        raise pattern_error(text, 0, "empty formula; write e.g. r1(s1,e1)&r2(e1,f)")
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except LarkError as exc:  # pragma: no cover - lark internals; keep the promise of PatternError
        raise PatternError(f"cannot parse formula {text!r}: {exc}") from None
    if tree.data == "single":
        branches = (_conj_from_tree(text, tree.children[0]),)
    else:
        branches = tuple(_conj_from_tree(text, b.children[0]) for b in tree.children)
    formula = Formula(branches, text)
    for i, branch in enumerate(branches):
        _validate_conj(
            text, branch, frozenset(), top=True, branch_no=i if len(branches) > 1 else -1
        )
    return formula


# ------------------------------------------------------------------------- validation


def _validate_conj(
    text: str, conj: Conjunction, bound: frozenset[str], *, top: bool, branch_no: int = -1
) -> None:
    if not conj.atoms:
        raise pattern_error(text, conj.pos, "a conjunction needs at least one positive atom")
    for atom in (*conj.atoms, *conj.negated_atoms):
        if not atom.variables:
            raise pattern_error(
                text, atom.pos, f"{atom} links two anchors; every atom needs a variable eN or f"
            )
    pos_vars = conj.positive_variables
    if top and "f" not in pos_vars:
        where = f"union branch {branch_no + 1}" if branch_no >= 0 else "the formula"
        has_f = any("f" in a.terms for a, _ in conj.iter_atoms())
        msg = f"{where} has no answer variable f in a positive atom"
        if has_f:
            msg += " (f occurs only under a negation, which cannot produce answers)"
        raise pattern_error(text, conj.pos, msg)
    positive_set = {(a.relation, a.head, a.tail) for a in conj.atoms}
    for atom in conj.negated_atoms:
        unbound = sorted(atom.variables - pos_vars)
        if unbound:
            raise pattern_error(
                text,
                atom.pos,
                f"unsafe negation: {', '.join(unbound)} in !{atom} is not bound by a positive "
                f"atom; to say 'there is no {unbound[0]} with ...' write !({atom})",
            )
        if (atom.relation, atom.head, atom.tail) in positive_set:
            raise pattern_error(
                text, atom.pos, f"contradiction: !{atom} negates the positive atom {atom}"
            )
    for neg in conj.negations:
        inner_vars = {v for a in (*neg.atoms, *neg.negated_atoms) for v in a.variables}
        outer_refs = sorted(inner_vars & (bound - pos_vars))
        if outer_refs:
            raise pattern_error(
                text,
                neg.pos,
                f"negated part uses {', '.join(outer_refs)} of an outer scope; a negation may "
                "share one variable with the conjunction it is in",
            )
        shared = sorted(inner_vars & pos_vars)
        if not shared:
            raise pattern_error(
                text,
                neg.pos,
                "negated part shares no variable with the positive part; it would be a "
                "yes/no condition, not a filter on the answers",
            )
        if len(shared) > 1:
            raise pattern_error(
                text,
                neg.pos,
                f"negated part shares {', '.join(shared)} with the positive part; only one "
                "shared variable is supported (the set difference happens at that variable)",
            )
        if shared[0] not in neg.positive_variables:
            raise pattern_error(
                text,
                neg.pos,
                f"the shared variable {shared[0]} must occur in a positive atom inside the "
                "negation",
            )
        _validate_conj(text, neg, bound | pos_vars, top=False)
    _check_connected(text, conj)


def _check_connected(text: str, conj: Conjunction) -> None:
    graph = rx.PyGraph(multigraph=True)
    index: dict[str, int] = {}

    def node(term: str) -> int:
        if term not in index:
            index[term] = graph.add_node(term)
        return index[term]

    for atom in (*conj.atoms, *conj.negated_atoms):
        graph.add_edge(node(atom.head), node(atom.tail), atom)
    components = rx.connected_components(graph)
    if len(components) > 1:
        first = next(iter(conj.atoms)).head
        main = next(c for c in components if index[first] in c)
        stray = next(a for a in (*conj.atoms, *conj.negated_atoms) if index[a.head] not in main)
        raise pattern_error(
            text,
            stray.pos,
            f"disconnected pattern: {stray} shares no term with {conj.atoms[0]}; every atom must "
            "be linked to the others through shared terms",
        )
    positive = rx.PyGraph(multigraph=True)
    pindex: dict[str, int] = {}
    for atom in conj.atoms:
        for t in atom.terms:
            if t not in pindex:
                pindex[t] = positive.add_node(t)
        positive.add_edge(pindex[atom.head], pindex[atom.tail], atom)
    for comp in rx.connected_components(positive):
        if not any(is_anchor(positive[n]) for n in comp):
            atom = next(a for a in conj.atoms if pindex[a.head] in comp)
            raise pattern_error(
                text,
                atom.pos,
                f"the part of the pattern around {atom} has no anchor sN; every group of "
                "positive atoms needs a constant to start from",
            )


# ------------------------------------------------------------------------------ specs


@dataclass(frozen=True)
class PatternSpec:
    """A named pattern: formula plus constraints on its slots.

    - ``fixed_relations``: relation slot -> KG relation key (``{"r1": "P19"}``)
    - ``fixed_entities``: anchor slot -> KG entity key (``{"s1": "Q42"}``)
    - ``types``: anchor slot or variable -> entity type key (``{"e1": "Q5"}``); a type on
      an existential name applies to that name in every branch and negation.
    """

    name: str
    formula: str
    fixed_relations: Mapping[str, str] = field(default_factory=dict)
    fixed_entities: Mapping[str, str] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        parsed = self.parsed  # validates the formula
        rels = set(parsed.relation_slots)
        anchors = set(parsed.anchor_slots)
        variables = set(parsed.variables)
        for slot in self.fixed_relations:
            if slot not in rels:
                raise PatternError(
                    f"fixed relation for {slot!r}, which is not a relation slot of "
                    f"{parsed} (slots: {', '.join(parsed.relation_slots)})"
                )
        for slot in self.fixed_entities:
            if slot not in anchors:
                hint = f"; use {slot}:TYPE to constrain a variable" if slot in variables else ""
                raise PatternError(
                    f"fixed entity for {slot!r}, which is not an anchor slot of {parsed}{hint}"
                )
        for term in self.types:
            if term not in anchors and term not in variables:
                raise PatternError(f"type for {term!r}, which is not a term of {parsed}")
        self._check_contradictions(parsed)

    def _check_contradictions(self, parsed: Formula) -> None:
        def resolve(atom: Atom) -> tuple[str, str, str]:
            def term(t: str) -> str:
                return f"={self.fixed_entities[t]}" if t in self.fixed_entities else t

            rel = self.fixed_relations.get(atom.relation)
            return (f"={rel}" if rel else atom.relation, term(atom.head), term(atom.tail))

        def walk(conj: Conjunction) -> None:
            positives = {resolve(a): a for a in conj.atoms}
            for atom in conj.negated_atoms:
                other = positives.get(resolve(atom))
                if other is not None:
                    raise pattern_error(
                        parsed.text or str(parsed),
                        atom.pos,
                        f"contradictory fixed slots: !{atom} negates {other} (same relation "
                        "and terms after fixing), so the pattern has no answers",
                    )
            for neg in conj.negations:
                walk(neg)

        for branch in parsed.branches:
            walk(branch)

    @cached_property
    def parsed(self) -> Formula:
        """The validated AST of ``formula``."""
        return parse_formula(self.formula)

    def to_string(self) -> str:
        """The compact one-string form, parseable by :func:`parse_spec`."""
        parts = [f"{k}={_quote(v)}" for k, v in sorted(self.fixed_relations.items())]
        for slot, key in sorted(self.fixed_entities.items()):
            parts.append(f"{slot}={_quote(key)}")
        parts += [f"{t}:{_quote(v)}" for t, v in sorted(self.types.items())]
        return self.formula + (" where " + ", ".join(parts) if parts else "")


_BARE_KEY = re.compile(r'[^\s,\[\]=:"]+')
_QUOTED_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"')
_TERM_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")


def _quote(key: str) -> str:
    if _BARE_KEY.fullmatch(key):
        return key
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_constraints(text: str) -> tuple[str, str, int]:
    """Split ``text`` into (body, constraint clause, offset of the clause)."""
    m = re.search(r"\s+where\s+", text)
    if m:
        return text[: m.start()], text[m.end() :], m.end()
    stripped = text.rstrip()
    if stripped.endswith("]"):
        depth = 0
        for i in range(len(stripped) - 1, -1, -1):
            ch = stripped[i]
            if ch == "]":
                depth += 1
            elif ch == "[":
                depth -= 1
                if depth == 0:
                    return text[:i], stripped[i + 1 : -1], i + 1
        raise pattern_error(text, len(stripped) - 1, "unbalanced ']'")
    return text, "", len(text)


def _read_key(text: str, pos: int) -> tuple[str, int]:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    for regex, group in ((_QUOTED_KEY, 1), (_BARE_KEY, 0)):
        m = regex.match(text, pos)
        if m:
            value = m.group(group)
            if group == 1:
                value = re.sub(r"\\(.)", r"\1", value)
            return value, m.end()
    raise pattern_error(text, pos, 'expected a key (bare like P19, or quoted like "/m/02")')


def parse_spec(text: str, *, name: str | None = None) -> PatternSpec:
    """Parse the compact spec syntax (module docstring) into a PatternSpec.

    The body is a library name (``2p``) or a formula; constraints follow ``where`` or sit
    in trailing brackets. Errors point at the column of the spec string.
    """
    from kg2tool.patterns.library import get_pattern  # late: library imports this module

    body, clause, offset = _split_constraints(text)
    body_stripped = body.strip()
    if not body_stripped:
        raise pattern_error(text, 0, "empty pattern; give a library name or a formula")
    if "(" not in body_stripped:
        base = get_pattern(body_stripped)
        formula, spec_name = base.formula, base.name
        rels, ents, types = (
            dict(base.fixed_relations),
            dict(base.fixed_entities),
            dict(base.types),
        )
        description = base.description if not clause else ""
    else:
        parse_formula(body)  # body is a prefix of text, so columns already match
        formula, spec_name = body_stripped, body_stripped
        rels, ents, types, description = {}, {}, {}, ""
    parsed = parse_formula(formula)
    given: dict[tuple[str, str], str] = {}
    pos = 0
    while clause[pos:].strip():
        m = _TERM_NAME.match(clause, pos)
        at = offset + pos + (len(clause[pos:]) - len(clause[pos:].lstrip()))
        if not m:
            raise pattern_error(text, at, "expected a constraint like r1=P19, s1=Q42 or e1:Q5")
        slot = m.group(1)
        pos = m.end()
        if pos >= len(clause) or clause[pos] not in "=:":
            raise pattern_error(
                text, offset + pos, f"expected '=' or ':' after {slot} (r1=KEY, s1=KEY, e1:TYPE)"
            )
        op = clause[pos]
        key, pos = _read_key(clause, pos + 1)
        kinds: list[tuple[str, str]] = []
        if op == "=":
            if _REL_RE.match(slot):
                kinds.append(("relation", key))
            elif slot.startswith("s") and _TERM_RE.match(slot):
                kinds.append(("entity", key))
                if pos < len(clause) and clause[pos] == ":":
                    type_key, pos = _read_key(clause, pos + 1)
                    kinds.append(("type", type_key))
            else:
                raise pattern_error(
                    text,
                    at,
                    f"{slot} cannot be fixed with '='; only relation slots rN and anchors sN can"
                    + (f" (use {slot}:TYPE for a type)" if _TERM_RE.match(slot) else ""),
                )
        else:
            if not _TERM_RE.match(slot):
                raise pattern_error(text, at, f"{slot} is not a term; types go on sN, eN or f")
            kinds.append(("type", key))
        for kind, value in kinds:
            previous = given.get((kind, slot))
            if previous is not None and previous != value:
                raise pattern_error(
                    text, at, f"contradictory fixed slots: {slot} is given {previous} and {value}"
                )
            given[(kind, slot)] = value
            target = {"relation": rels, "entity": ents, "type": types}[kind]
            target[slot] = value
        if slot not in set(parsed.relation_slots) | set(parsed.anchor_slots) | set(
            parsed.variables
        ):
            raise pattern_error(text, at, f"{slot} does not occur in {parsed}")
        rest = clause[pos:].lstrip()
        if rest.startswith(","):
            pos = clause.index(",", pos) + 1
        elif rest:
            raise pattern_error(
                text, offset + len(clause) - len(rest), "expected ',' between constraints"
            )
    return PatternSpec(
        name=name or spec_name,
        formula=formula,
        fixed_relations=rels,
        fixed_entities=ents,
        types=types,
        description=description,
    )
