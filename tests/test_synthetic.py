"""The seeded synthetic KG generator in bench/synthetic.py (small sizes, fast)."""

from __future__ import annotations

import numba
import numpy as np
import polars as pl
import pytest

from bench.synthetic import generate, generate_reference, main, write_canonical

ARRAYS = ("head", "relation", "tail", "entity_type", "relation_domain", "relation_range")


def _unique_fraction(kg) -> float:
    key = (kg.head.astype(np.int64) * kg.num_relations + kg.relation) * kg.num_entities + kg.tail
    return np.unique(key).shape[0] / kg.num_triples


def test_same_seed_gives_identical_arrays():
    a, b = generate(50_000, seed=7), generate(50_000, seed=7)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_different_seed_gives_different_arrays():
    a, b = generate(50_000, seed=1), generate(50_000, seed=2)
    assert not np.array_equal(a.head, b.head)
    assert not np.array_equal(a.entity_type, b.entity_type)


def test_kernel_matches_numpy_reference():
    kwargs = dict(seed=3, num_relations=30, num_types=7, power=1.0)  # power 1: the log branch
    fast, ref = generate(20_000, **kwargs), generate_reference(20_000, **kwargs)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name), err_msg=name)
    fast, ref = generate(20_000, seed=4), generate_reference(20_000, seed=4)
    np.testing.assert_array_equal(fast.tail, ref.tail)


def test_output_does_not_depend_on_thread_count():
    full = generate(300_000, seed=5)  # several parallel chunks
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = generate(300_000, seed=5)
    finally:
        numba.set_num_threads(before)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(full, name), getattr(single, name), err_msg=name)


def test_counts_dtypes_and_id_ranges():
    kg = generate(30_000, num_entities=2_000, num_relations=50, num_types=10, seed=0)
    assert (kg.num_triples, kg.num_entities, kg.num_relations, kg.num_types) == (
        30_000,
        2_000,
        50,
        10,
    )
    assert len(kg.type_names) == 10
    for name in ARRAYS:
        assert getattr(kg, name).dtype == np.int32, name
    for ids, bound in ((kg.head, 2_000), (kg.tail, 2_000), (kg.relation, 50)):
        assert ids.min() >= 0 and ids.max() < bound
    assert set(np.unique(kg.entity_type)) == set(range(10))  # every type has entities
    assert kg.relation_domain.max() < 10 and kg.relation_range.max() < 10


def test_default_entity_count_is_a_tenth_of_triples():
    assert generate(40_000).num_entities == 4_000


def test_heads_and_tails_respect_domain_and_range():
    kg = generate(100_000, seed=11)
    np.testing.assert_array_equal(kg.entity_type[kg.head], kg.relation_domain[kg.relation])
    np.testing.assert_array_equal(kg.entity_type[kg.tail], kg.relation_range[kg.relation])


def test_every_type_is_used_by_some_relation():
    kg = generate(10_000, num_relations=20, num_types=20, seed=2)
    used = set(kg.relation_domain) | set(kg.relation_range)
    assert used == set(range(20))


def test_degrees_and_relation_frequencies_are_skewed():
    kg = generate(500_000, seed=0)
    degree = np.bincount(kg.head, minlength=kg.num_entities) + np.bincount(
        kg.tail, minlength=kg.num_entities
    )
    assert degree.max() > 50 * degree.mean()
    assert np.mean(degree == 0) < 0.01  # type sizes follow the endpoints: few isolated
    freq = np.bincount(kg.relation, minlength=kg.num_relations)
    assert freq[0] > 20 * np.median(freq)
    assert freq[:10].sum() > 0.4 * kg.num_triples


def test_duplicate_triples_are_rare():
    assert _unique_fraction(generate(1_000_000, seed=0)) > 0.99


def test_empty_graph():
    kg = generate(0, num_entities=100)
    assert kg.head.shape == (0,) and kg.num_entities == 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_types=30, num_relations=10), "num_types"),
        (dict(num_entities=5), "num_entities"),
        (dict(power=-1.0), "power"),
    ],
)
def test_bad_arguments_raise_readable_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(1_000, **kwargs)


@pytest.mark.parametrize("fmt", ["parquet", "tsv"])
def test_write_canonical_round_trip(tmp_path, fmt):
    kg = generate(20_000, seed=9)
    out = write_canonical(kg, tmp_path / "kg", format=fmt)
    if fmt == "parquet":
        triples = pl.read_parquet(out / "triples.parquet")
    else:
        triples = pl.read_csv(
            out / "triples.tsv",
            separator="\t",
            has_header=False,
            new_columns=["head", "relation", "tail"],
        )
    assert triples.columns == ["head", "relation", "tail"]
    assert triples.height == kg.num_triples
    for col, prefix, ids in (
        ("head", "e", kg.head),
        ("relation", "r", kg.relation),
        ("tail", "e", kg.tail),
    ):
        back = triples[col].str.strip_prefix(prefix).cast(pl.Int32).to_numpy()
        np.testing.assert_array_equal(back, ids, err_msg=col)

    read = dict(separator="\t", quote_char=None)
    entities = pl.read_csv(out / "entities.tsv", **read)
    assert entities.columns == ["key", "label", "description"]
    assert entities.height == kg.num_entities
    assert entities.row(123)[:2] == ("e123", "Entity 123")

    entity_types = pl.read_csv(out / "entity_types.tsv", **read)
    assert entity_types.columns == ["key", "type"]
    types_back = entity_types["type"].str.strip_prefix("t").cast(pl.Int32).to_numpy()
    np.testing.assert_array_equal(types_back, kg.entity_type)

    relations = pl.read_csv(out / "relations.tsv", **read)
    assert relations.columns == ["key", "label", "description"]
    assert relations.height == kg.num_relations
    r7 = relations.row(7)
    assert r7[:2] == ("r7", "relation 7")
    assert f"domain: {kg.type_names[kg.relation_domain[7]]} (t{kg.relation_domain[7]})" in r7[2]
    assert f"range: {kg.type_names[kg.relation_range[7]]} (t{kg.relation_range[7]})" in r7[2]

    types = pl.read_csv(out / "types.tsv", **read)
    assert types.columns == ["key", "label", "description"]
    assert types["label"].to_list() == kg.type_names


def test_cli_writes_a_directory(tmp_path, capsys):
    assert (
        main(["--triples", "5000", "--seed", "1", "--out", str(tmp_path), "--format", "tsv"]) == 0
    )
    assert "generated 5000 triples" in capsys.readouterr().out
    assert (tmp_path / "triples.tsv").exists() and (tmp_path / "types.tsv").exists()
