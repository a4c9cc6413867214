"""Evaluate (and train) on any ToolGym env with Prime Intellect's ``verifiers`` (v0.4, ``verifiers.v1``).

A verifiers environment is a *taskset* (the tasks), a *harness* (the program that talks to the
model through verifiers' interception endpoint) and *rewards* on the task. This module provides
all three for a ToolGym env id:

* :class:`ToolGymTaskset`: one task per episode, chosen exactly as ``toolgym run`` chooses them
  (every task of the split in order with seeds ``seed + i``, or ``num_episodes`` seeded draws);
* :class:`ToolGymHarness`: an in-process native-tool chat loop. Each request carries the env's
  exact OpenAI tool schemas; each tool call is a ToolGym step (schema validation, typed errors,
  turn counting, invalid-action policy); the tool message is the env's observation without its
  format wrapping; a reply without tool calls is the final answer; the loop ends when the
  ToolGym episode ends. Every model call goes through verifiers' endpoint, so the trace records
  the conversation and token usage as for any harness;
* :class:`ToolGymTask`: the reward ``toolgym_reward`` (the episode's ToolGym reward, summed over
  steps as ``toolgym run`` reports it) and metrics ``toolgym_success``, ``toolgym_turns``,
  ``toolgym_errors``. The whole episode (every step's ToolGym ``info``: error code and message,
  tool output, reward components, stop reason) is in ``trace.info["toolgym"]``.

verifiers finds plugins by a top-level module name, so the CLI uses the ``toolgym_verifiers``
shim module (``pip install -e examples/verifiers_toolgym``), which re-exports this module::

    vf-eval toolgym-verifiers --env.taskset.env-id ToolGym/Search-v0 \\
        --model MODEL --client.base-url http://127.0.0.1:8000/v1 --sampling.temperature 0 \\
        -n 20 --no-push --no-rich

From Python, :func:`load_environment` builds the same ``vf.Env``.

Requires ``pip install 'toolgym[verifiers]'`` (verifiers ≥ 0.4).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any, Literal

import verifiers.v1 as vf
from pydantic import Field
from verifiers.v1.runtimes import ProgramResult, SubprocessConfig

from toolgym.core.actions import FinalAnswer, action_from_openai_tool_call
from toolgym.core.errors import ToolGymError
from toolgym.integrations._session import NATIVE_SYSTEM_PROMPT, EpisodeRecord, EpisodeSession

logger = logging.getLogger(__name__)

PLUGIN_ID = "toolgym-verifiers"
"""The id verifiers resolves to the ``toolgym_verifiers`` shim module."""

__all__ = [
    "PLUGIN_ID",
    "AllRolloutsFailedError",
    "ToolGymEnv",
    "ToolGymEnvConfig",
    "ToolGymHarness",
    "ToolGymHarnessConfig",
    "ToolGymTask",
    "ToolGymTaskData",
    "ToolGymTaskset",
    "ToolGymTasksetConfig",
    "episode_to_json",
    "load_environment",
]


class ToolGymTasksetConfig(vf.TasksetConfig):
    """Which ToolGym env and episodes (``--env.taskset.*`` on the command line)."""

    env_id: str = "ToolGym/Search-v0"
    """A registered ToolGym id (built-in or plugin)."""
    split: str = "test"
    """Task split."""
    seed: int = 0
    """Base seed (episode ``i`` uses ``seed + i``, as ``toolgym run``)."""
    num_episodes: int | None = None
    """``None``: every task of the split once, in order; ``N``: N episodes whose tasks the env
    draws from seeds ``seed, seed + 1, ...`` (``toolgym run --episodes N``)."""
    max_turns: int | None = None
    """Override the env's turn limit (``toolgym run --max-turns``)."""
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other ``gymnasium.make`` kwargs (``invalid_action``, ``action_format``...)."""
    final_answer: Literal["text", "strict"] = "text"
    """``"text"``: the final reply is the answer; ``"strict"``: it must be an answer in the env's
    action format (else a typed format error)."""
    native_system_prompt: bool = True
    """Start with the native tool-calling system prompt (as the OpenAI-compatible agent of
    ``toolgym run``); ``False``: no system message."""
    protocol: Literal["native", "text"] = "native"
    """``"native"``: requests carry the env's tools and tool calls are ToolGym steps;
    ``"text"``: no tools are sent, each reply's text is the env action as is and each observation
    is the next user message (``toolgym run --agent 'openai:...?protocol=text'``; how the tiny
    models of ``baselines.train`` are trained)."""

    def make_kwargs(self) -> dict[str, Any]:
        """The ``gymnasium.make`` kwargs of every episode's env."""
        kwargs = {"split": self.split, **self.env_kwargs}
        if self.max_turns is not None:
            kwargs["max_turns"] = self.max_turns
        return kwargs


