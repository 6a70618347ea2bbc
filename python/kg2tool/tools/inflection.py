"""English inflection for names and phrases: plurals, articles, verb forms.

Wraps ``inflect`` (plurals, singulars, a/an; answers memoised per process and handed to
worker processes, since importing inflect is slow) and ``lemminflect`` (verb lemmas and
participles; loading its tables takes ~0.4 s, so its answers for the words of the shipped
lexicons ship in :data:`WORD_TABLE`), and says which names read with "the" in running text.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

__all__ = [
    "PEOPLE_TYPES",
    "PREPOSITIONS",
    "a_an",
    "all_lemmas",
    "inflected",
    "inflection",
    "inflections",
    "is_adjective",
    "is_participle",
    "is_plural_noun",
    "participle",
    "plural",
    "plural_phrase",
    "plural_type",
    "seed_inflections",
    "verb_lemma",
    "with_article",
]

#: Type words whose plural is "people".
PEOPLE_TYPES = frozenset({"human", "person", "people"})
PREPOSITIONS = frozenset(
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
    import (slow) and checks every call; the checks only turn a wrong argument type into an
    exception, and every caller here passes non-empty ``str``. So the import runs with
    ``typechecked`` as the identity, unless inflect is already loaded.
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


# Every answer inflect gave in this process, by (method, word). Importing inflect is slow
# (its typeguard decorators recompile the module), so the generate driver hands its
# memo to the worker processes (:func:`seed_inflections`), which then rarely import it.
_INFLECTED: dict[tuple[str, str], str | bool] = {}


def inflected(method: str, word: str) -> Any:
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
        and inflected("singular_noun", last)
    ):
        return noun  # already plural
    words[-1] = inflected("plural_noun", last) or last
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
    # states named by an adjective and their form: "the German Democratic Republic", "the
    # Russian Federation", "the Dutch Republic", "the Soviet Union"
    r"(?:[A-Z][\w'-]* )+(?:Republic|Federation|Confederation|Union)$|"
    r"(?:[A-Z][\w'-]* )+(?:Republic|Federation|Kingdom|Principality|Commonwealth) of |"
    r"Netherlands$|Philippines$|Bahamas$|Gambia$|"
    r"Maldives$|Vatican City$|Gaza Strip$|West Bank$|Holy See$|"
    r"(?:Holy Roman|Ottoman|Roman|Byzantine|British|Russian|German|Mughal|Austrian|Spanish|"
    r"Japanese|Persian|Mongol|Qing|Han) Empire$|[A-Z][\w-]+ (?:Islands|Mountains|Alps|Andes|"
    r"Himalayas|River|Sea|Ocean|Desert|Archipelago|Peninsula|Strait|Channel|Canal)$|"
    r"(?:Gulf|Bay|Strait|Straits|Sea|Cape) of |"
    # movements and campaigns named by their words: "the New Wave of British Heavy Metal",
    # "the Mongol conquests", "the Golden Lion"
    r"New Wave of |[A-Z][\w-]*(?: [A-Z][\w-]*)* (?:conquests|invasions|wars|campaigns)$|"
    r"Golden (?:Lion|Bear)$|[A-Z][\w-]*(?: [A-Z][\w-]*)* Voivodeship$|"
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
# Party"), a title with a subtitle ("Hellboy II: The Golden Army"), nor a title named like a
# state or a war whose "of" names no place ("Kingdom of Heaven", "Empire of the Sun", "State
# of Play", "War of the Worlds")
_NO_THE = (
    r"^(?:(?:The|A|An|This|That|They|We|When|One|Two|Three|Four|Seven|Nine|Evil|Space|Power|"
    r"Wonder|Hill Street|Kill Rock|Step Up|Howard|Mighty Morphin) |Bloc Party$|Justice League$|"
    r"[^:]+: |"
    r"(?:Kingdom|Empire|State|War|Battle|Planet) of (?:the )?(?:Heaven|Sun|Moon|Play|Worlds|"
    r"Apes|Dreams|Fear|Fire|Ice|Gods|Shadows|Light|Darkness|Dead|Damned|Dragons?|Spiders)$)"
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
    return inflected("a", phrase)


# lemminflect's answers (``getAllLemmas(word)``, ``getInflection(lemma, tag)``) for every word the
# lexicons of the shipped KGs ask about, so that a run on them never loads lemminflect's
# tables; other words are asked of lemminflect (and memoised). Written by
# ``tools/make_word_table.py``; tests/test_word_table.py checks every answer against lemminflect.
WORD_TABLE = "data/lexicons/lemminflect.json"
_LEMMAS: dict[str, dict[str, tuple[str, ...]]] = {}
_INFLECTIONS: dict[tuple[str, str], tuple[str, ...]] = {}


@functools.lru_cache(maxsize=1)
def _load_word_table() -> None:
    text = resources.files("kg2tool").joinpath(WORD_TABLE).read_text(encoding="utf-8")
    table = json.loads(text)
    for word, lemmas in table["lemmas"].items():
        _LEMMAS.setdefault(word, {pos: tuple(v) for pos, v in lemmas.items()})
    for key, forms in table["inflections"].items():
        lemma, _, tag = key.rpartition(" ")
        _INFLECTIONS.setdefault((lemma, tag), tuple(forms))


def all_lemmas(word: str) -> dict[str, tuple[str, ...]]:
    """``lemminflect.getAllLemmas(word)``: the word's lemmas by part of speech."""
    _load_word_table()
    got = _LEMMAS.get(word)
    if got is None:
        from lemminflect import getAllLemmas

        got = _LEMMAS[word] = {pos: tuple(v) for pos, v in getAllLemmas(word).items()}
    return got


