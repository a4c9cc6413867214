"""Classical RL baselines with Stable-Baselines3 over :class:`~toolgym.wrappers.DiscreteActionWrapper`.

Train a policy over candidate actions and save it (``PATH`` plus a ``PATH.json`` sidecar)::

    python -m baselines.agents.sb3 train --env ToolGym/Search-v0 --algo ppo --timesteps 200000 \\
        --seed 0 --out benchmarks/results/sb3/search_ppo.zip

Evaluate it on the test split against the random agents::

    python -m baselines.agents.sb3 eval benchmarks/results/sb3/search_ppo.zip --episodes 300

Or play it anywhere an agent is accepted: :class:`SB3Agent` implements the common agent interface
(``reset`` / ``act``), and :func:`baselines.agents.make_agent` builds it from ``"sb3:PATH"``, so
the leaderboard runs it with ``--agents sb3:PATH``.

Algorithms: ``ppo`` and ``dqn`` (Stable-Baselines3), ``maskable_ppo`` (sb3-contrib; the policy
never picks an empty candidate slot). torch and SB3 are imported here only, never by ``toolgym``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import gymnasium as gym
import numpy as np
import typer

import toolgym
from baselines.cli import CONTEXT_SETTINGS, field_default, field_help, run_app
from toolgym.core.errors import ConfigError
from toolgym.evaluation import EpisodeResult, evaluate, summarize
from toolgym.wrappers.discrete import ActionAdapter, DiscreteActionWrapper, candidate_generator_for

logger = logging.getLogger(__name__)

ALGOS = ("ppo", "dqn", "maskable_ppo")
SIDECAR_SUFFIX = ".json"

DEFAULT_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "ppo": {
        "n_steps": 128, "batch_size": 256, "n_epochs": 4, "learning_rate": 3e-4, "gamma": 0.99,
        "gae_lambda": 0.95, "ent_coef": 0.01, "clip_range": 0.2, "policy_kwargs": {"net_arch": [128, 128]},
    },
    "maskable_ppo": {
        "n_steps": 128, "batch_size": 256, "n_epochs": 4, "learning_rate": 3e-4, "gamma": 0.99,
        "gae_lambda": 0.95, "ent_coef": 0.01, "clip_range": 0.2, "policy_kwargs": {"net_arch": [128, 128]},
    },
    "dqn": {
        "learning_rate": 5e-4, "buffer_size": 50_000, "learning_starts": 1_000, "batch_size": 64,
        "gamma": 0.99, "train_freq": 4, "target_update_interval": 1_000, "exploration_fraction": 0.3,
        "exploration_final_eps": 0.05, "policy_kwargs": {"net_arch": [128, 128]},
    },
}
"""Hyper-parameters per algorithm (overridable with ``--hyperparams JSON``)."""


def _algo_class(algo: str) -> Any:
    """The SB3 class of ``algo``."""
    if algo == "ppo":
        from stable_baselines3 import PPO

        return PPO
    if algo == "dqn":
        from stable_baselines3 import DQN

        return DQN
    if algo == "maskable_ppo":
        try:
            from sb3_contrib import MaskablePPO
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigError("algo 'maskable_ppo' needs sb3-contrib: pip install sb3-contrib") from exc
        return MaskablePPO
    raise ConfigError(f"Unknown algo {algo!r}; expected one of {list(ALGOS)}.")


@dataclass
class TrainConfig:
    """What :func:`train` trains and where it saves it."""

    env_id: str = field(metadata={"help": "A registered ToolGym env id, e.g. ToolGym/Search-v0."})
    out: str = field(metadata={"help": "Model path (.zip); the sidecar goes to the same path + .json."})
    algo: str = field(default="ppo", metadata={"help": f"One of {ALGOS}."})
    timesteps: int = field(default=100_000, metadata={"help": "Environment steps to train for."})
    seed: int = field(default=0, metadata={"help": "Seed of the model and of the training envs."})
    n_envs: int = field(default=8, metadata={"help": "Parallel envs (in one process, DummyVecEnv)."})
    split: str = field(default="train", metadata={"help": "Task split to train on."})
    difficulty: list[str] | None = field(default=None, metadata={"help": "Only these difficulty levels."})
    env_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"help": "Extra gym.make kwargs."})
    wrapper_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"help": "DiscreteActionWrapper kwargs."})
    hyperparams: dict[str, Any] = field(default_factory=dict, metadata={"help": "Override DEFAULT_HYPERPARAMS."})
    torch_threads: int = field(default=1, metadata={"help": "torch.set_num_threads (small MLPs: 1 is fastest)."})

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ConfigError(f"algo must be one of {list(ALGOS)}, got {self.algo!r}.")
        if not isinstance(self.timesteps, int) or self.timesteps < 1:
            raise ConfigError(f"timesteps must be a positive integer, got {self.timesteps!r}.")
        if not isinstance(self.n_envs, int) or self.n_envs < 1:
            raise ConfigError(f"n_envs must be a positive integer, got {self.n_envs!r}.")
        if self.env_id not in gym.registry:
            raise ConfigError(f"Unknown env id {self.env_id!r}; registered: {toolgym.env_ids()}.")

    def make_kwargs(self) -> dict[str, Any]:
        """``gym.make`` kwargs of the training env."""
        kwargs = {"split": self.split, **self.env_kwargs}
        if self.difficulty:
            kwargs["difficulty"] = list(self.difficulty)
        return kwargs


class TurnLimitAsTermination(gym.Wrapper[Any, Any, Any, Any]):
    """Report reaching the turn limit as termination (``terminated=True``), not truncation.

    The turn limit is part of the task and the features include ``turn / max_turns``, so the last
    turn is a true terminal state. Left as truncation, SB3 bootstraps from the value of the
    post-limit state, which is never trained on: the critic then rewards stalling (empty slots,
    tool calls) over answering, and PPO learns never to answer.
    """

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step; a truncation becomes a termination."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated or truncated, False, info


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None, **wrapper_kwargs: Any) -> DiscreteActionWrapper:
    """``DiscreteActionWrapper(gym.make(env_id, **env_kwargs), **wrapper_kwargs)``."""
    return DiscreteActionWrapper(gym.make(env_id, **(env_kwargs or {})), **wrapper_kwargs)


def sidecar_path(model_path: str | Path) -> Path:
    """Where the JSON sidecar of ``model_path`` lives (``model.zip`` → ``model.zip.json``)."""
    return Path(str(model_path) + SIDECAR_SUFFIX)


def _model_path(out: str | Path) -> Path:
    path = Path(out)
    return path if path.suffix == ".zip" else path.with_name(path.name + ".zip")


def train(config: TrainConfig, *, verbose: int = 0) -> Path:
    """Train ``config.algo`` on the wrapped env and save the model and its sidecar.

    Returns:
        The model path (a ``.zip``); the sidecar is :func:`sidecar_path` of it.
    """
    import stable_baselines3
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(config.torch_threads)
    env_kwargs = config.make_kwargs()

    def make() -> gym.Env[Any, Any]:
        return Monitor(TurnLimitAsTermination(make_env(config.env_id, env_kwargs, **config.wrapper_kwargs)))

    vec_env = make_vec_env(make, n_envs=config.n_envs, seed=config.seed)
    settings = _wrapper_of(vec_env.envs[0]).settings()  # type: ignore[attr-defined]
    hyperparams = {**DEFAULT_HYPERPARAMS[config.algo], **config.hyperparams}
    model = _algo_class(config.algo)("MlpPolicy", vec_env, seed=config.seed, verbose=verbose, device="cpu", **hyperparams)
    started = time.perf_counter()
    model.learn(total_timesteps=config.timesteps)
    wall_s = time.perf_counter() - started
    vec_env.close()
    path = _model_path(config.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    sidecar = {
        "env_id": config.env_id,
        "algo": config.algo,
        "timesteps": config.timesteps,
        "seed": config.seed,
        "n_envs": config.n_envs,
        "split": config.split,
        "difficulty": config.difficulty,
        "env_kwargs": config.env_kwargs,
        "wrapper": settings,
        "wrapper_kwargs": config.wrapper_kwargs,
        "hyperparams": hyperparams,
        "train_wall_s": round(wall_s, 1),
        "versions": {
            "toolgym": toolgym.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__,
            "gymnasium": gym.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "machine": f"{platform.machine()}, {_cpu_count()} CPU cores, torch threads {config.torch_threads}",
    }
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return path


def _wrapper_of(env: gym.Env[Any, Any]) -> DiscreteActionWrapper:
    while not isinstance(env, DiscreteActionWrapper):
        env = env.env  # type: ignore[attr-defined]
    return env


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def load_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar of the model at ``path``.

    Raises:
        ConfigError: if the model or its sidecar is missing.
    """
    model = _model_path(path)
    if not model.is_file():
        raise ConfigError(f"No SB3 model at {model}: expected a .zip saved by `python -m baselines.agents.sb3 train`.")
    side = sidecar_path(model)
    if not side.is_file():
        raise ConfigError(f"The model {model} has no sidecar {side}: it records the env and wrapper settings.")
    return json.loads(side.read_text())


