"""Baseline leaderboard: every env × every agent → a tidy CSV, a markdown table and a PNG chart.

    toolgym leaderboard --envs all --agents random,oracle --episodes 50 --seeds 3 --split test

Each (env, agent, seed) cell is one job; jobs run in parallel processes. Episode ``i`` of seed
``s`` uses env seed ``1000 * s + i``, so every agent sees the same tasks.
"""

from __future__ import annotations

import csv
import math
import os
import shlex
import statistics
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

import toolgym
from toolgym.core.errors import ConfigError
from toolgym.evaluation import EpisodeResult, run_episode
from toolgym.registry import env_ids

CSV_COLUMNS = (
    "env", "split", "agent", "seed", "task_id", "success", "reward", "turns", "format_errors",
    "tool_errors", "tokens", "wall_s", "env_s", "tool_s", "output_chars", "stop_reason", "error_codes", "data_hash", "grader_version",
)


@dataclass(frozen=True)
class Job:
    """One leaderboard cell: ``episodes`` episodes of ``agent`` on ``env_id`` with base ``seed``."""

    env_id: str
    agent: str
    seed: int
    episodes: int
    split: str


def resolve_envs(spec: str | Sequence[str]) -> list[str]:
    """``"all"`` → every registered ToolGym env (built-in and plugin); else a comma list of ids.

    Raises:
        ConfigError: for an id that is not registered.
    """
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    if names == ["all"]:
        return env_ids()
    unknown = [n for n in names if n not in gym.registry]
    if unknown:
        raise ConfigError(f"Unknown env ids {unknown}; registered: {env_ids()}.")
    return names


def run_job(job: Job) -> list[dict[str, Any]]:
    """Play one job's episodes; return one CSV row per episode."""
    from baselines.agents import make_agent

    env = gym.make(job.env_id, split=job.split, record_timing=True)
    base: Any = env.unwrapped
    policy = make_agent(job.agent, env, seed=job.seed)
    data_hash = base.task_set.content_hash()
    rows = []
    try:
        for i in range(job.episodes):
            result: EpisodeResult = run_episode(env, policy, seed=1000 * job.seed + i, env_id=job.env_id)
            row = result.to_row()
            row.update(
                env=job.env_id, split=job.split, agent=job.agent, tokens=getattr(policy, "tokens_used", 0),
                data_hash=data_hash, grader_version=base.grader_version,
            )
            del row["env_id"]
            rows.append(row)
    finally:
        env.close()
    return rows


