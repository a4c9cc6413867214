"""Generate the ToolGym/Code-v0 task splits (seeded; rerun to reproduce the files exactly).

Usage (from a source checkout)::

    python envs_data/code/generate.py --seed 0 --out envs_data/code

Writes ``tasks/{train,dev,test}.jsonl``, ``README.md`` and ``MANIFEST.json`` (SHA-256 of every
written file). The output is a pure function of the seed and of
``toolgym/envs/code/families.py`` (loaded by file path: the script is stdlib-only and does not
import the ``toolgym`` package).

Each task asks for one function of a family (FizzBuzz variants, run-length encoding, matrix
rotation...) with random parameters. Its hidden tests are argument lists drawn by the family
(edge cases first) whose expected values come from running the family's reference solution
here, in-process: the reference is our own code, never an agent's.
"""

from __future__ import annotations

import copy
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # envs_data/_toolgym_generate.py
from _toolgym_generate import jsonl, load_module, run_cli, write_with_manifest  # noqa: E402

GENERATOR_VERSION = "1.0.0"
DEFAULT_SEED = 0
SPLIT_SIZES: dict[str, int] = {"test": 150, "dev": 150, "train": 1050}
"""Tasks per split, a third per difficulty. Test is drawn first, so the train size never changes it."""
MAX_EXPECTED_CHARS = 2_000
"""Largest JSON text of one expected value (the harness refuses values above 4,000)."""
MAX_EXAMPLE_CHARS = 300
"""Largest example call or result shown in a prompt."""
REPO_ROOT = Path(__file__).resolve().parents[2]
FAMILIES_PATH = REPO_ROOT / "toolgym" / "envs" / "code" / "families.py"


F = load_module("_toolgym_code_families", FAMILIES_PATH)


def reference_function(source: str, name: str) -> Any:
    """Execute a reference solution (our own template code) and return its function."""
    namespace: dict[str, Any] = {"__name__": "reference"}
    exec(compile(source, "<reference>", "exec"), namespace)  # noqa: S102 - trusted templates only
    return namespace[name]