class SB3Agent:
    """A trained SB3 policy as a ToolGym agent (``reset`` / ``act(observation, info) -> str``).

    It keeps its own :class:`~toolgym.wrappers.discrete.ActionAdapter` (built from the sidecar's
    wrapper settings), featurises each observation exactly as the training wrapper did, and maps
    the chosen slot back to action text.

    Args:
        path: The model ``.zip`` (its sidecar must sit beside it).
        deterministic: Take the most likely action (else sample).
        seed: Seed for sampling (only with ``deterministic=False``; SB3 seeds torch's global RNG).
    """

    def __init__(self, path: str | Path, *, deterministic: bool = True, seed: int | None = None) -> None:
        self.path = _model_path(path)
        self.meta = load_sidecar(self.path)
        self.deterministic = deterministic
        self.algo = self.meta["algo"]
        self.model = _algo_class(self.algo).load(self.path, device="cpu")
        self._seed = seed
        self._adapter: ActionAdapter | None = None
        self._slot: int | None = None
        self._started = False

    @property
    def env_id(self) -> str:
        """The env id the policy was trained on."""
        return str(self.meta["env_id"])

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous episode (``seed`` reseeds sampling)."""
        self._started = False
        self._slot = None
        if not self.deterministic and (seed is not None or self._seed is not None):
            self.model.set_random_seed(seed if seed is not None else self._seed)

    def _make_adapter(self, info: dict[str, Any]) -> ActionAdapter:
        settings = self.meta["wrapper"]
        generator = candidate_generator_for(self.env_id, None, info.get("tools", []))
        adapter = ActionAdapter(
            generator,
            num_actions=settings["num_actions"],
            max_turns=settings["max_turns"],
            prompt_dim=settings["prompt_dim"],
            obs_dim=settings["obs_dim"],
            focus_dim=settings["focus_dim"],
            max_tools=settings["max_tools"],
            noop_action=settings["noop_action"],
        )
        if list(adapter.slot_names) != list(settings["slot_names"]):
            raise ConfigError(
                f"The candidate slots of {self.env_id} changed since {self.path} was trained: "
                f"expected {settings['slot_names']}, got {list(adapter.slot_names)}. Retrain the model."
            )
        return adapter

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The action text for this turn."""
        if self._adapter is None:
            self._adapter = self._make_adapter(info)
        if not self._started or info.get("turn", 0) == 0:
            features = self._adapter.start(observation, info)
            self._started = True
        else:
            features = self._adapter.record(self._slot, observation, info)
        if self.algo == "maskable_ppo":
            action, _ = self.model.predict(
                features, deterministic=self.deterministic, action_masks=self._adapter.action_masks()
            )
        else:
            action, _ = self.model.predict(features, deterministic=self.deterministic)
        self._slot = int(action)
        return self._adapter.action_text(self._slot)


