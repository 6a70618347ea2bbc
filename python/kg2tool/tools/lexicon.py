"""Relation lexicons: how a careful person writes about each relation (docs/LEXICONS.md).

One place reads them all: the lexicons shipped in ``kg2tool/data/lexicons/`` (a file applies
to a KG when at least half of its relation keys are in it; ``wikidata.toml`` also key by key
for Wikidata property ids), a user's overrides file (TOML/YAML, the same format; it wins field
by field) and, for relations no lexicon covers, a grammatical fallback read from the relation's
label: verb phrases (``affects``, ``interacts_with``, ``located_in``) become verb frames, noun
phrases (``capital``, ``place_of_birth``) nouns. :func:`resolve_lexicon` gives one complete
:class:`Entry` per relation; the API catalogue and the question templates both read it.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kg2tool.errors import InputError
from kg2tool.kg.names import humanise_key

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "FIELDS",
    "SIDE_FIELDS",
    "Entry",
    "Side",
    "a_an",
    "fallback_fields",
    "is_plural_noun",
    "plural",
    "read_lexicon",
    "relation_text",
    "resolve_lexicon",
    "select_shipped",
    "shipped_lexicons",
    "verb_lemma",
    "with_article",
]

NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
SIDE_FIELDS = frozenset({"one", "many", "verb", "question"})
FIELDS = frozenset(
    {
        "name",
        "inverse_name",
        "description",
        "inverse_description",
        "phrasing",
        "gloss",
        "label",
        "domain",
        "range",
        "exclude",
        "symmetric",
        "forward",
        "inverse",
    }
)
GENERIC = "entity"
# a domain/range type word: lower-case English, or a proper name of capitalised words
_TYPE_WORD = re.compile(r"[a-z][a-z' -]*|[A-Z][a-z]+(?: [A-Z][a-z]+)+")
SHIPPED_DIR = Path(__file__).parent.parent / "data" / "lexicons"
WIKIDATA_FILE = "wikidata"
_WIKIDATA_KEY = re.compile(r"^P\d+$")
_PREPS = frozenset(
    "of in by with to from at on for into onto about against between among under over "
    "through during".split()
)
# Plural nouns that are also verb forms, read as nouns when they name a relation alone.
_NOUNS_NOT_VERBS = frozenset(
    "parts awards members genres works products languages films locations children names "
    "places types forms groups countries sports teams".split()
)


# Nouns whose plural is the word itself (already plural, or uncountable: no "softwares").
_SAME_IN_PLURAL = frozenset(
    "people children men women media data series species software hardware equipment "
    "information music furniture news research evidence advice literature art poetry "
    "clothing jewelry jewellery cattle police aircraft spacecraft".split()
)


@functools.lru_cache(maxsize=1)
def _inflect() -> Any:
    """One ``inflect.engine()``, imported without typeguard's run-time argument checks.

    inflect wraps its methods in ``typeguard.typechecked``, which recompiles the module on
    import (~2.5 s per process) and checks every call; the checks only turn a wrong argument
    type into an exception, and every caller here passes non-empty ``str``. So the import
    runs with ``typechecked`` as the identity (~0.1 s), unless inflect is already loaded.
    """
    import sys

    if "inflect" not in sys.modules:
        try:
            import typeguard
        except ImportError:  # inflect without typeguard: nothing to bypass
            typeguard = None
        if typeguard is not None:
            checked = typeguard.typechecked

            def _identity(target: Any = None, **_: Any) -> Any:
                return target if target is not None else (lambda f: f)

            typeguard.typechecked = _identity
            try:
                import inflect
            finally:
                typeguard.typechecked = checked
    import inflect

    return inflect.engine()


# Every answer inflect gave in this process, by (method, word). Importing inflect costs
# seconds (its typeguard decorators recompile the module), so the generate driver hands its
# memo to the worker processes (:func:`seed_inflections`), which then rarely import it.
_INFLECTED: dict[tuple[str, str], str | bool] = {}


def _inflected(method: str, word: str) -> Any:
    """``inflect.engine().<method>(word)`` (plural_noun, singular_noun, a), memoised."""
    if not word:  # inflect refuses empty text; nothing to inflect
        return False if method == "singular_noun" else word
    key = (method, word)
    if key not in _INFLECTED:
        _INFLECTED[key] = getattr(_inflect(), method)(word)
    return _INFLECTED[key]


def inflections() -> dict[tuple[str, str], str | bool]:
    """A copy of this process's inflect answers (for :func:`seed_inflections` elsewhere)."""
    return dict(_INFLECTED)


def seed_inflections(memo: dict[tuple[str, str], str | bool]) -> None:
    """Take inflect answers computed in another process (same words, same answers)."""
    _INFLECTED.update(memo)


