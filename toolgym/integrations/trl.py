"""Train on any ToolGym env with TRL's ``GRPOTrainer`` (multi-turn, native tool calls).

TRL (≥ 1.x) runs multi-turn agent rollouts through ``GRPOTrainer(environment_factory=...)``:
the factory builds one environment object per rollout; every public method of that object is
a tool (its schema is read from the method's signature and docstring), ``reset(**row)``
starts a rollout and returns text appended to the prompt, and TRL's generation loop calls
the tools the model asks for until the model replies without a tool call.
:class:`TRLAdapter` builds that object for a ToolGym env id::

    from trl import GRPOConfig, GRPOTrainer
    from toolgym.integrations.trl import TRLAdapter

    adapter = TRLAdapter("ToolGym/Search-v0", max_turns=6)
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=GRPOConfig(output_dir="out", max_steps=100, num_generations=8),
        **adapter.trainer_kwargs(num_tasks=512),
    )
    trainer.train()

``trainer_kwargs`` gives ``environment_factory`` (one method per ToolGym tool), ``reward_funcs``
(:meth:`TRLAdapter.toolgym_reward`, which ends each episode with the model's final reply and returns
ToolGym's episode reward) and ``train_dataset`` (one row per task; rows are repeated for the
``num_generations`` rollouts of a group, so a group shares its task as GRPO needs).

Semantics: see ``docs/integrations.md``. In short, every tool call TRL makes is a ToolGym
step (rendered in the env's action format, schema-validated, counted, penalised by the env's
invalid-action policy), the tool message is the env's observation without its format
wrapping, and the final reply is the answer. Calls that TRL's parser cannot read, or to a
tool name the env does not define, are handled by TRL and never reach the env.

Requires ``pip install 'toolgym[trl]'`` (trl ≥ 1.16, transformers ≥ 5.2).
"""

from __future__ import annotations

import inspect
import keyword
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, Union

from toolgym.core.errors import ConfigError
from toolgym.integrations._session import (
    NATIVE_SYSTEM_PROMPT,
    EpisodeRecord,
    EpisodeSession,
    FinalAnswerMode,
)

__all__ = [
    "ToolGymEnvironment",
    "TRLAdapter",
    "hermes_response_template",
    "prepare_tokenizer",
    "schema_to_type_hint",
]

_RESERVED = {"reset", "get_reward"}
_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "object": dict,
    "null": type(None),
}