class RandomSlotAgent:
    """Picks uniformly among the non-empty candidate slots: the same action space as a trained
    policy, without learning (a stronger baseline than :class:`~baselines.agents.random.RandomAgent`)."""

    def __init__(self, env_id: str, *, max_turns: int, seed: int | None = None) -> None:
        self.env_id, self.max_turns = env_id, max_turns
        self.rng = np.random.default_rng(seed)
        self._adapter: ActionAdapter | None = None
        self._slot: int | None = None

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous episode (re-seeding if ``seed`` is given)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._slot = None

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """A uniformly random non-empty slot's action text."""
        if self._adapter is None:
            generator = candidate_generator_for(self.env_id, None, info.get("tools", []))
            self._adapter = ActionAdapter(generator, max_turns=self.max_turns)
        if info.get("turn", 0) == 0:
            self._adapter.start(observation, info)
        else:
            self._adapter.record(self._slot, observation, info)
        available = np.flatnonzero(self._adapter.action_masks())
        self._slot = int(self.rng.choice(available)) if len(available) else 0
        return self._adapter.action_text(self._slot)


def evaluate_model(
    path: str | Path,
    *,
    episodes: int | None = None,
    split: str = "test",
    seed: int = 0,
    difficulty: Sequence[str] | None = None,
    baselines: Sequence[str] = ("random", "random_slots"),
) -> dict[str, Any]:
    """Success of the model at ``path`` and of ``baselines`` on the same episodes.

    Returns:
        ``{"env_id", "split", "difficulty", "episodes", "agents": {name: summary dict}}``.
    """
    from baselines.agents.random import RandomAgent

    meta = load_sidecar(path)
    env_id = meta["env_id"]
    env_kwargs = dict(meta.get("env_kwargs") or {})
    if difficulty:
        env_kwargs["difficulty"] = list(difficulty)
    agents: dict[str, Any] = {f"sb3:{meta['algo']}": SB3Agent(path)}
    for name in baselines:
        if name == "random":
            agents[name] = RandomAgent(seed=seed)
        elif name == "random_slots":
            agents[name] = RandomSlotAgent(env_id, max_turns=meta["wrapper"]["max_turns"], seed=seed)
        else:
            raise ConfigError(f"Unknown baseline {name!r}; expected 'random' or 'random_slots'.")
    report: dict[str, Any] = {
        "env_id": env_id, "split": split, "difficulty": list(difficulty) if difficulty else None, "agents": {},
    }
    for name, agent in agents.items():
        results: list[EpisodeResult] = evaluate(
            env_id, agent, episodes=episodes, split=split, seed=seed, env_kwargs=env_kwargs
        )
        summary = summarize(results)
        report["episodes"] = summary.episodes
        report["agents"][name] = {
            "success": summary.success_rate,
            "ci95_wilson": list(summary.success_ci),
            "mean_turns": summary.mean_turns,
            "format_error_rate": summary.format_error_rate,
            "by_difficulty": _by_difficulty(results, env_id, split),
        }
    return report