class ToolGymTaskData(vf.TaskData):
    """One ToolGym episode: env, reset seed and options, tools (the wire half of a task)."""

    env_id: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    task_id: str
    seed: int | None = None
    reset_options: dict[str, Any] | None = None
    """``env.reset`` options (``{"task_id": ...}`` when the task was chosen by id)."""
    tools: list[dict[str, Any]] = Field(default_factory=list)
    """OpenAI function schemas of the tools active in this episode (exact ToolGym schemas)."""
    final_answer: Literal["text", "strict"] = "text"
    protocol: Literal["native", "text"] = "native"


class ToolGymTask(vf.Task[ToolGymTaskData, vf.State, vf.TaskConfig]):
    """Scores a ToolGym episode the harness played (read from ``trace.info["toolgym"]``)."""

    @vf.reward
    async def toolgym_reward(self, trace: vf.Trace) -> float:
        """The episode's ToolGym reward (sum of step rewards); 0 if it did not run."""
        return float(_episode(trace).get("reward", 0.0))

    @vf.metric
    async def toolgym_success(self, trace: vf.Trace) -> float:
        """1.0 if the final answer was graded correct."""
        return float(bool(_episode(trace).get("success", False)))

    @vf.metric
    async def toolgym_turns(self, trace: vf.Trace) -> float:
        """Env steps in the episode (tool calls plus the final answer)."""
        return float(len(_episode(trace).get("steps", [])))

    @vf.metric
    async def toolgym_errors(self, trace: vf.Trace) -> float:
        """Steps with a typed ToolGym error (format, unknown tool, schema, tool, timeout...)."""
        return float(sum(1 for s in _episode(trace).get("steps", []) if s.get("error")))


def _episode(trace: vf.Trace) -> dict[str, Any]:
    return trace.info.get("toolgym") or {}


class ToolGymTaskset(vf.Taskset[ToolGymTask, ToolGymTasksetConfig]):
    """The episodes ``toolgym run`` would play, as verifiers tasks."""

    def load(self) -> Iterator[ToolGymTask]:
        """Yield one task per episode (see :class:`ToolGymTasksetConfig`)."""
        config = self.config
        kwargs = config.make_kwargs()
        session = EpisodeSession(config.env_id, final_answer=config.final_answer, **kwargs)
        try:
            task_set = session.env.unwrapped.task_set
            if config.num_episodes is None:
                plan = [(config.seed + i, {"task_id": t.id}) for i, t in enumerate(task_set)]
            else:
                plan = [(config.seed + i, None) for i in range(config.num_episodes)]
            for seed, options in plan:
                _, info = session.env.reset(seed=seed, options=options)
                yield ToolGymTask(
                    ToolGymTaskData(
                        id=f"{info['task_id']}@{seed}",
                        name=str(info["task_id"]),
                        prompt=str(info["task_prompt"]),
                        system_prompt=NATIVE_SYSTEM_PROMPT if config.native_system_prompt else None,
                        env_id=config.env_id,
                        env_kwargs=kwargs,
                        task_id=str(info["task_id"]),
                        seed=seed,
                        reset_options=options,
                        tools=list(info.get("tools", [])),
                        final_answer=config.final_answer,
                        protocol=config.protocol,
                    ),
                    config.task,
                )
        finally:
            session.close()


class ToolGymHarnessConfig(vf.HarnessConfig):
    """The in-process ToolGym chat loop (``--env.agent.harness.*``)."""

    id: str = PLUGIN_ID
    max_model_calls: int = Field(64, ge=1)
    """Safety cap on model calls per episode (the env's ``max_turns`` normally ends it first)."""
    max_tokens: int | None = None
    """``max_tokens`` sent with every request (``None``: the run's sampling settings)."""


