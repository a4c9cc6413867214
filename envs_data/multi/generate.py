"""Generate the ToolGym/Multi-v0 question splits (seeded; rerun to reproduce the files exactly).

Usage (from a source checkout)::

    python envs_data/multi/generate.py --seed 0 --out envs_data/multi

Multi-v0 reuses the Search-v0 knowledge base (``envs_data/search/corpus.jsonl``): this script
reads every document's facts back with the Search-v0 sentence templates
(``toolgym/envs/search/templates.py``, the same parser the oracles use), then fills the question
templates of ``toolgym/envs/multi/templates.py`` with entities whose facts resolve, and computes
each answer exactly. Writes ``tasks/{train,dev,test}.jsonl``, ``README.md`` and
``MANIFEST.json`` (SHA-256 of every written file, plus the SHA-256 of the corpus it was built
from). The output is a pure function of the seed, the corpus and the two template modules, all
loaded by file path: the script is stdlib-only and does not import the ``toolgym`` package.
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # envs_data/_toolgym_generate.py
from _toolgym_generate import jsonl, load_module, run_cli, write_with_manifest  # noqa: E402

GENERATOR_VERSION = "1.0.0"
DEFAULT_SEED = 0
SPLIT_SIZES: dict[str, int] = {"test": 300, "dev": 300, "train": 1800}
"""Tasks per split, a third per difficulty. Test is drawn first, so the train size never changes it."""
REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_PATH = REPO_ROOT / "envs_data" / "search" / "corpus.jsonl"
SEARCH_TEMPLATES_PATH = REPO_ROOT / "toolgym" / "envs" / "search" / "templates.py"
MULTI_TEMPLATES_PATH = REPO_ROOT / "toolgym" / "envs" / "multi" / "templates.py"


S = load_module("_toolgym_search_templates", SEARCH_TEMPLATES_PATH)
M = load_module("_toolgym_multi_templates", MULTI_TEMPLATES_PATH)


def exact_value(expression: str) -> Fraction:
    """Evaluate a template expression (trusted, generated here) exactly."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "abs":
            return abs(walk(node.args[0]))
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Div):
                return a / b
        raise ValueError(f"unexpected node {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval"))


def read_facts(corpus: list[dict[str, str]]) -> dict[str, tuple[str, dict[str, str | None]]]:
    """Title -> (entity type, facts read from the document with the Search-v0 templates)."""
    return {doc["title"]: (doc["type"], S.extract_all(doc["title"], doc["text"], doc["type"])) for doc in corpus}


def resolve(lookup: Any, name: str, facts: dict[str, tuple[str, dict[str, str | None]]]) -> tuple[str, list[str]] | None:
    """Follow ``lookup`` from ``name``: the value and the entities visited, or ``None``."""
    entity, kind, path = name, lookup.start_type, [name]
    for i, relation in enumerate(lookup.relations):
        entry = facts.get(entity)
        if entry is None or entry[0] != kind:
            return None
        value = entry[1].get(relation)
        if value is None:
            return None
        if i == len(lookup.relations) - 1:
            return value, path
        kind = S.RELATIONS[(kind, relation)].object_type
        entity = value
        path.append(entity)
    return None


def make_task(rng: random.Random, template: Any, by_type: dict[str, list[str]],
              facts: dict[str, tuple[str, dict[str, str | None]]]) -> dict[str, Any] | None:
    """One question of ``template`` (or ``None`` if this draw does not work out)."""
    slots = template.slots()
    names: dict[str, str] = {}
    for slot, kind in slots.items():
        names[slot] = rng.choice(by_type[kind])
    if len(set(names.values())) < len(names):
        return None
    values, visited = [], []
    for lookup in template.lookups:
        found = resolve(lookup, names[lookup.slot], facts)
        if found is None:
            return None
        values.append(found[0])
        visited.append(found[1])
    if not all(v.isdigit() for v in values):
        return None
    expression = template.render_expression(values)
    result = exact_value(expression)
    if result.denominator != 1:
        return None
    if (template.constraint == "positive" and result <= 0) or (template.constraint == "nonzero" and result == 0):
        return None
    index = rng.randrange(len(template.phrasings))
    return {
        "prompt": template.prompt(index, names),
        "answer": str(result.numerator),
        "difficulty": template.level,
        "metadata": {
            "template": template.key,
            "entities": names,
            "values": values,
            "expression": expression,
            "paths": visited,
            "documents": len({name for path in visited for name in path}),
        },
    }