def _by_difficulty(results: Sequence[EpisodeResult], env_id: str, split: str) -> dict[str, float]:
    env = gym.make(env_id, split=split)
    level = {t.id: t.difficulty for t in env.unwrapped.task_set}  # type: ignore[attr-defined]
    env.close()
    groups: dict[str, list[bool]] = {}
    for r in results:
        groups.setdefault(str(level.get(r.task_id)), []).append(r.success)
    return {k: statistics.fmean(v) for k, v in sorted(groups.items())}


# ---------------------------------------------------------------------------------------- CLI


PROG = "python -m baselines.agents.sb3"

cli = typer.Typer(help=__doc__.split("\n")[0], no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  context_settings=CONTEXT_SETTINGS)

Algo = Enum("Algo", {a: a for a in ALGOS}, type=str)  # type: ignore[misc]
"""The ``--algo`` choices (:data:`ALGOS`)."""


_DEFAULT = {f.name: field_default(TrainConfig, f.name) for f in dataclasses.fields(TrainConfig)}
"""The defaults of the ``train`` options: those of :class:`TrainConfig`."""


def _train_option(name: str, flag: str, suffix: str = "", **kwargs: Any) -> Any:
    """The ``typer.Option`` of :class:`TrainConfig` field ``name``: its help text from the field
    (plus ``suffix``, how the command line spells the value)."""
    return typer.Option(flag, help=field_help(TrainConfig, name) + suffix, **kwargs)


