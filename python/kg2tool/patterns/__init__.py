"""Query patterns: formula language, named library, query-graph analysis, compilation to plans.

>>> from kg2tool.patterns import get_pattern, compile_pattern
>>> compile_pattern(get_pattern("2p")).num_ops
3
"""

from kg2tool.patterns.analysis import (
    PatternInfo,
    analyze,
    are_isomorphic,
    canonical_form,
    has_cycle,
    needs_join,
    query_graph,
)
from kg2tool.patterns.compile import (
    ANCHOR,
    DIFFERENCE,
    INTERSECT,
    JOIN,
    JOIN_CLOSE,
    JOIN_NEG,
    JOIN_TREE,
    MAX_JOIN_CALLS,
    OP_NAMES,
    PROJECT,
    TYPE_FILTER,
    UNION,
    Join,
    Plan,
    compile_pattern,
    join_call_counts,
    join_sources,
    join_steps,
)
from kg2tool.patterns.library import (
    BETAE_TYPES,
    LIBRARY,
    UnknownPatternError,
    get_pattern,
    list_patterns,
    parse_patterns,
    pattern_counts,
)
from kg2tool.patterns.syntax import (
    Atom,
    Conjunction,
    Formula,
    PatternSpec,
    parse_formula,
    parse_spec,
)

__all__ = [
    "ANCHOR",
    "BETAE_TYPES",
    "DIFFERENCE",
    "INTERSECT",
    "JOIN",
    "JOIN_CLOSE",
    "JOIN_NEG",
    "JOIN_TREE",
    "LIBRARY",
    "MAX_JOIN_CALLS",
    "OP_NAMES",
    "PROJECT",
    "TYPE_FILTER",
    "UNION",
    "Atom",
    "Conjunction",
    "Formula",
    "Join",
    "PatternInfo",
    "PatternSpec",
    "Plan",
    "UnknownPatternError",
    "analyze",
    "are_isomorphic",
    "canonical_form",
    "compile_pattern",
    "get_pattern",
    "has_cycle",
    "join_call_counts",
    "join_sources",
    "join_steps",
    "list_patterns",
    "needs_join",
    "parse_formula",
    "parse_patterns",
    "parse_spec",
    "pattern_counts",
    "query_graph",
]
