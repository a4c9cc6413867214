"""Baseline leaderboard: every env × every agent → a tidy CSV, a markdown table and a PNG chart.

    toolgym leaderboard --envs all --agents random,oracle --episodes 50 --seeds 3 --split test

Each (env, agent, seed) cell is one job; jobs run in parallel processes (torch limited to one
thread per process). Episode ``i`` of seed ``s`` uses env seed ``1000 * s + i``, so every agent
sees the same tasks. Agents that can play several episodes at once (``llm:``, ``openai:``; see
:func:`toolgym.core.policy.supports_batch`) play a job's episodes in batches of ``batch_size``: one
batched generation per turn for every running episode. Agents tied to one env (``sb3:`` models
record the env they were trained on) run only there; other cells show "–".
"""

from __future__ import annotations

import csv
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

import baselines.agents  # noqa: F401 - registers the baseline agents with toolgym.agents
import toolgym
from baselines.procs import exit_with_parent
from toolgym import agents
from toolgym.core.errors import ConfigError, did_you_mean
from toolgym.core.policy import supports_batch
from toolgym.evaluation import run_episode, run_episodes_batched
from toolgym.registry import NAMESPACE, env_class, env_ids
from toolgym.stats import wilson_interval

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
    batch_size: int = 16


def resolve_envs(
    spec: str | Sequence[str], *, on_skip: Callable[[str, str], None] | None = None
) -> list[str]:
    """``"all"`` → every registered ToolGym env (built-in and plugin) whose optional packages are
    installed; else a comma list of ids.

    An env skipped by ``"all"`` is reported as ``on_skip(env_id, reason)`` (the reason names the
    install command), or with a warning when ``on_skip`` is None.

    Raises:
        ConfigError: for an id that is not registered (with a did-you-mean).
    """
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    if names == ["all"]:
        available = []
        for env_id in env_ids():
            check = getattr(env_class(env_id), "check_dependencies", None)
            try:
                if check is not None:
                    check()
            except ImportError as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                if on_skip is None:
                    warnings.warn(f"Skipping {env_id}: {reason}", stacklevel=2)
                else:
                    on_skip(env_id, reason)
                continue
            available.append(env_id)
        return available
    known = env_ids()
    for name in names:
        if name not in gym.registry:
            short = f"{NAMESPACE}/{name}"
            if short in gym.registry:
                raise ConfigError(f"Unknown env id {name!r}. Did you mean {short!r}?")
            raise ConfigError(
                f"Unknown env id {name!r}.{did_you_mean(name, known) or ' Run `toolgym list` for the registered ids.'}"
            )
    return names


def check_agent_spec(spec: str) -> None:
    """Validate an agent spec without building the agent (no torch import, no model load); the
    checks are the ones :func:`baselines.agents.register` gives :mod:`toolgym.agents`.

    ``random`` and ``oracle`` are always valid; ``sb3:PATH`` needs the model and its sidecar;
    ``llm:PATH[?options]`` needs a checkpoint directory and known options;
    ``openai:MODEL@BASE_URL[?options]`` needs both parts and known options.

    Raises:
        ConfigError: naming the spec, what was expected and the closest valid name.
    """
    agents.check_agent_spec(spec)


def skip_reason(agent: str, env_id: str) -> str | None:
    """Why ``agent`` does not play ``env_id`` (``None`` if it does): ``sb3:`` models play only
    the env they were trained on (read from their sidecar), and ``oracle`` needs an env that
    declares an ``oracle_cls``."""
    return agents.skip_reason(agent, env_id)


def agent_applies(agent: str, env_id: str) -> bool:
    """Whether ``agent`` can play ``env_id`` (see :func:`skip_reason`)."""
    return skip_reason(agent, env_id) is None


