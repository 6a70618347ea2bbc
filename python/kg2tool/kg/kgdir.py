"""Read and write KG directories: the canonical layout, and benchmark folders (``train.txt`` ...).

Canonical KG directory (what :func:`read_kg_dir` reads and :func:`write_kg_dir` writes)::

    triples.tsv | triples.parquet   head<TAB>relation<TAB>tail, no header (the training graph)
    valid.tsv, test.tsv             optional held-out splits, same format, kept apart
    entities.tsv                    optional, header key<TAB>label<TAB>description
    relations.tsv                   optional, header key<TAB>label<TAB>description
    entity_types.tsv                optional, header key<TAB>type (one row per pair)
    types.tsv                       optional, header key<TAB>label<TAB>description (type keys)

Empty label/description fields mean "none". Label/type rows naming keys outside the triples
are skipped and counted (``strict=True``: an error). Writers replace tabs and newlines inside
labels and descriptions by spaces (:func:`kg2tool.kg.tables.clean_text`, the graph build does
the same). Benchmark folders are read by :func:`read_benchmark_dir`, see its label file list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import polars as pl

from kg2tool.atomic import atomic_dir
from kg2tool.errors import InputError
from kg2tool.kg.tables import TYPE_SCHEMA, KGTables, clean_text
from kg2tool.kg.textfile import (
    PathLike,
    check_empty_fields,
    check_field_counts,
    decode_utf8,
    first_row,
    nonblank_lines,
    read_bytes,
    split_fields,
)
from kg2tool.kg.triples import TRIPLE_COLUMNS, read_triples

#: File stem of each split in a canonical directory.
SPLIT_FILES = {"train": "triples", "valid": "valid", "test": "test"}
_TEXT_HEADER = ("key", "label", "description")
_TYPE_HEADER = ("key", "type")
#: Optional table files of a canonical directory: file name -> header.
TABLE_FILES = {
    "entities.tsv": _TEXT_HEADER,
    "relations.tsv": _TEXT_HEADER,
    "entity_types.tsv": _TYPE_HEADER,
    "types.tsv": _TEXT_HEADER,
}


_SPLIT_EXTS = (".tsv", ".parquet", ".tsv.gz")


def _split_path(root: Path, split: str) -> Path | None:
    """The file holding a split (tsv, tsv.gz or parquet), or None when absent."""
    if split not in SPLIT_FILES:
        raise InputError(
            f"unknown split {split!r}; use one of {sorted(SPLIT_FILES)}", path=str(root)
        )
    stem = SPLIT_FILES[split]
    for name in (f"{stem}{ext}" for ext in _SPLIT_EXTS):
        if (root / name).is_file():
            return root / name
    return None


def read_split(path: PathLike, split: str) -> pl.DataFrame:
    """Read one split (train, valid, test) of a canonical directory as a string triple frame."""
    root = Path(path)
    file = _split_path(root, split)
    if file is None:
        raise InputError(f"no {split} split ({SPLIT_FILES[split]}.tsv or .parquet)", path=str(root))
    return read_triples(file).triples


def _read_table(file: Path, header: Sequence[str]) -> pl.DataFrame:
    """Read a headed TSV table (columns `header`, trailing ones optional) with its line numbers."""
    lines = nonblank_lines(decode_utf8(read_bytes(file, False), file))
    if lines.height == 0:
        raise InputError(f"empty file: expected header {'<TAB>'.join(header)}", path=str(file))
    first = lines.row(0, named=True)
    got = first["raw"].split("\t")
    required = 2 if header == _TYPE_HEADER else 1
    if len(got) < max(required, 2) or got != list(header[: len(got)]):
        raise InputError(
            f"bad header {'<TAB>'.join(got)!r}, expected {'<TAB>'.join(header)!r}",
            path=str(file),
            line=first["line"],
        )
    df = split_fields(lines.slice(1), "\t")
    check_field_counts(df, len(got), "\t", file)
    check_empty_fields(df, range(required), header[:required], file)
    # Missing optional columns and empty label/description fields mean "none".
    return df.select(
        "line",
        *(pl.col("fields").list.get(i).alias(name) for i, name in enumerate(header[:required])),
        *(
            pl.when(pl.col("fields").list.get(i, null_on_oob=True).str.len_bytes() > 0)
            .then(pl.col("fields").list.get(i, null_on_oob=True))
            .alias(name)
            if i < len(got)
            else pl.lit(None, dtype=pl.String).alias(name)
            for i, name in enumerate(header)
            if i >= required
        ),
    )


def _check_table_keys(
    df: pl.DataFrame,
    known: pl.Series,
    what: str,
    file: Path,
    unique_keys: bool,
    *,
    strict: bool,
    report: dict[str, int],
) -> pl.DataFrame:
    """Rows naming unknown keys are skipped and counted (an error if ``strict``); repeated
    keys are an error naming the first offending line."""
    unknown = ~pl.col("key").is_in(known.implode())
    if strict:
        bad = first_row(df, unknown)
        if bad is not None:
            raise InputError(
                f"key {bad['key']!r} is not {what} of the triples",
                path=str(file),
                line=bad["line"],
                column=1,
            )
    else:
        skipped = int(df.select(unknown.sum()).item())
        if skipped:
            _count_skipped(report, file.name, skipped)
            df = df.filter(~unknown)
    if unique_keys:
        bad = first_row(df, ~pl.col("key").is_first_distinct())
        if bad is not None:
            raise InputError(
                f"duplicate key {bad['key']!r}", path=str(file), line=bad["line"], column=1
            )
    return df.drop("line")


def _count_skipped(report: dict[str, int], name: str, n: int) -> None:
    """Record label/type rows skipped because their key is not in the triples."""
    report[f"skipped_unknown_keys.{name}"] = report.get(f"skipped_unknown_keys.{name}", 0) + n
    report["skipped_unknown_keys"] = report.get("skipped_unknown_keys", 0) + n


def _layout_error(root: Path) -> InputError:
    """The error for a folder that is neither a canonical directory nor a benchmark folder."""
    canonical = ", ".join(f"triples{ext}" for ext in _SPLIT_EXTS)
    bench = ", ".join(f"train{ext}" for ext in BENCHMARK_TRIPLE_EXTS)
    return InputError(
        f"no known KG layout: looked for {canonical} (canonical directory), "
        f"{bench} (benchmark folder) and manifest.json (snapshot)",
        path=str(root),
    )


def read_kg_dir(
    path: PathLike,
    splits: Iterable[str] = ("train",),
    *,
    check_keys: bool = True,
    strict: bool = False,
) -> KGTables:
    """Read a canonical KG directory or a benchmark folder; the triples are ``splits`` joined.

    A canonical directory holds ``triples.tsv`` (see the module docstring); a benchmark
    folder ``train.txt`` or ``train.tsv`` with optional ``valid``/``test`` and the label
    files of :data:`BENCHMARK_LABEL_FILES`. Label/type rows whose key is in none of the
    split files are skipped and counted in ``report["skipped_unknown_keys"]`` (with
    ``strict=True`` they are an InputError with the line); a repeated key in a canonical
    table is an error. Splits not loaded are kept in ``held_out``; counts per split land in
    ``report["triples_<split>"]``.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError("not a directory (expected a canonical KG directory)", path=str(root))
    splits = tuple(splits)
    if not splits:
        raise InputError("no splits requested", path=str(root))
    for split in splits:
        if split not in SPLIT_FILES:
            raise InputError(
                f"unknown split {split!r}; use one of {sorted(SPLIT_FILES)}", path=str(root)
            )
    if _split_path(root, "train") is None:
        if _benchmark_split_path(root, "train") is not None:
            return read_benchmark_dir(root, splits, strict=strict)
        raise _layout_error(root)
    frames: dict[str, pl.DataFrame] = {}
    for split in SPLIT_FILES:
        file = _split_path(root, split)
        if file is None:
            if split in splits:
                raise InputError(
                    f"missing {SPLIT_FILES[split]}.tsv (or .parquet) for split {split!r}",
                    path=str(root),
                )
            continue
        frames[split] = read_triples(file, has_header=False).triples
    triples = pl.concat([frames[s] for s in splits])
    report: dict[str, int] = {f"triples_{s}": frames[s].height for s in splits}
    report["triples"] = triples.height

    every = pl.concat(frames.values()) if check_keys else triples
    entity_keys = pl.concat([every["head"], every["tail"]]).unique()
    relation_keys = every["relation"].unique()
    tables: dict[str, pl.DataFrame | None] = dict.fromkeys(TABLE_FILES)
    for name, header in TABLE_FILES.items():
        file = root / name
        if file.is_file():
            tables[name] = _read_table(file, header)
    if tables["types.tsv"] is not None and tables["entity_types.tsv"] is None:
        raise InputError(
            "types.tsv labels type keys but there is no entity_types.tsv",
            path=str(root / "types.tsv"),
        )
    if check_keys:
        checks = {
            "entities.tsv": (entity_keys, "an entity", True),
            "relations.tsv": (relation_keys, "a relation", True),
            "entity_types.tsv": (entity_keys, "an entity", False),
        }
        for name, (known, what, unique) in checks.items():
            if tables[name] is not None:
                tables[name] = _check_table_keys(
                    tables[name], known, what, root / name, unique, strict=strict, report=report
                )
        if tables["types.tsv"] is not None:
            type_keys = tables["entity_types.tsv"]["type"].unique()
            tables["types.tsv"] = _check_table_keys(
                tables["types.tsv"],
                type_keys,
                "a type used in entity_types.tsv",
                root / "types.tsv",
                True,
                strict=strict,
                report=report,
            )
    for name, df in tables.items():
        if df is not None and "line" in df.columns:
            tables[name] = df.drop("line")
    if tables["entity_types.tsv"] is not None:
        before = tables["entity_types.tsv"].height
        tables["entity_types.tsv"] = tables["entity_types.tsv"].unique(maintain_order=True)
        report["duplicate_entity_types"] = before - tables["entity_types.tsv"].height
    return KGTables(
        triples=triples,
        entities=tables["entities.tsv"],
        relations=tables["relations.tsv"],
        entity_types=tables["entity_types.tsv"],
        type_labels=tables["types.tsv"],
        report=report,
        source=str(root),
        held_out={s: df for s, df in frames.items() if s not in splits},
    )


