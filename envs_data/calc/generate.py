"""Generate the ToolGym/Calc-v0 word-problem splits (seeded; rerun to reproduce the files exactly).

Usage (from a source checkout)::

    python envs_data/calc/generate.py --seed 0 --out envs_data/calc

Writes ``tasks/{train,dev,test}.jsonl``, ``README.md`` and ``MANIFEST.json`` (SHA-256 of every
written file). The output is a pure function of the seed and of
``toolgym/envs/calc/templates.py`` (loaded by file path: the script is stdlib-only and does not
import the ``toolgym`` package).

Each problem is a story about one person's running quantity: a start value, then 2-6 operations,
then a question about the final value. Values are computed exactly with :class:`fractions.Fraction`
and every intermediate value is kept a positive integer (item stories) or a whole number of cents
(money stories), so that each step's calculator result is an exact, short decimal.
"""

from __future__ import annotations

import ast
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
SPLIT_SIZES: dict[str, int] = {"test": 300, "dev": 300, "train": 2400}
"""Tasks per split, a third per difficulty. Test is drawn first, so the train size never changes it."""
REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_PATH = REPO_ROOT / "toolgym" / "envs" / "calc" / "templates.py"

NAMES: tuple[tuple[str, str], ...] = (
    ("Mia", "she"), ("Noah", "he"), ("Emma", "she"), ("Liam", "he"), ("Olivia", "she"), ("Lucas", "he"),
    ("Ava", "she"), ("Ethan", "he"), ("Sofia", "she"), ("Mateo", "he"), ("Amelia", "she"), ("Omar", "he"),
    ("Yuki", "she"), ("Aarav", "he"), ("Chloe", "she"), ("Daniel", "he"), ("Fatima", "she"), ("Hugo", "he"),
    ("Ines", "she"), ("Jonas", "he"), ("Lena", "she"), ("Marco", "he"), ("Nadia", "she"), ("Oscar", "he"),
    ("Priya", "she"), ("Samir", "he"), ("Tara", "she"), ("Viktor", "he"), ("Zara", "she"), ("Felix", "he"),
)
UNITS: tuple[str, ...] = (
    "apples", "marbles", "stickers", "books", "pencils", "stamps", "shells", "cards", "coins", "beads",
    "candles", "cookies", "tickets", "buttons", "seashells", "crayons", "postcards", "toy cars",
)
STEP_COUNTS: dict[str, tuple[int, int]] = {"easy": (2, 2), "medium": (3, 4), "hard": (4, 6)}
CENT = Fraction(1, 100)


T = load_module("_toolgym_calc_templates", TEMPLATES_PATH)


