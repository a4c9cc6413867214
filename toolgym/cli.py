"""The ``toolgym`` command line: list, info, play and run environments."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import gymnasium as gym
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import toolgym  # noqa: F401 - registers the environments
from toolgym.core.errors import ToolGymError, did_you_mean
from toolgym.core.tasks import data_fingerprint
from toolgym.evaluation import evaluate, summarize
from toolgym.registry import NAMESPACE, env_class, env_ids, plugin_of

app = typer.Typer(
    help="ToolGym: Gymnasium environments for LLM agents that use tools.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

from toolgym.sandbox.cli import app as sandbox_app  # noqa: E402 - light: no docker import

app.add_typer(sandbox_app, name="sandbox", help="Build and check the code-execution sandbox.")


def _resolve(env_id: str) -> str:
    """Accept ``Search-v0`` as shorthand for ``ToolGym/Search-v0``; fail clearly on unknown ids."""
    ids = env_ids()
    if env_id in ids or env_id in gym.registry:
        return env_id
    if f"{NAMESPACE}/{env_id}" in ids:
        return f"{NAMESPACE}/{env_id}"
    console.print(f"[red]Unknown environment {env_id!r}.[/red]{did_you_mean(env_id, ids)}")
    console.print(f"Registered: {', '.join(ids)}")
    raise typer.Exit(2)


@app.command("list")
def list_envs() -> None:
    """List every registered ToolGym environment (built-in and plugin)."""
    table = Table("id", "source", "description")
    for env_id in env_ids():
        plugin = plugin_of(env_id)
        try:
            doc = (env_class(env_id).__doc__ or "").strip().splitlines()[0]
        except Exception as exc:  # noqa: BLE001 - show broken entries instead of failing
            doc = f"[red]cannot import: {exc}[/red]"
        table.add_row(env_id, f"plugin: {plugin}" if plugin else "built-in", doc)
    console.print(table)


@app.command()
def info(
    env_id: Annotated[str, typer.Argument(help="Environment id, e.g. ToolGym/Search-v0.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Show an environment's tools (with JSON schemas), splits, sizes and difficulty levels."""
    env_id = _resolve(env_id)
    env = gym.make(env_id)
    base: Any = env.unwrapped
    splits: dict[str, Any] = {}
    for split in ("train", "dev", "test"):
        try:
            tasks = base.load_tasks(split)
        except ToolGymError:
            continue
        splits[split] = {
            "size": len(tasks),
            "difficulty": tasks.difficulties(),
            "data_hash": tasks.content_hash(),
        }
    try:
        fingerprint: str | None = data_fingerprint(base.data_name) if base.data_name else None
    except ToolGymError:
        fingerprint = None
    report = {
        "id": env_id,
        "class": f"{type(base).__module__}:{type(base).__name__}",
        "data_fingerprint": fingerprint,
        "pinned_data_hash": base.pinned_data_hash,
        "action_format": base.format.name,
        "max_turns": base.max_turns,
        "grader_version": base.grader_version,
        "oracle": base.oracle_cls,
        "tools": [t.to_openai()["function"] for t in base.tools.values()],
        "splits": splits,
    }
    env.close()
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(f"[bold]{env_id}[/bold]  ({report['class']})")
    console.print(
        f"action format: {report['action_format']}   max_turns: {report['max_turns']}   "
        f"grader version: {report['grader_version']}   oracle: {report['oracle'] or '-'}"
    )
    pinned = report["pinned_data_hash"]
    status = "" if pinned is None else (" (matches the pinned version)" if pinned == fingerprint else
                                        f" [red](pinned {pinned}: data changed!)[/red]")
    console.print(f"data fingerprint: {fingerprint or '-'}{status}")
    table = Table("tool", "description", "parameters (JSON Schema)")
    for fn in report["tools"]:
        table.add_row(fn["name"], fn["description"], json.dumps(fn["parameters"], indent=1))
    console.print(table)
    splits_table = Table("split", "tasks", "difficulty", "data hash")
    for split, meta in splits.items():
        levels = ", ".join(f"{k}: {v}" for k, v in meta["difficulty"].items())
        splits_table.add_row(split, str(meta["size"]), levels, meta["data_hash"])
    console.print(splits_table)


@app.command()
def play(
    env_id: Annotated[str, typer.Argument(help="Environment id.")],
    split: Annotated[str, typer.Option(help="Task split.")] = "dev",
    seed: Annotated[int, typer.Option(help="Seed that picks the task.")] = 0,
    task_id: Annotated[str | None, typer.Option(help="Play this task id.")] = None,
) -> None:
    """Play an episode yourself: type one action per line (':q' quits)."""
    env_id = _resolve(env_id)
    env = gym.make(env_id, split=split)
    options = {"task_id": task_id} if task_id else None
    observation, info_ = env.reset(seed=seed, options=options)
    console.print(f"[dim]task {info_['task_id']} ({info_['difficulty']})[/dim]")
    console.print(observation, markup=False, highlight=False)
    while True:
        try:
            action = input("\naction> ")
        except EOFError:
            break
        if action.strip() in {":q", ":quit"}:
            break
        observation, reward, terminated, truncated, step_info = env.step(action)
        console.print(observation, markup=False, highlight=False)
        if step_info["error"]:
            console.print(f"[yellow]error code: {step_info['error']}[/yellow]")
        if terminated or truncated:
            console.print(f"[bold]Episode over: reward {reward}, success {step_info['success']}[/bold]")
            break
    env.close()


