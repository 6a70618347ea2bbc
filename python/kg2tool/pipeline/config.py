"""What a ``generate`` run depends on: :class:`GenerateConfig`, its one source of settings.

Each setting is a field whose metadata carries its help text (and flag, where the flag is not
the field's name): the CLI builds ``kg2tool generate``'s options from them, config files use
the field names, so a new setting is added here (or, for paraphrasing, in
:class:`~kg2tool.dataset.paraphrase.ParaphraseConfig`) and nowhere else.

``engine`` chooses the *runner* of the shards (this process, a local process pool or Ray); it
is unrelated to :mod:`kg2tool.engine` (the native sampler). The name stays because config files
and the ``--engine`` flag use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg2tool.dataset import paraphrase
from kg2tool.dataset.paraphrase import ParaphraseConfig
from kg2tool.errors import InputError
from kg2tool.samples.calls import CALL_STYLES, SET_OPS_MODES
from kg2tool.samples.formats import FORMATS

__all__ = [
    "CONFIG_VERSION",
    "DEFAULT_PATTERNS",
    "DEFAULT_PATTERN_TEXT",
    "ENGINES",
    "FORMATS",
    "GenerateConfig",
    "SampleOptions",
    "Setting",
    "settings",
    "shard_counts",
]

# The library patterns a run draws by default (BetaE's query types), and the same as the
# comma-separated pattern list that the ``patterns`` setting takes.
DEFAULT_PATTERNS = tuple("1p 2p 3p 2i 3i ip pi 2in 3in inp pin pni 2u up".split())
DEFAULT_PATTERN_TEXT = ",".join(DEFAULT_PATTERNS)
ENGINES = ("auto", "local", "process", "ray")  # runners of the shards (see pipeline.runners)
RELATION_CHOICES = ("uniform", "degree")

# Version of what the resume hash covers. Bump it when the output for the same settings
# changes (a run of another version is then refused instead of resumed into mixed bytes).
# Version 1 hashes the settings alone, as every run before the constant existed did, so those
# runs still resume; later versions add ``config_version`` to the hashed settings.
CONFIG_VERSION = 1


@dataclass(frozen=True)
class SampleOptions:
    """Options a run passes to the sample builder (see
    :func:`kg2tool.dataset.assemble.build_from_batches`); unset (None) means the builder's
    default. A config file gives them as a table: ``options = {xlam_mode = "first_hop"}``.
    Only the options set are dumped and hashed, as when they were a plain table."""

    empty_ratio: float | None = None  # share of samples whose question has no answer
    error_ratio: float | None = None  # share of samples with a recovered call error
    distractors: int | None = None  # tools offered beside the ones a sample calls
    xlam_mode: str | None = None  # "independent" or "first_hop" (xLAM records)
    split: str | None = None  # how samples go to train/valid/test
    split_fractions: list[float] | None = None
    holdout: list[str] | None = None  # patterns held out of train
    holdout_fraction: float | None = None
    max_join_calls: int | None = None  # cyclic patterns: most calls of one sample

    @classmethod
    def of(cls, options: SampleOptions | dict[str, Any]) -> SampleOptions:
        """The options of a table (config file, ``generate(options={...})``)."""
        if isinstance(options, SampleOptions):
            return options
        if not isinstance(options, dict):
            raise InputError(f"options must be dict, got {options!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(names)}")
        return cls(**options)

    def given(self) -> dict[str, Any]:
        """The options set, as keyword arguments of the builder."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }


def _setting(help: str, *, flag: str | None = None, short: str | None = None) -> dict[str, Any]:
    """Field metadata: the help text, and the flag where it is not ``--field-name``."""
    return {"help": help, "flag": flag, "short": short}