def inflection(lemma: str, tag: str) -> tuple[str, ...]:
    """``lemminflect.getInflection(lemma, tag)``: the lemma's forms for a Penn tag ("VBN")."""
    _load_word_table()
    got = _INFLECTIONS.get((lemma, tag))
    if got is None:
        from lemminflect import getInflection

        got = _INFLECTIONS[(lemma, tag)] = tuple(getInflection(lemma, tag))
    return got


def word_answers() -> dict[str, Any]:
    """Every lemminflect answer this process has (the shipped table's and any asked since),
    in :data:`WORD_TABLE`'s layout."""
    return {
        "lemmas": {
            w: {p: list(v) for p, v in sorted(d.items())} for w, d in sorted(_LEMMAS.items())
        },
        "inflections": {
            f"{lemma} {tag}": list(v) for (lemma, tag), v in sorted(_INFLECTIONS.items())
        },
    }


# Words ending in "s" that are no verb form; lemminflect agrees, but loading its tables is slow.
_NOT_VERBS = frozenset(
    "as his its this thus us plus across whereas less always sometimes perhaps".split()
)


def verb_lemma(word: str) -> str | None:
    """Base form of a 3rd-person-singular verb ("affects" -> "affect", "co-occurs" ->
    "co-occur"), or None when the word is not one."""
    pre, _, last = word.rpartition("-")
    if not last.endswith("s") or last.endswith("ss") or word in _NOUNS_NOT_VERBS:
        return None
    if last in _NOT_VERBS:  # answered without loading lemminflect's tables
        return None
    lemmas = all_lemmas(last).get("VERB")
    if not lemmas or lemmas[0] == last:
        return None
    return f"{pre}-{lemmas[0]}" if pre else lemmas[0]


def participle(lemma: str) -> str:
    """Past participle of a verb ("affect" -> "affected", "co-occur" -> "co-occurred")."""
    pre, _, last = lemma.rpartition("-")
    got = inflection(last, "VBN")
    form = got[0] if got else last + "ed"
    return f"{pre}-{form}" if pre else form


def is_participle(word: str) -> bool:
    """Whether a word is a verb's past participle ("located", "born", "spoken")."""
    if word in ("born", "made", "known", "written", "held", "found", "built", "led", "set"):
        return True
    lemmas = all_lemmas(word).get("VERB")
    return bool(lemmas) and word in inflection(lemmas[0], "VBN") and word != lemmas[0]


def is_adjective(word: str) -> bool:
    """Whether a word reads as an adjective only ("adjacent", "similar"), not a noun."""
    lemmas = all_lemmas(word)
    return "ADJ" in lemmas and "NOUN" not in lemmas


def plural_phrase(one: str) -> str:
    """A singular noun phrase with a plural head ("the birthplace of {x}" -> "the birthplaces
    of {x}"), for entries that give only ``one``."""
    words = one.split(" ")
    if len(words) >= 2 and words[0] in ("the", "a", "an") and words[1] != "{x}":
        stop = next(
            (
                i
                for i in range(2, len(words))
                if words[i] in PREPOSITIONS | {"that", "who", "whose", "which", "{x}"}
                or is_participle(words[i])
                or words[i].endswith("ing")
            ),
            len(words),
        )
        noun = " ".join(words[1:stop])
        return " ".join(["the", plural(noun), *words[stop:]])
    return one


def plural_type(word: str) -> str:
    """Plural of a type word ("city" -> "cities"); "people" for humans and persons."""
    if word in PEOPLE_TYPES:
        return "people"
    return plural(word)