@functools.lru_cache(maxsize=65536)
def plural(noun: str) -> str:
    """English plural of a noun phrase's head ("city" -> "cities", "place of birth" ->
    "places of birth", "person" -> "people"); already plural words stay."""
    noun = noun.strip()
    if not noun:
        return noun
    head, sep, rest = noun.partition(" of ")
    words = head.split(" ")
    last = words[-1]
    if last in _SAME_IN_PLURAL:
        return noun
    if (
        last.endswith("s")
        and not last.endswith(("ss", "us", "is"))
        and _inflected("singular_noun", last)
    ):
        return noun  # already plural
    words[-1] = _inflected("plural_noun", last) or last
    return " ".join(words) + (sep + rest if sep else "")


def is_plural_noun(word: str) -> bool:
    """Whether a head noun is plural ("people", "cities"; not "news", "series", "class")."""
    return word in ("people", "children", "men", "women") or (
        word.endswith("s")
        and word not in _SAME_IN_PLURAL
        and not word.endswith(("ss", "us"))
        and plural(word) == word
    )


# Names that read with "the" in running text ("born in the United States").
_NEEDS_THE = (
    r"^(?:United (?:States|Kingdom|Arab Emirates|Nations)\b|(?:Republic|Kingdom|University|"
    r"Principality|Duchy|Grand Duchy|Commonwealth|Empire|Province|State|Isle) of |"
    r"(?:Democratic|Czech|Dominican|Central African|People's) Republic\b|"
    r"(?:Soviet|European|African) Union$|Netherlands$|Philippines$|Bahamas$|Gambia$|"
    r"Maldives$|Vatican City$|Gaza Strip$|West Bank$|Holy See$|"
    r"(?:Holy Roman|Ottoman|Roman|Byzantine|British|Russian|German|Mughal|Austrian|Spanish|"
    r"Japanese|Persian|Mongol|Qing|Han) Empire$|[A-Z][\w-]+ (?:Islands|Mountains|Alps|Andes|"
    r"Himalayas|River|Sea|Ocean|Desert|Archipelago|Peninsula|Strait|Channel|Canal)$|"
    r"(?:Gulf|Bay|Strait|Straits|Sea|Cape) of |"
    # a people named by its adjective: "the Punjabi people", "the Jewish people"
    r"[A-Z][\w-]* people$|"
    # organisations, teams and events: "the Labour Party", "the Swiss national football
    # team", "the 46th Academy Awards", "the 2010 Winter Olympics", "the Catholic
    # University of America", "the London Symphony Orchestra"
    r"[^,]*\bnational (?:[\w-]+ ){0,3}team$|\S.* Party$|"
    r"\d+(?:st|nd|rd|th) .*(?:Awards|Congress|Parliament|Festival|[Cc]entury|Olympics|Games|"
    r"Assembly|Legislature|Senate|Summit|Conference|Amendment|season|Tournament)$|"
    r"(?:1[5-9]|20)\d\d [^:]*\b(?:Olympics|Games|Awards|Festival|Tournament|season|[Dd]raft|"
    r"Championships?(?: in .+)?|Cup|Tour de France|Congress|Parliament|[Ee]lection|[Ww]ar|"
    r"Summit|Series)$|(?:1[5-9]|20)\d\d (?:[a-z]+ )?(?:invasion|attacks?|war|coup|siege|"
    r"crisis) (?:of|on|in) .+$|"
    r"[^,]*\b(?:University|Institute|College|School|Academy|Conservatory|Museum) of |"
    r"\S.* (?:Awards|Orchestra|Philharmonic|Film Festival|League|Guild|Foundation|Navy|"
    r"Army|Air Force|World Tour(?: \d{4})?)$|"
    # named prizes, medals and orders: "the Carnegie Medal", "the Primetime Emmy Award for
    # Outstanding Comedy Series", "the Order of the Garter", "the Royal Victorian Chain"
    r"[^,:!?]* (?:Award|Prize|Medal|Trophy)(?: (?:for|in|of) .+)?$|Order of |"
    r"(?:Royal|Imperial|Sovereign|Military|Supreme) (?:[A-Z][\w-]* )*(?:Order|Chain)\b|"
    # wars, revolutions and battles named by their words: "the Second Punic War", "the Cold
    # War", "the Hundred Years' War", "the War of 1812" (not "Charlie Wilson's War")
    r"(?:(?:[A-Z][\w-]*|[A-Z][a-z]+s'|and) )+(?:War|Revolution)$|"
    r"(?:War|Battle|Siege|Treaty) of |"
    # sports teams: a club nickname after its place ("the Pittsburgh Pirates"), a college
    # team ("the Indiana Hoosiers men's basketball")
    r"(?:[A-Z][\w.-]* )+(?:(?:Blue|Red|White|Golden|Maple|Sound|Trail) )?(?:"
    r"Pirates|Cubs|Indians|Phillies|Angels|Giants|Dodgers|Yankees|Mets|Braves|Cardinals|"
    r"Tigers|Twins|Royals|Rangers|Mariners|Padres|Brewers|Reds|Orioles|Rays|Marlins|"
    r"Nationals|Expos|Jays|Sox|Astros|Athletics|Rockies|Diamondbacks|Bills|Ravens|Browns|"
    r"Panthers|Bears|Cowboys|Broncos|Lions|Packers|Colts|Jaguars|Chiefs|Dolphins|Patriots|"
    r"Saints|Jets|Raiders|Eagles|Steelers|Chargers|Rams|Buccaneers|Titans|Falcons|49ers|"
    r"Seahawks|Vikings|Bengals|Texans|Redskins|Lakers|Celtics|Bulls|Knicks|Nets|Pistons|"
    r"Pacers|Bucks|Cavaliers|Hawks|Wizards|Pelicans|Mavericks|Nuggets|Rockets|Grizzlies|"
    r"Spurs|Warriors|Clippers|Suns|Kings|Blazers|Hornets|Timberwolves|Raptors|76ers|Bruins|"
    r"Sabres|Leafs|Thrashers|Hurricanes|Flyers|Penguins|Devils|Islanders|Capitals|Jackets|"
    r"Flames|Ducks|Stars|Coyotes|Predators|Sharks|Senators|Canadiens|Blackhawks|Wings|"
    r"Oilers|Canucks|Blues|Admirals|Bulldogs|Monarchs|Barons|Nighthawks|Earthquakes|"
    r"Timbers|Bulls|Strikers|Rhinos|Dragons|Swallows|Marines|Buffaloes)$|"
    r"[A-Z].* (?:men's|women's) (?:[a-z]+ )?(?:basketball|football|soccer|hockey|volleyball|"
    r"baseball|lacrosse)$)"
)
# ... but never a name with its own article, nor a film, band or show named like a team or a
# war ("This Means War", "They Might Be Giants", "Three Kings", "Hill Street Blues", "Bloc
# Party")
_NO_THE = (
    r"^(?:(?:The|A|An|This|That|They|We|When|One|Two|Three|Four|Seven|Nine|Evil|Space|Power|"
    r"Wonder|Hill Street|Kill Rock|Step Up|Howard) |Bloc Party$)"
)