def run_job(job: Job) -> list[dict[str, Any]]:
    """Play one job's episodes (batched for agents that support it); one CSV row per episode."""
    from baselines.agents import make_agent

    env = gym.make(job.env_id, split=job.split, record_timing=True)
    base: Any = env.unwrapped
    policy = make_agent(job.agent, env, seed=job.seed)
    data_hash = base.task_set.content_hash()
    seeds = [1000 * job.seed + i for i in range(job.episodes)]
    rows = []
    try:
        if supports_batch(policy) and job.episodes > 1 and job.batch_size > 1:
            played = run_episodes_batched(env, policy, seeds, batch_size=job.batch_size, env_id=job.env_id)
        else:
            played = []
            for seed in seeds:
                result = run_episode(env, policy, seed=seed, env_id=job.env_id)
                played.append((result, int(getattr(policy, "tokens_used", 0))))
        for result, tokens in played:
            row = result.to_row()
            row.update(
                env=job.env_id, split=job.split, agent=job.agent, tokens=tokens,
                data_hash=data_hash, grader_version=base.grader_version,
            )
            del row["env_id"]
            rows.append(row)
    finally:
        env.close()
    return rows


def _limit_threads() -> None:
    """Pool initializer: one torch thread per worker process (workers already use every core),
    and the worker ends when the leaderboard's process does (:func:`~baselines.procs.exit_with_parent`)."""
    exit_with_parent()
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def check_counts(**counts: int | None) -> None:
    """Raise :class:`ConfigError` naming the first count that is not a positive integer
    (``None`` means "default" and passes), e.g. ``check_counts(episodes=0)``."""
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


