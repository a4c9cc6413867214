"""Measure the longest first prompt of every registered ToolGym env (the context a model needs).

For each env, over every task of every split, the first prompt is rendered through a
checkpoint's chat template in both protocols (:mod:`baselines.llm.context`): ``native`` (tools
passed as ``tools=``) and ``text`` (the env's own system prompt, for each action format). The
table gives the longest in UTF-8 bytes (a bound for any byte-level BPE tokenizer) and in tokens of
the committed leaderboard tokenizer and of the tokenizers the shipped SFT configs train.

    python scripts/measure_prompt_context.py                      # committed tokenizer and bytes
    python scripts/measure_prompt_context.py --config-tokenizers  # also train each SFT config's tokenizer

Both protocols over the ~17,000 tasks (text in all six formats) take about half an hour on two
busy cores with the tokenizers; ``--max-tasks 20`` gives a quick look.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "benchmarks" / "results" / "leaderboard" / "models" / "lookup_sft"
CONFIG_DIR = REPO / "baselines" / "train" / "configs"


def config_tokenizer(path: Path) -> Any:
    """The tokenizer the SFT config at ``path`` trains (same corpus and vocabulary size)."""
    from baselines.llm.tokenizer import conversation_text, train_tokenizer
    from baselines.train.config import SFTConfig, load_config
    from baselines.train.envs import ExpertBank, task_ids

    cfg = load_config(SFTConfig, path)
    bank = ExpertBank(cfg.env, cfg.split, cfg.env_kwargs)
    trajectories = [t for t in bank.many(task_ids(bank.env, cfg.num_tasks)) if t.success][: cfg.tokenizer_tasks]
    system = cfg.include_system_prompt
    texts = [conversation_text(t.system if system else None, t.user, t.actions, t.observations) for t in trajectories]
    return train_tokenizer(texts, vocab_size=cfg.vocab_size, model_max_length=cfg.model.max_positions)


def main(argv: list[str] | None = None) -> int:
    """Print the table; return 0."""
    import gymnasium as gym

    import toolgym  # noqa: F401  (registers the envs)
    from baselines.llm.context import first_prompts
    from baselines.llm.tokenizer import load_tokenizer
    from toolgym.core.formats import action_format_names

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-tokenizers", action="store_true", help="Also train each shipped SFT config's tokenizer.")
    parser.add_argument("--max-tasks", type=int, default=None, help="At most this many tasks per split (default: all).")
    args = parser.parse_args(argv)

    tokenizers: dict[str, Any] = {"committed": load_tokenizer(COMMITTED)}
    if args.config_tokenizers:
        for path in sorted(CONFIG_DIR.glob("*_sft.yaml")):
            started = time.perf_counter()
            tokenizers[path.stem] = config_tokenizer(path)
            print(f"# trained the {path.stem} tokenizer ({len(tokenizers[path.stem])} tokens) "
                  f"in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    renderer = tokenizers["committed"]  # every tokenizer carries the same chat template
    formats = [f for f in action_format_names() if f != "auto"]
    names = list(tokenizers)
    print("| env | protocol | longest (bytes) | " + " | ".join(f"tokens ({n})" for n in names) + " | longest at |")
    print("|---|---|---:|" + "---:|" * len(names) + "---|")
    overall = 0
    for env_id in sorted(i for i in gym.registry if i.startswith("ToolGym/")):
        best: dict[str, list[Any]] = {}
        for prompt in first_prompts(env_id, action_formats=formats, max_tasks=args.max_tasks):
            text = prompt.render(renderer)
            row = best.setdefault(prompt.protocol, [0, None] + [0] * len(names))
            size = len(text.encode("utf-8"))
            if size > row[0]:
                row[0], row[1] = size, prompt
            for k, name in enumerate(names):
                n = len(tokenizers[name].encode(text, add_special_tokens=False))
                if n > size:
                    raise AssertionError(f"{name}: {n} tokens > {size} bytes for {prompt.task_id}")
                row[2 + k] = max(row[2 + k], n)
        for protocol, row in best.items():
            at = row[1]
            where = f"{at.split}/{at.task_id}" + (f" ({at.action_format})" if protocol == "text" else "")
            print(f"| {env_id} | {protocol} | {row[0]:,} | " + " | ".join(f"{n:,}" for n in row[2:]) + f" | {where} |")
            overall = max(overall, row[0])
    print(f"\nLongest first prompt: {overall:,} bytes (an upper bound on tokens for any byte-level BPE).")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