@dataclass(init=False)
class GenerateConfig:
    """Everything a run depends on; written next to the data and hashed for resume.

    Construct it with the settings as keywords; the paraphrase settings go by their flat
    names (``paraphrase_url=...``) or as one ``paraphrase=ParaphraseConfig(...)``.
    ``engine``: ``"auto"`` (the default) runs shards on a local process pool of ``workers``
    (0: all CPUs) when the run is large and the machine has more than one CPU (see
    :func:`kg2tool.pipeline.runners.resolve_engine`), else in this process (``"local"``);
    ``"process"`` always uses the pool, ``"ray"`` a Ray cluster. The output is byte-identical
    whatever the engine.
    """

    out: str = field(
        default="",
        metadata=_setting("Output directory (resumes when it holds the same run)."),
    )
    kg: str = field(
        default="codex-s",
        metadata=_setting("Bundled name, canonical directory, snapshot or triples file."),
    )
    patterns: str = field(
        default=DEFAULT_PATTERN_TEXT,
        metadata=_setting(
            "Library names and/or formulas with weights, e.g. '1p,2p:2,r1(s1,f)&r2(s2,f)'."
        ),
    )
    num_samples: int = field(default=1000, metadata=_setting("Number of samples.", short="-n"))
    seed: int = field(default=0, metadata=_setting("Random seed (same seed, same output)."))
    format: str = field(default="openai", metadata=_setting(f"{', '.join(FORMATS)}."))
    shard_size: int = field(
        default=20_000,
        metadata=_setting("Samples per shard (unit of resume and distribution)."),
    )
    threads: int = field(default=0, metadata=_setting("Native threads (0: all cores)."))
    engine: str = field(
        default="auto",
        metadata=_setting(
            "Runner of the shards: auto (a local worker pool for large runs on 2+ CPUs, else "
            "local), local, process (local worker pool) or ray."
        ),
    )
    ray_address: str | None = field(
        default=None,
        metadata=_setting("Ray cluster address (with --engine ray).", flag="--address"),
    )
    workers: int = field(
        default=0,
        metadata=_setting("Worker processes (auto/process/ray engines; 0: all CPUs)."),
    )
    min_answers: int = field(default=1, metadata=_setting("Fewest answers of a question."))
    max_answers: int = field(default=20, metadata=_setting("Most answers of a question."))
    max_intermediate: int = field(
        default=20,
        metadata=_setting("Largest intermediate set (bounds the calls per sample)."),
    )
    relation_choice: str = field(
        default="uniform",
        metadata=_setting(f"How relations are drawn: {' or '.join(RELATION_CHOICES)}."),
    )
    jsonl: bool = True
    options: SampleOptions = field(default_factory=SampleOptions)
    set_ops: str = field(
        default=SET_OPS_MODES[0],
        metadata=_setting(
            "How intersections, unions and differences appear: 'thought' (explained in "
            "the reasoning) or 'tools' (calls of get_intersection_of, get_union_of, "
            "get_negation_of, replayed and verified)."
        ),
    )
    call_style: str = field(
        default=CALL_STYLES[0],
        metadata=_setting(
            "'single' (one call per entity of each intermediate set) or 'batched' (one call "
            "of a list API, e.g. get_x_of_y_batch, per projection step)."
        ),
    )
    allow_raw_keys: bool = field(
        default=False,
        metadata=_setting(
            "Keep samples that show entities without a name (opaque keys such as Q42); "
            "by default they are dropped and counted."
        ),
    )
    exclude_relations: str = field(
        default="",
        metadata=_setting(
            "Comma-separated patterns (shell-style, case-insensitive) of relation keys or "
            "labels to leave out, e.g. 'P1038,*slur*'."
        ),
    )
    exclude_entities: str = field(
        default="",
        metadata=_setting("Comma-separated patterns of entity keys or labels to leave out."),
    )
    overrides: str | None = field(
        default=None,
        metadata=_setting(
            "TOML/YAML relation lexicon (docs/LEXICONS.md) that wins over the shipped ones, "
            "field by field: phrases, questions, API names, descriptions, types."
        ),
    )
    paraphrase: ParaphraseConfig = field(default_factory=ParaphraseConfig)

    # Settings that change no byte of the output; left out of the resume hash.
    _RUNTIME_ONLY = ("out", "threads", "engine", "ray_address", "workers")
    # Left out of the dumps (and the resume hash) at their default, as before they existed.
    _DUMPED_UNLESS_DEFAULT = (
        "set_ops",
        "call_style",
        "allow_raw_keys",
        "exclude_relations",
        "exclude_entities",
        "overrides",
    )

    def __init__(self, **settings: Any) -> None:
        flat = {k: settings.pop(k) for k in list(settings) if k in paraphrase.FIELDS}
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise TypeError(f"GenerateConfig got unexpected setting(s) {', '.join(unknown)}")
        for f in dataclasses.fields(self):
            if f.name in settings:
                value = settings[f.name]
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                value = f.default
            setattr(self, f.name, value)
        self.options = SampleOptions.of(self.options)
        if not isinstance(self.paraphrase, ParaphraseConfig):
            raise TypeError(f"paraphrase must be a ParaphraseConfig, got {self.paraphrase!r}")
        if flat:
            self.paraphrase = paraphrase.from_settings(self.paraphrase, flat)

    @classmethod
    def setting_fields(cls) -> list[dataclasses.Field[Any]]:
        """The fields that are command-line settings (those with a help text), in order."""
        return [f for f in dataclasses.fields(cls) if "help" in f.metadata]

    def check_types(self) -> None:
        """Raise InputError when a setting has the wrong type (a config file can do that)."""
        for name, value in self.to_dict().items():  # e.g. num_samples = "ten" in a config
            want = _FIELD_TYPES.get(name)
            if want and (not isinstance(value, want) or (want is int and type(value) is bool)):
                raise InputError(f"{name} must be {want.__name__}, got {value!r}")
        if not isinstance(self.patterns, str) or not isinstance(self.kg, str | os.PathLike):
            raise InputError('patterns and kg must be strings (e.g. patterns = "1p,2p:2")')

    def validate(self) -> None:
        """Raise InputError naming the first bad setting."""
        self.check_types()
        if not self.out:
            raise InputError("no output directory given (--out)")
        if self.num_samples <= 0:
            raise InputError(f"num_samples must be positive, got {self.num_samples}")
        if self.shard_size <= 0:
            raise InputError(f"shard_size must be positive, got {self.shard_size}")
        for name, choices in (("format", FORMATS), ("engine", ENGINES)):
            if getattr(self, name) not in choices:
                raise InputError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(choices)}"
                )
        if self.threads < 0 or self.workers < 0:
            raise InputError("threads and workers must be >= 0")
        if self.min_answers < 0 or self.max_answers < max(1, self.min_answers):
            raise InputError(
                f"impossible answer bounds: min_answers={self.min_answers}, max_answers={self.max_answers}"
            )
        if self.max_intermediate < 1:
            raise InputError("max_intermediate must be >= 1")
        if self.relation_choice not in RELATION_CHOICES:
            raise InputError(f"relation_choice must be {_either(RELATION_CHOICES)}")
        for name, choices in (("set_ops", SET_OPS_MODES), ("call_style", CALL_STYLES)):
            if getattr(self, name) not in choices:
                raise InputError(f"{name} must be {_either(choices)}, got {getattr(self, name)!r}")
        self.paraphrase = paraphrase.checked(self.paraphrase)

    def to_dict(self) -> dict[str, Any]:
        """The settings under their flat names (config files, the manifest, the card); settings
        at the default that were added later, and paraphrasing while off, are left out so that
        dumps and the resume hash are those of a run before they existed."""
        d = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "paraphrase"
        }
        d["options"] = self.options.given()
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in self._DUMPED_UNLESS_DEFAULT:
            if not d[name] or d[name] == defaults[name]:
                d.pop(name)
        if self.paraphrase.enabled:
            d.update(paraphrase.settings(self.paraphrase))
        return d

    def sampler_options(self, threads: int) -> dict[str, Any]:
        """Keyword arguments of the native sampler (:func:`kg2tool.engine.sample_queries`)."""
        return {
            "min_answers": self.min_answers,
            "max_answers": self.max_answers,
            "max_intermediate": self.max_intermediate,
            "relation_choice": self.relation_choice,
            "threads": threads,
        }

    def exclusions(self, name: str) -> list[str]:
        """The patterns of ``exclude_relations`` or ``exclude_entities``, as a list."""
        return [p for p in getattr(self, name).split(",") if p.strip()]

    def builder_options(self) -> dict[str, Any]:
        """Keyword arguments of the sample builder
        (:func:`kg2tool.dataset.assemble.build_from_batches`): the settings not at their
        default, and the options set."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        kw = {
            name: getattr(self, name)
            for name in ("set_ops", "call_style", "allow_raw_keys")
            if getattr(self, name) != defaults[name]
        }
        for name in ("exclude_relations", "exclude_entities"):
            if getattr(self, name):
                kw[name] = self.exclusions(name)
        return {**kw, **self.options.given()}

    def content_hash(self) -> str:
        """Hash of the settings that decide the output bytes (resume refuses a different one),
        versioned by :data:`CONFIG_VERSION`."""
        skip = (*self._RUNTIME_ONLY, *paraphrase.RUNTIME_ONLY)
        d = {k: v for k, v in self.to_dict().items() if k not in skip}
        if CONFIG_VERSION > 1:
            d["config_version"] = CONFIG_VERSION
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> GenerateConfig:
        """Read a TOML config (keys as the fields, or under [generate]); overrides win."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("config file not found", path=str(p)) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"invalid TOML: {exc}", path=str(p)) from None
        except OSError as exc:
            raise InputError(f"cannot read the config file: {exc.strerror}", path=str(p)) from None
        data = data.get("generate", data)
        if not isinstance(data, dict):
            raise InputError("[generate] must be a table of settings", path=str(p))
        data = {k.replace("-", "_"): v for k, v in data.items()}  # flag spelling works too
        names = {f.name for f in dataclasses.fields(cls)} - {"paraphrase"}
        unknown = sorted(set(data) - names - set(paraphrase.FIELDS))
        if unknown:
            raise InputError(f"unknown setting(s) {', '.join(unknown)}", path=str(p))
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            cfg = cls(**data)
            cfg.check_types()
        except TypeError as exc:
            raise InputError(str(exc), path=str(p)) from None
        except InputError as exc:
            raise InputError(str(exc), path=str(p)) from None
        return cfg

    def to_toml(self) -> str:
        """The ``config.toml`` a run writes (``kg2tool generate --config`` reads it back)."""
        import tomli_w

        d = {k: v for k, v in self.to_dict().items() if v is not None}
        return tomli_w.dumps({"generate": d})


