"""The ``toolgym`` command line: list, info, play and run environments."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import gymnasium as gym
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperCommand

import toolgym  # noqa: F401 - registers the environments
from toolgym.agents import agent_specs_text, check_agent_spec, leaderboard_runner, make_agent, skip_reason
from toolgym.core.errors import ConfigError, ToolGymError, did_you_mean
from toolgym.core.tasks import data_fingerprint
from toolgym.evaluation import evaluate, summarize
from toolgym.registry import NAMESPACE, env_class, env_ids, plugin_of
from toolgym.stats import format_rate

app = typer.Typer(
    help="ToolGym: Gymnasium environments for LLM agents that use tools.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

from toolgym.sandbox.cli import app as sandbox_app  # noqa: E402 - light: no docker import

app.add_typer(sandbox_app, name="sandbox", help="Build and check the code-execution sandbox.")


F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True)


def _user_errors(command: F) -> F:
    """Show a :class:`ToolGymError` (a bad argument, an unknown id...) as one red line on stderr
    and exit with code 2, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ToolGymError as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            err_console.print(f"[red]Error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _resolve(env_id: str) -> str:
    """Accept ``Search-v0`` as shorthand for ``ToolGym/Search-v0``.

    Raises:
        ConfigError: for an unknown id, with a did-you-mean.
    """
    ids = env_ids()
    if env_id in ids or env_id in gym.registry:
        return env_id
    if f"{NAMESPACE}/{env_id}" in ids:
        return f"{NAMESPACE}/{env_id}"
    hint = did_you_mean(env_id, ids) or " Run `toolgym list` for the registered ids."
    raise ConfigError(f"Unknown environment {env_id!r}.{hint}")


def _check_counts(**counts: tuple[int | None, int]) -> None:
    """Raise :class:`ConfigError` for the first ``--name`` whose value is below its minimum
    (``None`` means "the default" and passes)."""
    for name, (value, minimum) in counts.items():
        if value is not None and value < minimum:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be ≥ {minimum}, got {value}.")


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[..., None]]:
    """A rich progress bar (count, elapsed, estimate left) on stderr, shown only on a terminal;
    yields ``advance(description=None)``."""
    from rich.progress import TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(), console=err_console, transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:
        bar = progress.add_task(description, total=total)

        def advance(text: str | None = None) -> None:
            progress.update(bar, advance=1, **({"description": text} if text else {}))

        yield advance


AGENT_SPECS = "{agent_specs}"
"""Placeholder in an option's help, replaced by :func:`toolgym.agents.agent_specs_text` when help is shown."""