class ToolGymHarness(vf.Harness[ToolGymHarnessConfig]):
    """Plays a ToolGym episode through verifiers' endpoint with native tool calls, in process.

    One tool call per assistant turn is executed (the first, as ``toolgym run``'s
    OpenAI-compatible agent does); the episode ends with the first reply without tool calls or
    when the env ends it (turn limit, invalid-action limit).
    """

    APPENDS_SYSTEM_PROMPT = True
    EXECUTES_CODE = False
    NEEDS_CONTAINER = False

    async def launch(
        self,
        ctx: Any,
        trace: vf.Trace,
        runtime: Any,
        endpoint: str,
        secret: str,
        mcp_urls: dict[str, str],
        data: vf.TaskData,
        tool_interception_url: str | None = None,
    ) -> ProgramResult:
        """Run the episode to its end; the ToolGym record goes to ``trace.info["toolgym"]``."""
        import httpx

        fields = data.model_dump()
        session = await asyncio.to_thread(
            EpisodeSession,
            fields["env_id"],
            final_answer=fields.get("final_answer", "text"),
            **(fields.get("env_kwargs") or {}),
        )
        try:
            options = fields.get("reset_options") or {}
            _, info = await asyncio.to_thread(
                session.reset, seed=fields.get("seed"), task_id=options.get("task_id")
            )
            tools = list(info.get("tools") or fields.get("tools") or [])
            text_protocol = fields.get("protocol") == "text"
            system, prompt = self.resolve_prompt(data)
            messages: list[dict[str, Any]] = []
            if system:
                messages.append({"role": "system", "content": system})
            if isinstance(prompt, str):
                messages.append({"role": "user", "content": prompt})
            else:
                messages.extend(m if isinstance(m, dict) else m.model_dump(exclude_none=True) for m in prompt or [])
            url = endpoint.rstrip("/") + "/chat/completions"
            headers = {"Authorization": f"Bearer {secret}"}
            async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0)) as client:
                for _ in range(self.config.max_model_calls):
                    if session.done:
                        break
                    body: dict[str, Any] = {"model": ctx.model, "messages": messages}
                    if tools and not text_protocol:
                        body["tools"] = tools
                    if self.config.max_tokens is not None:
                        body["max_tokens"] = self.config.max_tokens
                    response = await client.post(url, json=body, headers=headers)
                    overflow = "context_length_exceeded" in response.text
                    if response.status_code == 400 and overflow and session.record.steps:
                        # As toolgym run's agent: the conversation no longer fits, so the episode
                        # ends with an empty answer instead of failing the run.
                        await asyncio.to_thread(session.finish, "")
                        break
                    if response.status_code >= 400:
                        await asyncio.to_thread(session.finish, None)
                        trace.info["toolgym"] = episode_to_json(session.record)
                        what = (
                            "the env's first prompt does not fit the model's context"
                            if overflow and not session.record.steps
                            else "model call failed"
                        )
                        return ProgramResult(1, "", f"{what} (HTTP {response.status_code}): {response.text[:500]}")
                    message = response.json()["choices"][0]["message"]
                    play = _play_text_reply if text_protocol else _play_reply
                    await asyncio.to_thread(play, session, messages, message)
            if not session.done:
                await asyncio.to_thread(session.finish, None)
            trace.info["toolgym"] = episode_to_json(session.record)
            return ProgramResult(0, "", "")
        finally:
            session.close()


def _play_reply(session: EpisodeSession, messages: list[dict[str, Any]], message: dict[str, Any]) -> None:
    """Apply one model reply: its first tool call as a ToolGym step (tool message appended), or
    the final answer."""
    calls = message.get("tool_calls") or []
    content = message.get("content")
    if not calls:
        messages.append({"role": "assistant", "content": content or ""})
        session.finish(content or "")
        return
    call = calls[0]
    call_id = str(call.get("id") or f"call_{len(messages)}")
    messages.append({"role": "assistant", "content": content, "tool_calls": [{**call, "id": call_id}]})
    # A call whose arguments are not a JSON object becomes ToolGym's typed bad_json error.
    output = session.send_action(action_from_openai_tool_call(call, session.format))
    messages.append({"role": "tool", "tool_call_id": call_id, "content": output})


