"""Generate the ToolGym/SQL-v0 databases and question splits (seeded; rerun to reproduce exactly).

Usage (from a source checkout)::

    python envs_data/sql/generate.py --seed 0 --out envs_data/sql

Writes ``databases/<family>_<split>_<n>.sql`` (SQL dumps: ``CREATE TABLE`` and ``INSERT``
statements), ``tasks/{train,dev,test}.jsonl``, ``README.md`` and ``MANIFEST.json`` (SHA-256 of
every written file). The output is a pure function of the seed and of
``toolgym/envs/sql/templates.py`` (loaded by file path: the script is stdlib-only and does not
import the ``toolgym`` package).

Every split has its own database instances (train has several per family), so facts seen in
training never answer a test question. Each task fills a question template with values drawn
from its database and stores the result of the template's SQL, run here with :mod:`sqlite3`, as
the answer. Questions whose answer would be empty, zero, too long or tied are redrawn.
"""

from __future__ import annotations

import random
import re
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # envs_data/_toolgym_generate.py
from _toolgym_generate import jsonl, load_module, run_cli, write_with_manifest  # noqa: E402

GENERATOR_VERSION = "1.0.0"
DEFAULT_SEED = 0
SPLIT_SIZES: dict[str, int] = {"test": 300, "dev": 300, "train": 2400}
"""Tasks per split, a third per difficulty. Test is drawn first, so the train size never changes it."""
INSTANCES: dict[str, int] = {"test": 1, "dev": 1, "train": 6}
"""Database instances per schema family and split."""
MAX_LIST = 8
"""Longest accepted list answer."""
REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_PATH = REPO_ROOT / "toolgym" / "envs" / "sql" / "templates.py"

FIRST = (
    "Ada", "Bruno", "Carla", "Dev", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jamal", "Kira", "Luis",
    "Maya", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tess", "Umar", "Vera", "Wen", "Ximena",
    "Yara", "Zane", "Alma", "Boris", "Cleo", "Dario", "Edith", "Fynn", "Gemma", "Hamza", "Iris", "Joel",
)
LAST = (
    "Abbott", "Baker", "Castro", "Dalton", "Eklund", "Fischer", "Garza", "Haddad", "Ibsen", "Jovanovic",
    "Kaplan", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero", "Rahman", "Silva",
    "Tanaka", "Ueda", "Varga", "Walsh", "Xu", "Yilmaz", "Zeller", "Arendt", "Bishop", "Crane", "Duarte",
)
DEPARTMENTS = ("Sales", "Engineering", "Marketing", "Finance", "Support", "Legal")
CITIES = ("Lisbon", "Oslo", "Denver", "Osaka", "Nairobi", "Lima")
CATEGORIES = ("Kitchen", "Garden", "Office", "Toys", "Sports")
ADJECTIVES = (
    "Blue", "Compact", "Deluxe", "Eco", "Folding", "Golden", "Heavy", "Classic", "Mini", "Quiet", "Rapid",
    "Smart", "Steel", "Travel", "Ultra", "Wooden",
)
NOUNS = {
    "Kitchen": ("Kettle", "Blender", "Skillet", "Toaster", "Cutting Board"),
    "Garden": ("Hose", "Shovel", "Planter", "Rake", "Sprinkler"),
    "Office": ("Stapler", "Desk Lamp", "Notebook", "Monitor Stand", "Chair"),
    "Toys": ("Puzzle", "Kite", "Robot", "Train Set", "Yo-yo"),
    "Sports": ("Racket", "Yoga Mat", "Helmet", "Football", "Water Bottle"),
}
FACULTIES = {
    "Mathematics": "Euler Hall", "Physics": "Curie Building", "Chemistry": "Lavoisier Lab",
    "Biology": "Darwin House", "History": "Herodotus Hall", "Economics": "Keynes Center",
}


T = load_module("_toolgym_sql_templates", TEMPLATES_PATH)