def schema_to_type_hint(schema: dict[str, Any]) -> Any:
    """A Python type hint that ``transformers.utils.get_json_schema`` turns back into (a
    simplification of) the JSON Schema ``schema``.

    Types, ``enum``, array item types and unions are kept; value constraints (``minimum``,
    ``maxLength``, ``pattern``, ``additionalProperties``...) cannot be expressed as hints and
    are dropped from what the model sees (ToolGym still enforces them). A schema without a
    type becomes ``str | int | float | bool | dict | list``.
    """
    if not isinstance(schema, dict):
        return str
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, (str, int, float, bool)) for v in enum):
        return Literal[tuple(enum)]
    if "const" in schema and isinstance(schema["const"], (str, int, float, bool)):
        return Literal[schema["const"]]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            hints = tuple(schema_to_type_hint(o) for o in options)
            return Union[hints] if len(hints) > 1 else hints[0]  # noqa: UP007 - built at runtime
    kind = schema.get("type")
    if isinstance(kind, list) and kind:
        hints = tuple(schema_to_type_hint({**schema, "type": k}) for k in kind)
        return Union[hints] if len(hints) > 1 else hints[0]  # noqa: UP007
    if kind == "array":
        items = schema.get("items")
        return list[schema_to_type_hint(items)] if isinstance(items, dict) and items else list
    if kind in _JSON_TYPES:
        return _JSON_TYPES[kind]
    return Union[str, int, float, bool, dict, list]  # noqa: UP007


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _tool_method(name: str, description: str, parameters: dict[str, Any]) -> Callable[..., str]:
    """A method ``name(self, **arguments) -> str`` whose signature and Google-style docstring
    describe ``parameters`` (so TRL/transformers render the tool's schema from it) and whose
    body runs the call as a ToolGym step."""

    def method(self: ToolGymEnvironment, **arguments: Any) -> str:
        return self._call_tool(name, arguments)

    properties = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    doc_args = []
    # Required parameters first so the signature reads naturally; all are keyword-only.
    for pname in sorted(properties, key=lambda p: p not in required):
        if not pname.isidentifier() or keyword.iskeyword(pname):
            raise ConfigError(
                f"Tool {name!r} has a parameter {pname!r} that is not a Python identifier; TRL "
                "reads tool schemas from Python signatures, so it cannot be exposed."
            )
        pschema = properties[pname] if isinstance(properties[pname], dict) else {}
        hint = schema_to_type_hint(pschema)
        default = inspect.Parameter.empty if pname in required else pschema.get("default")
        params.append(inspect.Parameter(pname, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint))
        annotations[pname] = hint
        # get_json_schema reads "(choices: [...])" at the end of a description as an enum.
        doc = re.sub(r"\(choices:.*\)\s*$", "", _one_line(pschema.get("description") or pname)) or pname
        doc_args.append(f"    {pname}: {doc}")
    annotations["return"] = str
    summary = _one_line(description) or f"The {name} tool."
    # A line starting with "Args:" / "Returns:" would be read as a docstring section.
    summary = re.sub(r"^(Args|Arguments|Returns|Raises):", r"\1 -", summary)
    docstring = summary + ("\n\nArgs:\n" + "\n".join(doc_args) if doc_args else "")
    method.__name__ = name
    method.__qualname__ = f"ToolGymEnvironment.{name}"
    method.__doc__ = docstring
    method.__annotations__ = annotations
    method.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    return method


class ToolGymEnvironment:
    """Base of the per-env classes :class:`TRLAdapter` builds (one method per ToolGym tool).

    TRL treats every public function of the class as a tool, so this base defines only
    :meth:`reset` publicly; the episode is available as the :attr:`episode` property.
    """

    _adapter: TRLAdapter

    def __init__(self) -> None:
        adapter = type(self)._adapter
        self._session = EpisodeSession(adapter.env_id, final_answer=adapter.final_answer, **adapter.env_kwargs)

    def reset(self, seed: int | None = None, task_id: str | None = None, **row: Any) -> str:
        """Start a ToolGym episode for one rollout and return its task prompt.

        Args:
            seed: Episode seed (from the dataset row; ``None`` draws one from the adapter).
            task_id: Task to play (from the dataset row; ``None`` lets the env choose by seed).
            **row: The other dataset columns (ignored).
        """
        adapter = type(self)._adapter
        if seed is None and task_id is None:
            seed = adapter._next_seed()
        prompt, _ = self._session.reset(seed=None if seed is None else int(seed), task_id=task_id)
        adapter._started(self._session)
        return prompt

    @property
    def episode(self) -> EpisodeRecord | None:
        """The current (or last) episode: task, seed and every step with its ToolGym ``info``."""
        return self._session.record

    def _call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        return self._session.call_tool(name, arguments)

    def _finish(self, final_reply: str | None) -> EpisodeRecord:
        return self._session.finish(final_reply)


