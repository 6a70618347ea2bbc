# Seeded synthetic knowledge graphs for scale benchmarks (1M .. 100M triples).
#
# What it generates: `num_triples` typed triples (head, relation, tail) as int32 arrays over
# `num_entities` entities, `num_relations` relations and `num_types` entity types. Every
# entity has exactly one type; every relation has a domain (head) type and a range (tail)
# type, and all of its triples respect them.
#
# The distribution, and why (benchmarks on uniform random graphs flatter a graph engine:
# real KGs have hubs, skewed relations and type structure that drive cache misses, large
# intermediate answer sets and rejection rates):
# - Relation frequencies follow Zipf: relation r has weight (r+1)^-relation_power, so
#   relation 0 is the most frequent (ids are frequency ranks).
# - Each type is the domain or range of at least one relation; other domains/ranges are
#   drawn with Zipf weights over types, so a few types ("person", "place") dominate. Type
#   sizes are proportional to the triple endpoints landing on them, so the mean degree is
#   the same in every type and no type is left without edges.
# - Within its type, an endpoint is drawn by rank with a bounded continuous power law
#   (P(rank) ~ rank^-a, inverse CDF in O(1), no tables). Each relation has a cardinality
#   shape, as in real KGs: many-to-one (heads nearly flat, tails skewed with a = `power`),
#   one-to-many (the mirror image) or many-to-many (both sides moderately skewed). Skewing
#   only one side keeps exact duplicate triples rare (<1%) while degrees stay heavy-tailed.
#   Ranks map to entity ids through a seeded permutation, so hubs are spread over the id
#   space and ids carry no type or degree order.
#
# Determinism: one counter-based RNG (splitmix64). Triple i draws its three uniforms from
# counter 3i..3i+2 of the triple stream, so the output depends on (parameters, seed) only,
# never on the thread count or chunking of the parallel kernel. `generate_reference` is a
# plain NumPy implementation of the same draws, used by the tests to check the kernel.
#
# Writers produce the canonical KG directory (see the README): triples.parquet or
# triples.tsv (no header), entities.tsv, relations.tsv, entity_types.tsv, types.tsv.
#
# CLI: python -m bench.synthetic --triples 10000000 --seed 0 --out DIR [--format parquet]

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numba as nb
import numpy as np
import polars as pl

__all__ = [
    "SyntheticKG",
    "generate",
    "generate_reference",
    "main",
    "tables",
    "triples_frame",
    "write_canonical",
]

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # splitmix64 increment (golden ratio)
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_STREAM_TRIPLES, _STREAM_SETUP, _STREAM_PERMUTATION = 1, 2, 3
_CHUNK = 1 << 16  # triples per parallel work item

# Cardinality shapes: (head exponent, tail exponent) as multiples of `power`.
_SHAPES = np.array([[0.25, 1.0], [1.0, 0.25], [0.6, 0.6]])  # N-1, 1-N, N-N
_SHAPE_NAMES = ("many-to-one", "one-to-many", "many-to-many")

_TYPE_NAMES = (
    "person", "place", "organization", "creative work", "event", "species", "chemical",
    "disease", "gene", "product", "language", "occupation", "award", "country", "city",
    "sports team", "film", "book", "software", "taxon",
)  # fmt: skip


# ---------------------------------------------------------------------------------------
# RNG: splitmix64 as a counter-based generator (Python ints, NumPy arrays, numba scalars).


def _mix_int(z: int) -> int:
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def _stream_key(seed: int, stream: int) -> int:
    """The counter origin of one named stream of `seed`; streams never share counters."""
    return _mix_int(_mix_int(seed & _MASK64) + stream * _GAMMA)


