"""Generate the ToolGym/Search-v0 knowledge base and its multi-hop question splits.

Usage (from a source checkout)::

    python envs_data/search/generate.py --seed 0 --out envs_data/search

Writes ``corpus.jsonl``, ``tasks/{train,dev,test}.jsonl``, ``README.md`` and ``MANIFEST.json``
(SHA-256 of every written file). The output is a pure function of the seed and of
``toolgym/envs/search/templates.py``: regenerating gives byte-identical files.

The script is stdlib-only. It loads the shared sentence/question templates by file path, so it
does not import the ``toolgym`` package (nor gymnasium, bm25s, ...).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # envs_data/_toolgym_generate.py
from _toolgym_generate import load_module  # noqa: E402

GENERATOR_VERSION = "1.0.0"
DEFAULT_SEED = 0
SPLIT_SIZES: dict[str, int] = {"test": 300, "dev": 300, "train": 2001}
"""Tasks per split; each is split evenly over 1, 2 and 3 hops. Test is drawn first, so changing
the train size never changes the test split."""
N_COUNTRIES = 24
N_CITIES = 360
N_UNIVERSITIES = 110
N_COMPANIES = 480
N_PERSONS = 2900
DIFFICULTY = {1: "easy", 2: "medium", 3: "hard"}

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_PATH = REPO_ROOT / "toolgym" / "envs" / "search" / "templates.py"


T = load_module("_toolgym_search_templates", TEMPLATES_PATH)

# ----------------------------------------------------------------------------- vocabulary
PROFESSIONS = [
    "architect",
    "astronomer",
    "baker",
    "botanist",
    "cartographer",
    "chemist",
    "civil engineer",
    "clockmaker",
    "composer",
    "economist",
    "editor",
    "electrician",
    "engineer",
    "geologist",
    "glassblower",
    "historian",
    "illustrator",
    "interpreter",
    "jeweller",
    "journalist",
    "lawyer",
    "librarian",
    "linguist",
    "marine biologist",
    "mathematician",
    "nurse",
    "optician",
    "painter",
    "pharmacist",
    "photographer",
    "physician",
    "pilot",
    "potter",
    "sculptor",
    "software developer",
    "statistician",
    "surveyor",
    "teacher",
    "translator",
    "veterinarian",
    "violinist",
    "weaver",
]
INDUSTRIES = [
    "aerospace",
    "agriculture",
    "banking",
    "biotechnology",
    "brewing",
    "chemicals",
    "construction",
    "cosmetics",
    "electronics",
    "energy",
    "fishing",
    "forestry",
    "furniture",
    "glassmaking",
    "insurance",
    "logistics",
    "machinery",
    "mining",
    "pharmaceuticals",
    "publishing",
    "railway",
    "shipbuilding",
    "software",
    "telecommunications",
    "textiles",
    "tourism",
]
COMPANY_SUFFIXES = [
    "Systems",
    "Industries",
    "Holdings",
    "Works",
    "Group",
    "Labs",
    "Partners",
    "Trading",
    "Manufacturing",
    "Dynamics",
    "Ventures",
    "Collective",
]
UNIVERSITY_SUFFIXES = ["University", "Institute", "College", "Academy", "Polytechnic"]
STATE_FORMS = ["Republic", "Kingdom", "Federation", "Commonwealth", "Principality", "Union"]
HOBBIES = [
    "birdwatching",
    "chess",
    "rowing",
    "gardening",
    "amateur astronomy",
    "fencing",
    "sailing",
    "woodcarving",
    "choral singing",
    "mountain hiking",
    "beekeeping",
    "calligraphy",
]
CITY_FEATURES = [
    "old harbour",
    "covered market",
    "stone bridges",
    "botanical garden",
    "clock tower",
    "spring festival",
    "salt marshes",
    "cathedral",
    "tram network",
    "lighthouse",
    "vineyards",
]
COUNTRY_FEATURES = [
    "mountain lakes",
    "long coastline",
    "terraced hills",
    "folk music",
    "river deltas",
    "ancient forests",
    "volcanic islands",
    "high plateaus",
]
FIELDS = [
    "mathematics",
    "medicine",
    "law",
    "engineering",
    "music",
    "agronomy",
    "philosophy",
    "architecture",
    "chemistry",
    "linguistics",
]

# Real words and names the syllable generator must not produce (best effort).
_BLOCKLIST = """
adam alan alba alma amanda anna asia bali bara bela bern berlin bona boston cairo cara carina
chad china clara cuba dana dara delhi diana dina dora dover elena elsa emma erin faro gale gina
hana hanna hilo india iran iraq irma ivan jana kara kenya kiev kira kona laos lara lima linda
lisa lola luna lyon maine mali malta mara maria marin mars mary mila mina mira monaco nairobi
nina nora oman osaka oslo paris pera peru petra pisa poland prague rama riga rita roma rome
rosa sara sasha selma sofia sora talin tara tina tokyo tora tula vera vienna yale zara
such that their then there these they this will with into were have from what when where which
""".split()


@dataclass
class Entity:
    """One knowledge-base entity; ``facts`` maps relation names to values (names or strings)."""

    type: str
    name: str
    facts: dict[str, str] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    doc_id: str = ""


class NameMaker:
    """Syllable-based fictional names, unique as whole names and as tokens across categories."""

    ONSETS = [
        "b",
        "br",
        "d",
        "dr",
        "f",
        "g",
        "gr",
        "h",
        "k",
        "kr",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "sk",
        "st",
        "t",
        "th",
        "v",
        "vr",
        "z",
        "j",
        "",
        "",
    ]
    VOWELS = ["a", "a", "e", "e", "i", "i", "o", "o", "u", "ae", "ei", "ou"]
    CODAS = ["", "", "", "", "", "n", "r", "l", "s", "th", "m", "k"]

    def __init__(self, rng: random.Random, reserved: Sequence[str]) -> None:
        self.rng = rng
        self.used: dict[str, None] = dict.fromkeys(w.lower() for w in reserved)

    def word(self, syllables: tuple[int, int], endings: Sequence[str] = ("",)) -> str:
        """A fresh capitalised word (4 to 11 letters) not used before by any category."""
        for _ in range(10_000):
            n = self.rng.randint(*syllables)
            parts = [
                self.rng.choice(self.ONSETS) + self.rng.choice(self.VOWELS) + self.rng.choice(self.CODAS)
                for _ in range(n)
            ]
            word = "".join(parts) + self.rng.choice(list(endings))
            if not 4 <= len(word) <= 11 or word in self.used or _awkward(word):
                continue
            self.used[word] = None
            return word.capitalize()
        raise RuntimeError("Name space exhausted; add syllables.")

    def lower_word(self, syllables: tuple[int, int], endings: Sequence[str] = ("",)) -> str:
        """Like :meth:`word` but lower-case (currencies)."""
        return self.word(syllables, endings).lower()


def _awkward(word: str) -> bool:
    """Hard to read: three vowels or consonants in a row, or a doubled letter."""
    vowel_run = consonant_run = 0
    for ch in word:
        if ch in "aeiouy":
            vowel_run, consonant_run = vowel_run + 1, 0
        else:
            vowel_run, consonant_run = 0, consonant_run + 1
        if vowel_run > 2 or consonant_run > 2:
            return True
    return any(a == b for a, b in zip(word, word[1:], strict=False))


DISTRACTOR_WORDS = [
    "Not to be confused with a from has sibling named In spare time enjoys once visited for",
    "conference is friend of who works population about Notable people born include twinned",
    "city should not be known its Visitors often travel on borders Major cities official name",
    "employs chief executive current also runs regional office affiliated main competitor",
    "students programme exchange alumni his her and the",
]
"""Words of the distractor sentences (names must not collide with them either)."""


def _reserved_words() -> list[str]:
    """Lower-case words that appear in templates and vocabulary: names must not collide."""
    texts: list[str] = []
    for rel in T.RELATIONS.values():
        texts += rel.templates
    for intro in T.INTRO_TEMPLATES.values():
        texts += intro
    for chain in T.CHAINS:
        texts += chain.questions
    texts += PROFESSIONS + INDUSTRIES + COMPANY_SUFFIXES + UNIVERSITY_SUFFIXES + STATE_FORMS
    texts += HOBBIES + CITY_FEATURES + COUNTRY_FEATURES + FIELDS + DISTRACTOR_WORDS
    words: dict[str, None] = dict.fromkeys(_BLOCKLIST)
    for text in texts:
        for w in "".join(c if c.isalpha() else " " for c in text).lower().split():
            words[w] = None
    return list(words)


# ----------------------------------------------------------------------------- the world
def build_world(rng: random.Random) -> dict[str, list[Entity]]:
    """Draw every entity with its facts and the extra data used only for distractor sentences."""
    names = NameMaker(rng, _reserved_words())
    countries = [
        Entity("country", names.word((1, 2), ["ia", "ara", "ovia", "esh", "and", "enne", "ovar"]))
        for _ in range(N_COUNTRIES)
    ]
    for c in countries:
        c.facts["language"] = names.word((1, 2), ["ish", "ic", "ese", "i"])
        c.facts["currency"] = names.lower_word((1, 2), ["ik", "ar", "o", "en"])
        c.extra["official"] = f"{rng.choice(STATE_FORMS)} of {c.name}"

    city_endings = ["moor", "vik", "dell", "ora", "holm", "ast", "wick", "by", "ford", "grad", "ene"]
    cities: list[Entity] = []
    stems: list[str] = []
    while len(cities) < N_CITIES:
        if stems and rng.random() < 0.15:  # near-miss: same stem, another ending
            stem = rng.choice(stems)
            name = None
            for ending in rng.sample(city_endings, len(city_endings)):
                cand = (stem + ending).lower()
                if cand not in names.used and 4 <= len(cand) <= 12:
                    names.used[cand] = None
                    name = cand.capitalize()
                    break
            if name is None:
                continue
        else:
            stem = names.word((1, 2)).lower()
            del names.used[stem]
            cand = stem + rng.choice(city_endings)
            if cand in names.used:
                continue
            names.used[cand] = None
            stems.append(stem)
            name = cand.capitalize()
        cities.append(Entity("city", name))
    for i, city in enumerate(cities):
        # Every country gets at least three cities.
        country = countries[i % N_COUNTRIES] if i < 3 * N_COUNTRIES else rng.choice(countries)
        city.facts["located_in"] = country.name
        city.facts["founding_year"] = str(rng.randint(1020, 1890))
        city.extra["population"] = f"{rng.randint(8, 900) * 1000:,}"
        city.extra["feature"] = rng.choice(CITY_FEATURES)
    cities_of: dict[str, list[Entity]] = {c.name: [] for c in countries}
    for city in cities:
        cities_of[city.facts["located_in"]].append(city)
    for c in countries:
        c.facts["capital"] = rng.choice(cities_of[c.name]).name
        c.extra["feature"] = rng.choice(COUNTRY_FEATURES)
        others = [o.name for o in countries if o is not c]
        c.extra["borders"] = rng.sample(others, 2)
        c.extra["major"] = [x.name for x in rng.sample(cities_of[c.name], min(3, len(cities_of[c.name])))]

    universities = []
    for _ in range(N_UNIVERSITIES):
        base = names.word((2, 3))
        uni = Entity("university", f"{base} {rng.choice(UNIVERSITY_SUFFIXES)}")
        uni.facts["located_in"] = rng.choice(cities).name
        uni.facts["founding_year"] = str(rng.randint(1450, 1990))
        uni.extra["students"] = f"{rng.randint(2, 60) * 500:,}"
        uni.extra["field"] = rng.choice(FIELDS)
        universities.append(uni)

    first_names = [names.word((2, 2), ["a", "el", "in", "o", "is", "an", "et", ""]) for _ in range(360)]
    persons: list[Entity] = []
    full_names: dict[str, None] = {}
    while len(persons) < N_PERSONS:
        surname = names.word((2, 3), ["u", "ov", "en", "ari", "eth", "ane", "ir", ""])
        family = []
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            full = f"{rng.choice(first_names)} {surname}"
            if full in full_names or len(persons) + len(family) >= N_PERSONS:
                continue
            full_names[full] = None
            family.append(Entity("person", full))
        for p in family:
            p.extra["family"] = [q.name for q in family if q is not p]
        persons += family
    for p in persons:
        p.facts["birth_year"] = str(rng.randint(1921, 1999))
        p.facts["profession"] = rng.choice(PROFESSIONS)
        p.facts["born_in"] = rng.choice(cities).name
        p.facts["studied_at"] = rng.choice(universities).name
        p.extra["gender"] = rng.choice(["He", "She"])
        p.extra["hobby"] = rng.choice(HOBBIES)

    companies: list[Entity] = []
    bases: list[str] = []
    founders = [p for p in persons if int(p.facts["birth_year"]) <= 1985]
    while len(companies) < N_COMPANIES:
        if bases and rng.random() < 0.2:  # near-miss: same base name, another suffix
            base = rng.choice(bases)
        else:
            base = names.word((2, 3), ["ex", "ani", "o", "ar", "ium", "a"])
            bases.append(base)
        name = f"{base} {rng.choice(COMPANY_SUFFIXES)}"
        if any(c.name == name for c in companies):
            continue
        company = Entity("company", name)
        founder = rng.choice(founders)
        company.facts["founded_by"] = founder.name
        company.facts["founding_year"] = str(
            min(int(founder.facts["birth_year"]) + rng.randint(24, 55), 2022)
        )
        company.facts["industry"] = rng.choice(INDUSTRIES)
        company.facts["headquartered_in"] = rng.choice(cities).name
        company.extra["employees"] = f"{rng.randint(1, 400) * 25:,}"
        company.extra["office"] = rng.choice(cities).name
        company.extra["ceo"] = rng.choice(persons).name
        companies.append(company)
    for p in persons:
        p.facts["works_for"] = rng.choice(companies).name

    world = {
        "country": countries,
        "city": cities,
        "university": universities,
        "company": companies,
        "person": persons,
    }
    all_names = [e.name for group in world.values() for e in group]
    assert len(all_names) == len(set(all_names)), "entity names must be globally unique"
    return world


# ----------------------------------------------------------------------------- documents
def _fact_sentences(rng: random.Random, entity: Entity, pronoun: str) -> list[str]:
    """The intro sentence plus one sentence for every relation the intro did not state."""
    intro = rng.choice(T.INTRO_TEMPLATES[entity.type])
    sentences = [T.render_sentence(intro, name=entity.name, subject=entity.name, values=entity.facts)]
    covered = set(T.template_slots(intro))
    rest = [r for r in T.relation_names(entity.type) if r not in covered]
    rng.shuffle(rest)
    for rel in rest:
        template = rng.choice(T.RELATIONS[(entity.type, rel)].templates)
        subject = pronoun if rng.random() < 0.4 else entity.name
        sentences.append(T.render_sentence(template, name=entity.name, subject=subject, values=entity.facts))
    return sentences


def _a(word: str) -> str:
    return f"{T.article(word)} {word}"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _distractors(
    rng: random.Random,
    e: Entity,
    world: dict[str, list[Entity]],
    index: dict[str, Entity],
    born_in: dict[str, list[str]],
    by_first: dict[str, list[str]],
    alumni: dict[str, list[str]],
    near: dict[str, list[str]],
) -> list[str]:
    """Sentences about other entities: near-miss names and facts that must not be confused."""
    s = e.name
    pick = rng.choice
    out: list[str] = []
    if e.type == "person":
        poss = "His" if e.extra["gender"] == "He" else "Her"
        family = list(e.extra["family"])  # type: ignore[arg-type]
        namesakes = family + [n for n in by_first[s.split()[0]] if n != s]
        if namesakes:
            other = index[pick(namesakes)]
            out.append(
                f"Not to be confused with {other.name}, {_a(other.facts['profession'])} "
                f"from {other.facts['born_in']}."
            )
        if family:
            out.append(f"{pick([s, e.extra['gender']])} has a sibling named {pick(family)}.")
        out.append(f"In {poss.lower()} spare time, {s} enjoys {e.extra['hobby']}.")
        out.append(
            f"{pick([s, e.extra['gender']])} once visited {pick(world['city']).name} for a conference."
        )
        friend = pick(world["person"])
        if friend.name != s:
            out.append(f"{poss} friend {friend.name} works for {friend.facts['works_for']}.")
    elif e.type == "city":
        out.append(f"{s} has a population of about {e.extra['population']}.")
        natives = born_in.get(s, [])
        if natives:
            out.append(
                f"Notable people born in {s} include {_join(rng.sample(natives, min(3, len(natives))))}."
            )
        twin = pick(world["city"])
        if twin.name != s:
            out.append(f"{s} is twinned with {twin.name}, a city in {twin.facts['located_in']}.")
        if near.get(s):
            out.append(f"{s} should not be confused with {pick(near[s])}.")
        out.append(f"{s} is known for its {e.extra['feature']}.")
        out.append(f"Visitors to {s} often travel on to {pick(world['city']).name}.")
    elif e.type == "country":
        out.append(f"{s} borders {_join(e.extra['borders'])}.")  # type: ignore[arg-type]
        out.append(f"Major cities of {s} include {_join(e.extra['major'])}.")  # type: ignore[arg-type]
        out.append(f"{s} is known for its {e.extra['feature']}.")
    elif e.type == "company":
        out.append(f"{s} employs about {e.extra['employees']} people.")
        out.append(f"The current chief executive of {s} is {e.extra['ceo']}.")
        out.append(f"{s} also runs a regional office in {e.extra['office']}.")
        if near.get(s):
            out.append(f"{s} is not affiliated with {pick(near[s])}.")
        rival = pick(world["company"])
        if rival.name != s:
            out.append(f"Its main competitor is {rival.name}.")
    elif e.type == "university":
        out.append(f"{s} has about {e.extra['students']} students.")
        out.append(f"{s} is known for its programme in {e.extra['field']}.")
        partner = pick(world["university"])
        if partner.name != s:
            out.append(f"{s} runs an exchange programme with {partner.name}.")
        if alumni.get(s):
            grads = alumni[s]
            out.append(f"Notable alumni of {s} include {_join(rng.sample(grads, min(2, len(grads))))}.")
    return out


def build_documents(rng: random.Random, world: dict[str, list[Entity]]) -> list[dict[str, str]]:
    """Write a document per entity and assign shuffled ids ``d00001``...; checks parseability."""
    index = {e.name: e for group in world.values() for e in group}
    born_in: dict[str, list[str]] = {}
    by_first: dict[str, list[str]] = {}
    alumni: dict[str, list[str]] = {}
    for p in world["person"]:
        born_in.setdefault(p.facts["born_in"], []).append(p.name)
        by_first.setdefault(p.name.split()[0], []).append(p.name)
        alumni.setdefault(p.facts["studied_at"], []).append(p.name)
    near: dict[str, list[str]] = {}
    for group in ("city", "company"):
        by_prefix: dict[str, list[str]] = {}
        for e in world[group]:
            key = e.name.split()[0] if group == "company" else e.name[:4]
            by_prefix.setdefault(key, []).append(e.name)
        for members in by_prefix.values():
            for m in members:
                near[m] = [o for o in members if o != m]

    entities = [e for group in world.values() for e in group]
    rng.shuffle(entities)
    docs = []
    for i, e in enumerate(entities, start=1):
        e.doc_id = f"d{i:05d}"
        pronoun = str(e.extra["gender"]) if e.type == "person" else "It"
        facts = _fact_sentences(rng, e, pronoun)
        extra = _distractors(rng, e, world, index, born_in, by_first, alumni, near)
        rng.shuffle(extra)
        extra = extra[: rng.randint(2, 4)]
        body = facts[1:] + extra
        if e.type == "country":  # always stated: the official name is an accepted answer
            body.append(f"The official name of {e.name} is the {e.extra['official']}.")
        rng.shuffle(body)
        text = " ".join([facts[0], *body])
        parsed = T.extract_all(e.name, text, e.type)
        expected = {r: e.facts[r] for r in T.relation_names(e.type)}
        if parsed != expected:
            raise AssertionError(f"Document of {e.name!r} does not parse back: {parsed} != {expected}")
        docs.append({"id": e.doc_id, "title": e.name, "type": e.type, "text": text})
    docs.sort(key=lambda d: d["id"])
    return docs


# ----------------------------------------------------------------------------- tasks
def resolve(chain: Any, start: Entity, index: dict[str, Entity]) -> tuple[str, list[str]]:
    """Follow ``chain`` from ``start``: the answer and the doc ids of the entities visited."""
    current = start
    gold = []
    value = ""
    for rel in chain.relations:
        gold.append(current.doc_id)
        value = current.facts[rel]
        if T.RELATIONS[(current.type, rel)].is_link:
            current = index[value]
    return value, gold


def build_tasks(rng: random.Random, world: dict[str, list[Entity]]) -> dict[str, list[dict[str, object]]]:
    """Draw the splits: disjoint (chain, start entity) pairs, balanced over hops and chains."""
    index = {e.name: e for group in world.values() for e in group}
    pools: dict[str, list[Entity]] = {}
    for chain in T.CHAINS:
        starts = list(world[chain.start_type])
        rng.shuffle(starts)
        pools[chain.key] = starts
    cursor = {key: 0 for key in pools}

    def draw(chain: Any) -> dict[str, object] | None:
        key = chain.key
        while cursor[key] < len(pools[key]):
            start = pools[key][cursor[key]]
            cursor[key] += 1
            answer, gold = resolve(chain, start, index)
            if answer == start.name:  # e.g. "the capital of the country of X" where X is it
                continue
            phrasing = rng.randrange(len(chain.questions))
            prompt = T.render_question(chain, phrasing, start.name)
            readings = T.parse_question(prompt)
            assert [(c.key, n) for c, n in readings] == [(key, start.name)], (prompt, readings)
            final_type = chain.types()[-1]
            aliases = [str(index[answer].extra["official"])] if final_type == "country" else []
            return {
                "prompt": prompt,
                "answer": answer,
                "difficulty": DIFFICULTY[chain.hops],
                "metadata": {
                    "hops": chain.hops,
                    "aliases": aliases,
                    "chain": list(chain.relations),
                    "chain_key": key,
                    "start_entity": start.name,
                    "start_type": start.type,
                    "gold_doc_ids": gold,
                    "phrasing": phrasing,
                },
            }
        return None

    splits: dict[str, list[dict[str, object]]] = {}
    for split, size in SPLIT_SIZES.items():
        rows: list[dict[str, object]] = []
        for hops in (1, 2, 3):
            want = size // 3 + (1 if hops <= size % 3 else 0)
            chains = [c for c in T.CHAINS if c.hops == hops]
            got: list[dict[str, object]] = []
            turn = 0
            while len(got) < want:
                row = draw(chains[turn % len(chains)])
                turn += 1
                if row is not None:
                    got.append(row)
                elif turn > 100 * want:
                    raise RuntimeError(f"Not enough {hops}-hop questions for split {split!r}.")
            rows += got
        rng.shuffle(rows)
        splits[split] = [{"id": f"search-{split}-{i:05d}", **row} for i, row in enumerate(rows, start=1)]
    return splits


# ----------------------------------------------------------------------------- output
def _dump_jsonl(rows: Sequence[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _readme(seed: int, docs: Sequence[dict[str, str]], splits: dict[str, list[dict[str, object]]]) -> str:
    types: dict[str, int] = {}
    for d in docs:
        types[d["type"]] = types.get(d["type"], 0) + 1
    type_rows = "\n".join(f"| {t} | {n} |" for t, n in sorted(types.items()))
    split_rows = []
    for split in ("train", "dev", "test"):
        hops = [0, 0, 0]
        for row in splits[split]:
            hops[row["metadata"]["hops"] - 1] += 1  # type: ignore[index]
        split_rows.append(f"| {split} | {len(splits[split])} | {hops[0]} | {hops[1]} | {hops[2]} |")
    chain_rows = "\n".join(f"| {c.hops} | `{c.key}` | {c.questions[0]} |" for c in T.CHAINS)
    return f"""# ToolGym/Search-v0 data

