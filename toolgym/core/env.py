"""The :class:`ToolEnv` base class: a Gymnasium env whose actions are tool calls written as text."""

from __future__ import annotations

import importlib
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym

from toolgym.core.actions import ActionFormat, FinalAnswer, ToolCall, get_action_format, snippet
from toolgym.core.errors import (
    INVALID_ACTION_CODES,
    ActionError,
    ConfigError,
    ErrorCode,
    ToolError,
    did_you_mean,
)
from toolgym.core.policy import Policy
from toolgym.core.spaces import TextSpace
from toolgym.core.tasks import Task, TaskSet, data_fingerprint
from toolgym.core.tools import Tool

logger = logging.getLogger(__name__)

MAX_OBSERVATION_CHARS = 65_536


@dataclass(frozen=True)
class InvalidActionPolicy:
    """What happens when an action is invalid (a code in ``INVALID_ACTION_CODES``).

    Attributes:
        penalty: Reward added for each invalid action (usually ≤ 0).
        terminate_after: End the episode (``terminated=True``) at the N-th invalid action;
            ``None`` never ends it (the agent sees the error and may retry).
    """

    penalty: float = 0.0
    terminate_after: int | None = None

    def __post_init__(self) -> None:
        if self.terminate_after is not None and self.terminate_after < 1:
            raise ConfigError(f"terminate_after must be ≥ 1 or None, got {self.terminate_after!r}.")

    @classmethod
    def coerce(cls, value: InvalidActionPolicy | Mapping[str, Any] | str | None) -> InvalidActionPolicy:
        """Accept a policy, a dict of its fields, ``"continue"`` (default) or ``"terminate"``
        (end at the first invalid action)."""
        if value is None or value == "continue":
            return cls()
        if value == "terminate":
            return cls(terminate_after=1)
        if isinstance(value, InvalidActionPolicy):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"penalty", "terminate_after"}
            if unknown:
                raise ConfigError(
                    f"Unknown invalid_action keys {sorted(unknown)}; expected 'penalty', 'terminate_after'."
                )
            return cls(**value)
        raise ConfigError(
            f"invalid_action={value!r} is not understood; expected 'continue', 'terminate', "
            "a dict like {'penalty': -0.1, 'terminate_after': 3}, or an InvalidActionPolicy."
        )


