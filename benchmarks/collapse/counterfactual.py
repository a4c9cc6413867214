"""Counterfactual updates at a collapse step: what drives the update that breaks the model?

A run-level control (``permuted_advantages`` for the whole run) cannot answer this once the
control itself breaks the model within a few steps. Here the run is replayed exactly up to the
step *before* the collapse (from its latest checkpoint at or before it: resume is exact), the
collapse step's rollouts are sampled and prepared once, and then the step's update is applied
several times from the same weights and optimiser state, each time with other advantages:

* ``real`` -- the advantages the run used (reproduces the run's own update);
* ``permuted`` -- the same advantages permuted within the batch (the reward's link to the
  episodes cut, everything else equal);
* ``negated`` -- the advantages with the opposite sign;
* ``zeroed`` -- every advantage 0: the auxiliary terms alone (KL, entropy, supervision terms);
  with none of them the update has no gradient and is skipped.

After each variant: how far the update moved the policy (``approx_kl_after_update``, the weights'
L2 change), the probe's control-token statistics, and success on the run's fixed evaluation tasks.

Usage::

    python -m benchmarks.collapse.counterfactual --run runs/collapse/work/none_lr0.002_kl0_s1 --step 7 \\
        [--variants real,permuted,negated,zeroed] [--eval-episodes 64] [--update-set epochs=1] [--out cf.json]

``--update-set`` changes the examined update only (``lr=…``, ``epochs=1``, ``target_kl=0.12``, …);
each variant reports the Adam updates it took and whether ``target_kl`` stopped it.

``--run`` is a run directory of the study (or any ``RLTrainer`` out_dir with ``config.yaml`` and
checkpoints); the run's own files are not changed (the replay writes to a temporary directory).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

VARIANTS: tuple[str, ...] = ("real", "permuted", "negated", "zeroed")
"""The advantage variants of one update (see the module docstring)."""

REPORTED: tuple[str, ...] = (
    "eval/success",
    "eval/format_error_rate",
    "diag/probe/illegal_total",
    "diag/probe/after_open_eot",
    "diag/probe/content_p",
)
"""Metrics measured after each variant's update (besides the update's own statistics)."""


def latest_checkpoint_before(run_dir: Path, step: int) -> Path | None:
    """The run's checkpoint with the highest step ``< step`` (``None``: replay from the start)."""
    found = []
    for path in (run_dir / "checkpoints").glob("step_*"):
        try:
            n = int(path.name.split("_", 1)[1])
        except ValueError:
            continue
        if n < step:
            found.append((n, path))
    return max(found)[1] if found else None