@cli.command("train", help="Train and save a model (PATH + PATH.json sidecar).")
def train_command(
    ctx: typer.Context,
    env: Annotated[str, _train_option("env_id", "--env")],
    out: Annotated[str, _train_option("out", "--out")],
    algo: Annotated[Algo, _train_option("algo", "--algo")] = Algo[_DEFAULT["algo"]],
    timesteps: Annotated[int, _train_option("timesteps", "--timesteps")] = _DEFAULT["timesteps"],
    seed: Annotated[int, _train_option("seed", "--seed")] = _DEFAULT["seed"],
    n_envs: Annotated[int, _train_option("n_envs", "--n-envs")] = _DEFAULT["n_envs"],
    split: Annotated[str, _train_option("split", "--split")] = _DEFAULT["split"],
    difficulty: Annotated[str | None, _train_option(
        "difficulty", "--difficulty", " Comma list, e.g. easy,medium.", metavar="LEVELS")] = None,
    env_kwargs: Annotated[str, _train_option("env_kwargs", "--env-kwargs", " A JSON object.", metavar="JSON")] = "{}",
    wrapper_kwargs: Annotated[str, _train_option("wrapper_kwargs", "--wrapper-kwargs", " A JSON object.", metavar="JSON")] = "{}",
    hyperparams: Annotated[str, _train_option("hyperparams", "--hyperparams", " A JSON object.", metavar="JSON")] = "{}",
    torch_threads: Annotated[int, _train_option("torch_threads", "--torch-threads")] = _DEFAULT["torch_threads"],
    verbose: Annotated[int, typer.Option("--verbose", help="SB3's verbosity (0, 1 or 2).")] = 0,
) -> None:
    """Build a :class:`TrainConfig` from the options, train and save; 1 for a bad option."""
    try:
        config = TrainConfig(
            env_id=env, out=out, algo=algo.value, timesteps=timesteps, seed=seed, n_envs=n_envs, split=split,
            difficulty=difficulty.split(",") if difficulty else None,
            env_kwargs=_json_arg(env_kwargs, "env-kwargs"),
            wrapper_kwargs=_json_arg(wrapper_kwargs, "wrapper-kwargs"),
            hyperparams=_json_arg(hyperparams, "hyperparams"),
            torch_threads=torch_threads,
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    path = train(config, verbose=verbose)
    meta = load_sidecar(path)
    meta["command"] = ctx.obj["command"]
    sidecar_path(path).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(f"saved {path} ({meta['train_wall_s']} s for {config.timesteps} timesteps)")


@cli.command("eval", help="Evaluate a saved model against the random baselines.")
def eval_command(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="Model path (.zip).")],
    episodes: Annotated[int | None, typer.Option(help="Episodes (default: every task of the split once).")] = None,
    split: Annotated[str, typer.Option(help="Task split.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the episodes and of the random baselines.")] = 0,
    difficulty: Annotated[str | None, typer.Option(
        metavar="LEVELS", help="Comma list of levels (default: all).")] = None,
    baselines: Annotated[str, typer.Option(help="Comma list of baselines ('' for none).")] = "random,random_slots",
    json_path: Annotated[str | None, typer.Option("--json", help="Also write the report to this JSON file.")] = None,
) -> None:
    """Evaluate the model at ``path`` and print one line per agent."""
    report = evaluate_model(
        path, episodes=episodes, split=split, seed=seed,
        difficulty=difficulty.split(",") if difficulty else None,
        baselines=[b for b in baselines.split(",") if b],
    )
    report["command"] = ctx.obj["command"]
    print(f"{report['env_id']} split={report['split']} difficulty={report['difficulty']} episodes={report['episodes']}")
    for name, s in report["agents"].items():
        levels = ", ".join(f"{k} {v:.3f}" for k, v in s["by_difficulty"].items())
        low, high = s["ci95_wilson"]
        print(f"  {name:16s} success {s['success']:.3f} [{low:.3f}, {high:.3f}]  turns {s['mean_turns']:.2f}  ({levels})")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def _json_arg(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--{name} must be a JSON object, got {text!r} ({exc.msg}).") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--{name} must be a JSON object, got {text!r}.")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m baselines.agents.sb3``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = f"{PROG} " + " ".join(shlex.quote(a) for a in args)
    return run_app(cli, args, PROG, obj={"command": command})


if __name__ == "__main__":
    sys.exit(main())