def _play_text_reply(session: EpisodeSession, messages: list[dict[str, Any]], message: dict[str, Any]) -> None:
    """Apply one model reply with the text protocol: its text is the env action as is; the
    env's observation (with its format's wrapping) becomes the next user message."""
    content = message.get("content") or ""
    messages.append({"role": "assistant", "content": content})
    if isinstance(session.format.parse(content), FinalAnswer):
        session.finish(content)
        return
    session.send_action(content)
    if not session.done:
        messages.append({"role": "user", "content": session.record.steps[-1].observation})


def episode_to_json(record: EpisodeRecord | None) -> dict[str, Any]:
    """A JSON-safe dict of an episode: ids, reward, success, stop reason and every step's
    action, reward and ToolGym ``info`` (``parsed`` as a dict)."""
    if record is None:
        return {}
    steps = []
    for step in record.steps:
        info = dict(step.info)
        parsed = info.get("parsed")
        info["parsed"] = parsed.to_dict() if hasattr(parsed, "to_dict") else parsed
        steps.append(
            {
                "kind": step.kind,
                "action": step.action,
                "reward": step.reward,
                "terminated": step.terminated,
                "truncated": step.truncated,
                **json.loads(json.dumps(info, default=str)),
            }
        )
    return {
        "env_id": record.env_id,
        "task_id": record.task_id,
        "seed": record.seed,
        "reward": record.reward,
        "success": record.success,
        "stop_reason": record.stop_reason,
        "steps": steps,
    }


class ToolGymEnvConfig(vf.EnvConfig):
    """The single-agent env config, with the agent running in a local subprocess runtime (the
    ToolGym harness needs no container or remote sandbox)."""

    agent: vf.AgentConfig = vf.AgentConfig(runtime=SubprocessConfig())


class AllRolloutsFailedError(ToolGymError):
    """Every rollout of a verifiers run failed: there is no score to report."""


class ToolGymEnv(vf.Env[ToolGymEnvConfig]):
    """One agent seat playing ToolGym episodes.

    When the run ends (``vf-eval`` leaves the env's serving context) and every rollout failed
    (each trace has errors: the server refused the prompt, the model call failed...), it raises
    :class:`AllRolloutsFailedError` quoting the first failure, so ``vf-eval`` exits non-zero
    instead of reporting a reward of 0 that looks like a real score.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rollouts = 0
        self.failures: list[str] = []

    async def run(self, task: vf.Task, agents: vf.Agents) -> None:
        """Play one episode with the ``agent`` seat (and count it as failed if its trace has errors)."""
        self.rollouts += 1
        try:
            trace = await agents.agent.run(task)
        except Exception as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
            raise
        errors = getattr(trace, "errors", None)
        if errors:
            self.failures.append(str(errors[0])[:1000])

    async def stop(self) -> None:
        """End of the run: fail loudly if every rollout failed.

        Raises:
            AllRolloutsFailedError: if at least one rollout ran and all of them failed.
        """
        await super().stop()
        if self.rollouts and len(self.failures) >= self.rollouts:
            raise AllRolloutsFailedError(
                f"All {self.rollouts} ToolGym rollouts failed; the first failure: {self.failures[0]}"
            )


def load_environment(env_id: str = "ToolGym/Search-v0", **kwargs: Any) -> vf.Env:
    """Build the verifiers environment for a ToolGym env id.

    Args:
        env_id: A registered ToolGym id.
        **kwargs: :class:`ToolGymTasksetConfig` fields (``split``, ``seed``, ``num_episodes``,
            ``max_turns``, ``env_kwargs``, ``final_answer``, ``native_system_prompt``,
            ``protocol``); any other keyword goes to ``gymnasium.make`` through ``env_kwargs``.

    Raises:
        ModuleNotFoundError: if the ``toolgym_verifiers`` shim module is not importable
            (``pip install -e examples/verifiers_toolgym``): verifiers resolves plugins by it.
    """
    fields = set(ToolGymTasksetConfig.model_fields)
    taskset_kwargs = {k: v for k, v in kwargs.items() if k in fields}
    extra = {k: v for k, v in kwargs.items() if k not in fields}
    if extra:
        taskset_kwargs["env_kwargs"] = {**taskset_kwargs.get("env_kwargs", {}), **extra}
    config = ToolGymEnvConfig(
        taskset=ToolGymTasksetConfig(id=PLUGIN_ID, env_id=env_id, **taskset_kwargs),
        agent=vf.AgentConfig(runtime=SubprocessConfig(), harness=ToolGymHarnessConfig()),
    )
    return vf.load_environment(config)