def run_leaderboard(
    envs: Sequence[str],
    agents: Sequence[str],
    *,
    episodes: int = 20,
    seeds: int = 1,
    split: str = "test",
    workers: int | None = None,
    on_job_done: Callable[[Job], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every (env, agent, seed) job, in ``workers`` processes (default: CPU count).

    Returns:
        One row per episode, sorted by env, agent, seed and episode order.
    """
    jobs = [Job(e, a, s, episodes, split) for e in envs for a in agents for s in range(seeds)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    results: dict[Job, list[dict[str, Any]]] = {}
    if workers == 1:
        for job in jobs:
            results[job] = run_job(job)
            if on_job_done:
                on_job_done(job)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_job, job): job for job in jobs}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if on_job_done:
                    on_job_done(futures[future])
    return [row for job in jobs for row in results[job]]


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write the tidy per-episode CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path, *, check_versions: bool = True) -> list[dict[str, Any]]:
    """Read a leaderboard CSV back (numbers parsed).

    With ``check_versions``, warn for every env whose recorded data hash or grader version
    differs from the installed env's: those results are not comparable with new runs.
    """
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    if check_versions:
        _warn_on_version_mismatch(rows, path)
    for row in rows:
        row["success"] = row["success"] in ("True", "1", "true")
        for key in ("reward", "wall_s", "env_s", "tool_s"):
            row[key] = float(row[key])
        for key in ("seed", "turns", "format_errors", "tool_errors", "tokens", "output_chars"):
            row[key] = int(row[key])
    return rows


def _warn_on_version_mismatch(rows: Sequence[dict[str, Any]], path: Path) -> None:
    recorded = {(r["env"], r.get("data_hash"), r.get("grader_version")) for r in rows}
    splits = {r["env"]: r.get("split", "test") for r in rows}
    for env_id, data_hash, grader in sorted(recorded, key=str):
        if env_id not in gym.registry:
            warnings.warn(f"{path}: env {env_id} is not registered here; cannot check its version.", stacklevel=3)
            continue
        env = gym.make(env_id, split=splits[env_id])
        base: Any = env.unwrapped
        current = (base.task_set.content_hash(), str(base.grader_version))
        env.close()
        if (data_hash, str(grader)) != current:
            warnings.warn(
                f"{path}: results for {env_id} were made with different task data or grader "
                f"(data {data_hash}, grader {grader}; installed: data {current[0]}, grader {current[1]}).",
                stacklevel=3,
            )


@dataclass(frozen=True)
class Cell:
    """Aggregate of one env × agent."""

    success: float
    ci95: float
    episodes: int
    mean_turns: float
    format_error_rate: float
    env_ms_per_step: float
    tool_ms_per_step: float


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], Cell]:
    """Success mean ± 95% CI (normal approximation over episodes), turns and format-error rate."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["env"], row["agent"])].append(row)
    cells = {}
    for key, group in groups.items():
        n = len(group)
        p = sum(bool(r["success"]) for r in group) / n
        steps = sum(int(r["turns"]) for r in group)
        cells[key] = Cell(
            success=p,
            ci95=1.96 * math.sqrt(p * (1 - p) / n),
            episodes=n,
            mean_turns=statistics.fmean(int(r["turns"]) for r in group),
            format_error_rate=sum(int(r["format_errors"]) for r in group) / steps if steps else 0.0,
            env_ms_per_step=1000 * sum(float(r["env_s"]) for r in group) / steps if steps else 0.0,
            tool_ms_per_step=1000 * sum(float(r["tool_s"]) for r in group) / steps if steps else 0.0,
        )
    return cells


def to_markdown(rows: Sequence[dict[str, Any]], command: str) -> str:
    """The leaderboard as markdown: success (± 95% CI) per env and agent, plus the macro average."""
    cells = aggregate(rows)
    envs = list(dict.fromkeys(r["env"] for r in rows))
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    hashes = {r["env"]: (r["data_hash"], r["grader_version"]) for r in rows}
    lines = [
        "# ToolGym baseline leaderboard",
        "",
        "Reproduce with:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"toolgym {toolgym.__version__}; success rate ± 95% CI (normal approximation over "
        "episodes); format-error rate = invalid actions per step.",
        "",
        "| env | " + " | ".join(agents) + " |",
        "|---|" + "---:|" * len(agents),
    ]
    for env in envs:
        row = [env]
        for agent in agents:
            c = cells.get((env, agent))
            row.append("–" if c is None else f"{c.success:.3f} ± {c.ci95:.3f}")
        lines.append("| " + " | ".join(row) + " |")
    macro = ["**macro average**"]
    for agent in agents:
        values = [cells[(e, agent)].success for e in envs if (e, agent) in cells]
        macro.append(f"**{statistics.fmean(values):.3f}**" if values else "–")
    lines += ["| " + " | ".join(macro) + " |", "", "## Details", ""]
    lines += ["| env | agent | episodes | success | mean turns | format-error rate | env ms/step | "
              "tool ms/step | data hash | grader |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for (env, agent), c in cells.items():
        data_hash, grader = hashes[env]
        lines.append(
            f"| {env} | {agent} | {c.episodes} | {c.success:.3f} ± {c.ci95:.3f} | "
            f"{c.mean_turns:.2f} | {c.format_error_rate:.3f} | {c.env_ms_per_step:.3f} | "
            f"{c.tool_ms_per_step:.3f} | {data_hash} | {grader} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Grouped bar chart of success per env and agent with 95% CI error bars (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = aggregate(rows)
    envs = list(dict.fromkeys(r["env"] for r in rows))
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    width = 0.8 / max(1, len(agents))
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(envs) + 2), 4))
    for j, agent in enumerate(agents):
        xs = [i + j * width for i in range(len(envs))]
        ys = [cells[(e, agent)].success if (e, agent) in cells else 0.0 for e in envs]
        errs = [cells[(e, agent)].ci95 if (e, agent) in cells else 0.0 for e in envs]
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=agent)
    ax.set_xticks([i + width * (len(agents) - 1) / 2 for i in range(len(envs))])
    ax.set_xticklabels([e.split("/")[-1] for e in envs], rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title("ToolGym baselines")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(rows: Sequence[dict[str, Any]], out_dir: Path, command: str | None = None) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``LEADERBOARD.md`` and (if matplotlib is installed) ``leaderboard.png``."""
    command = command or "toolgym " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = {"csv": out_dir / "leaderboard.csv", "md": out_dir / "LEADERBOARD.md"}
    write_csv(rows, paths["csv"])
    paths["md"].write_text(to_markdown(rows, command))
    try:
        plot(rows, out_dir / "leaderboard.png")
        paths["png"] = out_dir / "leaderboard.png"
    except ImportError:
        pass
    return paths