class TRLAdapter:
    """Exposes a ToolGym env id to TRL's ``GRPOTrainer``.

    Args:
        env_id: Registered ToolGym id (built-in or plugin), e.g. ``"ToolGym/Search-v0"``.
        final_answer: ``"text"`` (the final reply is the answer) or ``"strict"`` (the reply
            must be an answer in the env's action format, else it is a typed format error).
        system_prompt: System message of every prompt in :meth:`dataset` (``None``: none; the
            chat template still lists the tools).
        seed: Base seed for episodes whose dataset row carries no seed.
        **env_kwargs: Passed to :func:`gymnasium.make` for every rollout's env (``split``,
            ``max_turns``, ``invalid_action``, ``success_reward``...).

    Attributes:
        episodes: Every finished episode's :class:`EpisodeRecord`, in the order TRL scored them
            (``reward`` equals the reward TRL used; ``actions`` replays it in ToolGym).
        environment_class: The generated :class:`ToolGymEnvironment` subclass.
    """

    def __init__(
        self,
        env_id: str,
        *,
        final_answer: FinalAnswerMode = "text",
        system_prompt: str | None = NATIVE_SYSTEM_PROMPT,
        seed: int = 0,
        **env_kwargs: Any,
    ) -> None:
        self.env_id = env_id
        self.final_answer = final_answer
        self.system_prompt = system_prompt
        self.env_kwargs = dict(env_kwargs)
        self.episodes: list[EpisodeRecord] = []
        self._seed = seed
        self._lock = threading.Lock()
        probe = EpisodeSession(env_id, final_answer=final_answer, **env_kwargs)
        try:
            self.tools: list[dict[str, Any]] = probe.tool_schemas
            self._task_ids: list[str] = [t.id for t in probe.env.unwrapped.task_set]
        finally:
            probe.close()
        namespace: dict[str, Any] = {"_adapter": self, "__doc__": f"ToolGym env {env_id} for TRL."}
        for schema in self.tools:
            fn = schema["function"]
            name = fn["name"]
            if name in _RESERVED or name.startswith("_"):
                raise ConfigError(
                    f"{env_id} has a tool named {name!r}, which TRL reserves (reset, get_reward, "
                    "private names); it cannot be exposed as an environment method."
                )
            namespace[name] = _tool_method(name, fn.get("description", ""), fn.get("parameters") or {})
        slug = re.sub(r"\W+", "_", env_id).strip("_")
        self.environment_class: type[ToolGymEnvironment] = type(f"ToolGym_{slug}", (ToolGymEnvironment,), namespace)

    # ------------------------------------------------------------------ what GRPOTrainer takes
    def environment_factory(self) -> ToolGymEnvironment:
        """A fresh environment object (pass this bound method as ``environment_factory``)."""
        return self.environment_class()

    def toolgym_reward(
        self,
        completions: Sequence[Any],
        environments: Sequence[ToolGymEnvironment] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        """TRL reward function (logged as ``rewards/toolgym_reward``): end each rollout's
        episode with its final reply and return the episode's ToolGym reward (sum of step
        rewards, as ``toolgym run`` reports it).

        Also logs, through TRL's ``log_metric``, ``toolgym/success`` (success rate),
        ``toolgym/turns`` (env steps per episode) and ``toolgym/error_rate`` (steps with a
        typed ToolGym error, per step).

        Args:
            completions: TRL's completions (lists of messages for conversational prompts).
            environments: The rollouts' environment objects (TRL passes them when
                ``environment_factory`` is used).
            **kwargs: Other columns TRL passes (``log_metric`` is used, the rest ignored).

        Raises:
            ValueError: if TRL did not pass ``environments`` (no ``environment_factory``).
        """
        if environments is None:
            raise ValueError(
                "TRLAdapter.toolgym_reward needs the rollouts' environments: pass "
                "environment_factory=adapter.environment_factory to GRPOTrainer."
            )
        rewards: list[float] = []
        records: list[EpisodeRecord] = []
        for completion, environment in zip(completions, environments, strict=True):
            record = environment._finish(_final_reply(completion))
            with self._lock:
                self.episodes.append(record)
            rewards.append(record.reward)
            records.append(record)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and records:
            steps = sum(len(r.steps) for r in records)
            log_metric("toolgym/success", sum(r.success for r in records) / len(records))
            log_metric("toolgym/turns", steps / len(records))
            log_metric("toolgym/error_rate", sum(len(r.error_codes) for r in records) / max(steps, 1))
        return rewards

    def dataset(
        self,
        num_tasks: int | None = None,
        *,
        seed: int | None = None,
        task_ids: Sequence[str] | None = None,
    ) -> Any:
        """A ``datasets.Dataset`` with one row per episode: ``prompt`` (the system message and an
        empty user message that :meth:`ToolGymEnvironment.reset` fills with the task), ``task_id``
        and ``seed``.

        Args:
            num_tasks: Rows to make (tasks cycle through the split in order); ``None``: one
                row per task of the split.
            seed: Base seed (row ``i`` gets ``seed + i``); defaults to the adapter's.
            task_ids: Use exactly these tasks instead.
        """
        from datasets import Dataset

        base = self._seed if seed is None else seed
        pool = list(task_ids) if task_ids is not None else self._task_ids
        if not pool:
            raise ConfigError(f"{self.env_id} has no tasks in the selected split.")
        n = len(pool) if num_tasks is None else int(num_tasks)
        messages: list[dict[str, str]] = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": ""})
        return Dataset.from_dict(
            {
                "prompt": [messages] * n,
                "task_id": [pool[i % len(pool)] for i in range(n)],
                "seed": [base + i for i in range(n)],
            }
        )

    def trainer_kwargs(self, num_tasks: int | None = None, **dataset_kwargs: Any) -> dict[str, Any]:
        """``environment_factory``, ``reward_funcs`` and ``train_dataset`` for ``GRPOTrainer``."""
        return {
            "environment_factory": self.environment_factory,
            "reward_funcs": [self.toolgym_reward],
            "train_dataset": self.dataset(num_tasks, **dataset_kwargs),
        }

    # ------------------------------------------------------------------ internals
    def _next_seed(self) -> int:
        with self._lock:
            self._seed += 1
            return self._seed - 1

    def _started(self, session: EpisodeSession) -> None:
        """Hook called when a rollout's episode starts (for subclasses)."""


def _final_reply(completion: Any) -> str | None:
    """The final assistant reply of a TRL completion, or ``None`` if it ended on a tool result
    (TRL stopped on its turn or length limit before the model answered)."""
    if isinstance(completion, str):
        return completion
    if not completion:
        return ""
    last = completion[-1]
    if last.get("role") != "assistant" or last.get("tool_calls"):
        return None
    content = last.get("content") or ""
    if isinstance(content, list):  # multimodal blocks
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def hermes_response_template() -> dict[str, Any]:
    """A transformers ``response_template`` for ChatML replies with Hermes tool calls
    (``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, turn end ``<|im_end|>``): how
    TRL parses tool calls out of our tiny models' (and Hermes/Qwen2.5-style models') replies."""
    return {
        "defaults": {"role": "assistant"},
        "start_anchor": "<|im_start|>assistant\n",
        "fields": {
            "tool_calls": {
                "open": "<tool_call>",
                "close_pattern": r"</tool_call>\s*",
                "repeats": True,
                "content": "json",
                "transform": {"type": "function", "function": "{content}"},
            },
            "content": {"close_pattern": r"<\|im_end\|>\s*", "content": "text"},
        },
    }


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Make ``tokenizer`` usable for TRL tool calling, in place, and return it.

    If it has no ``response_template`` / ``response_schema``, TRL's own one for its known chat
    templates is set; a template TRL does not know that renders Hermes tool calls (ChatML
    with ``<tool_call>`` JSON, as ToolGym's tiny models) gets :func:`hermes_response_template`.

    Raises:
        ValueError: if the chat template is unknown and does not render Hermes tool calls.
    """
    if getattr(tokenizer, "response_template", None) is not None or getattr(tokenizer, "response_schema", None):
        return tokenizer
    from trl.chat_template_utils import add_response_schema

    try:
        return add_response_schema(tokenizer)
    except ValueError:
        pass
    probe = tokenizer.apply_chat_template(
        [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "probe_tool", "arguments": {"a": 1}}}
            ]},
        ],
        tokenize=False,
    )
    if "<|im_start|>assistant\n" in probe and re.search(r"<tool_call>\s*\{.*probe_tool.*\}\s*</tool_call>", probe):
        tokenizer.response_template = hermes_response_template()
        return tokenizer
    raise ValueError(
        "The tokenizer's chat template is neither one TRL knows nor ChatML with Hermes "
        "<tool_call> JSON; set tokenizer.response_template for its tool-call syntax (see the "
        "transformers response-parsing docs)."
    )