# --------------------------------------------------------------------------------------
# benchmark folders (FB15k-237, WN18RR, CoDEx, YAGO3-10, KGE / PyKEEN exports)

#: Triple file names of a benchmark folder per split, first found wins.
BENCHMARK_SPLITS = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
BENCHMARK_TRIPLE_EXTS = (".txt", ".tsv", ".txt.gz", ".tsv.gz")
#: Label files of a benchmark folder, most preferred first: entity files, relation files.
BENCHMARK_LABEL_FILES = {
    "entity": (
        "entity_names.tsv",
        "entity2name.tsv",
        "entity2name.txt",
        "entity2label.txt",
        "entity2text.txt",
        "entity2textlong.txt",
        "entity2description.txt",
        "wn-entity2text-new.txt",
        "entity_strings.del",
        "mid2name.tsv",
        "mid2name.txt",
        "FB15k_mid2name.txt",
        "entities.dict",
    ),
    "relation": (
        "relation_names.tsv",
        "relation2name.txt",
        "relation2label.txt",
        "relation2text.txt",
        "rel2text.txt",
        "relation_strings.del",
        "relations.dict",
    ),
}
#: Files whose text column is a description, not a label.
_DESCRIPTION_FILES = {"entity2textlong.txt", "entity2description.txt"}
_LABEL_COLUMNS = ("label", "name", "lemma", "title", "text")
_DESCRIPTION_COLUMNS = ("description", "desc", "definition", "gloss")
_GLOSS_SEPARATOR = " -- "