class _AgentSpecsCommand(TyperCommand):
    """A command whose options' help names the registered agent specs where it says
    :data:`AGENT_SPECS`, filled in when help is shown: `import toolgym.cli` loads no agent
    plugin, and a plugin's agents appear in `--help` as soon as it is installed."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        """Fill the agent specs into the options' help, then typer's help."""
        specs = escape(agent_specs_text())
        for param in self.params:
            template = getattr(param, "help_template", None)
            if template is None and AGENT_SPECS in (getattr(param, "help", None) or ""):
                template = param.help_template = param.help  # type: ignore[attr-defined]
            if template is not None:
                param.help = template.replace(AGENT_SPECS, specs)  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


@app.command("list")
@_user_errors
def list_envs() -> None:
    """List every registered ToolGym environment (built-in and plugin)."""
    ids = env_ids()
    table = Table()
    # Ids are never cut (also when piped, where rich assumes 80 columns); descriptions wrap.
    table.add_column("id", no_wrap=True, min_width=max((len(i) for i in ids), default=2))
    table.add_column("source", no_wrap=True)
    table.add_column("description", overflow="fold")
    for env_id in ids:
        plugin = plugin_of(env_id)
        try:
            doc = (env_class(env_id).__doc__ or "").strip().splitlines()[0]
        except Exception as exc:  # noqa: BLE001 - show broken entries instead of failing
            doc = f"[red]cannot import: {exc}[/red]"
        table.add_row(env_id, f"plugin: {plugin}" if plugin else "built-in", doc)
    console.print(table)


@app.command()
@_user_errors
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
        "pinned_data_fingerprint": base.pinned_data_fingerprint,
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
    pinned = report["pinned_data_fingerprint"]
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


QUIT_WORDS = frozenset({":q", ":quit", "quit", "exit"})
"""What ends ``toolgym play`` (as does Ctrl-D)."""


@app.command()
@_user_errors
def play(
    env_id: Annotated[str, typer.Argument(help="Environment id.")],
    split: Annotated[str, typer.Option(help="Task split (the same default as `toolgym run`).")] = "test",
    seed: Annotated[int, typer.Option(help="Seed that picks the task (≥ 0).")] = 0,
    task_id: Annotated[str | None, typer.Option(help="Play this task id.")] = None,
    max_turns: Annotated[int | None, typer.Option(help="Override the env's turn limit (≥ 1).")] = None,
) -> None:
    """Play an episode yourself: type one action per line; quit, exit, :q or Ctrl-D ends it.

    Line editing and history (arrow keys) come from readline where Python has it.
    """
    try:
        import readline  # noqa: F401 - gives input() line editing and history
    except ImportError:  # Windows without pyreadline: plain input()
        pass
    _check_counts(seed=(seed, 0), max_turns=(max_turns, 1))
    env_id = _resolve(env_id)
    env = gym.make(env_id, split=split, **({"max_turns": max_turns} if max_turns else {}))
    try:
        if task_id is not None:
            known = [t.id for t in env.unwrapped.task_set]  # type: ignore[attr-defined]
            if task_id not in known:
                hint = did_you_mean(task_id, known) or f" Ids look like {known[0]!r}; `toolgym info {env_id}` lists the splits."
                raise ConfigError(f"No task {task_id!r} in the {split} split of {env_id}.{hint}")
        options = {"task_id": task_id} if task_id else None
        observation, info_ = env.reset(seed=seed, options=options)
        limit = int(env.unwrapped.max_turns)  # type: ignore[attr-defined]
        console.print(f"[dim]task {info_['task_id']} ({info_['difficulty']}, split {split}); "
                      f"type quit, exit, :q or Ctrl-D to stop[/dim]")
        console.print(observation, markup=False, highlight=False)
        turn, total, step_info = 0, 0.0, None
        while True:
            try:
                action = input(f"\nturn {turn + 1}/{limit}> ")
            except (EOFError, KeyboardInterrupt):
                console.print()
                break
            if action.strip().lower() in QUIT_WORDS:
                break
            observation, reward, terminated, truncated, step_info = env.step(action)
            turn += 1
            total += float(reward)
            console.print(observation, markup=False, highlight=False)
            if step_info["error"]:
                console.print(f"[yellow]error code: {step_info['error']}[/yellow]")
            if terminated or truncated:
                console.print(f"[bold]Episode over after {turn} turn{'s' if turn != 1 else ''}: reward {total:g}, "
                              f"success {step_info['success']}[/bold]")
                return
        console.print(f"[bold]Stopped after {turn} of {limit} turns: reward {total:g} so far, "
                      "episode not finished (success False)[/bold]")
    finally:
        env.close()


@app.command(cls=_AgentSpecsCommand)
@_user_errors
def run(
    env_id: Annotated[str, typer.Argument(help="Environment id.")],
    agent: Annotated[str, typer.Option(
        help=f"Agent spec: {AGENT_SPECS}.")] = "oracle",
    episodes: Annotated[
        int, typer.Option(help="Episodes to play (≥ 0); 0 plays every task of the split once.")
    ] = 0,
    split: Annotated[str, typer.Option(help="Task split.")] = "test",
    seed: Annotated[int, typer.Option(help="Base seed (≥ 0).")] = 0,
    max_turns: Annotated[int | None, typer.Option(help="Override the env's turn limit (≥ 1).")] = None,
    batch_size: Annotated[int, typer.Option(
        help="Episodes an llm:/openai: agent plays at once (≥ 1; same tasks and seeds as one at a time).")] = 16,
) -> None:
    """Run an agent and print success rate (95% Wilson interval), mean turns and format-error rate."""
    _check_counts(episodes=(episodes, 0), seed=(seed, 0), max_turns=(max_turns, 1), batch_size=(batch_size, 1))
    check_agent_spec(agent)
    env_id = _resolve(env_id)
    kwargs = {"max_turns": max_turns} if max_turns is not None else {}
    probe = gym.make(env_id, split=split, **kwargs)
    try:
        policy = make_agent(agent, probe, seed=seed)
        total = episodes or len(probe.unwrapped.task_set)  # type: ignore[attr-defined]
    finally:
        probe.close()
    with _progress(f"{agent} on {env_id}", total) as advance:
        results = evaluate(
            env_id, policy, episodes=episodes or None, split=split, seed=seed, env_kwargs=kwargs,
            on_episode=lambda _: advance(), batch_size=batch_size,
        )
    summary = summarize(results)
    wins = sum(r.success for r in results)
    console.print(f"[bold]{env_id}[/bold]  agent={agent}  split={split}  episodes={summary.episodes}")
    console.print(f"success rate       {format_rate(wins, summary.episodes)} (95% Wilson interval)", markup=False)
    console.print(f"mean turns         {summary.mean_turns:.2f}")
    console.print(f"format-error rate  {summary.format_error_rate:.3f} (invalid actions per step)")
    if summary.error_codes:
        console.print("error codes: " + ", ".join(f"{k}={v}" for k, v in summary.error_codes.items()))


@contextmanager
def _one_sandbox_notice(env_list: list[str]) -> Iterator[None]:
    """If an env in ``env_list`` runs code in a sandbox, ``TOOLGYM_SANDBOX`` is unset and Docker
    cannot be used, say so once and let every worker use the process backend (instead of one
    "Docker sandbox unavailable" warning per worker)."""
    import inspect

    uses_sandbox = any("sandbox" in inspect.signature(env_class(e).__init__).parameters for e in env_list)
    if not uses_sandbox or os.environ.get("TOOLGYM_SANDBOX"):
        yield
        return
    from toolgym.sandbox.base import SandboxUnavailable
    from toolgym.sandbox.image import require_docker

    try:
        require_docker()
    except SandboxUnavailable as exc:
        reason = " ".join(str(exc).split())
        console.print(f"Docker sandbox unavailable ({reason}); code runs in the process backend.", markup=False,
                      highlight=False, soft_wrap=True)
        os.environ["TOOLGYM_SANDBOX"] = "process"
        try:
            yield
        finally:
            del os.environ["TOOLGYM_SANDBOX"]
        return
    yield


@app.command(cls=_AgentSpecsCommand)
@_user_errors
def leaderboard(
    envs: Annotated[str, typer.Option(help="'all' or a comma-separated list of env ids.")] = "all",
    agents: Annotated[str, typer.Option(
        help=f"Comma-separated agent specs, each {AGENT_SPECS}.")] = "random,oracle",
    episodes: Annotated[int, typer.Option(help="Episodes per env, agent and seed (≥ 1).")] = 20,
    seeds: Annotated[int, typer.Option(help="Number of seeds (≥ 1).")] = 1,
    split: Annotated[str, typer.Option(help="Task split.")] = "test",
    workers: Annotated[int | None, typer.Option(help="Parallel processes (≥ 1; default: CPU count).")] = None,
    batch_size: Annotated[int, typer.Option(help="Episodes an llm:/openai: agent plays at once (≥ 1).")] = 16,
    out: Annotated[str, typer.Option(help="Output directory (the committed run is in benchmarks/results/leaderboard).")] = "runs/leaderboard",
) -> None:
    """Run agents on envs; write leaderboard.csv, LEADERBOARD.md and leaderboard.png.

    Every argument is checked before the first episode. Envs whose optional package is missing
    and agents that do not apply to an env (an oracle-less env, an SB3 model trained elsewhere)
    are skipped with one line each.
    """
    from pathlib import Path
    from shlex import quote

    if episodes < 1:
        raise ConfigError(
            f"--episodes must be ≥ 1, got {episodes} (unlike `toolgym run --episodes 0`, which plays "
            "every task of one env, the leaderboard plays the same number of episodes on every env)."
        )
    _check_counts(seeds=(seeds, 1), workers=(workers, 1), batch_size=(batch_size, 1))
    agent_list = [a.strip() for a in agents.split(",") if a.strip()]
    if not agent_list:
        raise ConfigError("--agents is empty; expected e.g. random,oracle.")
    for agent in agent_list:
        check_agent_spec(agent)
    board = leaderboard_runner()
    reasons: set[str] = set()

    def skip(env_id: str, reason: str) -> None:
        # One line per env; a reason (e.g. the install command) is spelled out only the first time.
        said = reason in reasons
        reasons.add(reason)
        console.print(f"skipping {env_id}: {'same as above' if said else reason}", markup=False, highlight=False,
                      soft_wrap=True)

    env_list = board.resolve_envs([_resolve(e.strip()) for e in envs.split(",")] if envs != "all" else "all", on_skip=skip)
    for env_id in env_list:  # the split exists everywhere (ConfigError with a did-you-mean if not)
        gym.make(env_id, split=split).close()
    pairs = []
    for env_id in env_list:
        for agent in agent_list:
            reason = skip_reason(agent, env_id)
            if reason is None:
                pairs.append((env_id, agent))
            elif not agent.startswith("sb3:"):  # an SB3 model playing only its own env is the rule
                console.print(f"skipping {agent} on {env_id}: {reason}", markup=False, highlight=False, soft_wrap=True)
    if not pairs:
        raise ConfigError(f"No agent in {agent_list} applies to any env in {env_list}.")
    with _one_sandbox_notice(env_list), _progress("leaderboard jobs", len(pairs) * seeds) as advance:
        rows = board.run_leaderboard(
            env_list, agent_list, episodes=episodes, seeds=seeds, split=split, workers=workers,
            batch_size=batch_size, on_job_done=lambda job: advance(f"done {job.agent} on {job.env_id}"),
        )
    command = (
        f"toolgym leaderboard --envs {quote(envs)} --agents {quote(agents)} --episodes {episodes} "
        f"--seeds {seeds} --split {split} --batch-size {batch_size} --out {quote(out)}"
    )
    paths = board.write_outputs(rows, Path(out), command, agent_list)
    typer.echo(Path(paths["md"]).read_text())
    console.print("wrote " + ", ".join(str(p) for p in paths.values()), markup=False, highlight=False, soft_wrap=True)
    if "png" not in paths:
        console.print("no leaderboard.png: matplotlib is not installed (pip install '.[plot]')", markup=False)


@app.command()
@_user_errors
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