def generate_tasks(seed: int, corpus: list[dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """Every split: a third per level, templates of a level in turn, questions unique overall."""
    facts = read_facts(corpus)
    by_type: dict[str, list[str]] = {}
    for doc in corpus:
        by_type.setdefault(doc["type"], []).append(doc["title"])
    rng = random.Random(seed)
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, size in SPLIT_SIZES.items():
        rows = []
        for i in range(size):
            level = M.LEVELS[i % 3]
            templates = [t for t in M.TEMPLATES if t.level == level]
            template = templates[(i // 3) % len(templates)]
            for _attempt in range(10_000):
                row = make_task(rng, template, by_type, facts)
                if row is None:
                    continue
                key = (template.key, tuple(sorted(row["metadata"]["entities"].items())))
                if key not in seen:
                    break
            else:
                raise RuntimeError(f"cannot draw a {template.key} question")
            readings = M.parse_question(row["prompt"])
            if [(t.key, n) for t, n in readings] != [(template.key, row["metadata"]["entities"])]:
                raise AssertionError(f"question does not read back: {row['prompt']}")
            seen.add(key)
            rows.append({"id": f"multi-{split}-{i:05d}", **row})
        splits[split] = rows
    return {split: splits[split] for split in ("train", "dev", "test")}


def readme(splits: dict[str, list[dict[str, Any]]], seed: int, corpus_sha: str) -> str:
    """The data card."""
    lines = [
        "# ToolGym/Multi-v0 data",
        "",
        "Questions that need two tool families: find facts (years) in the Search-v0 knowledge base",
        "with `search`/`open`, then combine them with the `calculator`, e.g. \"How old was the founder",
        "of X when the company was founded?\" (the company's founding year, its founder, the founder's",
        "birth year, then a subtraction).",
        "",
        f"Generated by `generate.py` (version {GENERATOR_VERSION}, seed {seed}) from",
        f"`envs_data/search/corpus.jsonl` (SHA-256 `{corpus_sha}`); stdlib-only and deterministic.",
        "Regenerate (byte-identical, checked against `MANIFEST.json` by `tests/test_env_data.py`):",
        "",
        "```",
        f"python envs_data/multi/generate.py --seed {seed} --out envs_data/multi",
        "```",
        "",
        "Facts are read from the documents with the Search-v0 sentence templates",
        "(`toolgym/envs/search/templates.py`); question templates live in",
        "`toolgym/envs/multi/templates.py`, shared with the scripted oracle",
        "(`toolgym/envs/multi/oracle.py`). If the Search-v0 corpus changes, regenerate this data and",
        "bump both env versions.",
        "",
        "## Files",
        "",
        "- `tasks/{train,dev,test}.jsonl`: one task per line: `{\"id\", \"prompt\", \"answer\",",
        "  \"difficulty\", \"metadata\"}`. `answer` is an integer as text; `metadata` has `template`,",
        "  `entities` (names by slot), `values` (the facts looked up, in order), `expression` (the",
        "  calculator expression over them), `paths` (the entities visited per fact) and",
        "  `documents` (how many distinct documents must be read: search + open for each).",
        "- `MANIFEST.json`: seed, generator version, SHA-256 of every other file and of the corpus.",
        "",
        "## Grading",
        "",
        "The final answer must contain exactly one number, within relative tolerance 1e-6 of the",
        "answer (thousands separators and units are allowed).",
        "",
        "## Tasks",
        "",
        "| template | difficulty | " + " | ".join(splits) + " |",
        "|---|---|" + "---|" * len(splits),
    ]
    counts = {split: Counter(r["metadata"]["template"] for r in rows) for split, rows in splits.items()}
    for t in M.TEMPLATES:
        lines.append(f"| {t.key} | {t.level} | " + " | ".join(str(counts[s][t.key]) for s in splits) + " |")
    lines.append("")
    return "\n".join(lines)


def write_all(out: Path, seed: int, corpus_path: Path = CORPUS_PATH) -> None:
    """Generate every file under ``out``."""
    raw = corpus_path.read_bytes()
    corpus = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    corpus_sha = hashlib.sha256(raw).hexdigest()
    splits = generate_tasks(seed, corpus)
    files: dict[str, str] = {}
    for split in ("train", "dev", "test"):
        files[f"tasks/{split}.jsonl"] = jsonl(splits[split])
    files["README.md"] = readme(splits, seed, corpus_sha)
    write_with_manifest(
        out, files, seed=seed, generator_version=GENERATOR_VERSION, source_sha256={"search/corpus.jsonl": corpus_sha}
    )


if __name__ == "__main__":
    run_cli(write_all, __doc__, __file__, default_seed=DEFAULT_SEED)
