"""How far a low-precision sampler is from the float32 policy, before any run (issue 19, item 2).

The mismatch fixes (``tis``, ``mis``; ``docs/training.md``) act only on sampled tokens whose
trainer/sampler ratio ``r = π_train / π_sampler`` leaves ``[1/C, C]`` (C = 2 by default). For each
``RLConfig.sampler_dtype`` asked, this rolls out one RL step's episodes from a checkpoint with the
study preset's settings (the env's RL config: prompts × group size, tokens per turn; the first
training tasks, seeded), recomputes the float32 log-probs of the sampled tokens as the trainer does,
and reports:

* ``logp_mismatch``: the trainer's logged mean ``|log π_sampler − log π_train|`` (nats per token);
* ``median_abs_gap``: its median over the sampled tokens;
* ``ratio_min`` / ``ratio_max``: the extreme ratios;
* ``outside_cap``: the share of sampled tokens with ``r ∉ [1/C, C]`` (what ``mis`` would mask, and,
  for those above ``C``, what ``tis`` would cap).

Run:

    python -m benchmarks.collapse.sampler_gap --env ToolGym/Lookup-v0 --init runs/lookup_sft_from_base_s0/model \\
        --dtypes bfloat16,int8,int4 --out benchmarks/results/collapse/search/sampler_gap
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

GAP_KEYS = ("tokens", "logp_mismatch", "median_abs_gap", "ratio_min", "ratio_max", "outside_cap")


def sampler_gap(env_id: str, init: str, dtype: str, *, cap: float = 2.0, seed: int = 0,
                overrides: list[str] | None = None) -> dict[str, float]:
    """The gap between a ``dtype`` sampler and the float32 policy ``init`` over one RL step's
    sampled tokens (see the module docstring), keys :data:`GAP_KEYS`.

    Args:
        env_id: An env with a study preset (:data:`benchmarks.collapse.settings.PRESETS`).
        init: The checkpoint both the policy and the sampler start from.
        dtype: An ``RLConfig.sampler_dtype`` other than ``"float32"``.
        cap: The fixes' cap ``C``.
        seed: The trainer's seed (which tasks and samples).
        overrides: Further ``key=value`` settings of the RL config.

    Raises:
        ValueError: for ``dtype="float32"`` (no sampler copy), ``cap <= 1`` or an env without a preset.
    """
    from baselines.train.config import RLConfig, load_config
    from baselines.train.rl import RLTrainer
    from baselines.train.supervision import mis_weight, sampler_ratio
    from baselines.train.terms import sampled_by_sampler
    from benchmarks.collapse.settings import PRESETS

    if dtype == "float32":
        raise ValueError("sampler_gap compares a low-precision sampler with the float32 policy; got dtype 'float32'.")
    if not cap > 1:
        raise ValueError(f"cap must be > 1, got {cap!r}.")
    if env_id not in PRESETS:
        raise ValueError(f"no study preset for {env_id!r}; expected one of {sorted(PRESETS)}.")
    with tempfile.TemporaryDirectory() as out:
        settings = [f"init={init}", f"sampler_dtype={dtype}", f"out_dir={out}", f"seed={seed}",
                    "tensorboard=false", "progress=false", "eval_every=0", *(overrides or [])]
        trainer = RLTrainer(load_config(RLConfig, PRESETS[env_id].rl_config, settings))
        try:
            trainer.sync_sampler()
            prepared, diag = trainer.prepare(trainer.collect(trainer.train_ids[: trainer.cfg.prompts_per_step]))
        finally:
            trainer.close()
    # the tokens and ratios the fixes see: mis masks exactly the ones outside [1/C, C]
    sampled = sampled_by_sampler(prepared)
    ratio = sampler_ratio(prepared.old_logp, prepared.batch.sample_logprobs, sampled)
    outside = mis_weight(ratio, cap) == 0
    return {
        "tokens": int(sampled.sum()),
        "logp_mismatch": float(diag["train/logp_mismatch"]),
        "median_abs_gap": float(ratio[sampled].log().abs().median()),
        "ratio_min": float(diag["train/sampler_ratio_min"]),
        "ratio_max": float(diag["train/sampler_ratio_max"]),
        "outside_cap": float(outside[sampled].float().mean()),
    }


def to_markdown(rows: dict[str, dict[str, Any]], env_id: str, init: str, cap: float) -> str:
    """A table of :func:`sampler_gap` results, one row per dtype."""
    lines = [f"Sampler/trainer gap on {env_id} from `{init}` (one RL step's sampled tokens; C = {cap:g})", "",
             "| sampler | tokens | mean abs log gap | median | ratio min | ratio max | share outside [1/C, C] |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for dtype, r in rows.items():
        lines.append(f"| {dtype} | {r['tokens']} | {r['logp_mismatch']:.2e} | {r['median_abs_gap']:.1e} | "
                     f"{r['ratio_min']:.3f} | {r['ratio_max']:.3f} | {r['outside_cap']:.2e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: print the table, and write ``sampler_gap.json`` / ``.md`` with ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collapse.sampler_gap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="ToolGym/Lookup-v0", help="Env id with a study preset (default ToolGym/Lookup-v0).")
    parser.add_argument("--init", required=True, help="Checkpoint directory of the policy.")
    parser.add_argument("--dtypes", default="bfloat16,int8,int4", help="Comma-separated sampler dtypes (default bfloat16,int8,int4).")
    parser.add_argument("--cap", type=float, default=2.0, help="The fixes' cap C (default 2).")
    parser.add_argument("--seed", type=int, default=0, help="Trainer seed (default 0).")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="RL config override; repeatable.")
    parser.add_argument("--out", type=Path, help="Write sampler_gap.json and sampler_gap.md here.")
    args = parser.parse_args(argv)
    if not (Path(args.init) / "config.json").is_file():
        parser.error(f"--init {args.init}: not a model directory (no config.json).")
    import toolgym  # noqa: F401  (registers the envs)
    from baselines.llm.model import SAMPLER_STORAGE

    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = [d for d in dtypes if d not in SAMPLER_STORAGE or d == "float32"]
    if unknown:
        parser.error(f"--dtypes: {unknown} not low-precision samplers; expected some of "
                     f"{[d for d in SAMPLER_STORAGE if d != 'float32']}.")
    rows = {d: sampler_gap(args.env, args.init, d, cap=args.cap, seed=args.seed, overrides=args.set) for d in dtypes}
    table = to_markdown(rows, args.env, args.init, args.cap)
    print(table, end="")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "sampler_gap.json").write_text(json.dumps(
            {"env": args.env, "init": args.init, "cap": args.cap, "seed": args.seed, "overrides": args.set, "rows": rows},
            indent=1) + "\n")
        (args.out / "sampler_gap.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
