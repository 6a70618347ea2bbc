"""The shipped FB15k-237 lexicon checked against the FB15k-237 triples and entity names.

The format rules every shipped lexicon keeps are tested in test_lexicon_files.py; here:
coverage of the KG's 237 relation keys, API names, direction and type words read against
real triples (entity descriptions in entity_names.tsv), and that only degenerate relations
are excluded.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections import defaultdict
from importlib.resources import files
from pathlib import Path

import pytest

from kg2tool.kg.bundled import shared_data_dir

# Words of an entity's label or Wikidata short description that show an entity's kind, for the type words the
# descriptions can confirm. A side typed with one of these words must mostly match it.
KIND_PATTERNS = {
    "person": r"\b(actor|actress|singer|musician|director|producer|writer|player|politician|"
    r"composer|comedian|author|screenwriter|rapper|poet|philosopher|novelist|journalist|artist|"
    r"footballer|designer|cinematographer|editor|businessm|painter|songwriter|guitarist|"
    r"drummer|pianist|dancer|model|presenter|personality|host|scientist|lawyer|engineer|"
    r"president|king|queen|minister|\(\d{4})",
    "film": r"\bfilm\b|\bmovie",
    "country": r"country|republic|kingdom|monarchy|nation|empire|island",
    "award": r"award|prize|medal|honou?r",
    "language": r"language|dialect",
    "team": r"team|club|\bf\.?c\b|football|basketball|baseball|hockey|league",
}


@pytest.fixture(scope="module")
def fb_dir() -> Path:
    return shared_data_dir() / "fb15k-237"


@pytest.fixture(scope="module")
def lexicon() -> dict[str, dict]:
    text = files("kg2tool").joinpath("data/lexicons/fb15k-237.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@pytest.fixture(scope="module")
def triples(fb_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """relation key -> (head mid, tail mid) over train, valid and test."""
    if not (fb_dir / "train.txt").exists():
        pytest.skip(f"FB15k-237 not in the shared data dir ({fb_dir})")
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for split in ("train", "valid", "test"):
        with (fb_dir / f"{split}.txt").open(encoding="utf-8") as f:
            for line in f:
                h, r, t = line.rstrip("\n").split("\t")
                out[r].append((h, t))
    return out


@pytest.fixture(scope="module")
def entities(fb_dir: Path) -> dict[str, tuple[str, str]]:
    """mid -> (label, lower-case label and description)."""
    path = fb_dir / "entity_names.tsv"
    if not path.exists():
        pytest.skip(f"FB15k-237 names not in the shared data dir ({path})")
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {
            r["mid"]: (r["label"], f"{r['label']} {r['description'] or ''}".lower()) for r in rows
        }


def test_every_relation_has_exactly_one_entry(lexicon, triples, fb_dir) -> None:
    listed = {
        line.strip()
        for line in (fb_dir / "relations.txt").read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    assert len(listed) == 237
    assert set(triples) == listed
    assert set(lexicon) == listed


def test_api_names_are_unique_valid_identifiers(lexicon) -> None:
    names = [v[k] for v in lexicon.values() for k in ("name", "inverse_name")]
    assert len(names) == 2 * 237
    assert len(set(names)) == len(names), [n for n in names if names.count(n) > 1]
    bad = [n for n in names if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", n)]
    assert not bad


def test_no_freebase_path_words_in_text(lexicon) -> None:
    """No phrase, gloss or description repeats a path segment such as award_winner."""
    for key, v in lexicon.items():
        segments = {s for s in re.split(r"[/.]", key) if "_" in s}
        texts = [v["gloss"], v["description"], v["inverse_description"]]
        texts += [
            v[d][k] for d in ("forward", "inverse") for k in ("one", "many", "verb", "question")
        ]
        for text in texts:
            assert not any(s in text for s in segments), (key, text)
            assert "/" not in text and "_" not in text, (key, text)
            assert not re.search(r"\b(\w+) \1\b", text, re.IGNORECASE), (key, text)


def test_type_words_agree_with_entity_descriptions(lexicon, triples, entities) -> None:
    """Where a side's type word is one the descriptions can confirm, most entities match it,
    so a swapped direction (domain and range exchanged) fails here."""
    checked = 0
    for key, v in lexicon.items():
        pairs = triples[key]
        for side, word in ((0, v["domain"]), (1, v["range"])):
            if word not in KIND_PATTERNS:
                continue
            mids = {p[side] for p in pairs}
            hits = sum(bool(re.search(KIND_PATTERNS[word], entities[m][1])) for m in mids)
            assert hits / len(mids) >= 0.6, (key, side, word, hits, len(mids))
            checked += 1
    assert checked >= 120


# Real triples (head label, tail label) and the sentence "<tail> <forward.verb>" a careful
# reader accepts as true of them; the inverse verb must read true the other way round.
DIRECTION_SPOT_CHECKS = [
    ("/people/person/place_of_birth", "Milla Jovovich", "Kiev",
     "Kiev is the birthplace of Milla Jovovich", "Milla Jovovich was born in Kiev"),
    ("/film/director/film", "David Lynch", "The Straight Story",
     "The Straight Story was directed by David Lynch", "David Lynch directed The Straight Story"),
    ("/film/film/prequel", "Superman II", "Superman",
     "Superman is a prequel to Superman II", "Superman II is a sequel to Superman"),
    ("/location/location/contains", "Waukesha County", "Waukesha",
     "Waukesha lies within Waukesha County", "Waukesha County contains Waukesha"),
    ("/medicine/symptom/symptom_of", "jaundice", "liver failure",
     "liver failure has jaundice as a symptom", "jaundice is a symptom of liver failure"),
    ("/music/genre/parent_genre", "Celtic rock", "Celtic music",
     "Celtic music is a parent genre of Celtic rock", "Celtic rock is a subgenre of Celtic music"),
    ("/base/aareas/schema/administrative_area/capital", "Guangdong", "Guangzhou",
     "Guangzhou is the capital of Guangdong", "Guangdong has Guangzhou as its capital"),
    ("/influence/influence_node/influenced_by", "John Locke", "Aristotle",
     "Aristotle influenced John Locke", "John Locke was influenced by Aristotle"),
    ("/award/award_category/category_of",
     "Primetime Emmy Award for Outstanding Writing for a Drama Series", "Primetime Emmy Award",
     "Primetime Emmy Award has Primetime Emmy Award for Outstanding Writing for a Drama Series "
     "as a category",
     "Primetime Emmy Award for Outstanding Writing for a Drama Series is a category of "
     "Primetime Emmy Award"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "head", "tail", "forward", "inverse"), DIRECTION_SPOT_CHECKS)
def test_direction_on_real_triples(lexicon, triples, entities, key, head, tail, forward, inverse):
    labelled = {(entities[h][0], entities[t][0]) for h, t in triples[key]}
    assert (head, tail) in labelled, "the spot check must be a triple of the KG"
    v = lexicon[key]
    assert f"{tail} {v['forward']['verb'].format(x=head)}" == forward
    assert f"{head} {v['inverse']['verb'].format(x=tail)}" == inverse


def test_only_degenerate_relations_are_excluded(lexicon, triples) -> None:
    """An excluded relation is one whose triples carry no knowledge: mostly self-loops, one
    tail for every head, or (nearly) every head linked to every tail."""
    excluded = [k for k, v in lexicon.items() if v.get("exclude")]
    assert 1 <= len(excluded) <= 12
    for key in excluded:
        pairs = triples[key]
        heads = defaultdict(set)
        for h, t in pairs:
            heads[h].add(t)
        tails = {t for _, t in pairs}
        self_loops = sum(h == t for h, t in pairs) / len(pairs)
        complete = sum(len(ts) == len(tails) for ts in heads.values()) / len(heads)
        assert self_loops >= 0.33 or len(tails) == 1 or complete >= 0.9, key
