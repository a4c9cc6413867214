"""Run the study: one shared SFT checkpoint, then every (arm, seed, lr, KL) run, resumably.

Layout of ``work_dir`` (large, not committed)::

    sft/model/                 the shared starting checkpoint (unless --sft names one)
    runs/<run>/                each RL run: metrics.csv, checkpoints/, model/, summary.json

and of ``out_dir`` (small, committed)::

    steps.csv                  every logged step of every run, with arm/lr/kl_coef/seed columns
    runs.csv                   one row per run: trainer summary + in/out-of-distribution eval
    manifest.json              the commands, settings and versions of the study

A run whose ``summary.json`` exists is skipped; an interrupted run resumes from its latest
checkpoint (``RLTrainer(resume="auto")``); a run whose folder another process holds (it is being
trained) is skipped too, so two invocations of one command share the runs instead of training
one twice. Runs execute in ``jobs`` worker processes (one torch thread each, ending with their
parent); on a 2-core machine ``jobs=2`` is the useful maximum.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from baselines.procs import claim_dir, dir_in_use, exit_with_parent
from benchmarks.collapse.ood import VARIANTS
from benchmarks.collapse.settings import PRESETS, QUICK_RL, QUICK_SFT, Preset, RunSpec, arm_supervision

logger = logging.getLogger(__name__)


def preset_for(env_id: str) -> Preset:
    """The study preset of ``env_id``.

    Raises:
        ValueError: for an env without a preset (naming the ones that have one).
    """
    try:
        return PRESETS[env_id]
    except KeyError:
        raise ValueError(f"No collapse-study preset for {env_id!r}; presets exist for {sorted(PRESETS)}.") from None


def _quiet_transformers() -> None:
    """No per-checkpoint progress bars from transformers in the study's logs."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def train_sft(env_id: str, work_dir: Path, *, quick: bool, overrides: Sequence[str] = ()) -> Path:
    """Train (once) the shared SFT starting checkpoint; returns its model directory."""
    from baselines.train.config import SFTConfig, load_config
    from baselines.train.sft import SFTTrainer

    _quiet_transformers()
    model_dir = work_dir / "sft" / "model"
    if (model_dir / "config.json").exists():
        logger.info("Reusing the SFT checkpoint %s", model_dir)
        return model_dir
    preset = preset_for(env_id)
    extra = [*preset.sft_overrides, *(QUICK_SFT if quick else ()), *overrides]
    config = load_config(SFTConfig, preset.sft_config, extra, env=env_id, out_dir=str(work_dir / "sft"))
    config.progress = False
    config.tensorboard = False
    SFTTrainer(config).train()
    return model_dir


def rl_overrides(env_id: str, *, quick: bool, steps: int | None, extra: Sequence[str] = ()) -> list[str]:
    """Overrides shared by every run of a study (preset, ``--quick`` budget, ``--steps``, ``--set``)."""
    preset = preset_for(env_id)
    out = [*preset.rl_overrides, *(QUICK_RL if quick else ())]
    if steps is not None:
        out.append(f"steps={steps}")
    return out + list(extra)


def _run_one(spec: RunSpec, env_id: str, init: str, run_dir: str, shared: list[str], threads: int) -> dict[str, Any]:
    """Worker: train one run (resuming if interrupted), evaluate in/out of distribution, write
    ``summary.json``; returns the summary. The run's folder is locked throughout (a second study
    process skips it, see :func:`run_study`)."""
    release = claim_dir(run_dir)  # held until summary.json is written, not only while training
    try:
        return _train_and_summarise(spec, env_id, init, run_dir, shared, threads)
    finally:
        release()


