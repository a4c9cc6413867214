"""``ToolGym/BFCL-MultiTurn-v0`` (and one id per category): BFCL's multi-turn tasks."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from toolgym.core.actions import FinalAnswer, ToolCall
from toolgym.core.env import ToolEnv
from toolgym.core.errors import INVALID_ACTION_CODES, ActionError, ConfigError, ErrorCode, ToolError
from toolgym.core.formats import ANSWER_CLOSE, ANSWER_OPEN
from toolgym.core.tasks import Task, TaskSet
from toolgym.core.tools import Tool
from toolgym.envs.bfcl import data, runtime
from toolgym.envs.bfcl.schema import parameters_schema
from toolgym.envs.turn_end import NO_CALL_RULE, check_turn_end, conversation_over, ends_turn_without_call

MAX_STEPS_PER_TURN = 50
"""More calls than this in one user turn force-quit the task. BFCL's ``MAXIMUM_STEP_LIMIT`` is 20
*messages*, each of which may hold several parallel calls; ToolGym makes one call per message and
the longest ground-truth turn needs 34 calls, so the limit here is 50 calls."""

END_TURN = "end_turn"
"""The tool that ends a user turn in the default ``turn_end="tool"`` mode."""

INSTRUCTIONS = {
    "tool": (
        "This is a conversation with a user who makes one request per turn. Serve each request with "
        "as many tool calls as it needs (one per message). When the request is done, or cannot be "
        f"done with the tools you have, call {END_TURN} with your reply to the user: the user's next "
        f"request follows. After the user's last request, {ANSWER_OPEN}your reply{ANSWER_CLOSE} (or "
        f"{END_TURN}) ends the conversation; {ANSWER_OPEN} ends it at once, leaving later requests unserved."
    ),
    "no_call": (
        "This is a conversation with a user who makes one request per turn. Serve each request with "
        "as many tool calls as it needs (one per message). When the request is done, or cannot be "
        f"done with the tools you have, end your turn with {ANSWER_OPEN}your reply to the user{ANSWER_CLOSE}; "
        f"the user's next request follows. {NO_CALL_RULE} The conversation ends after the user's "
        "last request."
    ),
}


def _placeholder(**_: Any) -> str:
    raise ToolError("No episode is running; call reset() first.")


@lru_cache(maxsize=1)
def _tool_templates() -> dict[str, tuple[Tool, ...]]:
    """Every API class's tools, built (and their schemas compiled) once per process."""
    return {
        cls: tuple(
            Tool(
                name=doc["name"],
                description=doc["description"],
                parameters=parameters_schema(doc),
                fn=_placeholder,
            )
            for doc in docs
        )
        for cls, docs in data.func_docs().items()
    }


@lru_cache(maxsize=1)
def _end_turn_template() -> Tool:
    """The ``end_turn`` tool of ``turn_end="tool"`` mode (handled by the env, never called)."""
    return Tool(
        name=END_TURN,
        description=(
            "Reply to the user and end your turn: call it when the current request is done or cannot "
            "be done with the tools you have. The user's next request is returned."
        ),
        parameters={
            "type": "object",
            "properties": {"message": {"type": "string", "description": "Your reply to the user."}},
            "required": ["message"],
        },
        fn=_placeholder,
    )


def _bind(template: Tool, fn: Callable[..., str]) -> Tool:
    """A copy of a template tool calling ``fn``, reusing its compiled validator."""
    bound = object.__new__(Tool)
    bound.__dict__.update(template.__dict__)
    bound.fn = fn
    return bound


