"""``kg2tool.pipeline.config``: one source for the settings, their dumps and the CLI's options."""

from __future__ import annotations

import dataclasses

import pytest
import typer

from kg2tool.cli import app
from kg2tool.dataset.paraphrase import ParaphraseConfig
from kg2tool.errors import InputError
from kg2tool.pipeline.config import (
    DEFAULT_PATTERN_TEXT,
    DEFAULT_PATTERNS,
    GenerateConfig,
    SampleOptions,
    settings,
)

PARAPHRASE_ON = {"paraphrase_url": "http://h/v1", "paraphrase_model": "m"}


def test_every_dumped_setting_but_the_tables_has_a_flag() -> None:
    off_default = {
        "set_ops": "tools",
        "call_style": "batched",
        "allow_raw_keys": True,
        "exclude_relations": "P1",
        "exclude_entities": "Q1",
        "overrides": "lexicon.toml",
    }
    dumped = set(GenerateConfig(out="x", **off_default, **PARAPHRASE_ON).to_dict())
    assert {s.name for s in settings()} == dumped - {"jsonl", "options"}


def test_generate_has_an_option_per_setting() -> None:
    command = typer.main.get_command(app).commands["generate"]  # type: ignore[attr-defined]
    flags = {opt for param in command.params for opt in param.opts}
    for s in settings():
        assert s.flag.split("/")[0] in flags, s.name


def test_paraphrase_settings_flat_or_nested_are_the_same() -> None:
    flat = GenerateConfig(out="x", paraphrase_ratio=0.5, **PARAPHRASE_ON)
    nested = GenerateConfig(
        out="x", paraphrase=ParaphraseConfig(base_url="http://h/v1", model="m", ratio=0.5)
    )
    assert flat == nested and flat.content_hash() == nested.content_hash()
    moved = dataclasses.replace(flat, paraphrase_url="http://other/v1")
    assert moved.paraphrase.base_url == "http://other/v1" and moved.paraphrase.ratio == 0.5


def test_unknown_settings_and_options_are_refused() -> None:
    with pytest.raises(TypeError, match="bogus"):
        GenerateConfig(bogus=1)
    with pytest.raises(InputError, match="unknown option"):
        GenerateConfig(options={"xlam_modes": "first_hop"})


def test_options_dump_only_what_is_set() -> None:
    cfg = GenerateConfig(out="x", options={"xlam_mode": "first_hop"})
    assert isinstance(cfg.options, SampleOptions)
    assert cfg.to_dict()["options"] == {"xlam_mode": "first_hop"}
    assert cfg.builder_options() == {"xlam_mode": "first_hop"}
    assert GenerateConfig(out="x").to_dict()["options"] == {}


def test_builder_gets_the_settings_off_their_default() -> None:
    cfg = GenerateConfig(set_ops="tools", exclude_entities="a*, ,b")
    assert cfg.builder_options() == {"set_ops": "tools", "exclude_entities": ["a*", "b"]}


def test_default_patterns_list_and_text_agree() -> None:
    assert DEFAULT_PATTERN_TEXT.split(",") == list(DEFAULT_PATTERNS)
    assert GenerateConfig().patterns == DEFAULT_PATTERN_TEXT