class ToolEnv(gym.Env[str, str]):
    """Base class of ToolGym environments: text observations, text actions holding tool calls.

    Contract (what every ToolGym env guarantees):

    * ``reset(seed=None, options=None) -> (observation, info)``. The observation is the system
      instructions (tools and action format) followed by the task prompt. ``info`` has
      ``task_id``, ``turn`` (0), ``tools`` (OpenAI function schemas), ``action_format``,
      ``system_prompt``, ``task_prompt``, ``difficulty``, ``split``, ``data_hash`` (content
      hash of the task set), ``grader_version`` and ``error`` (``None``, or ``"setup_error"``
      when the episode could not be set up: it then ends at the first step with reward 0). ``options`` may hold
      ``task_id`` (a specific task), ``split`` and ``difficulty`` (choose among those tasks).
      The same seed always selects the same task.
    * ``step(action) -> (observation, reward, terminated, truncated, info)``. The action is text
      in the env's action format. A tool call is parsed, its arguments validated against the
      tool's JSON Schema, and the tool run; the observation is the tool output (or an error
      message saying what was wrong and what was expected) wrapped by the action format. A final
      answer ends the episode (``terminated=True``) with reward ``success_reward`` if correct.
      ``info`` has ``turn``, ``action_format``, ``parsed`` (the :class:`~toolgym.core.actions.ToolCall` or
      :class:`~toolgym.core.actions.FinalAnswer`, or ``None`` if the action did not parse; an
      object rather than a dict so that vector envs can batch infos), ``error`` (an
      :class:`~toolgym.core.errors.ErrorCode` value or ``None``), ``error_message``,
      ``tool_output``, ``success``, ``invalid_actions``, ``stop_reason`` (``None`` while the
      episode runs, else ``"answer"``, ``"too_many_invalid"``, ``"too_many_turns"``,
      ``"setup_error"`` or ``"episode_over"``),
      ``reward_components``, and with ``record_timing=True`` also ``timing`` (seconds spent
      parsing, running the tool and in the whole step, and the tool output's size).
    * ``step`` never raises because of the action: every malformed or failing call becomes an
      error observation. Reaching ``max_turns`` truncates the episode.

    Subclasses set :attr:`data_name` and implement :meth:`make_tools` and :meth:`check_answer`;
    they may override :meth:`start_episode` (per-episode state), :meth:`tools_for_task` and
    :meth:`task_prompt`, and set :attr:`oracle_cls`.

    Args:
        split: Task split to draw from (``"train"``, ``"dev"``, ``"test"``).
        task_ids: Restrict episodes to these task ids.
        difficulty: Restrict episodes to this difficulty level (or levels).
        max_turns: Steps per episode before truncation.
        action_format: Name of an action format (see :func:`~toolgym.core.actions.get_action_format`)
            or an :class:`~toolgym.core.actions.ActionFormat`.
        invalid_action: The :class:`InvalidActionPolicy` (or ``"continue"``, ``"terminate"``, a dict).
        max_action_chars: Longer actions are rejected with ``action_too_long``.
        max_output_chars: Tool outputs are truncated to this many characters.
        success_reward: Reward for a correct final answer.
        tasks: Use these tasks instead of loading ``split`` from ``envs_data``.
        render_mode: ``"ansi"`` (``render()`` returns the transcript) or ``None``.
        record_timing: Add ``info["timing"]`` to every step (off by default, because timings
            differ between otherwise identical runs).
        pinned_data_fingerprint: The :func:`~toolgym.core.tasks.data_fingerprint` this env
            version was released with (set by the registry). A mismatch warns: the data changed
            without a version bump, so results are not comparable with published ones.
        pinned_data_hash: Deprecated old name of ``pinned_data_fingerprint``, still accepted (with
            a ``DeprecationWarning``); when given, it wins over the registry's
            ``pinned_data_fingerprint``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}

    data_name: ClassVar[str] = ""
    """Directory of this env's data under ``envs_data``."""
    oracle_cls: ClassVar[str | None] = None
    """``"module:Class"`` of the scripted oracle (a :class:`~toolgym.core.policy.Policy`)."""
    grader_version: ClassVar[str] = "1"
    """Bumped whenever :meth:`check_answer` changes behaviour."""

    def __init__(
        self,
        *,
        split: str = "train",
        task_ids: Sequence[str] | None = None,
        difficulty: str | Sequence[str] | None = None,
        max_turns: int = 10,
        action_format: str | ActionFormat = "hermes",
        invalid_action: InvalidActionPolicy | Mapping[str, Any] | str | None = None,
        max_action_chars: int = 16_384,
        max_output_chars: int = 4_000,
        success_reward: float = 1.0,
        tasks: TaskSet | Sequence[Task] | None = None,
        render_mode: str | None = None,
        record_timing: bool = False,
        pinned_data_fingerprint: str | None = None,
        pinned_data_hash: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            _reject_unknown_kwargs(type(self), unknown)
        if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
            raise ConfigError(f"max_turns must be a positive integer, got {max_turns!r}.")
        for name, value in (("max_action_chars", max_action_chars), ("max_output_chars", max_output_chars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(
                f"render_mode={render_mode!r} is not supported; expected one of "
                f"{self.metadata['render_modes']} or None."
            )
        self.split = split
        self.max_turns = max_turns
        self.format = get_action_format(action_format)
        self.invalid_action = InvalidActionPolicy.coerce(invalid_action)
        self.max_action_chars = int(max_action_chars)
        self.max_output_chars = int(max_output_chars)
        self.success_reward = float(success_reward)
        self.render_mode = render_mode
        self.record_timing = bool(record_timing)
        if tasks is None:
            pool = self.load_tasks(split)
        else:
            pool = tasks if isinstance(tasks, TaskSet) else TaskSet(tasks, name=self.data_name, split=split)
        self.task_set = pool.filter(task_ids=task_ids, difficulty=difficulty) if (
            task_ids is not None or difficulty is not None
        ) else pool
        if pinned_data_hash is not None:
            warnings.warn(
                "pinned_data_hash is the old name of pinned_data_fingerprint; pass that instead.",
                DeprecationWarning,
                stacklevel=2,
            )
            pinned_data_fingerprint = pinned_data_hash
        self.pinned_data_fingerprint = pinned_data_fingerprint
        if pinned_data_fingerprint is not None and tasks is None:
            actual = data_fingerprint(self.data_name)
            if actual != pinned_data_fingerprint:
                warnings.warn(
                    f"{type(self).__name__}: the task data in envs_data/{self.data_name} (fingerprint "
                    f"{actual}) differs from the data this env version was released with "
                    f"({pinned_data_fingerprint}). "
                    "Results will not be comparable: restore the data or register a new -vN.",
                    stacklevel=2,
                )
        self.tools: dict[str, Tool] = {}
        for t in self.make_tools():
            if t.name in self.tools:
                raise ConfigError(f"{type(self).__name__} defines tool {t.name!r} twice.")
            self.tools[t.name] = t
        self.observation_space = TextSpace(MAX_OBSERVATION_CHARS)
        self.action_space = TextSpace(self.max_action_chars)
        self._prompt_cache: dict[tuple[str, ...], tuple[str, list[dict[str, Any]]]] = {}
        self._task: Task | None = None
        self._active: dict[str, Tool] = {}
        self._turn = 0
        self._invalid = 0
        self._done = True
        self._setup_error: ActionError | None = None
        self._transcript: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ hooks for subclasses
    @classmethod
    def check_dependencies(cls) -> None:
        """Raise :class:`ImportError` (with the install command) if an optional package the env
        needs is missing; cheap, called without building the env (``toolgym leaderboard --envs
        all`` skips such envs). The default needs nothing."""

    def make_tools(self) -> list[Tool]:
        """Build the env's tools once (they may read per-episode state set in :meth:`start_episode`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_tools().")

    def check_answer(self, task: Task, answer: str) -> bool:
        """Grade a final answer for ``task``."""
        raise NotImplementedError(f"{type(self).__name__} must implement check_answer().")

    def load_tasks(self, split: str) -> TaskSet:
        """Load a split of this env's tasks (default: ``envs_data/<data_name>/tasks/<split>.jsonl``)."""
        return TaskSet.load(self.data_name, split)

    def start_episode(self, task: Task) -> None:
        """Set up per-episode state (databases, sandboxes...) for ``task``. Default: nothing."""

    def tools_for_task(self, task: Task) -> Sequence[Tool]:
        """Tools available in an episode of ``task`` (a subset of :meth:`make_tools`'s). Default: all."""
        return list(self.tools.values())

    def task_prompt(self, task: Task) -> str:
        """The task text shown to the agent. Default: ``task.prompt``."""
        return task.prompt

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start an episode; see the class docstring for ``options`` and ``info``."""
        super().reset(seed=seed)
        task = self._choose_task(options or {})
        self._task = task
        self._turn = 0
        self._invalid = 0
        self._done = False
        self._active = {t.name: t for t in self.tools_for_task(task)}
        self._setup_error = None
        try:
            self.start_episode(task)
        except Exception as exc:  # noqa: BLE001 - one failed setup must not kill a vector batch
            logger.warning("Setting up task %s failed: %s", task.id, exc, exc_info=True)
            self._setup_error = ActionError(
                ErrorCode.SETUP_ERROR,
                f"The environment could not set up this episode ({type(exc).__name__}: "
                f"{snippet(str(exc), 300)}); the episode will end at the next step.",
            )
        system, schemas = self._system_prompt(tuple(self._active))
        prompt = self.task_prompt(task)
        observation = f"{system}\n\n{prompt}"
        if self._setup_error is not None:
            observation += f"\n\nError [{self._setup_error.code}]: {self._setup_error.message}"
        observation = self._fit(observation)
        self._transcript = [("env", observation)]
        info = {
            "task_id": task.id,
            "turn": 0,
            "tools": schemas,
            "action_format": self.format.name,
            "system_prompt": system,
            "task_prompt": prompt,
            "difficulty": task.difficulty,
            "split": self.task_set.split,
            "data_hash": self.task_set.content_hash(),
            "grader_version": self.grader_version,
            "error": None if self._setup_error is None else self._setup_error.code.value,
        }
        return observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Apply one action; see the class docstring. Never raises because of ``action``."""
        started = time.perf_counter()
        if self._task is None or self._done or self._setup_error is not None:
            return self._refuse_step()
        self._turn += 1
        parsed = self._parse(action)
        parsed_at = time.perf_counter()
        reward = 0.0
        terminated = truncated = success = False
        tool_output: str | None = None
        error: ActionError | None = None
        tool_seconds = 0.0
        if isinstance(parsed, ActionError):
            error = parsed
        elif isinstance(parsed, FinalAnswer):
            success = self._grade(self._task, parsed.text)
            reward = self.success_reward if success else 0.0
            terminated = True
        else:
            tool_started = time.perf_counter()
            result = self._call_tool(parsed)
            tool_seconds = time.perf_counter() - tool_started
            if isinstance(result, ActionError):
                error = result
            else:
                tool_output = result
        penalty = 0.0
        if error is not None and error.code in INVALID_ACTION_CODES:
            self._invalid += 1
            penalty = self.invalid_action.penalty
            limit = self.invalid_action.terminate_after
            if limit is not None and self._invalid >= limit:
                terminated = True
        reward += penalty
        if terminated:
            observation = self._final_message(parsed, error, success)
        else:
            body = tool_output if error is None else f"Error [{error.code}]: {error.message}"
            observation = self.format.wrap_observation(body)  # type: ignore[arg-type]
            if self._turn >= self.max_turns:
                truncated = True
                observation += (
                    f"\nThe turn limit ({self.max_turns}) is reached without a final answer; "
                    "the episode is over."
                )
                if error is None:
                    error = ActionError(ErrorCode.TOO_MANY_TURNS, "Turn limit reached.")
        self._done = terminated or truncated
        stop_reason = None
        if isinstance(parsed, FinalAnswer):
            stop_reason = "answer"
        elif terminated:
            stop_reason = ErrorCode.TOO_MANY_INVALID.value
        elif truncated:
            stop_reason = ErrorCode.TOO_MANY_TURNS.value
        info = self._step_info(
            parsed=None if isinstance(parsed, ActionError) else parsed, error=error, tool_output=tool_output,
            success=success, stop_reason=stop_reason, reward=reward, penalty=penalty,
        )  # fmt: skip
        return self._finish_step(
            action, observation, reward, terminated, truncated, info,
            timing=(started, parsed_at, tool_seconds), output_chars=len(tool_output or ""),
        )  # fmt: skip

    def _finish_step(
        self,
        action: Any,
        observation: str,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
        *,
        timing: tuple[float, float, float],
        output_chars: int,
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """The common end of a step: fit the observation, extend the transcript and add
        ``info["timing"]`` (``timing`` = step start, parse end, tool seconds) if ``record_timing``."""
        observation = self._fit(observation)
        if self.render_mode is not None:
            self._transcript += [("agent", action if isinstance(action, str) else repr(action)), ("env", observation)]
        if self.record_timing:
            started, parsed_at, tool_seconds = timing
            info["timing"] = {
                "parse_s": parsed_at - started,
                "tool_s": tool_seconds,
                "step_s": time.perf_counter() - started,
                "output_chars": output_chars,
            }
        return observation, reward, terminated, truncated, info

    def render(self) -> str | None:  # type: ignore[override]
        """With ``render_mode="ansi"``, the episode transcript so far as text."""
        if self.render_mode != "ansi":
            return None
        return "\n\n".join(f"[{who}]\n{text}" for who, text in self._transcript)

    # ------------------------------------------------------------------ public helpers
    @property
    def task(self) -> Task | None:
        """The current episode's task (``None`` before the first reset)."""
        return self._task

    @property
    def pinned_data_hash(self) -> str | None:
        """Old name of :attr:`pinned_data_fingerprint` (read by ``toolgym info``), kept for callers."""
        return self.pinned_data_fingerprint

    def make_oracle(self) -> Policy:
        """A fresh instance of this env's scripted oracle (solves tasks through the tools only).

        Raises:
            ConfigError: if the env declares no oracle.
        """
        if not self.oracle_cls:
            raise ConfigError(f"{type(self).__name__} has no scripted oracle (oracle_cls is unset).")
        module_name, _, attr = self.oracle_cls.partition(":")
        return getattr(importlib.import_module(module_name), attr)()

    def __getstate__(self) -> dict[str, Any]:
        # Tools are often closures over the env: rebuild them after unpickling instead.
        state = self.__dict__.copy()
        state["tools"] = None
        state["_active"] = list(self._active)
        state["_prompt_cache"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        active = state.pop("_active")
        self.__dict__.update(state)
        self.tools = {t.name: t for t in self.make_tools()}
        self._active = {name: self.tools[name] for name in active}

    # ------------------------------------------------------------------ internals
    def _choose_task(self, options: Mapping[str, Any]) -> Task:
        unknown = set(options) - {"task_id", "split", "difficulty"} if options else None
        if unknown:
            raise ConfigError(
                f"Unknown reset options {sorted(unknown)}; expected 'task_id', 'split', 'difficulty'."
            )
        pool = self.task_set
        if "split" in options and options["split"] != pool.split:
            pool = self.load_tasks(options["split"])
        if options.get("task_id") is not None:
            return pool.by_id(str(options["task_id"]))
        if options.get("difficulty") is not None:
            pool = pool.filter(difficulty=options["difficulty"])
        return pool[int(self.np_random.integers(len(pool)))]

    def _system_prompt(self, names: tuple[str, ...]) -> tuple[str, list[dict[str, Any]]]:
        cached = self._prompt_cache.get(names)
        if cached is None:
            tools = [self._active[n] for n in names]
            cached = (self.format.instructions(tools), [t.to_openai() for t in tools])
            self._prompt_cache[names] = cached
        return cached

    def _parse(self, action: Any) -> ToolCall | FinalAnswer | ActionError:
        if not isinstance(action, str):
            return ActionError(
                ErrorCode.INVALID_ACTION_TYPE,
                f"The action must be text (str), got {type(action).__name__}.",
            )
        if len(action) > self.max_action_chars:
            return ActionError(
                ErrorCode.ACTION_TOO_LONG,
                f"The action has {len(action)} characters; at most {self.max_action_chars} are allowed.",
            )
        if not action.strip():
            return ActionError(
                ErrorCode.EMPTY_ACTION,
                "The action is empty. Call a tool or give a final answer.",
            )
        try:
            return self.format.parse(action)
        except Exception as exc:  # noqa: BLE001 - a parser bug must not crash the env
            logger.exception("Action format %r raised on an action", self.format.name)
            return ActionError(
                ErrorCode.NO_ACTION, f"The action could not be parsed ({type(exc).__name__})."
            )

    def _call_tool(self, call: ToolCall) -> str | ActionError:
        tool = self._active.get(call.name)
        if tool is None:
            return ActionError(
                ErrorCode.UNKNOWN_TOOL,
                f"There is no tool named {snippet(call.name, 64)!r}."
                + did_you_mean(call.name, self._active)
                + f" Available tools: {', '.join(self._active) or 'none'}.",
            )
        invalid = tool.validate(call.arguments)
        if invalid is not None:
            return invalid
        try:
            output = tool(**call.arguments)
        except ToolError as exc:
            return ActionError(exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - a tool bug must not crash the batch
            logger.warning("Tool %r raised %s", call.name, exc, exc_info=True)
            return ActionError(
                ErrorCode.TOOL_ERROR,
                f"Tool {call.name!r} failed: {type(exc).__name__}: {snippet(str(exc), 300)}",
            )
        text = output if isinstance(output, str) else str(output)
        if len(text) > self.max_output_chars:
            dropped = len(text) - self.max_output_chars
            text = text[: self.max_output_chars] + f"\n… [output truncated: {dropped} more characters]"
        return text

    def _refuse_step(self) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """A step when no episode runs (before reset, after its end, or after a failed setup)."""
        error = self._setup_error or ActionError(
            ErrorCode.EPISODE_OVER, "The episode is over; call reset() to start a new one."
        )
        self._done = True
        self._setup_error = None
        observation = self._fit(self.format.wrap_observation(f"Error [{error.code}]: {error.message}"))
        info = self._step_info(
            parsed=None, error=error, tool_output=None, success=False,
            stop_reason=error.code.value, reward=0.0, penalty=0.0,
        )
        return observation, 0.0, True, False, info

    def _step_info(
        self,
        *,
        parsed: ToolCall | FinalAnswer | None,
        error: ActionError | None,
        tool_output: str | None,
        success: bool,
        stop_reason: str | None,
        reward: float,
        penalty: float,
    ) -> dict[str, Any]:
        return {
            "task_id": None if self._task is None else self._task.id,
            "turn": self._turn,
            "action_format": self.format.name,
            "parsed": parsed,
            "error": None if error is None else error.code.value,
            "error_message": None if error is None else error.message,
            "tool_output": tool_output,
            "success": success,
            "invalid_actions": self._invalid,
            "stop_reason": stop_reason,
            "reward_components": {"success": reward - penalty, "invalid_penalty": penalty},
        }

    def _grade(self, task: Task, answer: str) -> bool:
        try:
            return bool(self.check_answer(task, answer))
        except Exception:  # noqa: BLE001 - a grader bug on odd text must not crash the env
            logger.exception("check_answer failed for task %s", task.id)
            return False

    def _final_message(
        self, parsed: ToolCall | FinalAnswer | ActionError, error: ActionError | None, success: bool
    ) -> str:
        if error is not None:
            return (
                f"Error [{error.code}]: {error.message}\nThe episode is over: "
                f"{self._invalid} invalid action(s) (limit {self.invalid_action.terminate_after})."
            )
        verdict = "correct" if success else "incorrect"
        return f"Final answer received ({verdict}). The episode is over."

    def _fit(self, text: str) -> str:
        limit = self.observation_space.max_length
        return text if len(text) <= limit else text[: limit - 1] + "…"


_INTERNAL_KWARGS = frozenset({"pinned_data_fingerprint", "pinned_data_hash", "self"})


def _reject_unknown_kwargs(cls: type, unknown: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the unknown ``gym.make`` keywords of ``cls``, with a
    did-you-mean and the accepted keywords (internal ones such as ``pinned_data_fingerprint`` left out)."""
    import inspect

    accepted: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                accepted.add(param.name)
    public = sorted(accepted - _INTERNAL_KWARGS)
    name = next(iter(unknown))
    raise ConfigError(
        f"{cls.__name__} got an unknown keyword argument {name!r}.{did_you_mean(name, public)} "
        f"Accepted: {', '.join(public)}."
    )
