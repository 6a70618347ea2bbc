"""Type stubs of the native extension (cpp/): CSR graph, plans, sampling, execution, matching."""

from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str
REJECT_REASONS: list[str]

def build_arrays(
    heads: npt.NDArray[np.int32],
    relations: npt.NDArray[np.int32],
    tails: npt.NDArray[np.int32],
    num_entities: int,
    num_relations: int,
    threads: int = 0,
) -> tuple[dict[str, np.ndarray], int]:
    """Build the CSR arrays of both directions from id columns; returns (arrays, duplicates)."""

def read_tsv_ids(
    path: str, start: int = 0, threads: int = 0, split_bytes: int = 1 << 26
) -> dict[str, Any]: ...
def build_type_arrays(
    entities: npt.NDArray[np.int32],
    types: npt.NDArray[np.int32],
    num_entities: int,
    num_types: int,
) -> dict[str, np.ndarray]:
    """Entity->types and type->entities CSR arrays from (entity, type) id pairs."""

class Graph:
    """A read-only CSR view over arrays it keeps alive (validated when validate=True)."""

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        num_types: int,
        arrays: dict[str, np.ndarray],
        validate: bool = True,
    ) -> None: ...
    @property
    def num_entities(self) -> int: ...
    @property
    def num_relations(self) -> int: ...
    @property
    def num_types(self) -> int: ...
    @property
    def num_edges(self) -> int: ...
    @property
    def arrays(self) -> dict[str, np.ndarray]: ...
    @property
    def nbytes(self) -> int: ...
    def neighbors(
        self,
        entities: npt.ArrayLike,
        relations: npt.ArrayLike,
        inverse: bool = False,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """Batched (entity, relation) neighbour sets: (offsets int64[n+1], ids int32)."""
    def neighbor_view(
        self, entity: int, relation: int, inverse: bool = False
    ) -> npt.NDArray[np.int32]:
        """The sorted neighbour slice of one (entity, relation), a read-only view (no copy)."""
    def degrees(self, inverse: bool = False) -> npt.NDArray[np.int64]: ...
    def relation_edge_counts(self) -> npt.NDArray[np.int64]: ...

class Plan:
    """A compiled pattern as the engine runs it (see docs/CONTRACTS.md)."""

    def __init__(self, spec: dict[str, Any]) -> None: ...
    @property
    def num_ops(self) -> int: ...
    @property
    def num_relation_slots(self) -> int: ...
    @property
    def num_anchor_slots(self) -> int: ...

class SeenQueries:
    """Hashes of grounded queries drawn so far (to continue a sample stream)."""

    def __init__(self) -> None: ...
    def __len__(self) -> int: ...

def sample(
    graph: Graph,
    plan: Plan,
    n: int,
    seed: int,
    min_answers: int = 1,
    max_answers: int = 100,
    max_intermediate: int = 100,
    distinct_anchors: bool = True,
    no_backtrack: bool = True,
    nontrivial: bool = True,
    degree_weighted: bool = False,
    max_tries: int = 8,
    max_candidates: int = 0,
    match_steps: int = 1000000,
    threads: int = 0,
    seen: SeenQueries | None = None,
    start_candidate: int = 0,
    answers_only: bool = False,
) -> dict[str, Any]:
    """Sample n distinct grounded queries with exact answer and intermediate sets (or only
    the answer sets, the others left empty, with ``answers_only``)."""

def execute(
    graph: Graph,
    plan: Plan,
    relation_bindings: npt.ArrayLike,
    anchor_bindings: npt.ArrayLike,
    threads: int = 0,
    answers_only: bool = False,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Exact sets of every op for n groundings: (offsets int64[n*ops+1], ids int32); with
    ``answers_only`` the answer sets alone: (offsets int64[n+1], ids int32) (the other sets
    are computed but not copied out). The GIL is released while executing."""

def diff_sets(
    a_starts: npt.NDArray[np.int64],
    a_ends: npt.NDArray[np.int64],
    a_ids: npt.NDArray[np.int32],
    b_starts: npt.NDArray[np.int64],
    b_ends: npt.NDArray[np.int64],
    b_ids: npt.NDArray[np.int32],
    limit: int = -1,
    threads: int = 0,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    """Row i of a is ``a_ids[a_starts[i]:a_ends[i]]`` (sorted, unique), likewise b. Returns
    per row a minus b as ``(offsets int64[n+1], ids int32)`` and both difference sizes
    ``(added, lost)`` (int64[n]). With ``limit >= 0`` a row whose size gap or either
    difference exceeds ``limit`` has both counts ``limit + 1`` and no ids (its merge stops
    early). Starts/ends may be strided int64 views (e.g. ``offsets[k::ops]``: no copy); a row
    outside its ids raises IndexError, mismatched lengths ValueError; the GIL is released."""

def match_count(
    graph: Graph,
    plan: Plan,
    join: int,
    relation_bindings: npt.ArrayLike,
    anchor_bindings: npt.ArrayLike,
    limit: int = -1,
    threads: int = 0,
) -> npt.NDArray[np.int64]:
    """Count every grounding of a join per row of bindings (-1 = free slot), up to limit."""

def concat_text(
    n: int, parts: list[tuple[Any, ...]]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """``n`` strings, each the concatenation of ``parts`` (cpp/text.h; wrapped by
    :mod:`kg2tool.textops`): ``(0, bytes)`` a literal; ``(1, offsets, data, index | None,
    escape)`` a string column (Arrow large-string buffers; with offsets None, data is
    ``(views uint8, [buffers uint8])``, Arrow string views), gathered by ``index``, as a JSON
    string literal when ``escape``; ``(2, int64[n])`` decimal integers; ``(3, offsets, data,
    index | None, escape, groups int64[n+1], sep, trailing)`` the values of group i joined by
    ``sep``. Returns Arrow large-string buffers ``(offsets int64[n+1], data uint8)``. Offsets
    and indices are checked (ValueError / IndexError); the GIL is released while building."""

def doubled_words(offsets: Any, data: Any) -> npt.NDArray[np.uint8]:
    """Per value of a string column (``(offsets, data)`` as :func:`concat_text` takes one):
    1 when two adjacent words repeat (the question lint's ``doubled_word`` rule), 0 when not,
    2 when the value has non-ASCII bytes (left to the caller). Malformed buffers raise
    ValueError / IndexError; the GIL is released."""

def write_text(fd: int, n: int, parts: list[tuple[Any, ...]], end: bytes) -> int:
    """The rows :func:`concat_text` would build, each followed by ``end``, written to the
    file descriptor ``fd`` from its current offset through a reused ~1 MB buffer; returns the
    bytes written. A failed write raises OSError (its errno); the GIL is released."""