Multi-hop question answering over a **procedurally generated fictional knowledge base**: people,
cities, countries, companies and universities with syllable-generated names that exist nowhere
else, so answers cannot come from a model's prior knowledge and must be found with the env's
`search` (BM25) and `open` tools.

Generated by `generate.py` (version {GENERATOR_VERSION}, seed {seed}); stdlib-only and
deterministic. Regenerate (byte-identical, checked against `MANIFEST.json` by
`tests/test_env_data.py`):

```
python envs_data/search/generate.py --seed {seed} --out envs_data/search
```

Sentence and question templates live in `toolgym/envs/search/templates.py`, shared with the
scripted oracle (`toolgym/envs/search/oracle.py`), which parses questions and documents with the
regular expressions compiled from them. Changing a template changes the data: regenerate and
bump the env version.

## Files

- `corpus.jsonl`: {len(docs)} documents, one JSON object per line:
  `{{"id": "d00001", "title": <entity name>, "type": <entity type>, "text": <prose>}}`.
  Each text states every fact of its entity once (an intro sentence plus one sentence per
  remaining relation, phrased from several templates, sometimes with a pronoun as subject)
  and adds 2-4 distractor sentences about other entities (namesakes sharing a first name or
  surname, siblings, twin cities, rival companies, regional offices, chief executives...).
  Ids are assigned in shuffled order, so they do not reveal the type.