def _uniforms_np(key: int, counters: np.ndarray) -> np.ndarray:
    """Uniforms in [0, 1) at the given counters of the stream starting at `key`."""
    z = np.uint64(key) + (counters.astype(np.uint64) + np.uint64(1)) * np.uint64(_GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


@nb.njit(cache=True, inline="always")
def _uniform_nb(key, counter):
    z = key + (counter + np.uint64(1)) * np.uint64(_GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


# ---------------------------------------------------------------------------------------
# Rank draws: bounded continuous power law on [1, n+1), floored. With t = 1 - a:
#   x = (1 + u * ((n+1)^t - 1))^(1/t)   (a != 1),   x = (n+1)^u   (a == 1).
# Per side we keep c = (n+1)^t - 1 and inv = 1/t (inv = 0 marks a == 1, c = log(n+1)).


def _rank_params(n: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n1 = n.astype(np.float64) + 1.0
    t = 1.0 - a
    is_log = np.abs(t) < 1e-9
    safe_t = np.where(is_log, 1.0, t)
    c = np.where(is_log, np.log(n1), np.expm1(safe_t * np.log(n1)))
    inv = np.where(is_log, 0.0, 1.0 / safe_t)
    return c, inv


@nb.njit(cache=True, inline="always")
def _rank_nb(u, n, c, inv):
    if inv == 0.0:
        x = np.exp(u * c)
    else:
        x = np.exp(inv * np.log1p(u * c))
    r = np.int64(x) - 1
    if r < 0:
        r = 0
    if r >= n:
        r = n - 1
    return r


def _rank_np(u, n, c, inv):
    x = np.where(inv == 0.0, np.exp(u * c), np.exp(inv * np.log1p(u * c)))
    return np.clip(x.astype(np.int64) - 1, 0, n - 1)


# ---------------------------------------------------------------------------------------
# Kernels.


@nb.njit(parallel=True, cache=True)
def _triples_kernel(
    key,
    rel_cdf,
    side_type,
    side_c,
    side_inv,
    type_start,
    type_size,
    slot_entity,
    head,
    relation,
    tail,
):
    n = head.shape[0]
    num_chunks = (n + _CHUNK - 1) // _CHUNK
    last = rel_cdf.shape[0] - 1
    for chunk in nb.prange(num_chunks):
        stop = min(n, (chunk + 1) * _CHUNK)
        for i in range(chunk * _CHUNK, stop):
            counter = np.uint64(i) * np.uint64(3)
            r = np.searchsorted(rel_cdf, _uniform_nb(key, counter), side="right")
            if r > last:  # guards u == cdf[-1] rounding
                r = last
            relation[i] = r
            for side in range(2):
                t = side_type[r, side]
                u = _uniform_nb(key, counter + np.uint64(1 + side))
                rank = _rank_nb(u, type_size[t], side_c[r, side], side_inv[r, side])
                e = slot_entity[type_start[t] + rank]
                if side == 0:
                    head[i] = e
                else:
                    tail[i] = e


@nb.njit(cache=True)
def _permutation_kernel(key, n):
    """Fisher-Yates shuffle of 0..n-1 drawing from the permutation stream."""
    p = np.arange(n).astype(np.int32)
    for i in range(n - 1, 0, -1):
        j = np.int64(_uniform_nb(key, np.uint64(i)) * (i + 1))
        if j > i:
            j = i
        tmp = p[i]
        p[i] = p[j]
        p[j] = tmp
    return p


def _permutation_np(key: int, n: int) -> np.ndarray:
    u = _uniforms_np(key, np.arange(n))
    p = np.arange(n, dtype=np.int32)
    for i in range(n - 1, 0, -1):
        j = min(int(u[i] * (i + 1)), i)
        p[i], p[j] = p[j], p[i]
    return p


# ---------------------------------------------------------------------------------------
# Model: the small per-relation / per-type tables both implementations share.


@dataclass
class _Model:
    rel_cdf: np.ndarray  # float64[R], cumulative relation probabilities (last = 1)
    rel_shape: np.ndarray  # int8[R], index into _SHAPES
    side_type: np.ndarray  # int32[R, 2], domain and range type
    side_c: np.ndarray  # float64[R, 2]
    side_inv: np.ndarray  # float64[R, 2]
    type_start: np.ndarray  # int64[T+1], first rank slot of each type
    type_size: np.ndarray  # int64[T]


def _zipf_cdf(weights_count: int, power: float) -> np.ndarray:
    w = np.arange(1, weights_count + 1, dtype=np.float64) ** -power
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf


def _largest_remainder(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Integer sizes summing to `total`, proportional to `weights`, each >= minimum."""
    k = weights.shape[0]
    spare = total - minimum * k
    share = weights / weights.sum() * spare
    sizes = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - sizes), kind="stable")
    sizes[order[: spare - int(sizes.sum())]] += 1
    return sizes + minimum


def _build_model(
    seed: int,
    num_entities: int,
    num_relations: int,
    num_types: int,
    power: float,
    relation_power: float,
    type_power: float,
) -> _Model:
    key = _stream_key(seed, _STREAM_SETUP)
    rel_cdf = _zipf_cdf(num_relations, relation_power)
    rel_weight = np.diff(rel_cdf, prepend=0.0)
    # counters: [0, 2R) domain/range type, [2R, 3R) shape, [3R, 3R+T) type cover order
    u = _uniforms_np(key, np.arange(3 * num_relations + num_types))
    type_cdf = _zipf_cdf(num_types, type_power)
    side_type = np.searchsorted(type_cdf, u[: 2 * num_relations], side="right")
    side_type = np.minimum(side_type, num_types - 1).reshape(num_relations, 2)
    # Every type must be some relation's domain or range: relation r < T (the frequent
    # ones) gets type cover[r] on its side r % 2.
    cover = np.argsort(u[3 * num_relations :], kind="stable")
    for r in range(num_types):
        side_type[r, r % 2] = cover[r]
    side_type = side_type.astype(np.int32)
    rel_shape = np.minimum((u[2 * num_relations : 3 * num_relations] * 3).astype(np.int8), 2)

    mass = np.zeros(num_types)
    np.add.at(mass, side_type[:, 0], rel_weight)
    np.add.at(mass, side_type[:, 1], rel_weight)
    type_size = _largest_remainder(num_entities, mass, 1)
    type_start = np.zeros(num_types + 1, dtype=np.int64)
    np.cumsum(type_size, out=type_start[1:])

    exponents = _SHAPES[rel_shape] * power
    side_c, side_inv = _rank_params(type_size[side_type], exponents)
    return _Model(rel_cdf, rel_shape, side_type, side_c, side_inv, type_start, type_size)


# ---------------------------------------------------------------------------------------
# Public API.


@dataclass
class SyntheticKG:
    """A generated KG as dense ids: entity e, relation r, type t are 0-based ints.

    - ``head``, ``relation``, ``tail``: int32[num_triples].
    - ``entity_type``: int32[num_entities], the one type of each entity.
    - ``relation_domain``, ``relation_range``: int32[num_relations], head and tail type.
    - ``relation_shape``: the cardinality shape of each relation (see ``shape_names``).
    - ``type_names``: human-readable type names, one per type.
    - ``params``: the arguments that reproduce this graph.
    """

    head: np.ndarray
    relation: np.ndarray
    tail: np.ndarray
    entity_type: np.ndarray
    relation_domain: np.ndarray
    relation_range: np.ndarray
    relation_shape: np.ndarray
    type_names: list[str]
    params: dict

    shape_names = _SHAPE_NAMES

    @property
    def num_triples(self) -> int:
        return int(self.head.shape[0])

    @property
    def num_entities(self) -> int:
        return int(self.entity_type.shape[0])

    @property
    def num_relations(self) -> int:
        return int(self.relation_domain.shape[0])

    @property
    def num_types(self) -> int:
        return len(self.type_names)


def _check_args(num_triples, num_entities, num_relations, num_types, power, relation_power):
    if num_triples < 0:
        raise ValueError(f"num_triples must be >= 0, got {num_triples}")
    if num_types < 1 or num_relations < 1:
        raise ValueError(
            f"need num_types >= 1 and num_relations >= 1, got {num_types}, {num_relations}"
        )
    if num_types > num_relations:
        raise ValueError(
            f"num_types ({num_types}) > num_relations ({num_relations}): every type needs a "
            "relation that uses it; lower num_types or raise num_relations"
        )
    if num_entities < num_types:
        raise ValueError(f"num_entities ({num_entities}) must be >= num_types ({num_types})")
    if num_entities > 2**31 - 1 or num_triples > 2**31 - 1:
        raise ValueError("ids are int32: num_entities and num_triples must be < 2^31")
    if power < 0 or relation_power < 0:
        raise ValueError(f"power and relation_power must be >= 0, got {power}, {relation_power}")


def _finish(model, entity_type, head, relation, tail, num_types, params) -> SyntheticKG:
    names = [_TYPE_NAMES[t] if t < len(_TYPE_NAMES) else f"type {t}" for t in range(num_types)]
    return SyntheticKG(
        head=head,
        relation=relation,
        tail=tail,
        entity_type=entity_type,
        relation_domain=np.ascontiguousarray(model.side_type[:, 0]),
        relation_range=np.ascontiguousarray(model.side_type[:, 1]),
        relation_shape=model.rel_shape.copy(),
        type_names=names,
        params=params,
    )


def generate(
    num_triples: int,
    *,
    num_entities: int | None = None,
    num_relations: int = 200,
    num_types: int = 20,
    seed: int = 0,
    power: float = 0.8,
    relation_power: float = 1.0,
    type_power: float = 1.0,
) -> SyntheticKG:
    """Generate a typed power-law KG; the same arguments give the same arrays.

    ``power`` is the rank exponent of the skewed side of a relation (0 = uniform; with the
    default 0.8 and 10 triples per entity the max degree is ~300x the mean at 1M triples
    and ~1700x at 10M), ``relation_power`` the Zipf exponent of relation frequencies,
    ``type_power`` that of type popularity among domains/ranges. Exact duplicate triples:
    ~0.7% at 1M, ~0.25% at 10M (more on tiny graphs, ~2% at 100k, where types are small).

    >>> kg = generate(1000, seed=1)
    >>> kg.head.shape, kg.num_entities, kg.num_relations
    ((1000,), 100, 200)
    """
    if num_entities is None:
        num_entities = max(num_types, num_triples // 10)
    _check_args(num_triples, num_entities, num_relations, num_types, power, relation_power)
    params = dict(
        num_triples=num_triples,
        num_entities=num_entities,
        num_relations=num_relations,
        num_types=num_types,
        seed=seed,
        power=power,
        relation_power=relation_power,
        type_power=type_power,
    )
    model = _build_model(
        seed, num_entities, num_relations, num_types, power, relation_power, type_power
    )
    slot_entity = _permutation_kernel(
        np.uint64(_stream_key(seed, _STREAM_PERMUTATION)), num_entities
    )
    entity_type = np.empty(num_entities, dtype=np.int32)
    entity_type[slot_entity] = np.repeat(np.arange(num_types, dtype=np.int32), model.type_size)

    head = np.empty(num_triples, dtype=np.int32)
    relation = np.empty(num_triples, dtype=np.int32)
    tail = np.empty(num_triples, dtype=np.int32)
    _triples_kernel(
        np.uint64(_stream_key(seed, _STREAM_TRIPLES)),
        model.rel_cdf,
        model.side_type,
        model.side_c,
        model.side_inv,
        model.type_start,
        model.type_size,
        slot_entity,
        head,
        relation,
        tail,
    )
    return _finish(model, entity_type, head, relation, tail, num_types, params)


def generate_reference(num_triples: int, **kwargs) -> SyntheticKG:
    """The same graph as :func:`generate`, computed with plain NumPy (slow; for tests)."""
    p = dict(num_relations=200, num_types=20, seed=0, power=0.8, relation_power=1.0, type_power=1.0)
    p.update(kwargs)
    num_entities = p.pop("num_entities", None)
    if num_entities is None:
        num_entities = max(p["num_types"], num_triples // 10)
    _check_args(
        num_triples,
        num_entities,
        p["num_relations"],
        p["num_types"],
        p["power"],
        p["relation_power"],
    )
    model = _build_model(
        p["seed"],
        num_entities,
        p["num_relations"],
        p["num_types"],
        p["power"],
        p["relation_power"],
        p["type_power"],
    )
    slot_entity = _permutation_np(_stream_key(p["seed"], _STREAM_PERMUTATION), num_entities)
    entity_type = np.empty(num_entities, dtype=np.int32)
    for t in range(p["num_types"]):
        entity_type[slot_entity[model.type_start[t] : model.type_start[t + 1]]] = t

    key = _stream_key(p["seed"], _STREAM_TRIPLES)
    counter = np.arange(num_triples, dtype=np.uint64) * np.uint64(3)
    rel = np.searchsorted(model.rel_cdf, _uniforms_np(key, counter), side="right")
    rel = np.minimum(rel, p["num_relations"] - 1)
    ends = []
    for side in range(2):
        t = model.side_type[rel, side]
        u = _uniforms_np(key, counter + np.uint64(1 + side))
        n = model.type_size[t]
        rank = _rank_np(u, n, model.side_c[rel, side], model.side_inv[rel, side])
        ends.append(slot_entity[model.type_start[t] + rank])
    params = dict(num_triples=num_triples, num_entities=num_entities, **p)
    return _finish(
        model,
        entity_type,
        ends[0].astype(np.int32),
        rel.astype(np.int32),
        ends[1].astype(np.int32),
        p["num_types"],
        params,
    )


# ---------------------------------------------------------------------------------------
# Canonical KG directory.


def _triples_lazy(kg: SyntheticKG, start: int = 0, stop: int | None = None) -> pl.LazyFrame:
    ids = pl.LazyFrame(
        {
            "head": kg.head[start:stop],
            "relation": kg.relation[start:stop],
            "tail": kg.tail[start:stop],
        }
    )
    return ids.select(
        (pl.lit("e") + pl.col("head").cast(pl.String)).alias("head"),
        (pl.lit("r") + pl.col("relation").cast(pl.String)).alias("relation"),
        (pl.lit("e") + pl.col("tail").cast(pl.String)).alias("tail"),
    )


def triples_frame(kg: SyntheticKG, start: int = 0, stop: int | None = None) -> pl.DataFrame:
    """Triples[start:stop] as string keys: head ``e<id>``, relation ``r<id>``, tail ``e<id>``."""
    return _triples_lazy(kg, start, stop).collect()


def tables(kg: SyntheticKG) -> dict[str, pl.DataFrame]:
    """The string-keyed side tables (entities, relations, entity_types, types) as frames.

    Keys: entities ``e<id>``, relations ``r<id>``, types ``t<id>``. Triples are written in
    chunks by :func:`write_canonical`; or use :func:`triples_frame`.
    """
    type_ids = list(range(kg.num_types))

    def type_label(col: str) -> pl.Expr:
        return pl.col(col).replace_strict(type_ids, kg.type_names, return_dtype=pl.String)

    entity = pl.DataFrame(
        {"id": np.arange(kg.num_entities, dtype=np.int32), "type": kg.entity_type}
    )
    entities = entity.select(
        (pl.lit("e") + pl.col("id").cast(pl.String)).alias("key"),
        (pl.lit("Entity ") + pl.col("id").cast(pl.String)).alias("label"),
        (
            pl.lit("synthetic entity ")
            + pl.col("id").cast(pl.String)
            + pl.lit(" of type ")
            + type_label("type")
        ).alias("description"),
    )
    entity_types = entity.select(
        (pl.lit("e") + pl.col("id").cast(pl.String)).alias("key"),
        (pl.lit("t") + pl.col("type").cast(pl.String)).alias("type"),
    )
    rel = pl.DataFrame(
        {
            "id": np.arange(kg.num_relations, dtype=np.int32),
            "domain": kg.relation_domain,
            "range": kg.relation_range,
            "shape": kg.relation_shape.astype(np.int32),
        }
    )
    relations = rel.select(
        (pl.lit("r") + pl.col("id").cast(pl.String)).alias("key"),
        (pl.lit("relation ") + pl.col("id").cast(pl.String)).alias("label"),
        pl.format(
            "{} relation; domain: {} (t{}); range: {} (t{})",
            pl.col("shape").replace_strict([0, 1, 2], list(kg.shape_names), return_dtype=pl.String),
            type_label("domain"),
            pl.col("domain"),
            type_label("range"),
            pl.col("range"),
        ).alias("description"),
    )
    types = pl.DataFrame(
        {
            "key": [f"t{t}" for t in range(kg.num_types)],
            "label": kg.type_names,
            "description": [f"synthetic entity type {t}: {n}" for t, n in enumerate(kg.type_names)],
        }
    )
    return {
        "entities": entities,
        "relations": relations,
        "entity_types": entity_types,
        "types": types,
    }


def write_canonical(kg: SyntheticKG, out_dir: str | os.PathLike, format: str = "parquet") -> Path:
    """Write `kg` as a canonical KG directory; returns the directory.

    Triples are formatted and written by Polars' streaming engine in batches, so memory
    stays bounded at 100M triples; the id arrays are not copied.
    """
    if format not in ("parquet", "tsv"):
        raise ValueError(f"format must be 'parquet' or 'tsv', got {format!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    triples = _triples_lazy(kg)
    if format == "parquet":
        triples.sink_parquet(out / "triples.parquet", compression="zstd")
    else:
        triples.sink_csv(out / "triples.tsv", separator="\t", include_header=False)
    for name, frame in tables(kg).items():
        frame.write_csv(out / f"{name}.tsv", separator="\t")
    return out


# ---------------------------------------------------------------------------------------
# CLI.


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.synthetic", description="Generate a seeded synthetic KG."
    )
    ap.add_argument("--triples", type=int, required=True)
    ap.add_argument("--entities", type=int, default=None, help="default: triples / 10")
    ap.add_argument("--relations", type=int, default=200)
    ap.add_argument("--types", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--power", type=float, default=0.8)
    ap.add_argument("--out", type=Path, default=None, help="canonical KG directory to write")
    ap.add_argument("--format", choices=("parquet", "tsv"), default="parquet")
    args = ap.parse_args(argv)
    try:
        t0 = time.perf_counter()
        kg = generate(
            args.triples,
            num_entities=args.entities,
            num_relations=args.relations,
            num_types=args.types,
            seed=args.seed,
            power=args.power,
        )
        t1 = time.perf_counter()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"generated {kg.num_triples} triples, {kg.num_entities} entities, "
        f"{kg.num_relations} relations, {kg.num_types} types in {t1 - t0:.2f}s "
        f"(peak RSS {_peak_rss_mb():.0f} MB)"
    )
    if args.out is not None:
        write_canonical(kg, args.out, args.format)
        t2 = time.perf_counter()
        print(
            f"wrote {args.out} ({args.format}) in {t2 - t1:.2f}s (peak RSS {_peak_rss_mb():.0f} MB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