def _train_and_summarise(spec: RunSpec, env_id: str, init: str, run_dir: str, shared: list[str], threads: int) -> dict[str, Any]:
    import torch

    from baselines.train.config import RLConfig, load_config
    from baselines.train.rl import RLTrainer
    from benchmarks.collapse.ood import evaluate_checkpoint

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)
    _quiet_transformers()
    preset = preset_for(env_id)
    overrides = [*shared, *spec.overrides()]
    config = load_config(
        RLConfig, preset.rl_config, overrides, env=env_id, init=init, out_dir=run_dir,
        **{"supervision.use": arm_supervision(spec.arm)},
    )
    config.progress = False
    config.tensorboard = False
    config.threads = threads
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = RLTrainer(config, resume="auto").train()
    final = evaluate_checkpoint(str(Path(run_dir) / "model"), env_id, **_eval_kwargs(config))
    summary.update(_final_fields(final))
    summary.update(spec.labels())
    summary["run_wall_s"] = time.perf_counter() - started
    # CPU seconds of this process (all its threads) over the run: its cost, whatever else shared
    # the machine. A study with --jobs 1 runs in-process, hence the difference from the start.
    summary["run_cpu_s"] = time.process_time() - cpu_started
    Path(run_dir, "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


def run_study(
    specs: Sequence[RunSpec],
    *,
    env_id: str,
    work_dir: Path,
    out_dir: Path,
    quick: bool = False,
    steps: int | None = None,
    sft: str | None = None,
    jobs: int = 1,
    threads: int | None = None,
    extra: Sequence[str] = (),
    command: str = "",
    progress: Callable[[str], None] | None = None,
    on_steps: Callable[[int, int], None] | None = None,
    poll_s: float = 5.0,
) -> list[dict[str, Any]]:
    """Run every spec not finished yet, then (re)write ``steps.csv``, ``runs.csv`` and the manifest.

    Args:
        specs: The runs (arm × seed × lr × KL).
        env_id: Env of the study (must have a preset).
        work_dir: Where checkpoints and per-run logs go.
        out_dir: Where the merged CSVs and the manifest go.
        quick: Tiny budget (pipeline check, not a result).
        steps: RL steps per run (default: the preset's).
        sft: An existing SFT checkpoint directory to start from (default: train one in work_dir).
        jobs: Worker processes.
        threads: Torch threads per run (default: 1 with several jobs, else every core). Set 1
            to run two single-job studies side by side without oversubscribing the cores.
        extra: ``key=value`` overrides for every run.
        command: The command line, recorded in the manifest.
        progress: Called with a line of text after each run.
        on_steps: Called with ``(RL steps done, RL steps in all)`` over the runs still to do, every
            ``poll_s`` seconds while worker processes run (after each run with ``jobs=1``), so a
            caller can show progress and an estimate of the time left.
        poll_s: Seconds between two ``on_steps`` calls.

    Returns:
        The summaries of all runs (finished earlier or now).
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    work_dir, out_dir = Path(work_dir), Path(out_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    preset = preset_for(env_id)
    init = sft or str(train_sft(env_id, work_dir, quick=quick))
    shared = rl_overrides(env_id, quick=quick, steps=steps if steps is not None else (None if quick else preset.steps), extra=extra)
    evaluate_start(env_id, init, shared, work_dir, out_dir)
    if threads is None:
        threads = 1 if jobs > 1 else max(1, (os.cpu_count() or 1))
    todo = [s for s in specs if not (work_dir / "runs" / s.name / "summary.json").exists()]
    say = progress or (lambda line: None)
    say(f"{len(specs) - len(todo)} of {len(specs)} runs already done; running {len(todo)} with {jobs} job(s).")
    busy = {s.name: pid for s in todo if (pid := dir_in_use(work_dir / "runs" / s.name)) is not None}
    if busy:  # another study process is training them: leave them to it
        say("skipped, being trained by another process: " + ", ".join(f"{n} (pid {p})" for n, p in busy.items()))
        todo = [s for s in todo if s.name not in busy]
    started = time.perf_counter()
    run_dirs = [work_dir / "runs" / spec.name for spec in todo]
    total_steps = len(todo) * _target_steps(preset, shared)
    report_steps = on_steps or (lambda done, total: None)
    if todo:
        report_steps(sum(_steps_logged(d) for d in run_dirs), total_steps)
        if jobs <= 1:
            for i, spec in enumerate(todo, 1):
                s = _run_one(spec, env_id, init, str(work_dir / "runs" / spec.name), shared, threads)
                say(_progress_line(i, len(todo), s, started))
                report_steps(sum(_steps_logged(d) for d in run_dirs), total_steps)
        else:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=exit_with_parent) as pool:
                pending = {pool.submit(_run_one, s, env_id, init, str(d), shared, threads) for s, d in zip(todo, run_dirs, strict=True)}
                finished_runs = 0
                while pending:
                    finished, pending = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        finished_runs += 1
                        say(_progress_line(finished_runs, len(todo), fut.result(), started))
                    report_steps(sum(_steps_logged(d) for d in run_dirs), total_steps)
    backfill_evaluations(work_dir, say)
    summaries = collect(work_dir, out_dir)
    write_manifest(out_dir, env_id=env_id, init=init, shared=shared, specs=specs, quick=quick, command=command, work_dir=work_dir,
                   sft_given=sft is not None)
    return summaries


def _eval_kwargs(config: Any) -> dict[str, Any]:
    """How a policy trained with ``config`` is evaluated at the end of its run."""
    return {
        "split": config.eval_split, "episodes": config.eval_episodes, "env_kwargs": config.env_kwargs,
        "include_system_prompt": config.include_system_prompt, "max_new_tokens": config.max_new_tokens,
        "max_observation_tokens": config.max_observation_tokens, "seed": config.seed + 7,
        # a run's own device where this machine has it (a GPU run backfilled on a CPU machine: the CPU)
        "device": config.device if config.device == "cpu" or _has_cuda() else "cpu",
    }


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _final_fields(final: dict[str, float]) -> dict[str, float]:
    """``{"ood/success": x}`` -> ``{"final_ood_success": x}`` (the summary's field names)."""
    return {f"final_{k.replace('/', '_')}": v for k, v in final.items()}


def backfill_evaluations(work_dir: Path, progress: Callable[[str], None] | None = None) -> int:
    """Add evaluation variants that a finished run's ``summary.json`` lacks (variants added after
    it ran), from its saved final model and its own config; returns how many runs were updated."""
    from baselines.train.config import RLConfig, load_config
    from benchmarks.collapse.ood import evaluate_checkpoint

    updated = 0
    for summary_path in sorted(Path(work_dir, "runs").glob("*/summary.json")):
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        missing = tuple(v for v in VARIANTS if f"final_{v}_success" not in summary)
        if not missing:
            continue
        run_dir = summary_path.parent
        config = load_config(RLConfig, run_dir / "config.yaml", [])
        final = evaluate_checkpoint(str(run_dir / "model"), config.env, **_eval_kwargs(config), variants=missing)
        summary.update(_final_fields(final))
        summary_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        updated += 1
        if progress is not None:
            progress(f"backfilled {', '.join(missing)} evaluation of {run_dir.name}")
    return updated


def evaluate_start(env_id: str, init: str, shared: list[str], work_dir: Path, out_dir: Path) -> dict[str, Any]:
    """In- and out-of-distribution success of the starting checkpoint, evaluated as each run's
    final policy is (seed-0 settings); cached in ``work_dir/start_eval.json`` and copied to
    ``out_dir/start_eval.json`` for the report (the reference for the runs' final evaluations)."""
    from baselines.train.config import RLConfig, load_config
    from benchmarks.collapse.ood import evaluate_checkpoint

    cache = work_dir / "start_eval.json"
    if cache.exists():
        result = json.loads(cache.read_text(encoding="utf-8"))
    else:
        config = load_config(RLConfig, preset_for(env_id).rl_config, [*shared, "seed=0"], env=env_id, init=init, out_dir=str(work_dir / "start"))
        result = {"checkpoint": init, **_final_fields(evaluate_checkpoint(init, env_id, **_eval_kwargs(config)))}
        cache.write_text(json.dumps(result, indent=2), encoding="utf-8")
    missing = [v for v in VARIANTS if f"final_{v}_success" not in result]
    if missing:  # a cache from before a variant was added
        config = load_config(RLConfig, preset_for(env_id).rl_config, [*shared, "seed=0"], env=env_id, init=init, out_dir=str(work_dir / "start"))
        result.update(_final_fields(evaluate_checkpoint(init, env_id, **_eval_kwargs(config), variants=tuple(missing))))
        cache.write_text(json.dumps(result, indent=2), encoding="utf-8")
    (out_dir / "start_eval.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def _target_steps(preset: Preset, shared: Sequence[str]) -> int:
    """RL steps of one run of the study (the last ``steps=`` override, else the preset's config)."""
    for item in reversed(list(shared)):
        key, _, value = item.partition("=")
        if key.strip() == "steps":
            return int(value)
    from baselines.train.config import RLConfig, load_config

    return int(load_config(RLConfig, preset.rl_config, list(shared)).steps)


def _steps_logged(run_dir: Path) -> int:
    """RL steps a run has logged so far (data rows of its ``metrics.csv``; 0 before the first)."""
    path = Path(run_dir) / "metrics.csv"
    try:
        with path.open("rb") as fh:
            return max(0, sum(1 for _ in fh) - 1)
    except OSError:
        return 0


def _progress_line(i: int, n: int, s: dict[str, Any], started: float) -> str:
    collapse = s.get("collapse_step")
    return (
        f"[{i}/{n}] {s['run']}: best {s['best_success']:.2f} final {s['final_success']:.2f} "
        f"collapse {'-' if collapse is None else collapse} ood {s.get('final_ood_success', math.nan):.2f} "
        f"({time.perf_counter() - started:.0f}s)"
    )


def collect(work_dir: Path, out_dir: Path) -> list[dict[str, Any]]:
    """Merge every finished run under ``work_dir/runs`` (this invocation's and earlier ones', e.g.
    the main grid and the LR/KL sweep) into ``steps.csv`` and ``runs.csv``."""
    rows: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for summary_path in sorted(Path(work_dir, "runs").glob("*/summary.json")):
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        summaries.append(summary)
        labels = {k: summary[k] for k in ("arm", "lr", "kl_coef", "seed", "run")}
        with open(summary_path.parent / "metrics.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rows.append({**labels, **row})
    _write_csv(out_dir / "steps.csv", rows)
    _write_csv(out_dir / "runs.csv", summaries)
    return summaries


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def write_manifest(
    out_dir: Path, *, env_id: str, init: str, shared: list[str], specs: Sequence[RunSpec], quick: bool, command: str,
    work_dir: Path, sft_given: bool = False,
) -> None:
    """Record how the study was run (merged with earlier invocations' commands).

    ``sft_given``: the starting checkpoint ``init`` came from ``--sft`` rather than from the
    preset's SFT config, so ``sft_config`` is recorded as ``None`` (the study did not train it).
    """
    import torch
    import transformers

    path = out_dir / "manifest.json"
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    commands = old.get("commands", [])
    if command and command not in commands:
        commands.append(command)
    preset = preset_for(env_id)
    manifest = {
        "env": env_id,
        "quick": quick,
        "commands": commands,
        "sft_checkpoint": init,
        "sft_config": None if sft_given else str(preset.sft_config.relative_to(preset.sft_config.parents[3])),
        "rl_config": str(preset.rl_config.relative_to(preset.rl_config.parents[3])),
        "shared_overrides": shared,
        "runs": sorted({s.name for s in specs} | set(old.get("runs", []))),
        "specs": {s.name: asdict(s) for s in specs} | old.get("specs", {}),
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "machine": f"{platform.machine()} cpus={os.cpu_count()}",
        },
        "argv": sys.argv,
        "work_dir": str(work_dir),
    }
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