def _benchmark_split_path(root: Path, split: str) -> Path | None:
    """The file of a split in a benchmark folder (``train.txt``, ``valid.tsv``, ...)."""
    for stem in BENCHMARK_SPLITS[split]:
        for ext in BENCHMARK_TRIPLE_EXTS:
            if (root / f"{stem}{ext}").is_file():
                return root / f"{stem}{ext}"
    return None


def _label_file_columns(
    file: Path, known: pl.Series
) -> tuple[pl.DataFrame, str | None, str | None] | None:
    """Read a benchmark label file; return (rows with key/line, label column, description column).

    A header is recognised by a label column name (:data:`_LABEL_COLUMNS`); the key column
    is the one whose values cover the most known keys. Without a header the key column is
    the first or second (whichever covers more keys) and the other holds the text.
    """
    lines = nonblank_lines(decode_utf8(read_bytes(file, file.suffix == ".gz"), file))
    if lines.height == 0:
        return None
    df = split_fields(lines, "\t")
    first = list(df["fields"][0])
    lowered = [f.strip().lower() for f in first]
    headed = any(c in lowered for c in _LABEL_COLUMNS)
    if headed:
        df = df.slice(1)
        if df.height == 0:
            return None
    width = int(df["n"][0])
    check_field_counts(df, width, "\t", file)
    if width < 2:
        raise InputError(
            f"expected key<TAB>text lines, found {width} field",
            path=str(file),
            line=int(df["line"][0]),
        )
    cols = [f"c{i}" for i in range(width)]
    table = df.select("line", *(pl.col("fields").list.get(i).alias(c) for i, c in enumerate(cols)))
    implode = known.implode()
    cover = table.select(pl.col(c).is_in(implode).sum() for c in cols).row(0)
    if headed:
        label = next((cols[lowered.index(c)] for c in _LABEL_COLUMNS if c in lowered), None)
        desc = next((cols[lowered.index(c)] for c in _DESCRIPTION_COLUMNS if c in lowered), None)
        key = max((c for c in cols if c not in (label, desc)), key=lambda c: cover[cols.index(c)])
    else:
        key = cols[0] if cover[0] >= cover[1] else cols[1]
        text = cols[1] if key == cols[0] else cols[0]
        label, desc = (None, text) if file.name in _DESCRIPTION_FILES else (text, None)
    out = table.select(
        "line",
        pl.col(key).alias("key"),
        (pl.col(label) if label else pl.lit(None, pl.String)).alias("label"),
        (pl.col(desc) if desc else pl.lit(None, pl.String)).alias("description"),
    )
    # "NAME -- GLOSS" (WordNet style) is a label and a description; digits are ids, not names.
    gloss = pl.col("label").str.contains(_GLOSS_SEPARATOR, literal=True)
    parts = pl.col("label").str.split_exact(_GLOSS_SEPARATOR, 1)
    out = out.with_columns(
        pl.when(gloss)
        .then(parts.struct.field("field_0"))
        .otherwise(pl.col("label"))
        .alias("label"),
        pl.when(gloss & pl.col("description").is_null())
        .then(parts.struct.field("field_1"))
        .otherwise(pl.col("description"))
        .alias("description"),
    )
    if out["label"].drop_nulls().str.contains(r"^\s*\d+\s*$").all():
        out = out.with_columns(label=pl.lit(None, pl.String))  # an id column (entities.dict)
    return out, label, desc