def _either(choices: tuple[str, ...]) -> str:
    return " or ".join(map(repr, choices))


# Settings whose type a config file can get wrong (the others are checked by value).
_FIELD_TYPES: dict[str, type] = {
    "num_samples": int,
    "seed": int,
    "shard_size": int,
    "threads": int,
    "workers": int,
    "min_answers": int,
    "max_answers": int,
    "max_intermediate": int,
    "jsonl": bool,
    "options": dict,
    "set_ops": str,
    "call_style": str,
    "allow_raw_keys": bool,
    "exclude_relations": str,
    "exclude_entities": str,
    "overrides": str,
}


def shard_counts(count: int, num_shards: int) -> list[int]:
    """Split ``count`` evenly over shards, the first ones taking the remainder."""
    base, extra = divmod(count, num_shards)
    return [base + (1 if s < extra else 0) for s in range(num_shards)]


@dataclass(frozen=True)
class Setting:
    """One setting of a run as a command line shows it: name, type, default, help, flag."""

    name: str
    type: Any
    default: Any
    help: str
    flag: str
    short: str | None = None
    group: str | None = None  # a help panel (the paraphrase settings have theirs)


def settings() -> list[Setting]:
    """Every setting that has a flag, from the fields' metadata: GenerateConfig's, then the
    paraphrase ones (the one list the CLI builds its options and help from)."""
    out = []
    for cls, group in ((GenerateConfig, None), (ParaphraseConfig, "Paraphrasing")):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if "help" not in f.metadata:
                continue
            name = f.metadata.get("setting", f.name)
            flag = f.metadata["flag"] or "--" + name.replace("_", "-")
            default = None if f.default is dataclasses.MISSING else f.default
            help, short = f.metadata["help"], f.metadata.get("short")
            out.append(Setting(name, hints[f.name], default, help, flag, short, group))
    return out
