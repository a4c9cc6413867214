"""How broad a starting policy is, and how it plays, before any RL (issue 19, items 1 and 5).

For each checkpoint, on the env's dev split:

* **play** (sampled at T = 1, the RL sampler's temperature): success with its 95% Wilson
  interval and the format-error rate, as trained (``id``), with shifted tool outputs
  (``ood_tool``) and with the whole presentation shifted (``ood``), by
  :func:`benchmarks.collapse.ood.evaluate_checkpoint` (same tasks and seeds for every model);
* **breadth**, teacher-forced on the oracle's solved dev episodes (the RL trainer's probe): the
  mean entropy of the next-token distribution over the assistant's tokens (nats), the mean
  probability of the expert's token (``content_p``: content tokens only), and the control-token
  mass where the grammar forbids it (``illegal_total``) and on the wrong tag (``leak_total``).

A near-deterministic policy has a low entropy and a content probability near 1; the reference
study's pretrained starting model is broad. Run:

    python -m benchmarks.collapse.starting_policy --model old=benchmarks/results/leaderboard/models/lookup_sft \\
        --model base_sft_s0=runs/lookup_sft_from_base_s0/model --out benchmarks/results/collapse/search/starting_policy
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

BREADTH_KEYS = ("entropy", "content_p", "illegal_total", "leak_total")


def breadth(model_dir: str, env_id: str, *, probe_size: int = 64, max_observation_tokens: int = 256) -> dict[str, float]:
    """Teacher-forced breadth statistics of ``model_dir`` on the oracle's solved dev episodes
    (see the module docstring), keys :data:`BREADTH_KEYS`."""
    import torch
    import torch.nn.functional as F

    import toolgym  # noqa: F401  (registers the envs)
    from baselines.llm.tokenizer import ChatFormat
    from baselines.train.batch import collate
    from baselines.train.common import batch_logits, chunks, load_policy_checkpoint, probe_stats
    from baselines.train.envs import ExpertBank, task_ids
    from baselines.train.grammar import env_action_format, format_control_tokens

    model, tokenizer = load_policy_checkpoint(model_dir)
    model.eval()
    bank = ExpertBank(env_id, "dev")
    chat = ChatFormat(tokenizer, include_system_prompt=False)
    chat.control = format_control_tokens(tokenizer, env_action_format(bank.env))
    gold = [t for t in bank.many(task_ids(bank.env)[:probe_size]) if t.success]
    batch = collate([t.to_episode(chat, max_observation_tokens=max_observation_tokens) for t in gold], chat.control)
    stats = probe_stats(model, batch, chat, temperature=1.0)
    total, count = 0.0, 0.0
    with torch.no_grad():
        for rows in chunks(batch.size, 32):
            sub = batch.select(rows)
            logp = F.log_softmax(batch_logits(model, sub, 1.0), dim=-1)
            entropy = -(logp.exp() * logp).sum(-1)
            total += float((entropy * sub.loss_mask).sum())
            count += float(sub.loss_mask.sum())
    return {
        "entropy": total / count if count else math.nan,
        "content_p": stats["diag/probe/content_p"],
        "illegal_total": stats["diag/probe/illegal_total"],
        "leak_total": stats["diag/probe/leak_total"],
    }


def describe(models: dict[str, str], env_id: str, *, episodes: int, max_new_tokens: int) -> dict[str, dict[str, float]]:
    """Play and breadth statistics of every ``name -> checkpoint directory`` in ``models``."""
    from benchmarks.collapse.ood import evaluate_checkpoint
    from toolgym.stats import wilson_interval

    out: dict[str, dict[str, float]] = {}
    for name, path in models.items():
        played = evaluate_checkpoint(path, env_id, split="dev", episodes=episodes, max_new_tokens=max_new_tokens)
        low, high = wilson_interval(round(played["id/success"] * episodes), episodes)
        out[name] = {**played, "id/success_ci_low": low, "id/success_ci_high": high, **breadth(path, env_id)}
    return out


def to_markdown(results: dict[str, dict[str, float]], models: dict[str, str], env_id: str, episodes: int) -> str:
    """A table of :func:`describe`'s results."""
    lines = [
        f"Starting policies on {env_id} (dev split), {episodes} episodes per variant sampled at T = 1; "
        "breadth teacher-forced on the oracle's solved dev episodes.",
        "",
        "| model | checkpoint | success id [95% CI] | format errors id | success ood_tool | success ood "
        "| entropy (nats/token) | content p | illegal control mass | leaked tag mass |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | `{models[name]}` | {r['id/success']:.3f} [{r['id/success_ci_low']:.3f}, {r['id/success_ci_high']:.3f}] "
            f"| {r['id/format_error_rate']:.3f} | {r['ood_tool/success']:.3f} | {r['ood/success']:.3f} "
            f"| {r['entropy']:.3f} | {r['content_p']:.3f} | {r['illegal_total']:.2e} | {r['leak_total']:.2e} |"
        )
    return "\n".join(lines) + "\n"


def _model(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--model {spec!r}: expected NAME=CHECKPOINT_DIR.")
    if not (Path(path) / "config.json").is_file():
        raise argparse.ArgumentTypeError(f"--model {spec!r}: {path} is not a model directory (no config.json).")
    return name, path


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collapse.starting_policy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=_model, action="append", required=True, metavar="NAME=DIR", help="A checkpoint; repeatable.")
    parser.add_argument("--env", default="ToolGym/Lookup-v0", help="Env id (default ToolGym/Lookup-v0).")
    parser.add_argument("--episodes", type=int, default=256, help="Episodes per variant (default 256).")
    parser.add_argument("--max-new-tokens", type=int, default=40, help="Tokens per turn (default 40, the study's).")
    parser.add_argument("--out", type=Path, help="Write starting_policy.json and .md here.")
    args = parser.parse_args(argv)
    models = dict(args.model)
    results = describe(models, args.env, episodes=args.episodes, max_new_tokens=args.max_new_tokens)
    table = to_markdown(results, models, args.env, args.episodes)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any] = {"env": args.env, "episodes": args.episodes, "models": models, "results": results}
        (args.out / "starting_policy.json").write_text(json.dumps(payload, indent=2))
        (args.out / "starting_policy.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
