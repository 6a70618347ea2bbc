"""The shipped lemminflect answers (``data/lexicons/lemminflect.json``): each is lemminflect's
own, and they cover every word a run on the bundled and shared KGs asks about, so such a
run never loads lemminflect's tables (~0.4 s before the first shard)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from lemminflect import getAllLemmas, getInflection

from kg2tool.kg.bundled import shared_data_dir
from kg2tool.tools import inflection

REPO = Path(__file__).resolve().parents[1]


def _table() -> dict:
    text = resources.files("kg2tool").joinpath(inflection.WORD_TABLE).read_text(encoding="utf-8")
    return json.loads(text)


def test_every_answer_is_lemminflect_s() -> None:
    table = _table()
    assert len(table["lemmas"]) > 100 and len(table["inflections"]) > 20
    for word, lemmas in table["lemmas"].items():
        assert lemmas == {p: list(v) for p, v in getAllLemmas(word).items()}, word
    for key, forms in table["inflections"].items():
        lemma, tag = key.rsplit(" ", 1)
        assert forms == list(getInflection(lemma, tag)), key


def test_lookups_answer_as_lemminflect_for_words_outside_the_table() -> None:
    for word in ("zigzagged", "snorkels", "quickly", "mountain"):
        assert word not in _table()["lemmas"]
        assert inflection.all_lemmas(word) == {p: tuple(v) for p, v in getAllLemmas(word).items()}
    assert inflection.inflection("zigzag", "VBN") == tuple(getInflection("zigzag", "VBN"))
    assert inflection.is_participle("zigzagged") and not inflection.is_participle("mountain")


# lemminflect made unimportable once the KG is loaded (importing WN18RR asks it about words;
# a run reads the imported snapshot): a lookup outside the table fails the run
_RUN_WITHOUT_LEMMINFLECT = """
import sys
from kg2tool.dataset.assemble import SampleContext, build_dataset
from kg2tool.kg.graph import KnowledgeGraph
from kg2tool.kg.bundled import load_dataset
from kg2tool.patterns import BETAE_TYPES
name = sys.argv[1]
kg = (
    KnowledgeGraph.load(name)
    if name == "codex-s"
    else KnowledgeGraph.from_tables(load_dataset(name)[0])
)
sys.modules["lemminflect"] = None
frame = build_dataset(kg, list(BETAE_TYPES), 300, seed=3, context=SampleContext(kg))
assert frame.height > 200, frame.height
print("ok", frame.height)
"""


@pytest.mark.parametrize("kg", ["codex-s", "fb15k-237", "wn18rr"])
def test_runs_on_shipped_kgs_never_load_lemminflect(kg: str) -> None:
    if kg != "codex-s" and not (shared_data_dir() / kg).exists():
        pytest.skip(f"{kg} not in the shared data")
    got = subprocess.run(
        [sys.executable, "-c", _RUN_WITHOUT_LEMMINFLECT, kg],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert got.returncode == 0, got.stderr[-2000:]
    assert got.stdout.startswith("ok")