def run_leaderboard(
    envs: Sequence[str],
    agents: Sequence[str],
    *,
    episodes: int = 20,
    seeds: int = 1,
    split: str = "test",
    workers: int | None = None,
    batch_size: int = 16,
    on_job_done: Callable[[Job], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every (env, agent, seed) job, in ``workers`` processes (default: CPU count).

    Pairs where :func:`agent_applies` is false are skipped. ``batch_size`` is the number of
    episodes a batching agent (``llm:``, ``openai:``) plays at once.

    Returns:
        One row per episode, sorted by env, agent, seed and episode order.
    """
    check_counts(episodes=episodes, seeds=seeds, workers=workers, batch_size=batch_size)
    jobs = [
        Job(e, a, s, episodes, split, batch_size)
        for e in envs for a in agents if agent_applies(a, e) for s in range(seeds)
    ]
    if not jobs:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    results: dict[Job, list[dict[str, Any]]] = {}
    if workers == 1:
        for job in jobs:
            results[job] = run_job(job)
            if on_job_done:
                on_job_done(job)
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_limit_threads) as pool:
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
    successes: int
    episodes: int
    ci_low: float
    """Lower end of the 95% Wilson interval of ``success``."""
    ci_high: float
    """Upper end of the 95% Wilson interval of ``success``."""
    mean_turns: float
    format_error_rate: float
    env_ms_per_step: float
    tool_ms_per_step: float

    def rate_text(self) -> str:
        """``"0.700 [0.604, 0.781]"``: success and its 95% Wilson interval."""
        return f"{self.success:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}]"


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], Cell]:
    """Success with its 95% Wilson interval over episodes, turns and format-error rate."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["env"], row["agent"])].append(row)
    cells = {}
    for key, group in groups.items():
        n = len(group)
        wins = sum(bool(r["success"]) for r in group)
        low, high = wilson_interval(wins, n)
        steps = sum(int(r["turns"]) for r in group)
        cells[key] = Cell(
            success=wins / n,
            successes=wins,
            episodes=n,
            ci_low=low,
            ci_high=high,
            mean_turns=statistics.fmean(int(r["turns"]) for r in group),
            format_error_rate=sum(int(r["format_errors"]) for r in group) / steps if steps else 0.0,
            env_ms_per_step=1000 * sum(float(r["env_s"]) for r in group) / steps if steps else 0.0,
            tool_ms_per_step=1000 * sum(float(r["tool_s"]) for r in group) / steps if steps else 0.0,
        )
    return cells


def display_name(agent: str) -> str:
    """A short column name for an agent spec: ``sb3:PATH/calc_ppo.zip`` -> ``sb3:calc_ppo``,
    ``llm:PATH/lookup_sft?opts`` -> ``llm:lookup_sft?opts``, ``openai:MODEL@URL?opts`` ->
    ``openai:MODEL?opts``."""
    kind, sep, target = agent.partition(":")
    if not sep:
        return agent
    target, qmark, options = target.partition("?")
    if kind == "openai":
        return f"openai:{target.partition('@')[0]}{qmark}{options}"
    path = Path(target)
    return f"{kind}:{path.stem if kind == 'sb3' else path.name}{qmark}{options}"


def agent_order(rows: Sequence[dict[str, Any]], agents: Sequence[str] | None = None) -> list[str]:
    """The agents of ``rows`` in the order given (e.g. the ``--agents`` list), then any others in
    order of appearance."""
    present = list(dict.fromkeys(r["agent"] for r in rows))
    return [a for a in (agents or []) if a in present] + [a for a in present if a not in (agents or [])]


def to_markdown(rows: Sequence[dict[str, Any]], command: str, agents: Sequence[str] | None = None) -> str:
    """The leaderboard as markdown: success [95% Wilson interval] per env and agent, plus the macro average;
    columns follow ``agents`` (default: order of appearance)."""
    cells = aggregate(rows)
    envs = list(dict.fromkeys(r["env"] for r in rows))
    agents = agent_order(rows, agents)
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
        f"toolgym {toolgym.__version__}; success rate [95% Wilson interval] over "
        "episodes; format-error rate = invalid actions per step; – = agent not run on that env "
        "(an SB3 model plays only the env it was trained on); a macro average over fewer envs "
        "says so.",
        "",
        "| env | " + " | ".join(display_name(a) for a in agents) + " |",
        "|---|" + "---:|" * len(agents),
    ]
    for env in envs:
        row = [env]
        for agent in agents:
            c = cells.get((env, agent))
            row.append("–" if c is None else c.rate_text())
        lines.append("| " + " | ".join(row) + " |")
    macro = ["**macro average**"]
    for agent in agents:
        values = [cells[(e, agent)].success for e in envs if (e, agent) in cells]
        partial = f" ({len(values)} of {len(envs)} envs)" if len(values) < len(envs) else ""
        macro.append(f"**{statistics.fmean(values):.3f}**{partial}" if values else "–")
    lines += ["| " + " | ".join(macro) + " |", ""]
    renamed = [a for a in agents if display_name(a) != a]
    if renamed:
        lines += ["Agents: " + "; ".join(f"`{display_name(a)}` = `{a}`" for a in renamed) + ".", ""]
    lines += ["## Details", ""]
    lines += ["| env | agent | episodes | success | mean turns | format-error rate | env ms/step | "
              "tool ms/step | data hash | grader |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for (env, agent), c in cells.items():
        data_hash, grader = hashes[env]
        lines.append(
            f"| {env} | {display_name(agent)} | {c.episodes} | {c.rate_text()} | "
            f"{c.mean_turns:.2f} | {c.format_error_rate:.3f} | {c.env_ms_per_step:.3f} | "
            f"{c.tool_ms_per_step:.3f} | {data_hash} | {grader} |"
        )
    return "\n".join(lines) + "\n"


ENV_KINDS = ("generated", "BFCL", "plugin")
"""Groups of envs in the leaderboard figure, in this order."""


def env_kind(env_id: str) -> str:
    """``"plugin"`` for ids outside the ``ToolGym/`` namespace, ``"BFCL"`` for the BFCL family,
    else ``"generated"`` (the envs with seeded generated data)."""
    if not env_id.startswith(f"{NAMESPACE}/"):
        return "plugin"
    return "BFCL" if "/BFCL-" in env_id else "generated"


def _short_env(env_id: str) -> str:
    name = env_id.split("/", 1)[-1].removesuffix("-v0")
    return name.replace("BFCL-MultiTurn-", "BFCL-").replace("BFCL-MultiTurn", "BFCL-Base")


def caption(rows: Sequence[dict[str, Any]]) -> str:
    """The figure's caption: split, episodes per cell and what the numbers are."""
    cells = aggregate(rows)
    counts = sorted({c.episodes for c in cells.values()})
    per_cell = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    splits = ", ".join(sorted({str(r.get("split", "?")) for r in rows}))
    return (
        f"Success rate on the {splits} split, {per_cell} episodes per cell; brackets and bars: 95% Wilson "
        "interval. –: agent not run on that env. Macro: unweighted mean over the envs an agent ran."
    )


def plot(rows: Sequence[dict[str, Any]], path: Path, agents: Sequence[str] | None = None) -> None:
    """A table-style figure of success per env (rows, grouped by :func:`env_kind`) and agent
    (columns): each cell shows the rate, its 95% Wilson interval as text and as a bar on a 0–1
    scale, shaded by the rate; a macro-average row and a caption with the split and episode
    count. Sized so that up to four agents fit a paper's column width. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cells = aggregate(rows)
    present = list(dict.fromkeys(r["env"] for r in rows))
    envs = [e for kind in ENV_KINDS for e in present if env_kind(e) == kind]
    agents = agent_order(rows, agents)
    layout: list[tuple[str, str]] = []  # ("group", name) | ("env", id) | ("macro", "")
    for kind in ENV_KINDS:
        members = [e for e in envs if env_kind(e) == kind]
        if members:
            layout += [("group", kind)] + [("env", e) for e in members]
    layout.append(("macro", ""))
    names = [display_name(a) for a in agents]
    cell_w, cell_h, label_w, bottom = 0.62, 0.30, 1.15, 0.5
    header = 0.15 + 0.036 * max(len(n) for n in names)  # column labels at 45°, 5.8 pt
    width = label_w + cell_w * len(agents) + 0.045 * max(len(n) for n in names) * 0.7
    height = bottom + cell_h * len(layout) + header
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((label_w / width, bottom / height, cell_w * len(agents) / width, cell_h * len(layout) / height))
    ax.set_xlim(0, len(agents))
    ax.set_ylim(len(layout), 0)
    ax.axis("off")
    cmap = plt.get_cmap("Blues")
    for y, (kind, name) in enumerate(layout):
        if kind == "group":
            ax.text(-0.05, y + 0.62, name, ha="right", va="center", fontsize=6.5, style="italic", weight="bold")
            ax.axhline(y + 0.98, color="0.6", lw=0.4)
            continue
        label = "macro average" if kind == "macro" else _short_env(name)
        ax.text(-0.05, y + 0.5, label, ha="right", va="center", fontsize=6.5, weight="bold" if kind == "macro" else None)
        if kind == "macro":
            ax.axhline(y + 0.02, color="0.3", lw=0.6)
        for x, agent in enumerate(agents):
            if kind == "macro":
                values = [cells[(e, agent)].success for e in envs if (e, agent) in cells]
                text = f"{statistics.fmean(values):.2f}" if values else "–"
                if values and len(values) < len(envs):
                    text += f" ({len(values)}/{len(envs)})"
                ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=6.5, weight="bold")
                continue
            cell = cells.get((name, agent))
            if cell is None:
                ax.text(x + 0.5, y + 0.5, "–", ha="center", va="center", fontsize=6.5, color="0.5")
                continue
            shade = cmap(0.08 + 0.72 * cell.success)
            ax.add_patch(Rectangle((x + 0.03, y + 0.04), 0.94, 0.92, color=shade, lw=0))
            ink = "white" if cell.success > 0.55 else "black"
            ax.text(x + 0.5, y + 0.34, f"{cell.success:.2f}", ha="center", va="center", fontsize=6.5, color=ink, weight="bold")
            ax.text(x + 0.5, y + 0.66, f"[{cell.ci_low:.2f}, {cell.ci_high:.2f}]", ha="center", va="center",
                    fontsize=4.6, color=ink)
            # The interval drawn on a 0–1 scale along the bottom of the cell.
            ax.plot([x + 0.08, x + 0.92], [y + 0.88, y + 0.88], color=ink, lw=0.3, alpha=0.35)
            ax.plot([x + 0.08 + 0.84 * cell.ci_low, x + 0.08 + 0.84 * cell.ci_high], [y + 0.88, y + 0.88],
                    color=ink, lw=1.4, solid_capstyle="butt")
    for x, name in enumerate(names):
        ax.text(x + 0.35, -0.1, name, ha="left", va="bottom", rotation=45, rotation_mode="anchor",
                fontsize=5.8, weight="bold")
    fig.text(0.02, 0.03, caption(rows), fontsize=5, wrap=True, va="bottom", ha="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=300)
    plt.close(fig)


def regenerate(out_dir: Path) -> dict[str, Path]:
    """Rewrite ``LEADERBOARD.md`` and ``leaderboard.png`` in ``out_dir`` from its
    ``leaderboard.csv`` (no episodes are played), keeping the reproducing command and agent
    order recorded in the existing ``LEADERBOARD.md``.

    Raises:
        ConfigError: if ``out_dir`` has no ``leaderboard.csv`` or ``LEADERBOARD.md``.
    """
    csv_path, md_path = out_dir / "leaderboard.csv", out_dir / "LEADERBOARD.md"
    for needed in (csv_path, md_path):
        if not needed.is_file():
            raise ConfigError(f"Cannot regenerate {out_dir}: {needed.name} is missing.")
    command = md_path.read_text().split("```bash\n", 1)[1].split("\n", 1)[0]
    words = shlex.split(command)
    agents = words[words.index("--agents") + 1].split(",") if "--agents" in words else None
    rows = read_csv(csv_path)
    md_path.write_text(to_markdown(rows, command, agents))
    paths = {"md": md_path}
    plot(rows, out_dir / "leaderboard.png", agents)
    paths["png"] = out_dir / "leaderboard.png"
    return paths


def replace_cells(out_dir: Path, rerun_csv: Path, *, add: bool = False) -> list[tuple[str, str]]:
    """Replace the cells of ``out_dir``'s leaderboard by those of a rerun, then :func:`regenerate`.

    Every (env, agent) cell present in ``rerun_csv`` (a ``leaderboard.csv`` written by another
    ``toolgym leaderboard`` run, e.g. after a model was re-saved) replaces all rows of that cell
    in ``out_dir/leaderboard.csv``; other cells are kept as they are, in their order, with the
    rerun's cells at the place of the rows they replace. Rows are copied as text (no rounding).

    With ``add=True``, the rerun may also bring cells the leaderboard lacks (e.g. a new agent
    played on some envs): they are appended after the existing rows, and a new agent's column
    comes after the agents of the recorded command. The recorded command is not changed: say in
    the results' README which command made the added cells.

    Returns:
        The (env, agent) cells replaced or added.

    Raises:
        ConfigError: a file is missing, the CSV columns differ, or (without ``add``) a rerun cell
            is not in the leaderboard.
    """
    base_csv = out_dir / "leaderboard.csv"
    for needed in (base_csv, rerun_csv):
        if not needed.is_file():
            raise ConfigError(f"Cannot replace cells: {needed} is missing.")

    def rows_of(path: Path) -> tuple[list[str], list[dict[str, str]]]:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            return list(reader.fieldnames or []), list(reader)

    columns, base = rows_of(base_csv)
    rerun_columns, rerun = rows_of(rerun_csv)
    if columns != rerun_columns:
        raise ConfigError(f"Cannot replace cells: {rerun_csv} has columns {rerun_columns}, expected {columns}.")
    cells = list(dict.fromkeys((r["env"], r["agent"]) for r in rerun))
    missing = sorted(set(cells) - {(r["env"], r["agent"]) for r in base})
    if missing and not add:
        raise ConfigError(
            f"Cannot replace cells: {missing} are not in {base_csv} (a rerun only replaces cells; "
            "pass add=True to append new cells)."
        )
    new_rows = {cell: [r for r in rerun if (r["env"], r["agent"]) == cell] for cell in cells}
    merged: list[dict[str, str]] = []
    for row in base:
        cell = (row["env"], row["agent"])
        if cell in new_rows:
            merged.extend(new_rows.pop(cell))  # the whole rerun cell, once, where the cell began
        elif cell not in cells:
            merged.append(row)
    for rows in new_rows.values():  # cells the leaderboard did not have (add=True)
        merged.extend(rows)
    with base_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(merged)
    regenerate(out_dir)
    return cells


def write_outputs(
    rows: Sequence[dict[str, Any]], out_dir: Path, command: str | None = None, agents: Sequence[str] | None = None
) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``LEADERBOARD.md`` and (if matplotlib is installed) ``leaderboard.png``."""
    command = command or "toolgym " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = {"csv": out_dir / "leaderboard.csv", "md": out_dir / "LEADERBOARD.md"}
    write_csv(rows, paths["csv"])
    paths["md"].write_text(to_markdown(rows, command, agents))
    try:
        plot(rows, out_dir / "leaderboard.png", agents)
        paths["png"] = out_dir / "leaderboard.png"
    except ImportError:
        pass
    return paths