def _benchmark_texts(
    root: Path, kind: str, known: pl.Series, strict: bool, report: dict[str, int]
) -> tuple[pl.DataFrame | None, list[str]]:
    """Labels from the first label file that has them, descriptions from the first with them."""
    found: list[pl.DataFrame] = []
    used: list[str] = []
    have_label = have_desc = False
    for name in BENCHMARK_LABEL_FILES[kind]:
        file = root / name
        if not file.is_file() or (have_label and have_desc):
            continue
        read = _label_file_columns(file, known)
        if read is None:
            continue
        rows, _, _ = read
        rows = _check_table_keys(
            rows,
            known,
            f"an {kind}" if kind == "entity" else "a relation",
            file,
            False,
            strict=strict,
            report=report,
        ).unique("key", keep="first", maintain_order=True)
        takes_label = not have_label and rows["label"].null_count() < rows.height
        takes_desc = not have_desc and rows["description"].null_count() < rows.height
        if not (takes_label or takes_desc):
            continue
        found.append(
            rows.select(
                "key",
                (pl.col("label") if takes_label else pl.lit(None, pl.String)).alias("label"),
                (pl.col("description") if takes_desc else pl.lit(None, pl.String)).alias(
                    "description"
                ),
            )
        )
        used.append(name)
        have_label |= takes_label
        have_desc |= takes_desc
    if not found:
        return None, used
    merged = (
        pl.concat(found)
        .group_by("key", maintain_order=True)
        .agg(pl.col("label").drop_nulls().first(), pl.col("description").drop_nulls().first())
    )
    return merged.sort("key"), used