def branch(
    run_dir: Path,
    step: int,
    variants: Sequence[str] = VARIANTS,
    *,
    eval_episodes: int | None = None,
    overrides: Sequence[str] = (),
    update_overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Replay ``run_dir`` to ``step - 1``, then apply step ``step``'s update once per variant.

    Args:
        run_dir: A trainer out_dir with ``config.yaml`` (and ``checkpoints/step_*`` to start from).
        step: The step whose update is examined (≥ 1).
        variants: Any of :data:`VARIANTS`.
        eval_episodes: Evaluation episodes after each variant (default: the run's own).
        overrides: ``key=value`` config overrides for the replay (e.g. ``threads=1``).
        update_overrides: ``key=value`` overrides of the examined update only, not of the replay
            before it (e.g. ``epochs=1``: the same batch with one pass instead of the run's;
            ``lr=1e-4``: the lr scaled by ``1e-4 / the run's lr``; ``scale_rewards=none``: the
            step's advantages without the division by the group's standard deviation).

    Returns:
        ``{"run", "step", "start_checkpoint", "before": {...}, "variants": {name: {...}}}``.

    Raises:
        ValueError: for an unknown variant or a step < 1.
        FileNotFoundError: if ``run_dir`` has no ``config.yaml``.
    """
    import torch

    from baselines.train.common import probe_stats
    from baselines.train.config import RLConfig, load_config
    from baselines.train.optim import set_lr
    from baselines.train.rl import RLTrainer

    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise ValueError(f"Unknown counterfactual variants {bad or list(variants)}; expected some of {list(VARIANTS)}.")
    if step < 1:
        raise ValueError(f"step must be ≥ 1, got {step}.")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no config.yaml; pass the out_dir of an RL run.")
    start = latest_checkpoint_before(run_dir, step)
    with tempfile.TemporaryDirectory(prefix="toolgym-cf-") as tmp:
        fields: dict[str, Any] = {"out_dir": tmp, "progress": False, "tensorboard": False, "save_every": 0, "eval_every": 0}
        if eval_episodes is not None:
            fields["eval_episodes"] = eval_episodes
        cfg = load_config(RLConfig, config_path, list(overrides), **fields)
        update_cfg = load_config(RLConfig, config_path, [*overrides, *update_overrides], **fields)
        if update_cfg.optimizer != cfg.optimizer:  # the replay steps the run's own optimiser state
            raise ValueError(f"--update-set cannot change the optimizer ({cfg.optimizer!r} → {update_cfg.optimizer!r}): "
                             "the replayed update continues the run's own optimiser state; use --set for the whole replay.")
        if start is not None:  # the checkpoint's trainer state, in the replay's own out_dir
            trainer = RLTrainer(cfg, resume=str(start))
        else:
            trainer = RLTrainer(cfg)
        while trainer.step < step - 1:
            trainer.train_step()
        before = {k: v for k, v in trainer._evaluate("eval").items() if k in REPORTED}
        episodes, prepared, metrics = trainer.begin_step()
        before.update({k: v for k, v in metrics.items() if k in REPORTED})
        saved = trainer.snapshot()
        real = prepared.batch.advantages.clone()
        if update_overrides:  # e.g. scale_rewards=none: the step's advantages as the update's config computes them
            with using_config(trainer, update_cfg):
                real = trainer.episode_advantages(episodes).to(real.device, real.dtype).reshape(real.shape)
        generator = torch.Generator().manual_seed(cfg.seed + step)
        advantages = {
            "real": real,
            "permuted": real[torch.randperm(len(real), generator=generator)],
            "negated": -real,
            "zeroed": torch.zeros_like(real),
        }
        out: dict[str, Any] = {}
        for name in variants:
            trainer.restore(saved)
            prepared.batch.advantages.copy_(advantages[name])
            if update_overrides:
                set_lr(trainer.optimizer, trainer.lr * update_cfg.lr / cfg.lr)
            with using_config(trainer, update_cfg):
                stats = trainer.update(prepared, episodes)
            moved = math.sqrt(
                sum(float((p.detach() - saved.weights[k]).double().pow(2).sum()) for k, p in trainer.model.state_dict().items())
            )
            after = probe_stats(trainer.model, trainer.probe, trainer.chat, temperature=cfg.temperature)
            after.update(trainer._evaluate("eval"))
            out[name] = {
                "weight_change_l2": moved,
                "approx_kl_after_update": stats["train/approx_kl_after_update"],
                "grad_norm": stats["train/grad_norm"],
                "updates": stats["train/updates"],
                "skipped_updates": stats["train/skipped_updates"],
                "kl_stopped": stats["train/kl_stopped"],
                "kl_rolled_back": stats.get("train/kl_rolled_back", 0.0),
                "expert_guard_rolled_back": stats.get("train/expert_guard_rolled_back", 0.0),
                "expert_nll_rise_max": stats.get("train/expert_nll_rise_max", math.nan),
                **{k.removeprefix("train/"): v for k, v in stats.items() if k.startswith("train/structure/")},
                **{k: v for k, v in after.items() if k in REPORTED},
            }
    return {
        "run": str(run_dir),
        "step": step,
        "start_checkpoint": str(start) if start is not None else None,
        "training_success_at_step": metrics.get("train/success"),
        "update_overrides": list(update_overrides),
        "before": before,
        "variants": out,
    }


@contextmanager
def using_config(trainer: Any, cfg: Any) -> Iterator[None]:
    """Run ``trainer`` with ``cfg`` inside the block, its own config again after it."""
    own = trainer.cfg
    trainer.cfg = cfg
    try:
        yield
    finally:
        trainer.cfg = own


def markdown(result: dict[str, Any]) -> str:
    """One table: the state before the update and after each variant."""
    cols = ["weight_change_l2", "approx_kl_after_update", "grad_norm", *REPORTED]
    lines = [
        f"Run `{result['run']}`, update of step {result['step']} (replayed from {result['start_checkpoint'] or 'the start'})"
        + (f", the update with {', '.join(result['update_overrides'])}." if result.get("update_overrides") else "."),
        "",
        "| variant | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
        "| before | " + " | ".join(_fmt(result["before"].get(c, math.nan)) for c in cols) + " |",
    ]
    for name, row in result["variants"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c, math.nan)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _fmt(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collapse.counterfactual", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="The run's out_dir (config.yaml, checkpoints/).")
    parser.add_argument("--step", type=int, required=True, help="The step whose update is examined.")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"Comma-separated, any of {', '.join(VARIANTS)}.")
    parser.add_argument("--eval-episodes", type=int, help="Evaluation episodes after each variant (default: the run's).")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Config override for the replay.")
    parser.add_argument("--update-set", action="append", default=[], metavar="KEY=VALUE",
                        help="Config override of the examined update only (e.g. epochs=1, lr=1e-4).")
    parser.add_argument("--out", type=Path, help="Also write the result as JSON here.")
    args = parser.parse_args(argv)
    try:
        result = branch(args.run, args.step, [v for v in args.variants.split(",") if v], eval_episodes=args.eval_episodes,
                        overrides=args.set, update_overrides=args.update_set)
    except (ValueError, FileNotFoundError) as exc:
        parser.exit(2, f"error: {exc}\n")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