@app.command()
def run(
    env_id: Annotated[str, typer.Argument(help="Environment id.")],
    agent: Annotated[str, typer.Option(
        help="Agent: random, oracle, sb3:PATH, llm:PATH (local HF model dir) or openai:MODEL@BASE_URL.")] = "oracle",
    episodes: Annotated[
        int, typer.Option(help="Episodes to play; 0 plays every task of the split once.")
    ] = 0,
    split: Annotated[str, typer.Option(help="Task split.")] = "test",
    seed: Annotated[int, typer.Option(help="Base seed.")] = 0,
    max_turns: Annotated[int | None, typer.Option(help="Override the env's turn limit.")] = None,
) -> None:
    """Run an agent and print success rate, mean turns and format-error rate."""
    from baselines.agents import make_agent

    env_id = _resolve(env_id)
    kwargs = {"max_turns": max_turns} if max_turns else {}
    probe = gym.make(env_id, split=split, **kwargs)
    policy = make_agent(agent, probe, seed=seed)
    total = episodes or len(probe.unwrapped.task_set)  # type: ignore[attr-defined]
    probe.close()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not sys.stderr.isatty(),
    ) as progress:
        bar = progress.add_task(f"{agent} on {env_id}", total=total)
        results = evaluate(
            env_id, policy, episodes=episodes or None, split=split, seed=seed, env_kwargs=kwargs,
            on_episode=lambda _: progress.advance(bar),
        )
    summary = summarize(results)
    console.print(f"[bold]{env_id}[/bold]  agent={agent}  split={split}  episodes={summary.episodes}")
    console.print(f"success rate       {summary.success_rate:.3f} ± {summary.success_ci95:.3f} (95% CI)")
    console.print(f"mean turns         {summary.mean_turns:.2f}")
    console.print(f"format-error rate  {summary.format_error_rate:.3f} (invalid actions per step)")
    if summary.error_codes:
        console.print("error codes: " + ", ".join(f"{k}={v}" for k, v in summary.error_codes.items()))


@app.command()
def leaderboard(
    envs: Annotated[str, typer.Option(help="'all' or a comma-separated list of env ids.")] = "all",
    agents: Annotated[str, typer.Option(
        help="Comma-separated agents: random, oracle, sb3:PATH, llm:PATH, openai:MODEL@BASE_URL.")] = "random,oracle",
    episodes: Annotated[int, typer.Option(help="Episodes per env, agent and seed.")] = 20,
    seeds: Annotated[int, typer.Option(help="Number of seeds.")] = 1,
    split: Annotated[str, typer.Option(help="Task split.")] = "test",
    workers: Annotated[int | None, typer.Option(help="Parallel processes (default: CPU count).")] = None,
    batch_size: Annotated[int, typer.Option(help="Episodes an llm:/openai: agent plays at once.")] = 16,
    out: Annotated[str, typer.Option(help="Output directory (the committed run is in benchmarks/results/leaderboard).")] = "runs/leaderboard",
) -> None:
    """Run agents on envs; write leaderboard.csv, LEADERBOARD.md and leaderboard.png."""
    from pathlib import Path

    from baselines.leaderboard import agent_applies, resolve_envs, run_leaderboard, write_outputs

    agent_list = [a.strip() for a in agents.split(",") if a.strip()]
    try:
        env_list = resolve_envs(envs)
        cells = sum(agent_applies(a, e) for e in env_list for a in agent_list)
    except ToolGymError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not sys.stderr.isatty(),
    ) as progress:
        bar = progress.add_task("leaderboard jobs", total=cells * seeds)
        rows = run_leaderboard(
            env_list, agent_list, episodes=episodes, seeds=seeds, split=split, workers=workers,
            batch_size=batch_size, on_job_done=lambda job: progress.update(
                bar, advance=1, description=f"done {job.agent} on {job.env_id}"),
        )
    from shlex import quote

    command = (
        f"toolgym leaderboard --envs {quote(envs)} --agents {quote(agents)} --episodes {episodes} "
        f"--seeds {seeds} --split {split} --batch-size {batch_size} --out {quote(out)}"
    )
    paths = write_outputs(rows, Path(out), command, agent_list)
    typer.echo(Path(paths["md"]).read_text())
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))


@app.command()
def check(
    env_id: Annotated[str, typer.Argument(help="Environment id.")],
    episodes: Annotated[int, typer.Option(help="Episodes for the resource-leak check.")] = 1000,
    tasks: Annotated[int, typer.Option(help="Tasks sampled for the grader and determinism checks.")] = 20,
    oracle: Annotated[str | None, typer.Option(help="module:Class of an oracle (default: the env's).")] = None,
    seed: Annotated[int, typer.Option(help="Base seed.")] = 0,
) -> None:
    """Check a tool env: determinism, schemas, grader self-test, state and resource leaks, async safety."""
    from toolgym.checker import check_tool_env

    env_id = _resolve(env_id)
    report = check_tool_env(env_id, episodes=episodes, tasks=tasks, oracle=oracle, seed=seed)
    typer.echo(report.to_text())
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``toolgym`` console script."""
    app()


__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