def read_benchmark_dir(
    path: PathLike, splits: Iterable[str] = ("train",), *, strict: bool = False
) -> KGTables:
    """Read a benchmark folder: ``train.txt|tsv`` (+ ``valid``/``dev``, ``test``) and labels.

    Label files (:data:`BENCHMARK_LABEL_FILES`) are read when present: key<TAB>text files,
    or headed TSVs whose label column is named label/name/lemma/title/text (description:
    description/desc/definition/gloss). Rows whose key is not in any split are skipped and
    counted (``strict=True``: an error). Splits not loaded are kept in ``held_out``.
    """
    root = Path(path)
    splits = tuple(splits)
    frames: dict[str, pl.DataFrame] = {}
    headers = 0
    for split in SPLIT_FILES:
        file = _benchmark_split_path(root, split)
        if file is None:
            if split in splits:
                raise InputError(
                    f"missing {split}.txt (or .tsv) for split {split!r}", path=str(root)
                )
            continue
        read = read_triples(file, format="tsv")
        frames[split] = read.triples
        headers += read.report.get("header_line", 0)
    triples = pl.concat([frames[s] for s in splits])
    report: dict[str, int] = {f"triples_{s}": frames[s].height for s in splits}
    report["triples"] = triples.height
    if headers:
        report["header_line"] = headers
    every = pl.concat(frames.values())
    entity_keys = pl.concat([every["head"], every["tail"]]).unique()
    relation_keys = every["relation"].unique()
    entities, _ = _benchmark_texts(root, "entity", entity_keys, strict, report)
    relations, _ = _benchmark_texts(root, "relation", relation_keys, strict, report)
    return KGTables(
        triples=triples,
        entities=entities,
        relations=relations,
        report=report,
        source=str(root),
        held_out={s: df for s, df in frames.items() if s not in splits},
    )


def _check_writable_keys(df: pl.DataFrame, cols: Sequence[str], what: str) -> None:
    """Keys cannot hold tabs/newlines (they would break the layout) nor be empty/null."""
    for c in cols:
        bad = df.filter(
            pl.col(c).is_null()
            | pl.col(c).str.contains(r"[\t\r\n]")
            | (pl.col(c).str.len_bytes() == 0)
        ).head(1)
        if bad.height:
            raise InputError(
                f"{what}: {c} {bad[c][0]!r} is empty or contains a tab/newline "
                "and cannot be written to TSV"
            )


def _write_tsv(df: pl.DataFrame, file: Path, header: bool) -> None:
    """Write a frame as unquoted TSV (nulls as empty fields)."""
    df.write_csv(
        file,
        separator="\t",
        include_header=header,
        quote_style="never",
        null_value="",
        line_terminator="\n",
    )