- `tasks/{{train,dev,test}}.jsonl`: one task per line: `{{"id": "search-test-00001", "prompt":
  <question>, "answer": <canonical answer>, "difficulty": "easy"|"medium"|"hard", "metadata":
  {{"hops", "aliases", "chain", "chain_key", "start_entity", "start_type", "gold_doc_ids",
  "phrasing"}}}}`. `chain` lists the relation names followed from the start entity;
  `gold_doc_ids` are the documents of the entities visited before the answer (one per hop);
  `aliases` are other accepted answers (a country's official name).
- `MANIFEST.json`: seed, generator version and SHA-256 of every other file.

| type | documents |
|---|---|
{type_rows}

| split | tasks | 1 hop (easy) | 2 hops (medium) | 3 hops (hard) |
|---|---|---|---|---|
{split_rows[0]}
{split_rows[1]}
{split_rows[2]}

## Guarantees

- Entity names are globally unique, and every relation is functional (one birthplace, one
  employer...), so every question has exactly one answer, reachable by following its chain
  through the documents. The generator checks that every document parses back to its facts.
- No (chain, start entity) pair appears in two splits; splits may share entities.
- Searching an entity's exact full name returns its document in the top 5 (bm25s, Lucene,
  English stop words, on `title + " " + text`); checked by the tests.
- Questions are balanced over hop counts and round-robin over the {len(T.CHAINS)} question types:

| hops | chain | example phrasing |
|---|---|---|
{chain_rows}
"""


def generate(seed: int, out: Path) -> dict[str, str]:
    """Generate everything into ``out``; returns ``{relative path: sha256}``."""
    rng = random.Random(seed)
    world = build_world(rng)
    docs = build_documents(rng, world)
    splits = build_tasks(rng, world)
    files: dict[str, bytes] = {"corpus.jsonl": _dump_jsonl(docs)}
    for split in ("train", "dev", "test"):
        files[f"tasks/{split}.jsonl"] = _dump_jsonl(splits[split])
    files["README.md"] = _readme(seed, docs, splits).encode("utf-8")
    hashes = {}
    for rel, data in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        hashes[rel] = hashlib.sha256(data).hexdigest()
    manifest = {"seed": seed, "generator_version": GENERATOR_VERSION, "sha256": hashes}
    (out / "MANIFEST.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return hashes


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    hashes = generate(args.seed, args.out)
    for rel, digest in hashes.items():
        sys.stdout.write(f"{digest[:12]}  {rel}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