def with_article(names: Any) -> Any:
    """Names as they read in running text: "the" before those that take it ("the United
    States", "the Holy Roman Empire"), others unchanged (a ``pl.Series`` or ``pl.Expr``)."""
    import polars as pl

    expr = names if isinstance(names, pl.Expr) else pl.lit(names)
    needs = expr.str.contains(_NEEDS_THE) & ~expr.str.contains(_NO_THE)
    out = pl.when(needs).then(pl.concat_str(pl.lit("the "), expr))
    out = out.otherwise(expr)
    return out if isinstance(names, pl.Expr) else pl.select(out.alias(names.name)).to_series()


def a_an(phrase: str) -> str:
    """The phrase with its indefinite article ("an organization", "a university")."""
    return _inflected("a", phrase)


def _words(text: str) -> list[str]:
    """Lower-case words of a label (accents folded; hyphens kept inside words)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return [w for w in re.split(r"[^a-z0-9'-]+", folded.lower()) if w.strip("-")]


# ---------------------------------------------------------------- reading files


@dataclass(frozen=True)
class Side:
    """One direction of a relation: noun phrases (singular/plural), predicate, question;
    ``{x}`` marks the argument. ``verb``/``question`` may be empty (not known)."""

    one: str
    many: str
    verb: str = ""
    question: str = ""


@dataclass(frozen=True)
class Entry:
    """Everything about one relation that text is built from (all fields filled)."""

    key: str
    label: str  # the relation's words ("place of birth", "interacts with")
    gloss: str
    domain: str
    range: str
    forward: Side
    inverse: Side
    name: str | None = None
    inverse_name: str | None = None
    description: str | None = None
    inverse_description: str | None = None
    exclude: bool = False
    symmetric: bool = False  # r(a,b) iff r(b,a): the two directions may share their phrases
    form: str = "lexicon"  # "lexicon" or the fallback's reading: "noun", "noun_of", "verb", ...
    api_forward: str | None = None  # fallback's suggested base names (renamed on collision)
    api_inverse: str | None = None

    def side(self, direction: str) -> Side:
        """The forward or inverse side."""
        return self.forward if direction == "forward" else self.inverse


def _parse_file(path: Path) -> Any:
    """The data of a TOML/YAML file; InputError naming the file otherwise."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read lexicon file: {exc.strerror}", path=where) from exc
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(raw.decode("utf-8"))
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(raw) or {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid TOML: {exc}", path=where) from exc
    except Exception as exc:  # yaml.YAMLError carries line/column in its message
        raise InputError(f"invalid YAML: {exc}", path=where) from exc
    raise InputError("a lexicon/overrides file must be .toml, .yaml or .yml", path=where)


def _check_phrase(key: str, name: str, value: Any, where: str | None) -> None:
    """The rules of docs/LEXICONS.md a single phrase must keep."""

    def bad(why: str) -> InputError:
        return InputError(f"relation {key!r}: {name} {value!r} {why}", path=where)

    if not isinstance(value, str) or not value.strip():
        raise bad("must be text")
    if value.count("{x}") != 1:
        raise bad("must contain {x} exactly once")
    field_ = name.rsplit(".", 1)[-1]
    if field_ == "question" and not (value[:1].isupper() or value.startswith("{x}")):
        raise bad("must start with a capital letter")
    if field_ == "question" and not value.rstrip().endswith("?"):
        raise bad("must end in '?'")
    if field_ == "verb" and value.split(" ", 1)[0].lower() in ("the", "a", "an"):
        raise bad("must start with a verb, not an article")


def read_lexicon(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, dict]:
    """Read a lexicon/overrides file (TOML or YAML) or take a mapping: relation key -> fields,
    validated (one-line InputError naming the file and relation). The legacy ``phrasing =
    {forward, inverse}`` is read as ``forward.one`` / ``inverse.one``. The returned mapping
    carries the source path under ``"__source__"``."""
    where: str | None = None
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        data = _parse_file(path)
    if isinstance(data, Mapping) and set(data) == {"relations"}:
        data = data["relations"]
    if not isinstance(data, Mapping):
        raise InputError("a lexicon must map relation keys to tables", path=where)
    out: dict[str, Any] = {}
    for key, fields in data.items():
        if key == "__source__":
            continue
        if not isinstance(fields, Mapping):
            raise InputError(f"relation {key!r}: expected a table of fields", path=where)
        unknown = sorted(set(fields) - FIELDS)
        if unknown:
            raise InputError(
                f"relation {key!r}: unknown field(s) {unknown}; allowed: {sorted(FIELDS)}",
                path=where,
            )
        entry = dict(fields)
        for name_field in ("name", "inverse_name"):
            value = entry.get(name_field)
            if value is not None and (not isinstance(value, str) or not NAME_RE.match(value)):
                raise InputError(
                    f"relation {key!r}: {name_field} {value!r} is not a valid identifier "
                    f"({NAME_RE.pattern})",
                    path=where,
                )
        for text_field in ("description", "inverse_description", "gloss", "label"):
            value = entry.get(text_field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"relation {key!r}: {text_field} must be text", path=where)
        for type_field in ("domain", "range"):
            value = entry.get(type_field)
            if value is not None and (
                not isinstance(value, str) or not _TYPE_WORD.fullmatch(value)
            ):
                raise InputError(
                    f"relation {key!r}: {type_field} {value!r} must be a lower-case English "
                    "type word (or a proper name such as 'Olympic Games')",
                    path=where,
                )
        for flag in ("exclude", "symmetric"):
            if flag in entry and not isinstance(entry[flag], bool):
                raise InputError(f"relation {key!r}: {flag} must be true or false", path=where)
        phrasing = entry.pop("phrasing", None)
        if phrasing is not None:
            if not isinstance(phrasing, Mapping) or set(phrasing) - {"forward", "inverse"}:
                raise InputError(
                    f"relation {key!r}: phrasing must be a table with keys forward/inverse",
                    path=where,
                )
            if not all(isinstance(v, str) for v in phrasing.values()):
                raise InputError(f"relation {key!r}: phrasing values must be text", path=where)
            for d, text in phrasing.items():
                side = dict(entry.get(d) or {})
                side.setdefault("one", text)
                entry[d] = side
        for d in ("forward", "inverse"):
            side = entry.get(d)
            if side is None:
                continue
            if not isinstance(side, Mapping):
                raise InputError(f"relation {key!r}: {d} must be a table", path=where)
            bad = sorted(set(side) - SIDE_FIELDS)
            if bad:
                raise InputError(
                    f"relation {key!r}: unknown field(s) {bad} in {d}; allowed: "
                    f"{sorted(SIDE_FIELDS)}",
                    path=where,
                )
            for f, value in side.items():
                _check_phrase(str(key), f"{d}.{f}", value, where)
            entry[d] = dict(side)
        out[str(key)] = entry
    out["__source__"] = where
    return out


@functools.lru_cache(maxsize=1)
def shipped_lexicons() -> dict[str, dict[str, dict]]:
    """The lexicons shipped with kg2tool, by file stem (empty when none are installed)."""
    out: dict[str, dict[str, dict]] = {}
    if SHIPPED_DIR.is_dir():
        for path in sorted(SHIPPED_DIR.glob("*.toml")):
            data = read_lexicon(path)
            data.pop("__source__", None)
            out[path.stem] = data
    return out


def select_shipped(
    keys: Iterable[str], shipped: Mapping[str, Mapping[str, dict]] | None = None
) -> dict[str, dict]:
    """Relation key -> fields from the shipped lexicons that apply to a KG with these keys: a
    file when at least half of the keys are in it (the larger overlap first), and
    ``wikidata.toml`` key by key for Wikidata property ids."""
    keys = list(keys)
    shipped = shipped_lexicons() if shipped is None else shipped
    out: dict[str, dict] = {}
    if not keys:
        return out
    ranked = sorted(
        ((sum(k in lex for k in keys), stem) for stem, lex in shipped.items()), reverse=True
    )
    for hits, stem in ranked:
        if hits and 2 * hits >= len(keys):
            for k in keys:
                if k in shipped[stem] and k not in out:
                    out[k] = shipped[stem][k]
    wikidata = shipped.get(WIKIDATA_FILE, {})
    for k in keys:
        if k not in out and _WIKIDATA_KEY.match(k) and k in wikidata:
            out[k] = wikidata[k]
    return out


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Field by field: ``top`` wins, the forward/inverse tables merged field by field too."""
    out = dict(base)
    for f, v in top.items():
        if f in ("forward", "inverse") and isinstance(v, Mapping):
            out[f] = {**dict(base.get(f) or {}), **dict(v)}
        else:
            out[f] = v
    return out


# ---------------------------------------------------------------- the grammatical fallback

# normalised label -> (forward phrase, inverse phrase); {x} the argument, {dom} plural of the
# domain type ("people" for humans), {rng} plural of the range type.
_CURATED: dict[str, tuple[str, str]] = {
    "founded by": ("the founders of {x}", "the {dom} founded by {x}"),
    "influenced by": ("the people who influenced {x}", "the people influenced by {x}"),
    "directed by": ("the director of {x}", "the {dom} directed by {x}"),
    "director": ("the director of {x}", "the {dom} directed by {x}"),
    "written by": ("the writer of {x}", "the {dom} written by {x}"),
    "produced by": ("the producer of {x}", "the {dom} produced by {x}"),
    "member of political party": ("the political party of {x}", "the members of {x}"),
    "member of": ("the organizations that have {x} as a member", "the members of {x}"),
    "part of": ("the {rng} that have {x} as a part", "the parts of {x}"),
    "named after": ("the namesake of {x}", "the {dom} named after {x}"),
    "cast member": ("the cast members of {x}", "the {dom} starring {x}"),
    "practiced by": ("the groups that practice {x}", "the {dom} practiced by {x}"),
    "spouse": ("the spouse of {x}", "the people married to {x}"),
    "sibling": ("the siblings of {x}", "the people whose sibling is {x}"),
    "child": ("the children of {x}", "the parents of {x}"),
    "unmarried partner": ("the unmarried partner of {x}", "the people whose partner is {x}"),
    "educated at": ("the schools that {x} attended", "the people educated at {x}"),
    "diplomatic relation": (
        "the countries with which {x} has diplomatic relations",
        "the countries that have diplomatic relations with {x}",
    ),
    "shares border with": ("the neighbours of {x}", "the {dom} bordering {x}"),
    "place of birth": ("the birthplace of {x}", "the people born in {x}"),
    "place of death": ("the place where {x} died", "the people who died in {x}"),
    "place of burial": ("the burial place of {x}", "the people buried in {x}"),
    "headquarters location": ("the headquarters location of {x}", "the {dom} headquartered in {x}"),
    "country of citizenship": ("the country of citizenship of {x}", "the citizens of {x}"),
    "residence": ("the residence of {x}", "the residents of {x}"),
    "languages spoken written or signed": (
        "the languages spoken by {x}",
        "the people who speak {x}",
    ),
    "notable works": ("the notable works of {x}", "the people whose notable works include {x}"),
    "location of formation": ("the place where {x} was formed", "the {dom} formed in {x}"),
    "employer": ("the employers of {x}", "the people employed by {x}"),
    "instrument": ("the instruments played by {x}", "the people who play {x}"),
    "genre": ("the genre of {x}", "the {dom} in the genre {x}"),
    "record label": ("the record label of {x}", "the artists signed to {x}"),
    "occupation": ("the occupation of {x}", "the people whose occupation is {x}"),
    "field of work": ("the field of work of {x}", "the people who work in {x}"),
    "cause of death": ("the cause of death of {x}", "the people who died of {x}"),
    "medical condition": ("the medical conditions of {x}", "the people with {x}"),
    "head of state": ("the head of state of {x}", "the {dom} whose head of state is {x}"),
    "continent": ("the continent of {x}", "the {dom} in {x}"),
    "country": ("the country of {x}", "the {dom} from {x}"),
    "country of origin": ("the country of origin of {x}", "the {dom} from {x}"),
    "official language": ("the official language of {x}", "the {dom} where {x} is official"),
    "parent organization": ("the parent organization of {x}", "the subsidiaries of {x}"),
    "narrative location": ("the setting of {x}", "the {dom} set in {x}"),
    "time period": ("the time period of {x}", "the people of {x}"),
    "ethnic group": ("the ethnic group of {x}", "the people who belong to {x}"),
    "religion": ("the religion of {x}", "the people whose religion is {x}"),
    "movement": ("the movement of {x}", "the people associated with {x}"),
    "contains administrative territorial entity": (
        "the subdivisions of {x}",
        "the region that contains {x}",
    ),
    "located in the administrative territorial entity": (
        "the region where {x} is located",
        "the places located in {x}",
    ),
    "capital": ("the capital of {x}", "the {dom} whose capital is {x}"),
    "capital of": ("the {rng} whose capital is {x}", "the capital of {x}"),
}


# Words ending in "s" that are no verb form; lemminflect agrees, but loading it costs ~0.5 s.
_NOT_VERBS = frozenset(
    "as his its this thus us plus across whereas less always sometimes perhaps".split()
)


def verb_lemma(word: str) -> str | None:
    """Base form of a 3rd-person-singular verb ("affects" -> "affect", "co-occurs" ->
    "co-occur"), or None when the word is not one."""
    pre, _, last = word.rpartition("-")
    if not last.endswith("s") or last.endswith("ss") or word in _NOUNS_NOT_VERBS:
        return None
    if last in _NOT_VERBS:  # answered without loading lemminflect's tables (~0.5 s)
        return None
    from lemminflect import getAllLemmas

    lemmas = getAllLemmas(last).get("VERB")
    if not lemmas or lemmas[0] == last:
        return None
    return f"{pre}-{lemmas[0]}" if pre else lemmas[0]


def _participle(lemma: str) -> str:
    """Past participle of a verb ("affect" -> "affected", "co-occur" -> "co-occurred")."""
    from lemminflect import getInflection

    pre, _, last = lemma.rpartition("-")
    got = getInflection(last, "VBN")
    form = got[0] if got else last + "ed"
    return f"{pre}-{form}" if pre else form


def _is_participle(word: str) -> bool:
    """Whether a word is a verb's past participle ("located", "born", "spoken")."""
    from lemminflect import getAllLemmas, getInflection

    if word in ("born", "made", "known", "written", "held", "found", "built", "led", "set"):
        return True
    lemmas = getAllLemmas(word).get("VERB")
    return bool(lemmas) and word in getInflection(lemmas[0], "VBN") and word != lemmas[0]


def _is_adjective(word: str) -> bool:
    """Whether a word reads as an adjective only ("adjacent", "similar"), not a noun."""
    from lemminflect import getAllLemmas

    lemmas = getAllLemmas(word)
    return "ADJ" in lemmas and "NOUN" not in lemmas


def relation_text(key: str, label: str | None, commas: bool = False) -> str:
    """The words a relation is read from: its label, else its key turned into words.
    ``commas``: keep the label's commas ("languages spoken, written or signed"), for
    quoting the label to a reader rather than parsing it."""
    if key.startswith("/") and key.count("/") >= 3:  # a Freebase path: its last property
        text = re.sub(r"_s$", "", key.rsplit("/", 1)[-1]).replace("_", " ")
    elif label and label != key:
        text = label
    else:
        text = humanise_key(key)
    text = re.sub(r"-(?=(?:in|of|by|with|to|from|at|on|for)\b)", " ", text.lower())
    if commas:
        parts = [" ".join(_words(part)) for part in text.split(",")]
        return ", ".join(p for p in parts if p) or "related"
    return " ".join(_words(text)) or "related"


def fallback_fields(key: str, label: str | None, domain: str, range_: str) -> dict[str, Any]:
    """Lexicon fields of a relation no lexicon covers, from the form of its label: a verb
    phrase becomes a verb frame, a noun phrase a noun ("{x}" marks the argument)."""
    text = relation_text(key, label)
    w = text.split(" ")
    dom, rng = domain or GENERIC, range_ or GENERIC
    doms, rngs = plural(dom), plural(rng)
    if text in _CURATED:
        fwd, inv = (p.replace("{dom}", doms).replace("{rng}", rngs) for p in _CURATED[text])
        return {
            "form": "curated",
            "forward": {"one": fwd, "many": _plural_phrase(fwd)},
            "inverse": {"one": inv, "many": _plural_phrase(inv)},
        }
    if text in ("isa", "is a", "is an", "type", "kind of", "subclass of", "is a kind of"):
        return {
            "form": "isa",
            "forward": {
                "one": "the broader category of {x}",
                "many": "the broader categories of {x}",
                "verb": "is a broader category of {x}",
                "question": "What is {x} a kind of?",
            },
            "inverse": {
                "one": "a kind of {x}",
                "many": "the kinds of {x}",
                "verb": "is a kind of {x}",
                "question": "What is a kind of {x}?",
            },
            "api_forward": "get_categories_of",
            "api_inverse": "find_kinds_of",
        }
    lemma = verb_lemma(w[0]) if w[0] not in ("is", "has", "was") else None
    if lemma is not None and (len(w) == 1 or (w[-1] in _PREPS and len(w) <= 3)):
        rest = " ".join(w[1:])
        prep = w[-1] if len(w) > 1 and w[-1] in _PREPS else ""
        body = " ".join(w[1:-1]) if prep else rest
        base = " ".join(x for x in (lemma, body) if x)
        third = " ".join(x for x in (w[0], body) if x)
        tail = f" {prep}" if prep else ""
        if prep:  # "interacts with": the forward answers are "the entities with which X interacts"
            fwd = {
                "one": f"the {rng} {prep} which {{x}} {third}",
                "many": f"the {rngs} {prep} which {{x}} {third}",
                "question": f"What does {{x}} {base}{tail}?",
            }
        else:
            part = _participle(lemma)
            fwd = {
                "one": f"the {rng} {part}{' ' + body if body else ''} by {{x}}",
                "many": f"the {rngs} {part}{' ' + body if body else ''} by {{x}}",
                "verb": f"is {part}{' ' + body if body else ''} by {{x}}",
                "question": f"What does {{x}} {base}?",
            }
        inv = {
            "one": f"the {dom} that {third}{tail} {{x}}",
            "many": f"the {doms} that {base}{tail} {{x}}",
            "verb": f"{third}{tail} {{x}}",
            "question": f"What {third}{tail} {{x}}?",
        }
        return {
            "form": "verb",
            "forward": fwd,
            "inverse": inv,
            "api_forward": (
                f"find_{rngs}_{_participle(lemma)}_{body + '_' if body else ''}by"
                if not prep
                else f"find_what_{dom}_{third}_{prep}"
            ),
            "api_inverse": f"find_{doms}_that_{base}{'_' + prep if prep else ''}",
        }
    if w[0] in ("is", "was") and len(w) >= 3 and _is_participle(w[1]) and w[-1] in _PREPS:
        w = w[1:]  # "is located in" -> "located in"
    if len(w) >= 2 and w[-1] in _PREPS and (_is_participle(w[-2]) or _is_adjective(w[-2])):
        phrase = " ".join(w)  # "located in", "born in", "influenced by"
        core, prep = " ".join(w[:-1]), w[-1]
        return {
            "form": "passive",
            "forward": {
                "one": f"the {rng} {prep} which {{x}} is {core}",
                "many": f"the {rngs} {prep} which {{x}} is {core}",
                "question": f"What is {{x}} {phrase}?",
            },
            "inverse": {
                "one": f"the {dom} {phrase} {{x}}",
                "many": f"the {doms} {phrase} {{x}}",
                "verb": f"is {phrase} {{x}}",
                "question": f"What is {phrase} {{x}}?",
            },
            "api_forward": f"get_what_{dom}_is_{phrase}",
            "api_inverse": "find_" + "_".join(plural(dom).split()) + "_" + "_".join(w),
        }
    if w[0] in ("has", "have") and len(w) >= 2:
        w = w[1:]  # "has part" -> the noun "part"
    if w in (["also", "see"], ["see", "also"]):
        w = ["related", "entry"]

    def singular(word: str) -> str:  # "combatants" -> "combatant"
        if word in _PREPS or word.endswith(("ss", "us", "is")) or word in ("news", "series"):
            return word
        return _inflected("singular_noun", word) or word

    if len(w) <= 4:  # the last word of each conjunct: "disciplines or subjects"
        w = [
            singular(x) if i == len(w) - 1 or w[i + 1] in ("or", "and") else x
            for i, x in enumerate(w)
        ]
    noun = " ".join(w)
    if len(w) >= 2 and w[-1] == "by":  # "story by", "music by": the maker of a work
        n = " ".join(w[:-1])
        return {
            "form": "noun_by",
            "forward": {
                "one": f"the {rng} credited with the {n} of {{x}}",
                "many": f"the {rngs} credited with the {n} of {{x}}",
                "verb": f"is credited with the {n} of {{x}}",
                "question": f"Who is credited with the {n} of {{x}}?",
            },
            "inverse": {
                "one": f"the {dom} with {n} by {{x}}",
                "many": f"the {doms} with {n} by {{x}}",
                "question": f"What has {n} by {{x}}?",
            },
        }
    if len(w) >= 2 and w[-1] == "of":  # "capital of", "part of", "member of"
        n = " ".join(w[:-1])
        return {
            "form": "noun_of",
            "forward": {
                "one": f"the {rng} that has {{x}} as {a_an(n)}",
                "many": f"the {rngs} that have {{x}} as {a_an(n)}",
                "verb": f"has {{x}} as {a_an(n)}",
                "question": f"What has {{x}} as {a_an(n)}?",
            },
            "inverse": {
                "one": f"the {n} of {{x}}",
                "many": f"the {plural(n)} of {{x}}",
                "verb": f"is {a_an(n)} of {{x}}",
                "question": f"What is {a_an(n)} of {{x}}?",
            },
        }
    return {
        "form": "noun",
        "forward": {
            "one": f"the {noun} of {{x}}",
            "many": f"the {plural(noun)} of {{x}}",
            "verb": f"is the {noun} of {{x}}",
            "question": f"What is the {noun} of {{x}}?",
        },
        "inverse": {
            "one": f"the {dom} whose {noun} is {{x}}",
            "many": f"the {doms} whose {noun} is {{x}}",
            "verb": f"has {{x}} as {a_an(noun)}",
            "question": f"What has {{x}} as {a_an(noun)}?",
        },
    }


# ---------------------------------------------------------------- resolving a KG's lexicon


def resolve_lexicon(
    relations: Iterable[tuple[str, str | None, str | None]],
    types: Mapping[str, tuple[str, str]] | None = None,
    overrides: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    shipped: Mapping[str, Mapping[str, dict]] | None = None,
) -> dict[str, Entry]:
    """One complete :class:`Entry` per relation: shipped lexicon, then the user's overrides
    field by field, then the fallback for what is still missing.

    ``relations``: (key, label, description) triples; ``types``: key -> (domain, range) type
    words inferred from the data (a lexicon's domain/range wins)."""
    rels = list(relations)
    types = types or {}
    base = select_shipped([k for k, _, _ in rels], shipped)
    user: Mapping[str, Any] = {}
    if overrides is not None:
        user = (
            overrides
            if isinstance(overrides, Mapping) and "__source__" in overrides
            else read_lexicon(overrides)
        )
    out: dict[str, Entry] = {}
    for key, label, desc in rels:
        fields = _merge(base.get(key, {}), user.get(key, {}))
        dom_d, rng_d = types.get(key, (GENERIC, GENERIC))
        dom = fields.get("domain") or dom_d or GENERIC
        rng = fields.get("range") or rng_d or GENERIC
        # the fallback, computed only when a field is missing (it may load lemminflect)
        fallback = functools.cache(functools.partial(fallback_fields, key, label, dom, rng))

        sides = {}
        for d in ("forward", "inverse"):
            have = dict(fields.get(d) or {})
            if "one" in have and "many" not in have:  # a legacy or partial entry
                have["many"] = _plural_phrase(have["one"])
            if "one" in have:  # the fallback's verb/question belong to the fallback's phrases
                side = Side(
                    have["one"], have["many"], have.get("verb", ""), have.get("question", "")
                )
            else:
                fall = fallback()[d]
                side = Side(
                    fall["one"],
                    have.get("many", fall["many"]),
                    have.get("verb", fall.get("verb", "")),
                    have.get("question", fall.get("question", "")),
                )
            sides[d] = side
        from_lexicon = "forward" in fields or "inverse" in fields
        gloss = fields.get("gloss") or _gloss(desc, key)
        out[key] = Entry(
            key=key,
            label=fields.get("label") or relation_text(key, label, commas=True),
            gloss=gloss,
            domain=dom,
            range=rng,
            forward=sides["forward"],
            inverse=sides["inverse"],
            name=fields.get("name"),
            inverse_name=fields.get("inverse_name"),
            description=fields.get("description"),
            inverse_description=fields.get("inverse_description"),
            exclude=bool(fields.get("exclude", False)),
            symmetric=bool(fields.get("symmetric", False)),
            form="lexicon" if from_lexicon else fallback()["form"],
            api_forward=None if from_lexicon else fallback().get("api_forward"),
            api_inverse=None if from_lexicon else fallback().get("api_inverse"),
        )
    return out


def _plural_phrase(one: str) -> str:
    """A singular noun phrase with a plural head ("the birthplace of {x}" -> "the birthplaces
    of {x}"), for entries that give only ``one``."""
    words = one.split(" ")
    if len(words) >= 2 and words[0] in ("the", "a", "an") and words[1] != "{x}":
        stop = next(
            (
                i
                for i in range(2, len(words))
                if words[i] in _PREPS | {"that", "who", "whose", "which", "{x}"}
                or _is_participle(words[i])
                or words[i].endswith("ing")
            ),
            len(words),
        )
        noun = " ".join(words[1:stop])
        return " ".join(["the", plural(noun), *words[stop:]])
    return one


def _gloss(desc: str | None, key: str = "") -> str:
    """A one-line gloss from a relation description without raw ids; empty when there is none
    or it only repeats the key's words (Freebase paths as descriptions)."""
    if not desc:
        return ""
    key_words = set(re.findall(r"[a-z0-9]+", key.lower()))
    if set(re.findall(r"[a-z0-9]+", desc.lower())) <= key_words:
        return ""
    from kg2tool.tools.raw_ids import clean_description

    return clean_description(desc).split("\n", 1)[0].rstrip(".")