def write_kg_dir(
    tables: KGTables,
    path: PathLike,
    *,
    splits: Mapping[str, pl.DataFrame] | None = None,
    overwrite: bool = False,
    triples_format: str = "tsv",
) -> Path:
    """Write a canonical KG directory atomically (temp dir, then rename); return its path.

    ``tables.triples`` becomes ``triples.tsv`` (or ``.parquet``); ``splits`` may add held-out
    ``valid``/``test`` frames. Label rows must name keys of the written triples (else
    InputError, so the result always reads back). Tabs/newlines in labels become spaces.
    """
    root = Path(path)
    if root.exists() and not overwrite:
        raise InputError("already exists; pass overwrite=True to replace it", path=str(root))
    if triples_format not in ("tsv", "parquet"):
        raise InputError(f"triples_format must be 'tsv' or 'parquet', not {triples_format!r}")
    all_splits = {"train": tables.triples, **(splits or {})}
    for split in all_splits:
        if split not in SPLIT_FILES:
            raise InputError(f"unknown split {split!r}; use one of {sorted(SPLIT_FILES)}")
    frames = {}
    for split, df in all_splits.items():
        df = df.select(pl.col(c).cast(pl.String) for c in TRIPLE_COLUMNS)
        _check_writable_keys(df, TRIPLE_COLUMNS, f"{split} triples")
        frames[split] = df
    every = pl.concat(frames.values())
    entity_keys = pl.concat([every["head"], every["tail"]]).unique()
    relation_keys = every["relation"].unique()

    def text_table(df: pl.DataFrame | None, known: pl.Series | None, what: str):
        if df is None:
            return None
        df = df.select(
            pl.col("key").cast(pl.String),
            *(
                clean_text(pl.col(c)).alias(c)
                if c in df.columns
                else pl.lit(None, pl.String).alias(c)
                for c in ("label", "description")
            ),
        )
        _check_writable_keys(df, ["key"], what)
        if known is not None:
            unknown = df.filter(~pl.col("key").is_in(known.implode())).head(1)
            if unknown.height:
                raise InputError(f"{what}: key {unknown['key'][0]!r} is not in the triples")
        dup = df.filter(~pl.col("key").is_first_distinct()).head(1)
        if dup.height:
            raise InputError(f"{what}: duplicate key {dup['key'][0]!r}")
        return df

    entities = text_table(tables.entities, entity_keys, "entities")
    relations = text_table(tables.relations, relation_keys, "relations")
    entity_types = None
    if tables.entity_types is not None:
        entity_types = tables.entity_types.select(pl.col(c).cast(pl.String) for c in TYPE_SCHEMA)
        _check_writable_keys(entity_types, list(TYPE_SCHEMA), "entity_types")
        unknown = entity_types.filter(~pl.col("key").is_in(entity_keys.implode())).head(1)
        if unknown.height:
            raise InputError(f"entity_types: key {unknown['key'][0]!r} is not in the triples")
        entity_types = entity_types.unique(maintain_order=True)
    type_keys = (
        entity_types["type"].unique()
        if entity_types is not None
        else pl.Series([], dtype=pl.String)
    )
    type_labels = text_table(tables.type_labels, type_keys, "type_labels")

    with atomic_dir(root) as tmp:
        for split, df in frames.items():
            stem = SPLIT_FILES[split]
            if triples_format == "parquet":
                df.write_parquet(tmp / f"{stem}.parquet")
            else:
                _write_tsv(df, tmp / f"{stem}.tsv", header=False)
        for name, df in (
            ("entities.tsv", entities),
            ("relations.tsv", relations),
            ("entity_types.tsv", entity_types),
            ("types.tsv", type_labels),
        ):
            if df is not None:
                _write_tsv(df, tmp / name, header=True)
    return root
