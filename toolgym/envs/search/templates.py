"""Sentence and question templates shared by the Search-v0 data generator and its oracle.

Search-v0 is multi-hop question answering over a fictional knowledge base. The generator
(``envs_data/search/generate.py``) writes every fact of the knowledge base as a sentence built
from the templates below, and every question from a :class:`Chain`'s question templates; the
scripted oracle (:mod:`toolgym.envs.search.oracle`) reads questions and documents back with the
regular expressions compiled from the same templates. Keeping both directions in this one module
is what guarantees that the oracle can parse everything the generator writes.

This module is deliberately **stdlib-only** (the generator loads it by file path, without
importing the ``toolgym`` package).

Template syntax (a tiny subset of :meth:`str.format`):

* ``{S}``: the subject at the start of a sentence: its full name or a pronoun (``He``, ``She``,
  ``It``).
* ``{s}``: the subject's full name, anywhere in a sentence.
* ``{a}``: the indefinite article (``a`` / ``an``) agreeing with the next word.
* ``{<relation>}``: the value of one of the subject's relations (a name, a year or a phrase).
* ``{e}`` (questions only): the name of the entity a question starts from.

Every fact sentence is one sentence (ending in ``.``) and is matched as a whole, so distractor
sentences (which mention other entities) never match a fact pattern for the document's subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

ENTITY_TYPES: tuple[str, ...] = ("person", "city", "country", "company", "university")
"""Document types in the corpus (the ``type`` field of ``corpus.jsonl``)."""

VALUE_PATTERNS: dict[str, str] = {
    # Names are one to four capitalised ASCII words ("Varnel Oskaru", "Kelvani Systems").
    "name": r"[A-Z][a-z]+(?: [A-Z][a-z]+){0,3}",
    "year": r"[0-9]{4}",
    # Lower-case phrases: professions, industries, currencies.
    "phrase": r"[a-z]+(?: [a-z]+){0,3}",
}
"""Regular expression for each kind of slot value."""

PRONOUNS: tuple[str, ...] = ("He", "She", "It")
"""Pronouns that may stand for the subject at the start of a fact sentence."""

SENTENCE_SPLIT_RE = re.compile(r"(?<=\.)\s+")
"""Splits a document text into sentences (names and values never contain a period)."""


@dataclass(frozen=True)
class Relation:
    """A functional relation of one entity type: each subject has exactly one value.

    Attributes:
        subject_type: Entity type of the subject (one of :data:`ENTITY_TYPES`).
        name: Relation name, unique within ``subject_type`` (``"born_in"``, ``"birth_year"``).
        object_type: An entity type when the value is another entity, else ``"value"``.
        kind: Key of :data:`VALUE_PATTERNS` for the value (``"name"``, ``"year"``, ``"phrase"``).
        templates: Single-fact sentence templates stating this relation.
    """

    subject_type: str
    name: str
    object_type: str
    kind: str
    templates: tuple[str, ...]

    @property
    def is_link(self) -> bool:
        """Whether the value is another entity (a chain can continue from it)."""
        return self.object_type in ENTITY_TYPES


_RELATION_LIST: tuple[Relation, ...] = (
    # -- person ---------------------------------------------------------------------------
    Relation(
        "person",
        "birth_year",
        "value",
        "year",
        (
            "{S} was born in the year {birth_year}.",
            "{S} was born in {birth_year}.",
            "The birth year of {s} is {birth_year}.",
        ),
    ),
    Relation(
        "person",
        "profession",
        "value",
        "phrase",
        (
            "{S} works as {a} {profession}.",
            "By profession, {s} is {a} {profession}.",
            "{S} trained as {a} {profession}.",
        ),
    ),
    Relation(
        "person",
        "born_in",
        "city",
        "name",
        (
            "{S} was born in the city of {born_in}.",
            "{S} is a native of {born_in}.",
            "The birthplace of {s} is {born_in}.",
        ),
    ),
    Relation(
        "person",
        "works_for",
        "company",
        "name",
        (
            "{S} works for {works_for}.",
            "{S} is employed by {works_for}.",
            "{S} is currently on the staff of {works_for}.",
        ),
    ),
    Relation(
        "person",
        "studied_at",
        "university",
        "name",
        (
            "{S} studied at {studied_at}.",
            "{S} is a graduate of {studied_at}.",
            "{S} was educated at {studied_at}.",
        ),
    ),
    # -- city -----------------------------------------------------------------------------
    Relation(
        "city",
        "located_in",
        "country",
        "name",
        (
            "{S} is a city in {located_in}.",
            "{S} lies in the country of {located_in}.",
            "{S} is located in {located_in}.",
        ),
    ),
    Relation(
        "city",
        "founding_year",
        "value",
        "year",
        (
            "{S} was founded in {founding_year}.",
            "The first settlement at {s} dates from {founding_year}.",
            "{S} received its town charter in {founding_year}.",
        ),
    ),
    # -- country --------------------------------------------------------------------------
    Relation(
        "country",
        "capital",
        "city",
        "name",
        (
            "The capital of {s} is {capital}.",
            "{S} is governed from its capital, {capital}.",
            "The seat of government of {s} is the city of {capital}.",
        ),
    ),
    Relation(
        "country",
        "language",
        "value",
        "name",
        (
            "The official language of {s} is {language}.",
            "Most people in {s} speak {language}.",
            "{S} has {language} as its official language.",
        ),
    ),
    Relation(
        "country",
        "currency",
        "value",
        "phrase",
        (
            "{S} uses the {currency} as its currency.",
            "The currency of {s} is the {currency}.",
            "Prices in {s} are given in the {currency}.",
        ),
    ),
    # -- company --------------------------------------------------------------------------
    Relation(
        "company",
        "industry",
        "value",
        "phrase",
        (
            "{S} operates in the {industry} industry.",
            "{S} is active in the {industry} sector.",
            "The main business of {s} is {industry}.",
        ),
    ),
    Relation(
        "company",
        "founding_year",
        "value",
        "year",
        (
            "{S} was founded in {founding_year}.",
            "{S} was incorporated in {founding_year}.",
            "The company {s} dates from {founding_year}.",
        ),
    ),
    Relation(
        "company",
        "founded_by",
        "person",
        "name",
        (
            "{S} was founded by {founded_by}.",
            "The founder of {s} is {founded_by}.",
            "{S} was started by the entrepreneur {founded_by}.",
        ),
    ),
    Relation(
        "company",
        "headquartered_in",
        "city",
        "name",
        (
            "{S} is headquartered in {headquartered_in}.",
            "The headquarters of {s} are in {headquartered_in}.",
            "{S} has its head office in {headquartered_in}.",
        ),
    ),
    # -- university -----------------------------------------------------------------------
    Relation(
        "university",
        "located_in",
        "city",
        "name",
        (
            "{S} is a university in {located_in}.",
            "The campus of {s} is in {located_in}.",
            "{S} is based in the city of {located_in}.",
        ),
    ),
    Relation(
        "university",
        "founding_year",
        "value",
        "year",
        (
            "{S} was founded in {founding_year}.",
            "{S} admitted its first students in {founding_year}.",
            "The university {s} was established in {founding_year}.",
        ),
    ),
)

RELATIONS: dict[tuple[str, str], Relation] = {(r.subject_type, r.name): r for r in _RELATION_LIST}
"""All relations, keyed by ``(subject_type, name)``."""

INTRO_TEMPLATES: dict[str, tuple[str, ...]] = {
    # Opening sentences. They name the subject in full and may state some relations at once.
    "person": (
        "{s} is {a} {profession} born in {birth_year}.",
        "{s} (born {birth_year}) is {a} {profession}.",
        "{s} is {a} {profession}.",
    ),
    "city": (
        "{s} is a city in {located_in}, founded in {founding_year}.",
        "{s} is a settlement in the country of {located_in}.",
        "{s} is a city.",
    ),
    "country": (
        "{s} is a country whose capital is {capital}.",
        "{s} is a sovereign country.",
    ),
    "company": (
        "{s} is {a} {industry} company founded in {founding_year}.",
        "{s} is a company in the {industry} sector.",
        "{s} is a company.",
    ),
    "university": (
        "{s} is a university in {located_in}, founded in {founding_year}.",
        "{s} is an institution of higher education.",
    ),
}
"""Intro templates per entity type; the generator states the remaining relations separately."""


@dataclass(frozen=True)
class Chain:
    """A question type: a start entity type and the relations followed from it.

    Attributes:
        start_type: Entity type the question starts from.
        relations: Relation names followed in order (the task's ``metadata["chain"]``).
        questions: Phrasings; ``{e}`` is the start entity's name. Every phrasing is unique
            across all chains, so a question text identifies its chain.
    """

    start_type: str
    relations: tuple[str, ...]
    questions: tuple[str, ...] = field(default=())

    @property
    def hops(self) -> int:
        """Number of relations followed (1 to 3)."""
        return len(self.relations)

    @property
    def key(self) -> str:
        """Stable identifier, e.g. ``"person:works_for>headquartered_in"``."""
        return f"{self.start_type}:{'>'.join(self.relations)}"

    def types(self) -> list[str]:
        """Entity types visited: the start type, then the object type of each relation."""
        types = [self.start_type]
        for name in self.relations:
            types.append(RELATIONS[(types[-1], name)].object_type)
        return types


CHAINS: tuple[Chain, ...] = (
    # -- 1 hop ----------------------------------------------------------------------------
    Chain(
        "person",
        ("birth_year",),
        (
            "In what year was {e} born?",
            "What is the birth year of {e}?",
            "When was {e} born?",
        ),
    ),
    Chain(
        "person",
        ("profession",),
        (
            "What is the profession of {e}?",
            "What does {e} do for a living?",
            "What is the occupation of {e}?",
        ),
    ),
    Chain(
        "person",
        ("born_in",),
        (
            "In which city was {e} born?",
            "What is the birthplace of {e}?",
            "Where was {e} born?",
        ),
    ),
    Chain(
        "person",
        ("works_for",),
        (
            "Which company does {e} work for?",
            "Who is the employer of {e}?",
            "What company employs {e}?",
        ),
    ),
    Chain(
        "person",
        ("studied_at",),
        (
            "Which university did {e} attend?",
            "Where did {e} study?",
            "At which university was {e} educated?",
        ),
    ),
    Chain(
        "city",
        ("located_in",),
        (
            "In which country is the city of {e}?",
            "Which country is the city {e} located in?",
            "The city of {e} lies in which country?",
        ),
    ),
    Chain(
        "city",
        ("founding_year",),
        (
            "In what year was the city of {e} founded?",
            "When was the city {e} founded?",
        ),
    ),
    Chain(
        "country",
        ("capital",),
        (
            "What is the capital of {e}?",
            "Which city is the capital of {e}?",
        ),
    ),
    Chain(
        "country",
        ("language",),
        (
            "What is the official language of {e}?",
            "Which language is spoken in {e}?",
        ),
    ),
    Chain(
        "country",
        ("currency",),
        (
            "What is the currency of {e}?",
            "Which currency is used in {e}?",
        ),
    ),
    Chain(
        "company",
        ("founded_by",),
        (
            "Who founded the company {e}?",
            "Who is the founder of {e}?",
        ),
    ),
    Chain(
        "company",
        ("headquartered_in",),
        (
            "In which city is {e} headquartered?",
            "Where are the headquarters of {e}?",
        ),
    ),
    Chain(
        "company",
        ("industry",),
        (
            "In which industry does {e} operate?",
            "What is the main business of {e}?",
        ),
    ),
    Chain(
        "company",
        ("founding_year",),
        (
            "In what year was the company {e} founded?",
            "When was the company {e} founded?",
        ),
    ),
    Chain(
        "university",
        ("located_in",),
        (
            "In which city is the university {e}?",
            "Where is {e} located?",
        ),
    ),
    Chain(
        "university",
        ("founding_year",),
        (
            "In what year was the university {e} founded?",
            "When was {e} established?",
        ),
    ),
    # -- 2 hops ---------------------------------------------------------------------------
    Chain(
        "person",
        ("born_in", "located_in"),
        (
            "In which country was {e} born?",
            "The city where {e} was born lies in which country?",
            "What is the country of birth of {e}?",
        ),
    ),
    Chain(
        "person",
        ("born_in", "founding_year"),
        (
            "In what year was the city where {e} was born founded?",
            "When was the birthplace of {e} founded?",
        ),
    ),
    Chain(
        "person",
        ("works_for", "headquartered_in"),
        (
            "In which city is the company that {e} works for headquartered?",
            "Where are the headquarters of the employer of {e}?",
        ),
    ),
    Chain(
        "person",
        ("works_for", "founded_by"),
        (
            "Who founded the company that {e} works for?",
            "Who is the founder of the employer of {e}?",
        ),
    ),
    Chain(
        "person",
        ("works_for", "industry"),
        (
            "In which industry does the employer of {e} operate?",
            "What is the main business of the company that employs {e}?",
        ),
    ),
    Chain(
        "person",
        ("works_for", "founding_year"),
        (
            "In what year was the company that employs {e} founded?",
            "When was the employer of {e} founded?",
        ),
    ),
    Chain(
        "person",
        ("studied_at", "located_in"),
        (
            "In which city is the university that {e} attended?",
            "In which city did {e} go to university?",
        ),
    ),
    Chain(
        "company",
        ("founded_by", "birth_year"),
        (
            "In what year was the founder of {e} born?",
            "When was the person who founded {e} born?",
        ),
    ),
    Chain(
        "company",
        ("founded_by", "born_in"),
        (
            "In which city was the founder of {e} born?",
            "What is the birthplace of the person who founded {e}?",
        ),
    ),
    Chain(
        "company",
        ("founded_by", "profession"),
        (
            "What is the profession of the founder of {e}?",
            "What does the person who founded {e} do for a living?",
        ),
    ),
    Chain(
        "company",
        ("headquartered_in", "located_in"),
        (
            "In which country is {e} headquartered?",
            "The headquarters of {e} are in which country?",
        ),
    ),
    Chain(
        "city",
        ("located_in", "capital"),
        (
            "What is the capital of the country where the city of {e} lies?",
            "The city of {e} is in a country; what is that country's capital?",
        ),
    ),
    Chain(
        "city",
        ("located_in", "language"),
        (
            "What is the official language of the country where the city of {e} lies?",
            "Which language is spoken in the country that contains the city of {e}?",
        ),
    ),
    Chain(
        "university",
        ("located_in", "located_in"),
        (
            "In which country is the university {e}?",
            "In which country is {e} located?",
        ),
    ),
    Chain(
        "country",
        ("capital", "founding_year"),
        (
            "In what year was the capital of {e} founded?",
            "When was the capital city of {e} founded?",
        ),
    ),
    # -- 3 hops ---------------------------------------------------------------------------
    Chain(
        "person",
        ("works_for", "headquartered_in", "located_in"),
        (
            "In which country is the headquarters of the company that {e} works for?",
            "The employer of {e} is headquartered in which country?",
        ),
    ),
    Chain(
        "person",
        ("works_for", "founded_by", "birth_year"),
        (
            "In what year was the founder of the company that {e} works for born?",
            "When was the founder of the employer of {e} born?",
        ),
    ),
    Chain(
        "person",
        ("works_for", "founded_by", "born_in"),
        (
            "In which city was the founder of the company that employs {e} born?",
            "What is the birthplace of the founder of the employer of {e}?",
        ),
    ),
    Chain(
        "person",
        ("born_in", "located_in", "capital"),
        (
            "What is the capital of the country where {e} was born?",
            "Which city is the capital of the country of birth of {e}?",
        ),
    ),
    Chain(
        "person",
        ("born_in", "located_in", "language"),
        (
            "What is the official language of the country where {e} was born?",
            "Which language is spoken in the country of birth of {e}?",
        ),
    ),
    Chain(
        "person",
        ("studied_at", "located_in", "located_in"),
        (
            "In which country is the university that {e} attended?",
            "In which country did {e} go to university?",
        ),
    ),
    Chain(
        "company",
        ("founded_by", "born_in", "located_in"),
        (
            "In which country was the founder of {e} born?",
            "What is the country of birth of the person who founded {e}?",
        ),
    ),
    Chain(
        "company",
        ("headquartered_in", "located_in", "capital"),
        (
            "What is the capital of the country where {e} is headquartered?",
            "Which city is the capital of the country that hosts the headquarters of {e}?",
        ),
    ),
    Chain(
        "city",
        ("located_in", "capital", "founding_year"),
        (
            "In what year was the capital of the country where the city of {e} lies founded?",
            "When was the capital of the country containing the city of {e} founded?",
        ),
    ),
)
"""All question types; the generator draws tasks from these, the oracle parses with them."""

CHAINS_BY_KEY: dict[str, Chain] = {c.key: c for c in CHAINS}
""":data:`CHAINS` keyed by :attr:`Chain.key`."""


def article(word: str) -> str:
    """The indefinite article for ``word``: ``"an"`` before a vowel letter, else ``"a"``."""
    return "an" if word[:1].lower() in "aeiou" else "a"


_SLOT_RE = re.compile(r"\{([A-Za-z_]+)\}")


def render_sentence(template: str, *, name: str, subject: str, values: dict[str, str]) -> str:
    """Fill a sentence template.

    Args:
        template: A template from :data:`RELATIONS` or :data:`INTRO_TEMPLATES`.
        name: The subject's full name (for ``{s}``).
        subject: What ``{S}`` becomes: the full name or a pronoun.
        values: Relation values by relation name (all slots of the template must be present).

    Returns:
        The sentence, with ``{a}`` resolved against the word that follows it.
    """
    out = template.replace("{S}", subject).replace("{s}", name)
    out = _SLOT_RE.sub(lambda m: m.group(0) if m.group(1) == "a" else values[m.group(1)], out)
    return re.sub(r"\{a\} (\w)", lambda m: f"{article(m.group(1))} {m.group(1)}", out)


def template_slots(template: str) -> list[str]:
    """Relation names used as slots in ``template`` (not ``S``, ``s``, ``a``, ``e``)."""
    return [m for m in _SLOT_RE.findall(template) if m not in {"S", "s", "a", "e"}]


@cache
def _sentence_regex(template: str, subject_type: str) -> re.Pattern[str]:
    """The regex of a sentence template; the subject is captured as group ``subject``."""
    parts: list[str] = []
    pos = 0
    for m in _SLOT_RE.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        slot = m.group(1)
        if slot == "S":
            parts.append(f"(?P<subject>{'|'.join(PRONOUNS)}|{VALUE_PATTERNS['name']})")
        elif slot == "s":
            parts.append(f"(?P<subject>{VALUE_PATTERNS['name']})")
        elif slot == "a":
            parts.append("an?")
        else:
            kind = RELATIONS[(subject_type, slot)].kind
            parts.append(f"(?P<{slot}>{VALUE_PATTERNS[kind]})")
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts))


@cache
def templates_for(subject_type: str, relation: str) -> tuple[str, ...]:
    """Every sentence template (intro or single-fact) that states ``relation`` of ``subject_type``."""
    found = [t for t in INTRO_TEMPLATES[subject_type] if relation in template_slots(t)]
    return (*found, *RELATIONS[(subject_type, relation)].templates)


def extract_relation(name: str, text: str, subject_type: str, relation: str) -> str | None:
    """Read the value of ``relation`` for the entity called ``name`` from its document text.

    Every sentence is matched in full against every template for the relation; sentences
    about other entities never match because the subject must be ``name`` or a pronoun.

    Returns:
        The value, or ``None`` if no sentence states it or sentences disagree.
    """
    subjects = {name, *PRONOUNS}
    patterns = [_sentence_regex(t, subject_type) for t in templates_for(subject_type, relation)]
    found: list[str] = []
    for sentence in SENTENCE_SPLIT_RE.split(text.strip()):
        for pattern in patterns:
            m = pattern.fullmatch(sentence)
            if m and m.group("subject") in subjects:
                found.append(m.group(relation))
    if not found or any(v != found[0] for v in found):
        return None
    return found[0]


def extract_all(name: str, text: str, subject_type: str) -> dict[str, str | None]:
    """:func:`extract_relation` for every relation of ``subject_type``."""
    return {
        rel.name: extract_relation(name, text, subject_type, rel.name)
        for rel in _RELATION_LIST
        if rel.subject_type == subject_type
    }


@cache
def _question_regexes() -> tuple[tuple[re.Pattern[str], Chain], ...]:
    compiled = []
    for chain in CHAINS:
        for question in chain.questions:
            head, tail = question.split("{e}")
            pattern = re.escape(head) + f"(?P<e>{VALUE_PATTERNS['name']})" + re.escape(tail)
            compiled.append((re.compile(pattern), chain))
    return tuple(compiled)


def parse_question(question: str) -> list[tuple[Chain, str]]:
    """Every ``(chain, start entity name)`` reading of ``question`` (exactly one for our tasks)."""
    text = " ".join(question.split())
    return [(chain, m.group("e")) for rx, chain in _question_regexes() if (m := rx.fullmatch(text))]


def render_question(chain: Chain, index: int, entity: str) -> str:
    """Phrasing number ``index`` of ``chain`` about ``entity``."""
    return chain.questions[index].replace("{e}", entity)


def relation_names(subject_type: str) -> list[str]:
    """Names of the relations of ``subject_type``, in declaration order."""
    return [r.name for r in _RELATION_LIST if r.subject_type == subject_type]