def json_value(value: Any) -> Any:
    """``value`` after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(value))


def make_task(rng: random.Random, level: str) -> dict[str, Any] | None:
    """One task of ``level`` (or ``None`` if the draw is unusable; the caller retries)."""
    family = rng.choice([f for f in F.FAMILIES if f.level == level])
    params = family.sample_params(rng)
    n_tests = F.TESTS_PER_LEVEL[level]
    source = family.source(params)
    function = reference_function(source, family.function)
    unique: list[list[Any]] = []
    seen: set[str] = set()
    for args in family.sample_inputs(rng, params, n_tests + 6):
        key = json.dumps(args)
        if key not in seen:
            seen.add(key)
            unique.append(json_value(args))
    if len(unique) < n_tests + 1:
        return None
    inputs = unique[:n_tests]
    expected = [json_value(function(*copy.deepcopy(args))) for args in inputs]
    if any(len(json.dumps(v)) > MAX_EXPECTED_CHARS for v in expected):
        return None
    example = None
    for args in unique[n_tests:]:
        result = function(*copy.deepcopy(args))
        if (
            len(F.call_text(family.function, args)) <= MAX_EXAMPLE_CHARS
            and len(repr(result)) <= MAX_EXAMPLE_CHARS
        ):
            example = (args, result)
            break
    if example is None:
        return None
    prompt = F.render_prompt(family, params, example[0], example[1], n_tests)
    reading = F.parse_prompt(prompt)  # the oracle must read every prompt back unambiguously
    if reading is None or reading[0].key != family.key or reading[0].source(reading[1]) != source:
        raise AssertionError(f"prompt does not read back: {prompt}")
    return {
        "prompt": prompt,
        "answer": {"function": family.function, "inputs": inputs, "expected": expected},
        "difficulty": level,
        "metadata": {"family": family.key, "params": params, "reference": source, "tests": n_tests},
    }


def generate_tasks(seed: int) -> dict[str, list[dict[str, Any]]]:
    """Every split, a third of each per difficulty, prompts unique across splits."""
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, size in SPLIT_SIZES.items():
        rows = []
        for i in range(size):
            level = F.LEVELS[i % len(F.LEVELS)]
            while True:
                row = make_task(rng, level)
                if row is not None and row["prompt"] not in seen:
                    break
            seen.add(row["prompt"])
            rows.append({"id": f"code-{split}-{i:05d}", **row})
        splits[split] = rows
    return {split: splits[split] for split in ("train", "dev", "test")}


def readme(splits: dict[str, list[dict[str, Any]]], seed: int) -> str:
    """The data card."""
    lines = [
        "# ToolGym/Code-v0 data",
        "",
        "Programming tasks: write one Python function that passes hidden unit tests, using the",
        "env's `run_python(code)` and `submit(code)` tools (code runs in the `toolgym.sandbox`",
        "backend). The final answer is the solution code, graded by the hidden tests.",
        "",
        f"Generated by `generate.py` (version {GENERATOR_VERSION}, seed {seed}); stdlib-only and",
        "deterministic. Regenerate (byte-identical, checked against `MANIFEST.json` by",
        "`tests/test_env_data.py`):",
        "",
        "```",
        f"python envs_data/code/generate.py --seed {seed} --out envs_data/code",
        "```",
        "",
        "Task families live in `toolgym/envs/code/families.py` (description template, parameters,",
        "reference solution, input samplers), shared with the scripted oracle",
        "(`toolgym/envs/code/oracle.py`), which reads the family and parameters back from the",
        "prompt and submits the rendered reference. Changing a family changes the data: regenerate",
        "and bump the env version.",
        "",
        "## Files",
        "",
        '- `tasks/{train,dev,test}.jsonl`: one task per line: `{"id", "prompt", "answer",',
        '  "difficulty", "metadata"}`. `answer` holds the hidden tests: `function` (the name to',
        "  define), `inputs` (one argument list per test) and `expected` (the values the reference",
        "  returns, after a JSON round trip). `metadata` has `family`, `params`, `reference` (the",
        "  reference solution's source) and `tests` (the number of hidden tests).",
        "- `MANIFEST.json`: seed, generator version and SHA-256 of every other file.",
        "",
        "## Difficulty",
        "",
        "- **easy** (8 hidden tests): "
        + ", ".join(f"`{f.key}`" for f in F.FAMILIES if f.level == "easy")
        + ".",
        "- **medium** (10 hidden tests): "
        + ", ".join(f"`{f.key}`" for f in F.FAMILIES if f.level == "medium")
        + ".",
        "- **hard** (12 hidden tests): "
        + ", ".join(f"`{f.key}`" for f in F.FAMILIES if f.level == "hard")
        + ".",
        "",
        "Hidden tests start with the family's edge cases (empty input, a single element, exact",
        "multiples...) followed by random inputs; the prompt's visible example is never one of them.",
        "A family's parameters (divisors, separators, shifts, bases, rotation directions...) are drawn",
        "per task, so two tasks of one family usually ask for different functions; families with few",
        "parameter combinations repeat a specification across splits with different hidden tests.",
        "",
        "## Grading",
        "",
        "The hidden-test harness runs the solution in the sandbox and prints the returned values; the",
        "expected values never enter the sandbox. Values are compared after a JSON round trip (tuples",
        "equal lists), `bool` only equals `bool`, floats within a relative tolerance of 1e-9. Each",
        "test has a time limit (`test_timeout_s`, 1 s by default).",
        "",
        "## Tasks",
        "",
        "| split | easy | medium | hard | " + " | ".join(f.key for f in F.FAMILIES) + " |",
        "|---|---|---|---|" + "---|" * len(F.FAMILIES),
    ]
    for split, rows in splits.items():
        levels = Counter(r["difficulty"] for r in rows)
        fams = Counter(r["metadata"]["family"] for r in rows)
        lines.append(
            f"| {split} | "
            + " | ".join(str(levels[lv]) for lv in F.LEVELS)
            + " | "
            + " | ".join(str(fams[f.key]) for f in F.FAMILIES)
            + " |"
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