def exact_value(expression: str) -> Fraction:
    """Evaluate a template expression (trusted, generated here) exactly with Fractions."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(str(node.value))
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left), walk(node.right)
            ops = {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}
            if isinstance(node.op, ast.Div):
                return a / b
            return ops[type(node.op)]
        raise ValueError(f"unexpected node {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval"))


def money(rng: random.Random, low: int, high: int) -> str:
    """A dollar amount with cents, as text (``"12.50"``)."""
    return f"{rng.randint(low * 100, high * 100) / 100:.2f}"


def draw_params(rng: random.Random, step: Any, v: Fraction, level: str) -> tuple[str, str] | None:
    """Numbers for ``step`` applied to ``v``, or ``None`` if no good choice exists."""
    big = level != "easy"
    key = step.key
    if key == "add":
        return str(rng.randint(2, 250 if big else 40)), ""
    if key == "sub":
        top = int(v) - 1 if v.denominator == 1 else 0
        return (str(rng.randint(1, min(top, 250 if big else 40))), "") if top >= 1 else None
    if key == "add_packs":
        return str(rng.randint(2, 12)), str(rng.randint(3, 24))
    if key == "sub_packs":
        pairs = [(a, b) for a in range(2, 13) for b in range(2, 25) if a * b < v]
        if not pairs:
            return None
        a, b = rng.choice(pairs)
        return str(a), str(b)
    if key == "times":
        return (str(rng.randint(2, 5)), "") if v < 2000 else None
    if key == "share":
        divisors = [d for d in range(2, 13) if v.denominator == 1 and v.numerator % d == 0 and v / d >= 2]
        return (str(rng.choice(divisors)), "") if divisors else None
    if key == "earn":
        return money(rng, 5, 400), ""
    if key == "spend":
        top = min(int(v) - 1, 300)
        return (money(rng, 1, top), "") if top >= 2 else None
    if key == "buy":
        count = rng.randint(2, 9)
        top = min(int(v / count) - 1, 60)
        return (str(count), money(rng, 1, top)) if top >= 2 else None
    if key == "wage":
        return str(rng.randint(2, 40)), money(rng, 8, 45)
    if key in ("interest", "donate"):
        rates = [r for r in range(5, 55, 5) if (v * r / 100) % CENT == 0]
        if key == "interest":
            rates = [r for r in rates if r <= 25]
        return (str(rng.choice(rates)), "") if rates else None
    if key == "split":
        counts = [n for n in range(2, 6) if (v / (n + 1)) % CENT == 0 and v / (n + 1) >= 10]
        return (str(rng.choice(counts)), "") if counts else None
    raise KeyError(key)


def make_problem(rng: random.Random, level: str) -> dict[str, Any] | None:
    """One problem of ``level`` (or ``None`` if the random draw got stuck; the caller retries)."""
    story = "money" if level == "hard" else "items"
    name, pronoun = rng.choice(NAMES)
    unit = "dollars" if story == "money" else rng.choice(UNITS)
    candidates = [s for s in T.STEPS if s.story == story and level in s.levels]
    if story == "money":
        start_text = money(rng, 50, 900)
    else:
        start_text = str(rng.randint(5, 60) if level == "easy" else rng.randint(20, 400))
    start = Fraction(start_text)
    sentences = [T.render(rng.choice(T.START[story]), name=name, pronoun=pronoun, unit=unit, x=start_text)]
    v = start
    values = [T.decimal_text(v)]
    keys: list[str] = []
    n_steps = rng.randint(*STEP_COUNTS[level])
    for _ in range(n_steps):
        for _attempt in range(20):
            step = rng.choice(candidates)
            if keys and step.key == keys[-1]:
                continue
            params = draw_params(rng, step, v, level)
            if params is None:
                continue
            x, y = params
            new = exact_value(step.render_expression(f"({T.decimal_text(v)})", x, y))
            ok = new > 0 and (new.denominator == 1 if story == "items" else new % CENT == 0) and new < 100_000
            if ok:
                break
        else:
            return None
        phrasing = rng.choice(step.phrasings)
        sentences.append(T.render(phrasing, name=name, pronoun=pronoun, unit=unit, x=x, y=y))
        keys.append(step.key)
        v = new
        values.append(T.decimal_text(v))
    if level != "easy" and len(set(keys)) < 2:
        return None
    sentences.append(T.render(rng.choice(T.QUESTIONS[story]), name=name, pronoun=pronoun, unit=unit))
    prompt = " ".join(sentences) + " " + T.ANSWER_INSTRUCTION
    parsed = T.parse_problem(prompt)  # every sentence must read back unambiguously
    if parsed is None or [s.key for s, _, _ in parsed[1]] != keys:
        raise AssertionError(f"templates do not read back: {prompt}")
    return {
        "prompt": prompt,
        "answer": T.decimal_text(v),
        "difficulty": level,
        "metadata": {"story": story, "steps": keys, "values": values},
    }


def generate_tasks(seed: int) -> dict[str, list[dict[str, Any]]]:
    """Every split, a third of each per difficulty, prompts unique across splits."""
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, size in SPLIT_SIZES.items():
        rows = []
        for i in range(size):
            level = T.LEVELS[i % len(T.LEVELS)]
            while True:
                row = make_problem(rng, level)
                if row is not None and row["prompt"] not in seen:
                    break
            seen.add(row["prompt"])
            rows.append({"id": f"calc-{split}-{i:05d}", **row})
        splits[split] = rows
    return {split: splits[split] for split in ("train", "dev", "test")}


def readme(splits: dict[str, list[dict[str, Any]]], seed: int) -> str:
    """The data card."""
    levels = {split: Counter(r["difficulty"] for r in rows) for split, rows in splits.items()}
    steps = {split: Counter(len(r["metadata"]["steps"]) for r in rows) for split, rows in splits.items()}
    lines = [
        "# ToolGym/Calc-v0 data",
        "",
        "Multi-step arithmetic word problems, solved with the env's `calculator(expression)` tool.",
        "",
        f"Generated by `generate.py` (version {GENERATOR_VERSION}, seed {seed}); stdlib-only and",
        "deterministic. Regenerate (byte-identical, checked against `MANIFEST.json` by",
        "`tests/test_env_data.py`):",
        "",
        "```",
        f"python envs_data/calc/generate.py --seed {seed} --out envs_data/calc",
        "```",
        "",
        "Sentence templates live in `toolgym/envs/calc/templates.py`, shared with the scripted oracle",
        "(`toolgym/envs/calc/oracle.py`), which reads problems back with regular expressions compiled",
        "from them and calls the calculator once per step. Changing a template changes the data:",
        "regenerate and bump the env version.",
        "",
        "## Files",
        "",
        "- `tasks/{train,dev,test}.jsonl`: one task per line: `{\"id\", \"prompt\", \"answer\",",
        "  \"difficulty\", \"metadata\"}`. `answer` is the exact final value as decimal text;",
        "  `metadata` has `story` (`items` or `money`), `steps` (the operation keys in order) and",
        "  `values` (the exact running value after the start and after each step).",
        "- `MANIFEST.json`: seed, generator version and SHA-256 of every other file.",
        "",
        "## Difficulty",
        "",
        "- **easy**: an item count, 2 additions/subtractions, numbers up to 60.",
        "- **medium**: an item count, 3-4 steps including products (`x packs of y`), multiples and",
        "  exact divisions, numbers up to a few thousand.",
        "- **hard**: an amount of money in cents, 4-6 steps including unit prices, wages, percentages",
        "  (`v * (1 + x / 100)`) and splits with parentheses (`v / (x + 1)`).",
        "",
        "Every intermediate value is a positive integer (items) or a whole number of cents (money).",
        "",
        "## Grading",
        "",
        "The final answer must contain exactly one number (thousands separators, a currency sign and",
        "units are allowed: `$1,234.50` and `1234.5 dollars` are both 1234.5); it is correct if it is",
        "within a relative tolerance of 1e-6 of the exact answer.",
        "",
        "## Tasks",
        "",
        "| split | easy | medium | hard | 2 steps | 3 steps | 4 steps | 5 steps | 6 steps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for split in splits:
        lines.append(
            f"| {split} | " + " | ".join(str(levels[split][lv]) for lv in T.LEVELS) + " | "
            + " | ".join(str(steps[split][n]) for n in range(2, 7)) + " |"
        )
    lines.append("")
    return "\n".join(lines)


def write_all(out: Path, seed: int) -> None:
    """Generate every file under ``out``."""
    splits = generate_tasks(seed)
    files: dict[str, str] = {}
    for split in ("train", "dev", "test"):
        files[f"tasks/{split}.jsonl"] = jsonl(splits[split])
    files["README.md"] = readme(splits, seed)
    write_with_manifest(out, files, seed=seed, generator_version=GENERATOR_VERSION)


if __name__ == "__main__":
    run_cli(write_all, __doc__, __file__, default_seed=DEFAULT_SEED)