class BFCLMultiTurnEnv(ToolEnv):
    """The Berkeley Function Calling Leaderboard (BFCL v4) multi-turn tasks, graded as BFCL does.

    ## Description
    Each task is a conversation of 1-8 user requests against stateful API simulators (a file
    system, messaging, posting, ticketing, a trading bot, travel booking, vehicle control, a math
    library) set up from the task's initial configuration. Each request may need several tool
    calls. Categories: ``base``; ``miss_func`` (some functions are held back: a request needs one
    that is not yet available, and a later turn adds it with the message "I have updated some
    more functions you can choose from. What about now?"); ``miss_param`` (a request lacks a
    needed parameter, which the user gives in the next turn); ``long_context`` (the same
    scenarios with large initial states and long tool outputs). Data and simulators come from
    the ``bfcl-eval`` package (Apache-2.0, installed separately: see ``docs/bfcl.md``).

    ## Action Space
    Text in the env's action format: a call to one of the task's tools (BFCL's function docs
    converted to JSON Schema), or a final answer. How a user turn ends is set by ``turn_end``:

    * ``"tool"`` (default; keeps ToolGym's contract that a final answer ends the episode and an
      invalid action can be retried): the agent calls ``end_turn(message)`` to reply and get the
      next request; ``<answer>`` ends the conversation (later requests count as unserved);
      invalid actions are shown as errors and may be retried.
    * ``"no_call"`` (BFCL's inference loop, the reference study's setting): every action without
      a parseable tool call (``<answer>``, plain text, a malformed call) ends the user turn;
      there is no ``end_turn`` tool.

    ## Observation Space
    Text: first the instructions and tool schemas, then ``User:`` and the first request. After a
    call, its result exactly as BFCL records it (a string, a dict as JSON, or ``Error during
    execution: ...`` under ``Error [tool_error]``). When a turn ends, ``User:`` and the next
    request; in a ``miss_func`` turn also the schemas of the new tools (and ``info["tools"]``
    lists every tool available from then on).

    ## Rewards
    ``success_reward`` (1.0) when the conversation ends and every turn passed BFCL's multi-turn
    check: for each turn whose ground truth is not empty, the agent made at least one call, the
    public state of every API instance equals the ground truth's after replaying the
    ground-truth calls of the turns so far (BFCL's ``state_checker``), and every result of the
    turn's ground-truth calls is among the agent's results so far (``response_checker``). 0
    otherwise; invalid actions add the ``invalid_action`` penalty.

    ## Starting State
    A task drawn with the env's RNG from the split; fresh API instances for the agent and for the
    ground truth.

    ## Episode End
    Terminates when the conversation ends (``stop_reason="answer"``), or on too many invalid
    actions. Truncates after ``max_turns`` steps, or when one user turn has more than
    ``max_steps_per_turn`` calls (BFCL's force-quit; the task fails).

    ## Arguments
    Those of :class:`~toolgym.core.env.ToolEnv`, plus ``category`` (``"base"``, ``"miss_func"``,
    ``"miss_param"``, ``"long_context"`` or ``"all"``; the task's ``difficulty`` is its
    category), ``turn_end`` (``"tool"`` or ``"no_call"``, above) and ``max_steps_per_turn``
    (50, see :data:`MAX_STEPS_PER_TURN`). Default ``max_turns=100`` and
    ``max_output_chars=40000`` (the longest ground-truth result, in ``long_context``, has about
    31,700 characters; BFCL never truncates).
    Splits ``train``/``dev``/``test`` divide the 200 scenarios 138/20/42 by a hash of the
    scenario number (the same scenarios in every category); ``all`` holds every task.

    ## Version History
    * v0: initial release (bfcl-eval 2026.3.23, BFCL v4 data).
    """

    data_name = data.DATA_NAME
    oracle_cls = "toolgym.envs.bfcl.oracle:BFCLOracle"
    grader_version = "1"

    @classmethod
    def check_dependencies(cls) -> None:
        """Raise :class:`~toolgym.envs.bfcl.data.BFCLNotInstalledError` if ``bfcl-eval`` is missing."""
        data.require_package()

    def __init__(
        self,
        *,
        category: str = "base",
        turn_end: str = "tool",
        max_turns: int = 100,
        max_steps_per_turn: int = MAX_STEPS_PER_TURN,
        max_output_chars: int = 40_000,
        **kwargs: Any,
    ) -> None:
        if category != "all" and category not in data.CATEGORIES:
            raise ConfigError(
                f"category={category!r} is not a BFCL multi-turn category; expected one of "
                f"{data.CATEGORIES} or 'all'."
            )
        check_turn_end(turn_end)
        if not isinstance(max_steps_per_turn, int) or max_steps_per_turn < 1:
            raise ConfigError(f"max_steps_per_turn must be a positive integer, got {max_steps_per_turn!r}.")
        data.require_package()
        for name in data.CATEGORIES if category == "all" else (category,):
            data.check_sources(name)
        self.category = category
        self.turn_end = turn_end
        self.max_steps_per_turn = max_steps_per_turn
        self._instances: dict[str, Any] = {}
        self._gt_instances: dict[str, Any] = {}
        self._user_turn = 0
        self._turn_calls = 0
        self._results: list[str] = []
        self._verdicts: list[runtime.TurnVerdict] = []
        super().__init__(max_turns=max_turns, max_output_chars=max_output_chars, **kwargs)

    # ------------------------------------------------------------------ ToolEnv hooks
    def load_tasks(self, split: str) -> TaskSet:
        """One split of this env's category (see :mod:`toolgym.envs.bfcl.data`)."""
        return data.load_tasks(self.category, split)

    def make_tools(self) -> list[Tool]:
        """Every function of every multi-turn API class, bound to this env's instances (plus
        ``end_turn`` when ``turn_end="tool"``)."""
        tools = [
            _bind(template, self._api_call(cls, template.name))
            for cls, templates in _tool_templates().items()
            for template in templates
        ]
        if self.turn_end == "tool":
            tools.append(_bind(_end_turn_template(), _placeholder))
        return tools

    def tools_for_task(self, task: Task) -> Sequence[Tool]:
        """The functions of the task's classes, less the ones held back (``miss_func``)."""
        held = {name for names in task.metadata["missed_function"].values() for name in names}
        tools = [
            self.tools[t.name]
            for cls in task.metadata["involved_classes"]
            for t in _tool_templates()[cls]
            if t.name not in held
        ]
        if self.turn_end == "tool":
            tools.append(self.tools[END_TURN])
        return tools

    def start_episode(self, task: Task) -> None:
        """Fresh API instances for the agent and for the ground truth."""
        long_context = task.metadata["category"] == "long_context"
        classes, config = task.metadata["involved_classes"], task.metadata["initial_config"]
        self._instances = runtime.make_instances(classes, config, long_context=long_context)
        self._gt_instances = runtime.make_instances(classes, config, long_context=long_context)
        self._user_turn = 0
        self._turn_calls = 0
        self._results = []
        self._verdicts = []

    def task_prompt(self, task: Task) -> str:
        """How turns work, then the first user request."""
        return f"{INSTRUCTIONS[self.turn_end]}\n\nUser: {task.prompt}"

    def check_answer(self, task: Task, answer: str) -> bool:
        """Whether every turn checked so far passed (the grade itself is made turn by turn)."""
        return all(v.valid for v in self._verdicts)

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a conversation; ``info`` also has ``user_turn`` (0), ``user_turns`` and ``turn_end``."""
        observation, info = super().reset(seed=seed, options=options)
        info["user_turn"] = 0
        info["user_turns"] = len(self._task.metadata["turns"]) if self._task is not None else 0
        info["turn_end"] = self.turn_end
        return observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """A tool call runs as in every ToolGym env; what ends a user turn depends on ``turn_end``
        (see the class docstring).

        ``info`` also has ``user_turn`` (the turn now in progress) and, when a turn ends,
        ``turn_check`` (BFCL's verdict on it); when tools are added, ``tools``.
        """
        if self._task is None or self._done or self._setup_error is not None:
            return super().step(action)
        parsed = self._parse(action)
        if ends_turn_without_call(self.turn_end, parsed):
            return self._end_user_turn(action, parsed, final=False)
        if isinstance(parsed, FinalAnswer):
            return self._end_user_turn(action, parsed, final=True)
        if isinstance(parsed, ToolCall) and parsed.name == END_TURN and END_TURN in self._active:
            if self._active[END_TURN].validate(parsed.arguments) is None:
                return self._end_user_turn(action, parsed, final=False)
        observation, reward, terminated, truncated, info = super().step(action)
        if isinstance(parsed, ToolCall):
            self._turn_calls += 1
            if not (terminated or truncated) and self._turn_calls > self.max_steps_per_turn:
                truncated = self._done = True
                info["stop_reason"] = ErrorCode.TOO_MANY_TURNS.value
                info["error"] = info["error"] or ErrorCode.TOO_MANY_TURNS.value
                observation = self._fit(
                    observation + f"\nMore than {self.max_steps_per_turn} calls in one user turn: "
                    "the conversation is force-terminated (the task fails)."
                )
        info["user_turn"] = self._user_turn
        return observation, reward, terminated, truncated, info

    # ------------------------------------------------------------------ internals
    def _api_call(self, class_name: str, method: str) -> Callable[..., str]:
        def call(**arguments: Any) -> str:
            instance = self._instances.get(class_name)
            if instance is None:
                raise ToolError(f"Tool {method!r} is not available in this task.")
            try:
                output = runtime.result_text(getattr(instance, method)(**copy.deepcopy(arguments)))
            except Exception as exc:  # noqa: BLE001 - the simulator's errors are the agent's observation
                text = runtime.error_text(exc)
                self._results.append(text)
                raise ToolError(text) from None
            self._results.append(output)
            return output

        return call

    def _end_user_turn(
        self, action: Any, parsed: ToolCall | FinalAnswer | ActionError, *, final: bool
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """End the current user turn (``final``: and the conversation), grade it, show the next request."""
        started = time.perf_counter()
        assert self._task is not None
        task = self._task
        turns: list[str | None] = task.metadata["turns"]
        self._turn += 1
        error = parsed if isinstance(parsed, ActionError) else None
        penalty = 0.0
        terminated = truncated = success = False
        stop_reason: str | None = None
        if error is not None and error.code in INVALID_ACTION_CODES:
            self._invalid += 1
            penalty = self.invalid_action.penalty
            limit = self.invalid_action.terminate_after
            if limit is not None and self._invalid >= limit:
                terminated, stop_reason = True, ErrorCode.TOO_MANY_INVALID.value
        verdict = self._check_turn(task)
        self._user_turn += 1
        self._turn_calls = 0
        if final:  # the requests not reached count as turns without calls, as in BFCL
            while self._user_turn < len(turns):
                self._check_turn(task)
                self._user_turn += 1
        parts = [] if error is None else [f"Error [{error.code}]: {error.message}"]
        new_tools: list[dict[str, Any]] | None = None
        if terminated:
            parts.append(
                f"The conversation is over: {self._invalid} invalid action(s) "
                f"(limit {self.invalid_action.terminate_after})."
            )
        elif self._user_turn >= len(turns):
            terminated, stop_reason = True, "answer"
            success = self._grade(task, "")
            outcome = "all requests served" if success else "not all requests were served correctly"
            parts.append(conversation_over(outcome))
        else:
            message = turns[self._user_turn]
            added = task.metadata["missed_function"].get(self._user_turn, [])
            if added:
                for name in added:
                    self._active[name] = self.tools[name]
                new_tools = [self.tools[n].to_openai() for n in self._active]
                listing = "\n".join(
                    json.dumps(self.tools[n].to_openai()["function"], ensure_ascii=False) for n in added
                )
                parts.append(f"New tools are available:\n{listing}")
            parts.append(f"User: {data.HOLDOUT_USER_MESSAGE if message is None else message}")
            if self._turn >= self.max_turns:
                truncated, stop_reason = True, ErrorCode.TOO_MANY_TURNS.value
                parts.append(f"The turn limit ({self.max_turns}) is reached; the episode is over.")
                if error is None:
                    error = ActionError(ErrorCode.TOO_MANY_TURNS, "Turn limit reached.")
        self._done = terminated or truncated
        reward = (self.success_reward if success else 0.0) + penalty
        body = "\n\n".join(parts)
        is_call = isinstance(parsed, ToolCall)
        observation = self._fit(self.format.wrap_observation(body) if is_call and not self._done else body)
        if self.render_mode is not None:
            self._transcript += [
                ("agent", action if isinstance(action, str) else repr(action)),
                ("env", observation),
            ]
        info = self._step_info(
            parsed=None if isinstance(parsed, ActionError) else parsed,
            error=error,
            tool_output=body if is_call else None,
            success=success,
            stop_reason=stop_reason,
            reward=reward,
            penalty=penalty,
        )
        info["user_turn"] = self._user_turn
        info["turn_check"] = verdict.to_dict()
        if new_tools is not None:
            info["tools"] = new_tools
        if self.record_timing:
            elapsed = time.perf_counter() - started
            info["timing"] = {"parse_s": 0.0, "tool_s": elapsed, "step_s": elapsed, "output_chars": len(body)}
        return observation, reward, terminated, truncated, info

    def _check_turn(self, task: Task) -> runtime.TurnVerdict:
        """Replay this turn's ground truth and apply BFCL's checks (skipped after a failure)."""
        if any(not v.valid for v in self._verdicts):
            verdict = runtime.TurnVerdict(checked=False, valid=False, message="An earlier turn failed.")
        else:
            calls: list[str] = task.answer[self._user_turn]
            verdict = runtime.check_turn(
                turn_index=self._user_turn,
                ground_truth_calls=calls,
                ground_truth_results=runtime.run_ground_truth(self._gt_instances, calls),
                agent_calls_this_turn=self._turn_calls,
                agent_results_so_far=self._results,
                agent_instances=self._instances,
                ground_truth_instances=self._gt_instances,
            )
        self._verdicts.append(verdict)
        return verdict
