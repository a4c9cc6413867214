"""Generate the ``lookup`` task splits (seeded; rerun to reproduce the shipped files exactly).

Usage: ``python envs_data/lookup/generate.py [--out envs_data/lookup/tasks]``

Each task is a random table over keys ``K0``..``K23`` and values ``D0``..``D9``: a chain of
``hops`` keys from the start key to a value, plus distractor entries (keys that lead elsewhere),
so that following a wrong key gives a plausible but wrong answer. Difficulty is the hop count:
easy = 1, medium = 2, hard = 3. Splits are drawn from disjoint seeds; tasks are equally split
between the three difficulties.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

NUM_KEYS = 24
NUM_VALUES = 10
DISTRACTORS = 4
SPLITS = {"train": (2400, 0), "dev": (300, 1), "test": (300, 2)}
DIFFICULTY = {1: "easy", 2: "medium", 3: "hard"}


def make_task(rng: random.Random, index: int, split: str, hops: int) -> dict:
    """One task: a chain of ``hops`` lookups ending in a value, plus distractors."""
    keys = rng.sample([f"K{i}" for i in range(NUM_KEYS)], hops + DISTRACTORS)
    chain, spare = keys[:hops], keys[hops:]
    answer = f"D{rng.randrange(NUM_VALUES)}"
    table = {chain[i]: chain[i + 1] for i in range(hops - 1)}
    table[chain[-1]] = answer
    for key in spare:  # distractors point at values or at other keys, never into the chain's start
        table[key] = f"D{rng.randrange(NUM_VALUES)}" if rng.random() < 0.5 else rng.choice(spare)
    return {
        "id": f"lookup-{split}-{index:05d}",
        "prompt": f"Find the value of key {chain[0]}.",
        "answer": answer,
        "difficulty": DIFFICULTY[hops],
        "metadata": {"hops": hops, "start": chain[0], "table": table},
    }


def generate(out: Path) -> None:
    """Write ``train.jsonl``, ``dev.jsonl`` and ``test.jsonl`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for split, (size, seed) in SPLITS.items():
        rng = random.Random(1000 + seed)
        rows = [make_task(rng, i, split, hops=1 + i % 3) for i in range(size)]
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, sort_keys=True) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "tasks")
    generate(parser.parse_args().out)
