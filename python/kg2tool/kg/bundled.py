"""Importers of the shared benchmark KGs into canonical directories, and the bundled KG registry.

Each importer reads one dataset of ``../shared/data/kg`` (see its README) and returns the
training graph as :class:`~kg2tool.kg.tables.KGTables` (with whatever names and types the
dataset has) plus its held-out ``valid``/``test`` triples, kept apart so nothing leaks
into the graph questions are generated from. :func:`import_dataset` writes the result as
a canonical directory (``kg2tool.kg.io``). The bundled ``codex-s`` directory inside the
package is produced the same way by ``tools/make_bundled_kg.py``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import polars as pl

from kg2tool.errors import InputError, UnknownNameError
from kg2tool.kg.io import PathLike, read_triples, write_kg_dir
from kg2tool.kg.names import SMALL_WORDS, humanise
from kg2tool.kg.tables import TEXT_SCHEMA, TYPE_SCHEMA, KGTables

__all__ = [
    "bundled_names",
    "bundled_path",
    "dataset_names",
    "import_dataset",
    "load_dataset",
    "shared_data_dir",
]

_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: Bundled KG name -> folder inside the package.
BUNDLED = {"codex-s": "codex-s"}
_SPLIT_FILES = {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}


def shared_data_dir() -> Path:
    """Find the shared KG data: $KG2TOOL_SHARED_DATA, else ../shared/data/kg next to the repo."""
    env = os.environ.get("KG2TOOL_SHARED_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in [*here.parents, *Path.cwd().resolve().parents, Path.cwd().resolve()]:
        cand = base.parent / "shared" / "data" / "kg"
        if cand.is_dir():
            return cand
    raise InputError(
        "shared KG data not found: set KG2TOOL_SHARED_DATA to the folder holding "
        "codex/, fb15k-237/, wn18rr/, nations/ and countries/"
    )


def bundled_names() -> list[str]:
    """Names of the KGs shipped inside the package (loadable without any download)."""
    return sorted(n for n, d in BUNDLED.items() if (_DATA_DIR / d).is_dir())


def bundled_path(name: str) -> Path:
    """The canonical directory of a bundled KG; unknown names suggest close matches."""
    if name not in BUNDLED or not (_DATA_DIR / BUNDLED[name]).is_dir():
        close = difflib.get_close_matches(name, bundled_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"no bundled KG named {name!r} (bundled: {', '.join(bundled_names())}){hint}"
        )
    return _DATA_DIR / BUNDLED[name]


# --------------------------------------------------------------------------------------
# helpers


def _read_tsv(path: Path, *, has_header: bool, names: list[str] | None = None) -> pl.DataFrame:
    """Read an unquoted TSV of strings (the shared name files); missing file -> InputError."""
    if not path.is_file():
        raise InputError("no such file", path=str(path))
    df = pl.read_csv(
        path,
        separator="\t",
        has_header=has_header,
        quote_char=None,
        infer_schema=False,
        new_columns=names,
    )
    return df


def _splits(folder: Path, triples_dir: Path | None = None) -> dict[str, pl.DataFrame]:
    """Read train/valid/test triples of a dataset folder."""
    src = triples_dir or folder
    return {s: read_triples(src / f, format="tsv").triples for s, f in _SPLIT_FILES.items()}


def _keys(splits: dict[str, pl.DataFrame]) -> tuple[pl.Series, pl.Series]:
    """Entity and relation keys over all splits (label files may name held-out entities)."""
    every = pl.concat(splits.values())
    return (
        pl.concat([every["head"], every["tail"]]).unique().sort(),
        every["relation"].unique().sort(),
    )


def _text(df: pl.DataFrame, keys: pl.Series) -> pl.DataFrame:
    """Keep one text row per known key, empty strings as nulls, in key order."""
    df = df.select(
        pl.col("key"),
        *(
            pl.when(pl.col(c).str.strip_chars().str.len_bytes() > 0).then(pl.col(c)).alias(c)
            if c in df.columns
            else pl.lit(None, pl.String).alias(c)
            for c in ("label", "description")
        ),
    ).cast(TEXT_SCHEMA)
    return (
        df.filter(pl.col("key").is_in(keys.implode()))
        .unique("key", keep="first", maintain_order=True)
        .sort("key")
    )


def _humanised(keys: pl.Series, overrides: dict[str, str] | None = None) -> pl.DataFrame:
    """Text table labelling each key by its humanised form (or an override)."""
    overrides = overrides or {}
    return pl.DataFrame(
        {"key": keys, "label": [overrides.get(k, humanise(k)) for k in keys], "description": None},
        schema=TEXT_SCHEMA,
    )


def _dequote(label: pl.Expr) -> pl.Expr:
    """Undo CSV quoting left in some name files: ``"A, B"`` -> ``A, B``."""
    quoted = label.str.starts_with('"') & label.str.ends_with('"') & (label.str.len_chars() >= 2)
    return (
        pl.when(quoted)
        .then(
            label.str.slice(1, label.str.len_chars() - 2).str.replace_all('""', '"', literal=True)
        )
        .otherwise(label)
    )


def _result(
    splits: dict[str, pl.DataFrame], source: Path, **tables: pl.DataFrame | None
) -> tuple[KGTables, dict[str, pl.DataFrame]]:
    """Package train tables plus held-out splits, with per-split counts in the report."""
    report = {f"triples_{s}": df.height for s, df in splits.items()}
    kg = KGTables(triples=splits["train"], report=report, source=str(source), **tables)
    return kg, {"valid": splits["valid"], "test": splits["test"]}


# --------------------------------------------------------------------------------------
# importers, one per dataset family


def _json_texts(path: Path) -> pl.DataFrame:
    """A CoDEx label file (``{key: {label, description}}``) as a text table."""
    data = json.loads(path.read_text("utf-8"))
    rows = [(k, v.get("label"), v.get("description")) for k, v in data.items()]
    return pl.DataFrame(rows, schema=TEXT_SCHEMA, orient="row")


def _codex(shared: Path, size: str) -> tuple[KGTables, dict[str, pl.DataFrame]]:
    """CoDEx: relation JSON labels, entity types + type labels, entity names where shipped."""
    root = shared / "codex"
    folder = root / f"codex-{size}"
    if not (folder / "train.txt").is_file():
        raise InputError(
            f"CoDEx-{size.upper()} triples are not in the shared data", path=str(folder)
        )
    splits = _splits(folder)
    ents, rels = _keys(splits)
    relations = _text(_json_texts(root / "relations.en.json"), rels)
    partial = _read_tsv(root / "names" / "entity_labels_partial.tsv", has_header=True).select(
        pl.col("qid").alias("key"), "label", "description"
    )
    if size == "s":
        names = _read_tsv(
            root / "names" / "codex-s.entity2name.tsv", has_header=False, names=["key", "label"]
        ).with_columns(_dequote(pl.col("label")))
        entities = names.join(partial.select("key", "description"), on="key", how="left")
    else:
        entities = partial
    e2t = json.loads((root / "entity2types.json").read_text("utf-8"))
    types = pl.DataFrame(
        {
            "key": [k for k, ts in e2t.items() for _ in ts],
            "type": [t for ts in e2t.values() for t in ts],
        },
        schema=TYPE_SCHEMA,
    )
    types = types.filter(pl.col("key").is_in(ents.implode())).unique(maintain_order=True)
    type_labels = _text(_json_texts(root / "types.en.json"), types["type"].unique())
    return _result(
        splits,
        folder,
        entities=_text(entities, ents),
        relations=relations,
        entity_types=types.sort("key", "type"),
        type_labels=type_labels,
    )


def _fb_relation_labels(rels: pl.Series, rel2text: dict[str, str]) -> pl.DataFrame:
    """Readable FB15k-237 relation labels from the Freebase path, unique across relations."""

    def parts(path: str) -> list[list[str]]:
        return [[s for s in p.split("/") if s] for p in path.split(".")]

    def base(path: str) -> str:
        segs = parts(path)
        return segs[-1][-1].replace("_", " ") if segs[-1] else path

    def qualified(path: str) -> str:
        first = parts(path)[0]
        if len(parts(path)) > 1:  # CVT path: the first hop's property says what is meant
            return f"{first[-1].replace('_', ' ')} {base(path)}"
        return f"{first[-2].replace('_', ' ')} {base(path)}" if len(first) >= 2 else base(path)

    def full(path: str) -> str:
        first = parts(path)[0]
        return f"{' '.join(first[:-1]).replace('_', ' ')} {qualified(path)}"

    labels = {r: base(r) for r in rels}
    for refine in (qualified, full, lambda r: rel2text.get(r, r)):
        counts = {}
        for lab in labels.values():
            counts[lab] = counts.get(lab, 0) + 1
        labels = {r: (lab if counts[lab] == 1 else refine(r)) for r, lab in labels.items()}
    return pl.DataFrame(
        {
            "key": list(labels),
            "label": list(labels.values()),
            "description": [rel2text.get(r) for r in labels],
        },
        schema=TEXT_SCHEMA,
    )


def _fb15k237(shared: Path) -> tuple[KGTables, dict[str, pl.DataFrame]]:
    """FB15k-237: entity_names.tsv gives labels/descriptions; relation labels from the path."""
    folder = shared / "fb15k-237"
    splits = _splits(folder)
    ents, rels = _keys(splits)
    names = _read_tsv(folder / "entity_names.tsv", has_header=True)
    wiki = pl.col("wiki_title").str.replace_all("_", " ") if "wiki_title" in names.columns else None
    # a label whose last word is doubled ("Miley CyrusCyrus") reads as its wiki title
    doubled = pl.col("label").str.contains(r"(\p{Lu}\p{Ll}+)(\p{Lu}\p{Ll}+)$") & (
        pl.col("label").str.extract(r"(\p{Lu}\p{Ll}+)\p{Lu}\p{Ll}+$")
        == pl.col("label").str.extract(r"\p{Lu}\p{Ll}+(\p{Lu}\p{Ll}+)$")
    )
    label = pl.col("label")
    if wiki is not None:
        label = pl.when(doubled & label.str.starts_with(wiki)).then(wiki).otherwise(label)
    names = names.select(pl.col("mid").alias("key"), label.alias("label"), "description")
    rel2text = dict(
        _read_tsv(folder / "rel2text.txt", has_header=False, names=["key", "text"]).iter_rows()
    )
    return _result(
        splits,
        folder,
        entities=_text(names, ents),
        relations=_text(_fb_relation_labels(rels, rel2text), rels),
    )


def _wn18rr(shared: Path) -> tuple[KGTables, dict[str, pl.DataFrame]]:
    """WN18RR with synset-name keys (text/): lemma as label, gloss as description.

    The offset-id files conflate 161 ids shared by synsets of different parts of speech;
    text/ keeps them apart, hence 41,105 entities rather than 40,943. A gloss is attached
    only where the offset id is unambiguous (the shared gloss belongs to just one synset).
    """
    folder = shared / "wn18rr"
    splits = _splits(folder, folder / "text")
    ents, rels = _keys(splits)
    names = _read_tsv(folder / "entity2name.tsv", has_header=True)
    gloss = pl.col("def_text_for_id").str.split_exact(" -- ", 1).struct.field("field_1")
    names = names.select(
        pl.col("synset").alias("key"),
        pl.col("lemma").str.replace_all("_", " ").alias("label"),
        pl.when(pl.col("id").is_unique()).then(gloss).alias("description"),
        gloss.alias("gloss"),
    )
    every = pl.concat(splits.values())
    instances = every.filter(pl.col("relation") == "_instance_hypernym")["head"].unique()
    names = names.with_columns(
        _wordnet_case(names["key"], names["label"], names["gloss"], set(instances.to_list()))
    ).drop("gloss")
    names = names.with_columns(_taxon_case(names, every))
    rel_text = _read_tsv(folder / "rel2text.txt", has_header=False, names=["key", "label"])
    return _result(splits, folder, entities=_text(names, ents), relations=_text(rel_text, rels))


def _wordnet_case(
    keys: pl.Series, labels: pl.Series, glosses: pl.Series, instances: set[str]
) -> pl.Series:
    """WordNet lemmas are lower case ("texas", "malay archipelago"); give proper names their
    capitals. A synset that is an instance of a class (an ``_instance_hypernym`` head) is a
    proper name: each word is capitalised but small words ("Jimenez de Cisneros"). In any
    lemma, a word the glosses write with a capital (not first in the gloss) nearly always
    keeps it ("african bee" -> "African bee", "acinonyx" -> "Acinonyx"); the glosses' own
    spelling is used ("McCarthy", "U.S.")."""
    upper: dict[str, Counter[str]] = {}
    lower: Counter[str] = Counter()
    for text in glosses.drop_nulls().unique().to_list():
        words = re.findall(r"[A-Za-z][\w'.-]*\w|[A-Za-z]", text)
        for i, word in enumerate(words):
            low = word.lower()
            if word[0].isupper() and i > 0:
                upper.setdefault(low, Counter())[word] += 1
                # runs of capitalised words as one name: "New Zealand", "Palestine
                # Liberation Organization"
                for n in (2, 3):
                    run = words[i : i + n]
                    if len(run) == n and all(w[0].isupper() for w in run):
                        upper.setdefault(" ".join(run).lower(), Counter())[" ".join(run)] += 1
            elif word.islower():
                lower[low] += 1
    spelling = {
        low: forms.most_common(1)[0][0]
        for low, forms in upper.items()
        if low not in SMALL_WORDS
        and len(low) > 1
        and forms.total() >= 9 * lower[low]
        and not forms.most_common(1)[0][0].isupper()  # acronyms stay as the lemma has them
    }

    def capital(word: str) -> str:
        if word in spelling:
            return spelling[word]
        if re.fullmatch(r"(?:[a-z]\.)+|[ivx]{2,}", word):  # "u.s." -> "U.S.", "xiv" -> "XIV"
            return word.upper()
        if re.fullmatch(r"[a-z]+'[a-z]{2,}", word):  # "o'brien" -> "O'Brien", "de'Medici"
            pre, post = word.split("'")
            return f"{pre if pre in SMALL_WORDS else pre.capitalize()}'{post.capitalize()}"
        return "-".join(p[:1].upper() + p[1:] for p in word.split("-"))

    out = []
    for key, label in zip(keys.to_list(), labels.to_list(), strict=True):
        if not label:
            out.append(label)
            continue
        words = label.split(" ")
        if key in instances:
            words = [w if i > 0 and w in SMALL_WORDS else capital(w) for i, w in enumerate(words)]
        else:  # longest runs first: "new zealand cotton" -> "New Zealand cotton"
            i = 0
            while i < len(words):
                for n in (3, 2, 1):
                    run = " ".join(words[i : i + n])
                    if i + n <= len(words) and run in spelling:
                        words[i : i + n] = spelling[run].split(" ")
                        i += n
                        break
                else:
                    i += 1
            words = [_possessive_name(w, capital) for w in words]
        out.append(" ".join(words))
    return pl.Series("label", out, pl.String)


def _possessive_name(word: str, capital: Callable[[str], str]) -> str:
    """A possessive whose stem is no English word is a person's name ("fanconi's" ->
    "Fanconi's", "culver's"); "cat's", "shepherd's" stay."""
    m = re.fullmatch(r"([a-z][\w-]*)'s", word)
    if m is None:
        return word
    from lemminflect import getAllLemmas

    return word if getAllLemmas(m.group(1)) else capital(m.group(1)) + "'s"


# WordNet's taxonomic ranks (biology senses); their lemma words mark a rank concept.
_TAXON_ROOTS = frozenset(
    "genus.n.02 family.n.06 order.n.12 class.n.07 phylum.n.02 division.n.07 division.n.08 "
    "kingdom.n.05".split()
)
_RANK_WORDS = frozenset(
    "genus subgenus family subfamily superfamily order suborder superorder infraorder class "
    "subclass superclass phylum subphylum division subdivision kingdom tribe".split()
)


def _taxon_case(names: pl.DataFrame, triples: pl.DataFrame) -> pl.Series:
    """Taxon names keep their capital ("amphibia" -> "Amphibia", "genus acinonyx" -> "genus
    Acinonyx"): a synset whose ``_hypernym`` is a rank concept (a rank sense, or a synset such
    as "bird genus" below one whose lemma ends in a rank word) names a taxon."""
    hyper = triples.filter(pl.col("relation") == "_hypernym").select("head", "tail")
    label = dict(zip(names["key"].to_list(), names["label"].to_list(), strict=True))
    ranks = set(_TAXON_ROOTS)
    pairs = list(zip(hyper["head"].to_list(), hyper["tail"].to_list(), strict=True))
    grew = True
    while grew:  # rank concepts below the roots: "mammal genus", "bird family"
        grew = False
        for head, tail in pairs:
            words = (label.get(head) or "").split(" ")
            if tail in ranks and head not in ranks and words[-1] in _RANK_WORDS:
                ranks.add(head)
                grew = True
    taxa = {h for h, t in pairs if t in ranks and h not in ranks}

    def cased(key: str, text: str | None) -> str | None:
        if key not in taxa or not text:
            return text
        words = text.split(" ")
        i = 1 if len(words) > 1 and words[0] in _RANK_WORDS else 0
        words[i] = words[i][:1].upper() + words[i][1:]
        return " ".join(words)

    return pl.Series(
        "label",
        [
            cased(k, t)
            for k, t in zip(names["key"].to_list(), names["label"].to_list(), strict=True)
        ],
        pl.String,
    )


_NATIONS_RELATIONS = {
    "accusation": "accusation",
    "aidenemy": "aid to enemy",
    "attackembassy": "attack on embassy",
    "blockpositionindex": "block position index",
    "booktranslations": "book translations",
    "boycottembargo": "boycott or embargo",
    "commonbloc0": "common bloc 0",
    "commonbloc1": "common bloc 1",
    "commonbloc2": "common bloc 2",
    "conferences": "conferences",
    "dependent": "dependent",
    "duration": "duration",
    "economicaid": "economic aid",
    "eemigrants": "emigrants (e)",
    "embassy": "embassy",
    "emigrants3": "emigrants 3",
    "expeldiplomats": "expel diplomats",
    "exportbooks": "export books",
    "exports3": "exports 3",
    "independence": "independence",
    "intergovorgs": "intergovernmental organizations",
    "intergovorgs3": "intergovernmental organizations 3",
    "lostterritory": "lost territory",
    "militaryactions": "military actions",
    "militaryalliance": "military alliance",
    "negativebehavior": "negative behavior",
    "negativecomm": "negative communication",
    "ngo": "non-governmental organizations",
    "ngoorgs3": "non-governmental organizations 3",
    "nonviolentbehavior": "nonviolent behavior",
    "officialvisits": "official visits",
    "pprotests": "protests",
    "relbooktranslations": "relative book translations",
    "reldiplomacy": "relative diplomacy",
    "releconomicaid": "relative economic aid",
    "relemigrants": "relative emigrants",
    "relexportbooks": "relative export books",
    "relexports": "relative exports",
    "relintergovorgs": "relative intergovernmental organizations",
    "relngo": "relative non-governmental organizations",
    "relstudents": "relative students",
    "reltourism": "relative tourism",
    "reltreaties": "relative treaties",
    "severdiplomatic": "sever diplomatic relations",
    "students": "students",
    "timesinceally": "time since ally",
    "timesincewar": "time since war",
    "tourism": "tourism",
    "tourism3": "tourism 3",
    "treaties": "treaties",
    "unoffialacts": "unofficial acts",
    "unweightedunvote": "unweighted UN vote",
    "violentactions": "violent actions",
    "warning": "warning",
    "weightedunvote": "weighted UN vote",
}
_ACRONYMS = {"uk": "UK", "usa": "USA", "ussr": "USSR"}


def _nations(shared: Path) -> tuple[KGTables, dict[str, pl.DataFrame]]:
    """Nations: country keys humanised, abbreviated relation names spelled out."""
    folder = shared / "nations"
    splits = _splits(folder)
    ents, rels = _keys(splits)
    relations = pl.DataFrame(
        {"key": rels, "label": [_NATIONS_RELATIONS.get(r, r) for r in rels], "description": None},
        schema=TEXT_SCHEMA,
    )
    return _result(splits, folder, entities=_humanised(ents, _ACRONYMS), relations=relations)


def _countries(shared: Path, variant: str) -> tuple[KGTables, dict[str, pl.DataFrame]]:
    """Countries S1-S3: keys humanised (``san_marino`` -> ``San Marino``)."""
    folder = shared / "countries" / f"countries_S{variant}"
    splits = _splits(folder)
    ents, rels = _keys(splits)
    return _result(
        splits,
        folder,
        entities=_humanised(ents),
        relations=_humanised(rels, {"locatedin": "located in"}),
    )


_IMPORTERS: dict[str, Callable[[Path], tuple[KGTables, dict[str, pl.DataFrame]]]] = {
    "codex-s": lambda d: _codex(d, "s"),
    "codex-m": lambda d: _codex(d, "m"),
    "codex-l": lambda d: _codex(d, "l"),
    "fb15k-237": _fb15k237,
    "wn18rr": _wn18rr,
    "nations": _nations,
    "countries_s1": lambda d: _countries(d, "1"),
    "countries_s2": lambda d: _countries(d, "2"),
    "countries_s3": lambda d: _countries(d, "3"),
}


def dataset_names() -> list[str]:
    """Names :func:`load_dataset` knows (a dataset may still be absent from the shared data)."""
    return list(_IMPORTERS)


def load_dataset(
    name: str, shared_dir: PathLike | None = None
) -> tuple[KGTables, dict[str, pl.DataFrame]]:
    """Import a shared dataset: (training KGTables with names/types, {valid, test} triples)."""
    key = name.lower()
    if key not in _IMPORTERS:
        close = difflib.get_close_matches(key, list(_IMPORTERS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(f"unknown dataset {name!r} (known: {', '.join(_IMPORTERS)}){hint}")
    shared = Path(shared_dir) if shared_dir is not None else shared_data_dir()
    return _IMPORTERS[key](shared)


def import_dataset(
    name: str, shared_dir: PathLike | None, out_dir: PathLike, *, overwrite: bool = False
) -> Path:
    """Import a shared dataset and write it as a canonical directory (train/valid/test apart)."""
    tables, held_out = load_dataset(name, shared_dir)
    return write_kg_dir(tables, out_dir, splits=held_out, overwrite=overwrite)
