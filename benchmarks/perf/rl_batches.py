"""Time of an RL step's passes on a run's own batches, as the run was configured and with
``micro_batch_tokens``: the same batch, the same weights, the same minibatches, side by side.

``rl_memory.py`` measures the settings on a synthetic batch; this script measures them on the
batches a real run samples (for example the late, eroding steps of the collapse study's SQL runs,
whose update time per 1,000 policy tokens rose from 2.5 s to 9.1 s: search log entry 55). From
the run's checkpoint before ``--from-step`` (resume is exact), for each of ``--batches`` steps it
samples the step's batch once (:meth:`RLTrainer.begin_step`), then runs
:meth:`RLTrainer.prepare` + :meth:`RLTrainer.update` on it once per setting, in rotating order,
each from the same weights, optimiser state, random streams and advantages (a term's random
permutation, ``permuted_advantages``, is drawn once, by the step), and times them with this
process's CPU time and the wall clock. The run's own setting's result is kept and the next step
follows from it, as the run would (evaluation and callbacks are skipped). Nothing is written to
the run's directory.

Same work: every setting must log the same loss and gradient norm as the run's own setting
(relative 1e-4) and end with the same weights up to a tenth of the learning rate (Adam's
element-wise normalisation, see ``rl_memory.py``).

    python -m benchmarks.perf.rl_batches --run runs/search54/work/runs/none_lr0.0001_kl0_s0 --from-step 201 --batches 5
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.perf._common import ROOT, header_lines, machine, md_table, script_parser, write_results


def measure(run_dir: Path, from_step: int, batches: int, tokens: int, progress: bool = True) -> list[dict[str, Any]]:
    """The per-batch, per-setting timings and statistics (see the module docstring).

    Raises:
        FileNotFoundError: if ``run_dir`` has no ``config.yaml``.
        ValueError: for a ``from_step`` or ``batches`` below 1, or a run with no checkpoint before
            ``from_step``.
    """
    from baselines.train.config import RLConfig, load_config
    from baselines.train.rl import RLTrainer
    from benchmarks.collapse.counterfactual import latest_checkpoint_before, using_config

    if from_step < 1 or batches < 1:
        raise ValueError(f"--from-step and --batches must be ≥ 1, got {from_step} and {batches}.")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no config.yaml; pass the out_dir of an RL run.")
    start = latest_checkpoint_before(run_dir, from_step)
    if start is None:
        raise ValueError(f"{run_dir} has no checkpoint before step {from_step}; pick a later --from-step "
                         "(the run keeps its newest keep_checkpoints checkpoints).")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="toolgym-batches-") as tmp:
        fields = {"out_dir": tmp, "progress": False, "tensorboard": False, "save_every": 0, "eval_every": 0}
        own = load_config(RLConfig, config_path, [], **fields)
        settings = {"run's own": own, f"micro_batch_tokens={tokens}": dataclasses.replace(own, micro_batch_tokens=tokens)}
        trainer = RLTrainer(own, resume=str(start))
        while trainer.step < from_step - 1:
            trainer.train_step()
        for i in range(batches):
            episodes, first, _ = trainer.begin_step()
            advantages = first.batch.advantages.clone()  # a term's random permutation is drawn once, as in the run
            trainer._advantages = lambda *_, adv=advantages: (adv.clone(), False)  # type: ignore[method-assign]
            saved = trainer.snapshot()
            names = list(settings)
            names = names[i % len(names):] + names[: i % len(names)]
            results: dict[str, dict[str, Any]] = {}
            for name in names:
                trainer.restore(saved)
                with using_config(trainer, settings[name]):
                    cpu, wall = time.process_time(), time.perf_counter()
                    prepared, _ = trainer.prepare(episodes)
                    stats = trainer.update(prepared, episodes)
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                results[name] = {"cpu_s": cpu, "wall_s": wall, "loss": stats["train/loss"],
                                 "grad_norm": stats["train/grad_norm"], "after": trainer.snapshot()}
            base = results["run's own"]
            for name, r in results.items():
                weights, base_weights = r["after"].weights, base["after"].weights
                weight_diff = max(float((weights[k] - base_weights[k]).abs().max()) for k in base_weights)
                stat_diff = max(abs(r[k] - base[k]) / max(abs(base[k]), 1e-12) for k in ("loss", "grad_norm"))
                rows.append({"step": trainer.step, "setting": name, "cpu_s": r["cpu_s"], "wall_s": r["wall_s"],
                             "loss": r["loss"], "grad_norm": r["grad_norm"], "weight_diff": weight_diff,
                             "stat_diff": stat_diff, "rows": len(episodes),
                             "tokens": sum(len(e.input_ids) for e in episodes),
                             "longest": max(len(e.input_ids) for e in episodes),
                             "same": weight_diff <= 0.1 * trainer.lr and stat_diff <= 1e-4})
            trainer.restore(base["after"])  # the run goes on from its own setting's update
            del trainer._advantages
            if progress:
                times = ", ".join(f"{r['setting']} {r['cpu_s']:.1f} CPU-s" for r in rows[-len(names):])
                print(f"step {trainer.step}: {rows[-1]['tokens']:,} tokens, longest {rows[-1]['longest']}: {times}",
                      flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and the same-work line; ``--write`` stores the results."""
    parser = script_parser(__file__, __doc__)
    parser.add_argument("--run", type=Path, required=True, help="The run's out_dir (config.yaml, checkpoints/).")
    parser.add_argument("--from-step", type=int, required=True, help="The first step measured (from the checkpoint before it).")
    parser.add_argument("--batches", type=int, default=5, help="Steps measured (default 5).")
    parser.add_argument("--tokens", type=int, default=4096, help="The micro_batch_tokens compared (default 4096).")
    parser.add_argument("--write", action="store_true", help="Write benchmarks/results/perf/rl_batches.{json,md}.")
    args = parser.parse_args(argv)
    if args.tokens < 1:
        parser.error(f"--tokens must be ≥ 1, got {args.tokens}.")
    info = machine()
    try:
        rows = measure(args.run, args.from_step, args.batches, args.tokens)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    own = {r["step"]: r for r in rows if r["setting"] == "run's own"}
    table = md_table(["step", "tokens (longest)", "setting", "CPU-s", "× run's own", "wall s", "loss", "grad norm"], [
        [r["step"], f"{r['tokens']:,} ({r['longest']})", r["setting"], r["cpu_s"], r["cpu_s"] / own[r["step"]]["cpu_s"],
         r["wall_s"], r["loss"], r["grad_norm"]] for r in rows])
    totals = {}
    for r in rows:
        totals[r["setting"]] = totals.get(r["setting"], 0.0) + r["cpu_s"]
    base_total = totals["run's own"]
    summary = "; ".join(f"{name} {total:,.0f} CPU-s ({total / base_total:.2f}×)" for name, total in totals.items())
    same = all(r["same"] for r in rows)
    info["load_at_end"] = list(os.getloadavg())
    lines = header_lines("An RL step's passes on a run's own batches, with and without micro_batch_tokens", info, [
        f"Run: `{args.run}`, steps {args.from_step}–{args.from_step + args.batches - 1}; each batch's "
        "`RLTrainer.prepare` + `RLTrainer.update` once per setting, in rotating order, from the same state.", "",
    ])
    detail = (f"largest weight difference {max(r['weight_diff'] for r in rows):.1e}, largest relative loss / "
              f"grad-norm difference {max(r['stat_diff'] for r in rows):.1e}")
    markdown = "\n".join([*lines, table, "", f"Total: {summary}.", "",
                          f"Same work: {'yes' if same else 'NO'} ({detail})."])
    print(markdown)
    if args.write:
        paths = write_results("rl_batches", {"machine": info, "args": {**vars(args), "run": str(args.run)},
                                             "results": rows, "same_work": same}, markdown)
        print("wrote", *paths)
    return 0 if same else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