# ---------------------------------------------------------------------------------- databases
def people(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct full names."""
    pairs = [(f, last) for f in FIRST for last in LAST]
    return [f"{f} {last}" for f, last in rng.sample(pairs, n)]


def build_company(rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """``employees``: 60 rows."""
    rows = []
    for i, name in enumerate(people(rng, 60), start=1):
        rows.append((i, name, rng.choice(DEPARTMENTS), rng.choice(CITIES), rng.randrange(30_000, 150_001, 500),
                     rng.randint(2005, 2023)))
    return {"employees": rows}


def build_shop(rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """``customers`` (40), ``products`` (24), ``orders`` (240)."""
    customers = [(i, name, rng.choice(CITIES)) for i, name in enumerate(people(rng, 40), start=1)]
    catalogue = [(cat, f"{adj} {noun}") for cat, nouns in NOUNS.items() for noun in nouns for adj in ADJECTIVES]
    products = [
        (i, name, cat, rng.randint(250, 25_000) / 100)
        for i, (cat, name) in enumerate(sorted(rng.sample(catalogue, 24), key=lambda p: p[1]), start=1)
    ]
    orders = []
    for i in range(1, 241):
        day = f"{rng.randint(2021, 2023)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        orders.append((i, rng.randint(1, len(customers)), rng.randint(1, len(products)), rng.randint(1, 10), day))
    return {"customers": customers, "products": products, "orders": orders}


def build_university(rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """``departments`` (6), ``instructors`` (24), ``courses`` (36), ``students`` (90), ``enrollments``."""
    departments = [(i, name, building) for i, (name, building) in enumerate(FACULTIES.items(), start=1)]
    names = people(rng, 24 + 90)
    instructors = [(i + 1, names[i], i // 4 + 1, rng.randrange(50_000, 160_001, 1000)) for i in range(24)]
    courses: list[tuple[Any, ...]] = []
    for d_id, d_name, _ in departments:
        staff = [row[0] for row in instructors if row[2] == d_id]
        for k, number in enumerate(sorted(rng.sample(range(100, 500), 6))):
            teacher = staff[k % len(staff)] if rng.random() < 0.85 else rng.randint(1, len(instructors))
            courses.append((len(courses) + 1, f"{d_name} {number}", d_id, teacher, rng.choice((2, 3, 4, 5, 6))))
    students = [(i + 1, names[24 + i], rng.randint(1, 6), rng.randint(2019, 2023)) for i in range(90)]
    enrollments = []
    for s_id, _, major, _ in students:
        own = [c[0] for c in courses if c[2] == major]
        other = [c[0] for c in courses if c[2] != major]
        picked = rng.sample(own, rng.randint(1, 4)) + rng.sample(other, rng.randint(1, 3))
        for c_id in sorted(picked):
            enrollments.append((s_id, c_id, rng.randint(50, 100)))
    return {"departments": departments, "instructors": instructors, "courses": courses, "students": students,
            "enrollments": enrollments}


BUILDERS = {"company": build_company, "shop": build_shop, "university": build_university}


def literal(value: Any) -> str:
    """A SQL literal for a generated value."""
    if isinstance(value, str):
        return str(T.sql_literal(value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def dump(family: str, tables: dict[str, list[tuple[Any, ...]]]) -> str:
    """The database as SQL text (the schema, then one ``INSERT`` per row, in one transaction)."""
    lines = ["BEGIN TRANSACTION;"]
    for create in T.SCHEMAS[family]:
        lines.append(create)
        table = re.match(r"CREATE TABLE (\w+)", create).group(1)  # type: ignore[union-attr]
        lines += [f"INSERT INTO {table} VALUES({','.join(map(literal, row))});" for row in tables[table]]
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- tasks
def slot_pools(family: str, conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Candidate values of each template slot, read from the database."""

    def column(sql: str) -> list[str]:
        return [str(r[0]) for r in conn.execute(sql)]

    if family == "company":
        return {
            "department": column("SELECT DISTINCT department FROM employees ORDER BY 1"),
            "name": column("SELECT name FROM employees ORDER BY id"),
            "city": column("SELECT DISTINCT city FROM employees ORDER BY 1"),
            "year": column("SELECT DISTINCT hire_year FROM employees ORDER BY 1"),
            "amount": [str(a) for a in range(40_000, 125_000, 5_000)],
        }
    if family == "shop":
        return {
            "customer": column("SELECT name FROM customers ORDER BY id"),
            "product": column("SELECT name FROM products ORDER BY id"),
            "city": column("SELECT DISTINCT city FROM customers ORDER BY 1"),
            "category": column("SELECT DISTINCT category FROM products ORDER BY 1"),
            "year": ["2021", "2022", "2023"],
        }
    return {
        "department": column("SELECT name FROM departments ORDER BY id"),
        "instructor": column("SELECT name FROM instructors ORDER BY id"),
        "student": column("SELECT name FROM students ORDER BY id"),
        "course": column("SELECT title FROM courses ORDER BY id"),
        "n": ["2", "3"],
    }


def answer_of(template: Any, params: dict[str, str], conn: sqlite3.Connection) -> Any | None:
    """The ground truth of ``template`` with ``params``, or ``None`` if the question is unusable."""
    rows = conn.execute(template.render_sql(params)).fetchall()
    if template.kind == "number":
        if len(rows) != 1 or rows[0][0] is None or rows[0][0] == 0:
            return None
        value = rows[0][0]
        return str(value) if isinstance(value, int) else format(value, ".15g")
    if template.kind == "text":
        tie_sql = template.render_tie_sql(params)
        ranks = [r[0] for r in conn.execute(tie_sql).fetchall()] if tie_sql else []
        if len(rows) != 1 or (len(ranks) == 2 and ranks[0] == ranks[1]):
            return None
        return str(rows[0][0])
    values = sorted(str(r[0]) for r in rows)
    return values if 1 <= len(values) <= MAX_LIST else None


def candidates(template: Any, conn: sqlite3.Connection, pools: dict[str, list[str]]) -> list[tuple[dict[str, str], Any]]:
    """Every usable ``(params, answer)`` of ``template`` on one database, in a fixed order."""
    slots = list(dict.fromkeys(re.findall(r"\{(\w+)\}", template.phrasings[0])))
    combos: list[dict[str, str]] = [{}]
    for slot in slots:
        combos = [{**c, slot: v} for c in combos for v in pools[slot]]
    out = []
    for params in combos:
        answer = answer_of(template, params, conn)
        if answer is not None:
            out.append((params, answer))
    return out


def generate(seed: int) -> tuple[dict[str, str], dict[str, list[dict[str, Any]]]]:
    """The database dumps (by name) and the task splits.

    Within a split, the tasks of a level cycle through its databases and, on each database,
    through the templates that still have unused questions; a question (template and
    parameters) is asked at most once per database.
    """
    rng = random.Random(seed)
    dumps: dict[str, str] = {}
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, size in SPLIT_SIZES.items():
        # pools[level][db index] = (db name, {template key: unused (params, answer) list})
        pools: dict[str, list[tuple[str, dict[str, list[tuple[dict[str, str], Any]]]]]] = {}
        for level in T.LEVELS:
            family = T.FAMILIES[level]
            pools[level] = []
            for n in range(INSTANCES[split]):
                name = f"{family}_{split}_{n}"
                dumps[name] = dump(family, BUILDERS[family](rng))
                conn = sqlite3.connect(":memory:")
                conn.executescript(dumps[name])
                slots = slot_pools(family, conn)
                unused = {t.key: candidates(t, conn, slots) for t in T.TEMPLATES if t.level == level}
                pools[level].append((name, unused))
                conn.close()
        turn = {(level, n): 0 for level in T.LEVELS for n in range(INSTANCES[split])}
        rows = []
        for i in range(size):
            level = T.LEVELS[i % 3]
            n = (i // 3) % INSTANCES[split]
            db_name, unused = pools[level][n]
            keys = [k for k, left in unused.items() if left]
            if not keys:
                raise RuntimeError(f"{db_name} has no unused questions left")
            key = keys[turn[(level, n)] % len(keys)]
            turn[(level, n)] += 1
            template = T.TEMPLATES_BY_KEY[key]
            params, answer = unused[key].pop(rng.randrange(len(unused[key])))
            prompt = template.prompt(rng.randrange(len(template.phrasings)), params)
            readings = T.parse_question(prompt)
            if [(t.key, p) for t, p in readings] != [(template.key, params)]:
                raise AssertionError(f"question does not read back: {prompt}")
            rows.append({
                "id": f"sql-{split}-{i:05d}",
                "prompt": prompt,
                "answer": answer,
                "difficulty": level,
                "metadata": {
                    "database": db_name,
                    "template": template.key,
                    "params": params,
                    "kind": template.kind,
                    "decimals": template.decimals,
                    "sql": template.render_sql(params),
                },
            })
        splits[split] = rows
    return dumps, {split: splits[split] for split in ("train", "dev", "test")}


# ---------------------------------------------------------------------------------- output
def readme(dumps: dict[str, str], splits: dict[str, list[dict[str, Any]]], seed: int) -> str:
    """The data card."""
    lines = [
        "# ToolGym/SQL-v0 data",
        "",
        "Questions over generated SQLite databases, answered with the env's `list_tables`, `describe`",
        "and `query` tools. One schema family per difficulty: **easy** `company` (one table,",
        "`employees`), **medium** `shop` (`customers`, `products`, `orders`: joins), **hard**",
        "`university` (`departments`, `instructors`, `courses`, `students`, `enrollments`: joins over",
        "4-5 tables, grouping, `HAVING`, subqueries).",
        "",
        f"Generated by `generate.py` (version {GENERATOR_VERSION}, seed {seed}); stdlib-only and",
        "deterministic. Regenerate (byte-identical, checked against `MANIFEST.json` by",
        "`tests/test_env_data.py`):",
        "",
        "```",
        f"python envs_data/sql/generate.py --seed {seed} --out envs_data/sql",
        "```",
        "",
        "Schemas and question templates live in `toolgym/envs/sql/templates.py`, shared with the",
        "scripted oracle (`toolgym/envs/sql/oracle.py`), which reads the question's parameters back",
        "and writes the template's SQL itself. Changing a template changes the data: regenerate and",
        "bump the env version.",
        "",
        "## Files",
        "",
        f"- `databases/<family>_<split>_<n>.sql`: {len(dumps)} SQL dumps (`CREATE TABLE` + `INSERT`).",
        "  Every split has its own instances (train: "
        f"{INSTANCES['train']} per family), so training facts never answer test questions. The env",
        "  loads a dump into an in-memory database once per process and serves it read-only.",
        "- `tasks/{train,dev,test}.jsonl`: one task per line: `{\"id\", \"prompt\", \"answer\",",
        "  \"difficulty\", \"metadata\"}`. `answer` is a number as text, a name, or a sorted list of",
        "  names; `metadata` has `database`, `template`, `params`, `kind` (`number`, `text`, `list`),",
        "  `decimals` (for rounded numbers) and `sql` (the ground-truth query).",
        "- `MANIFEST.json`: seed, generator version and SHA-256 of every other file.",
        "",
        "## Grading",
        "",
        "- `number`: the answer holds exactly one number, within relative tolerance 1e-6 of the",
        "  ground truth (or within half a unit of the last decimal for questions that ask for rounding).",
        "- `text`: equal after case folding and whitespace/quote/period normalisation.",
        "- `list`: comma- (or semicolon-/newline-) separated items; the same set of names after",
        "  normalisation, in any order, no extras, no omissions.",
        "",
        "Questions whose answer would be empty, zero, a tie, or a list of more than "
        f"{MAX_LIST} names are never generated.",
        "",
        "## Tasks",
        "",
        "| template | difficulty | kind | " + " | ".join(splits) + " |",
        "|---|---|---|" + "---|" * len(splits),
    ]
    counts = {split: Counter(r["metadata"]["template"] for r in rows) for split, rows in splits.items()}
    for t in T.TEMPLATES:
        lines.append(f"| {t.key} | {t.level} | {t.kind} | " + " | ".join(str(counts[s][t.key]) for s in splits) + " |")
    lines.append("")
    return "\n".join(lines)


def write_all(out: Path, seed: int) -> None:
    """Generate every file under ``out``."""
    dumps, splits = generate(seed)
    files: dict[str, str] = {f"databases/{name}.sql": text for name, text in dumps.items()}
    for split in ("train", "dev", "test"):
        files[f"tasks/{split}.jsonl"] = jsonl(splits[split])
    files["README.md"] = readme(dumps, splits, seed)
    write_with_manifest(out, files, seed=seed, generator_version=GENERATOR_VERSION)


if __name__ == "__main__":
    run_cli(write_all, __doc__, __file__, default_seed=DEFAULT_SEED)
