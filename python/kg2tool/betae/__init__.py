"""Logical-query benchmarks in the BetaE / KGReasoning layout, from any KG with held-out splits.

:func:`export_betae` writes what KGReasoning's ``create_queries.py`` produces and its
loaders (BetaE, Query2Box, ConE, GNN-QE, CQD, ...) read unchanged: ``{split}-queries.pkl``
(query structure -> set of grounded nested tuples), ``train-answers.pkl``,
``{valid,test}-{easy,hard}-answers.pkl``, the id maps, ``stats.txt`` and the id-form
graphs, plus every query as Parquet/JSONL with names and this project's DNF formula.

Semantics (the BetaE paper's): relation ``r`` becomes ids ``2r`` (``+r``, forward) and
``2r+1`` (``-r``, inverse), and every triple is an edge both ways. Train queries and
answers live on the train graph. A valid query is sampled on train+valid and kept only if
it has a *hard* answer, one not reachable on the train graph; its easy answers are its
answers on the train graph (KGReasoning's ``tp`` set), its hard answers the additional
ones. Test likewise on train+valid+test, easy answers from train+valid. A valid/test
query of a negation type must also lose an answer to the new edges (an answer on the
smaller graph that the larger graph's negation removes). The cap (KGReasoning's
``max_ans_num``; 100 for the multi-hop types, none for 1p by default, as in the released
FB15k-237 set) bounds the answers on train, and the hard and the lost answers on
valid/test. The sampler's own checks apply too: distinct anchors, no step straight back,
every intersection, union and negation branch changing the answers on the graph drawn from.
``1p`` is link prediction as KGReasoning writes it: every (entity, relation) pair of the
split's own edges, the same pair also being a train query when it has train edges; every
other type is sampled by the native engine, no grounded query repeated across splits.
Held-out triples naming an entity or relation absent from train are dropped (KGReasoning
indexes train only), and counted in the manifest.
"""

from __future__ import annotations

from kg2tool.betae.export import ExportReport, export_betae, parse_counts
from kg2tool.betae.queries import (
    BETAE_NAMES,
    BETAE_STRUCTURES,
    DEFAULT_COUNTS,
    NEGATION_TYPES,
    SPLITS,
    BetaEGraphs,
    default_counts,
    grounded_tuple,
    load_splits,
)

__all__ = [
    "BETAE_NAMES",
    "BETAE_STRUCTURES",
    "DEFAULT_COUNTS",
    "NEGATION_TYPES",
    "SPLITS",
    "BetaEGraphs",
    "ExportReport",
    "default_counts",
    "export_betae",
    "grounded_tuple",
    "load_splits",
    "parse_counts",
]
