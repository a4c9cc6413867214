"""A local Hugging Face causal LM as a ToolGym agent, and the chat-completion core it shares with
:mod:`baselines.serve`.

:class:`LocalChatModel` renders OpenAI-style chat messages (and tool schemas) through the model's
chat template, tokenizes them, samples with :class:`baselines.llm.policy.CausalLMPolicy` (batched, KV
cache), ends each reply at the first of the checkpoint's stop tokens (``generation_config``'s
``eos_token_id`` list plus the end-of-turn token: ``<|im_end|>`` for ChatML/Qwen models,
``<|eot_id|>`` for Llama 3, ...) and returns OpenAI-style reply messages, with tool calls parsed
by ToolGym's own action parsers (``tool_format="auto"``: Hermes, Qwen3-Coder, Mistral, OpenAI
JSON, pythonic) when tools were given.

:class:`LLMAgent` plays envs with it: each episode is a :class:`~baselines.agents.chat.ChatTranscript`,
re-rendered through the chat template every turn (text in, like a chat server), so the local agent
and :class:`~baselines.agents.openai_server.OpenAIChatAgent` talking to ``baselines.serve`` on the
same model give the same actions. :meth:`LLMAgent.act_batch` plays several episodes in one batch.

Which protocol and system prompt a checkpoint expects is read from the model directory:

* ``toolgym_agent.json`` in the directory, e.g. ``{"protocol": "text", "system": "none",
  "max_new_tokens": 40}``. The trainers write it into ``OUT/model`` and every checkpoint
  (:func:`agent_settings_from_config`: text protocol, system prompt ``"env"`` or ``"none"`` as
  ``include_system_prompt`` says, its ``max_new_tokens`` and its ``max_observation_tokens``, so
  each tool output is cut as in training: its head and its last tokens); else
* for a directory saved before the trainers wrote that file, the trainer's ``config.yaml`` one
  level up (``python -m baselines.train sft`` writes ``OUT/config.yaml`` and ``OUT/model``), read
  the same way; else
* the native tools protocol with the default system prompt (any chat model with a tool template).

Constructor arguments override all of these. Importing this module imports torch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from baselines.agents.chat import ChatAgentSlots, ChatTranscript, check_protocol, parse_tool_calls
from baselines.llm.model import context_length, load_pretrained
from baselines.llm.policy import CausalLMPolicy
from baselines.llm.tokenizer import (
    CHAT_TEMPLATE,
    IM_END,
    IM_START,
    OBSERVATION_TAIL,
    ControlTokens,
    cut_observation,
)
from toolgym.core.actions import get_action_format
from toolgym.core.errors import ConfigError

logger = logging.getLogger(__name__)

AGENT_SETTINGS_FILE = "toolgym_agent.json"
"""Optional file in a model directory with the agent settings the checkpoint expects."""

DEFAULT_MAX_NEW_TOKENS = 256

Message = dict[str, Any]
Conversation = tuple[Sequence[Message], Sequence[dict[str, Any]] | None]
"""``(messages, tools)``: OpenAI-style chat messages and function schemas (``None``: no tools)."""


@dataclass
class Completion:
    """One generated reply.

    Attributes:
        message: ``{"role": "assistant", "content": str | None}`` plus ``"tool_calls"`` (OpenAI
            form, ``arguments`` as a JSON string) when tools were given and the text held valid
            tool calls (:func:`baselines.agents.chat.parse_tool_calls`).
        text: The raw generated text (stop token removed, cut at a stop string).
        finish_reason: ``"stop"`` (stop token or stop string), ``"length"`` (token limit),
            ``"tool_calls"`` (calls parsed) or ``"context_length"`` (the prompt leaves no room in
            the model's context; nothing was generated).
        prompt_tokens: Prompt length in tokens.
        completion_tokens: Generated tokens (including the stop token).
        tokens: The generated token strings whose text is in ``text`` (no stop token), one per id.
        logprobs: Their log-probabilities under the sampling distribution (greedy: temperature 1).
    """

    message: Message
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    tokens: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)


def agent_settings_from_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The agent settings of a policy trained by ``baselines.train`` with the config ``cfg``.

    The trainers render the env's text (the text protocol), with or without the env's system
    prompt, ``max_new_tokens`` a turn and each tool output cut to ``max_observation_tokens``.

    Args:
        cfg: A trainer config as a mapping (``dataclasses.asdict`` of it, or its ``config.yaml``);
            it must have ``include_system_prompt``.

    Returns:
        ``{"protocol": "text", "system": "env" | "none", "max_new_tokens": int}``, plus
        ``"max_observation_tokens"`` when ``cfg`` has it.

    Raises:
        ConfigError: if ``cfg`` has no ``include_system_prompt``.
    """
    if "include_system_prompt" not in cfg:
        raise ConfigError(f"a trainer config needs 'include_system_prompt', got keys {sorted(cfg)}.")
    settings: dict[str, Any] = {
        "protocol": "text",
        "system": "env" if cfg["include_system_prompt"] else "none",
        "max_new_tokens": int(cfg.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
    }
    if cfg.get("max_observation_tokens") is not None:
        settings["max_observation_tokens"] = int(cfg["max_observation_tokens"])
    return settings


def write_agent_settings(model_dir: str | Path, settings: Mapping[str, Any]) -> Path:
    """Write ``settings`` to ``model_dir/toolgym_agent.json``, so that ``llm:`` plays the directory
    as its policy was trained, wherever it is copied; returns the file's path."""
    path = Path(model_dir) / AGENT_SETTINGS_FILE
    path.write_text(json.dumps(dict(settings), sort_keys=True) + "\n")
    return path


def read_agent_settings(model_dir: str | Path) -> dict[str, Any]:
    """The agent settings a checkpoint expects (see the module docstring); ``{}`` if unknown.

    Returns:
        A dict with any of ``protocol``, ``system``, ``max_new_tokens``, ``max_observation_tokens``.
    """
    root = Path(model_dir)
    explicit = root / AGENT_SETTINGS_FILE
    if explicit.is_file():
        settings = json.loads(explicit.read_text())
        if not isinstance(settings, dict):
            raise ConfigError(f"{explicit} must hold a JSON object, got {type(settings).__name__}.")
        return settings
    trainer_config = root.parent / "config.yaml"
    if trainer_config.is_file():
        import yaml

        cfg = yaml.safe_load(trainer_config.read_text()) or {}
        if isinstance(cfg, dict) and "include_system_prompt" in cfg:
            return agent_settings_from_config(cfg)
    return {}


class LocalChatModel:
    """A local causal LM behind a chat-completions interface (no HTTP).

    Args:
        model_dir: A Hugging Face checkpoint directory (model + tokenizer); nothing is downloaded.
        device: Torch device.
        threads: Set torch's CPU thread count (``None`` leaves it).
        tool_format: The ToolGym action format tool calls are parsed with (``"auto"``: any
            built-in call syntax; see :func:`baselines.agents.chat.parse_tool_calls`).

    Raises:
        FileNotFoundError: if ``model_dir`` is not a checkpoint directory.
        ConfigError: if the tokenizer has no chat template and no ChatML turn markers, or
            ``tool_format`` is unknown.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        threads: int | None = None,
        tool_format: str = "auto",
    ) -> None:
        if threads is not None:
            torch.set_num_threads(threads)
        get_action_format(tool_format)  # fail early on an unknown name
        self.tool_format = tool_format
        self.model_dir = Path(model_dir)
        self.model, self.tokenizer = load_pretrained(self.model_dir)
        self.model.to(device)
        self.model.eval()
        self.control = ControlTokens.from_tokenizer(self.tokenizer)
        self.stop_ids = stop_token_ids(self.model, self.control)
        self.context_length = context_length(self.model)
        self.chat_template: str | None = None
        if not getattr(self.tokenizer, "chat_template", None):
            vocab = self.tokenizer.get_vocab()
            if IM_START not in vocab or IM_END not in vocab:
                raise ConfigError(
                    f"The tokenizer in {self.model_dir} has no chat template and no ChatML turn "
                    "markers; add a chat_template to its tokenizer_config.json."
                )
            self.chat_template = CHAT_TEMPLATE

    @property
    def name(self) -> str:
        """The model's name (its directory name)."""
        return self.model_dir.name

    def render(self, messages: Sequence[Message], tools: Sequence[dict[str, Any]] | None = None) -> str:
        """The prompt text: ``messages`` (and ``tools``) through the chat template, ending with the
        assistant generation prompt."""
        return str(
            self.tokenizer.apply_chat_template(
                list(messages),
                tools=list(tools) if tools else None,
                chat_template=self.chat_template,
                add_generation_prompt=True,
                tokenize=False,
            )
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of a rendered prompt (the template writes any BOS itself)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def complete(
        self,
        conversations: Sequence[Conversation],
        *,
        max_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        """Generate one reply per conversation, all in one batch where their limits agree.

        Args:
            conversations: ``(messages, tools)`` pairs.
            max_tokens: New tokens per reply, clipped to the room left in the model's context.
            temperature: 0 takes the argmax (greedy); > 0 samples at that temperature.
            generator: Torch RNG for sampling (``None``: torch's global RNG).
            stop: Strings that end a reply (the text is cut before the first one found).

        Raises:
            ValueError: for ``max_tokens < 1`` or a negative temperature.
        """
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be ≥ 1, got {max_tokens!r}.")
        if temperature < 0:
            raise ValueError(f"temperature must be ≥ 0, got {temperature!r}.")
        prompts = [self.encode(self.render(messages, tools)) for messages, tools in conversations]
        policy = CausalLMPolicy(self.model, self.control, temperature=temperature if temperature > 0 else 1.0)
        by_limit: dict[int, list[int]] = {}
        for row, prompt in enumerate(prompts):
            limit = min(max_tokens, self.context_length - len(prompt))
            if limit >= 1 and prompt:
                by_limit.setdefault(limit, []).append(row)
        results: list[Completion | None] = [None] * len(prompts)
        for limit, rows in by_limit.items():
            generations = policy.generate(
                [prompts[r] for r in rows], max_new_tokens=limit, generator=generator, greedy=temperature == 0
            )
            for row, gen in zip(rows, generations, strict=True):
                tools = conversations[row][1]
                results[row] = self._completion(gen.token_ids, gen.logprobs, len(prompts[row]), tools, stop)
        for row, result in enumerate(results):
            if result is None:
                results[row] = Completion(
                    {"role": "assistant", "content": None}, "", "context_length", len(prompts[row]), 0
                )
        return [r for r in results if r is not None]

    def _completion(
        self,
        token_ids: list[int],
        logprobs: list[float],
        prompt_tokens: int,
        tools: Sequence[dict[str, Any]] | None,
        stop: Sequence[str],
    ) -> Completion:
        # The policy stops at the end-of-turn id; any other stop token (a Llama-3 <|eot_id|> when
        # the end-of-turn id is <|end_of_text|>) ends the reply here.
        end = next((i for i, t in enumerate(token_ids) if t in self.stop_ids), None)
        finished = end is not None
        ids = token_ids[:end] if finished else token_ids
        used = len(ids) + 1 if finished else len(ids)
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        finish = "stop" if finished else "length"
        cuts = [text.find(s) for s in stop if s and s in text]
        if cuts:
            text, finish = text[: min(cuts)], "stop"
        message: Message = {"role": "assistant", "content": text}
        if tools:
            names = {str((t.get("function") or t).get("name")) for t in tools}
            content, calls = parse_tool_calls(text, self.tool_format, names)
            if calls:
                message = {"role": "assistant", "content": content, "tool_calls": calls}
                finish = "tool_calls"
        pieces = [self.tokenizer.decode([i], skip_special_tokens=False) for i in ids]
        return Completion(message, text, finish, prompt_tokens, used, pieces, list(logprobs[: len(ids)]))


def stop_token_ids(model: Any, control: ControlTokens) -> frozenset[int]:
    """The ids that end a reply: the model's ``generation_config.eos_token_id`` (an id or a list)
    and the tokenizer's end-of-turn id (``<|im_end|>``, else its EOS)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = []
    elif isinstance(configured, int):
        configured = [configured]
    return frozenset([int(i) for i in configured] + [control.eot_id])


class LLMAgent(ChatAgentSlots):
    """Plays ToolGym envs with a local causal LM (our tiny models or any local HF checkpoint).

    Args:
        model: A checkpoint directory or an already loaded :class:`LocalChatModel`.
        protocol: ``"native"`` or ``"text"`` (default: from the checkpoint, see the module docstring).
        system: ``"auto"``, ``"env"`` or ``"none"`` (default: from the checkpoint).
        max_new_tokens: Tokens per turn (default: from the checkpoint, else 256).
        max_observation_tokens: Cut each observation after the task prompt to this many tokens,
            as the trainers do (head and last tokens; default: from the checkpoint, else uncut).
            The cut is made on the model's tokens and the text decoded back, so the re-encoded
            prompt may differ from training's by a merge at the cut.
        temperature: 0 (default) decodes greedily; > 0 samples.
        seed: Default sampling seed (``reset(seed=...)`` overrides it per episode).
        device: Torch device for a directory ``model``.
        threads: torch CPU threads for a directory ``model`` (``None`` leaves torch's setting).
        tool_format: Tool-call parser for a directory ``model`` (default ``"auto"``).

    ``reset`` / ``act`` play one episode; ``reset_batch(n)`` / ``act_batch`` play ``n`` episodes at
    once, generating the turns of all running episodes in one batch. A turn whose prompt no longer
    fits the model's context ends the episode with an empty final answer (and a warning);
    :attr:`context_overflows` counts them.
    """

    def __init__(
        self,
        model: str | Path | LocalChatModel,
        *,
        protocol: str | None = None,
        system: str | None = None,
        max_new_tokens: int | None = None,
        max_observation_tokens: int | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        device: str = "cpu",
        threads: int | None = None,
        tool_format: str = "auto",
    ) -> None:
        self.model = (
            model
            if isinstance(model, LocalChatModel)
            else LocalChatModel(model, device=device, threads=threads, tool_format=tool_format)
        )
        settings = read_agent_settings(self.model.model_dir)
        self.protocol = protocol or str(settings.get("protocol", "native"))
        self.system = system or str(settings.get("system", "auto"))
        check_protocol(self.protocol, self.system)
        self.max_new_tokens = int(max_new_tokens or settings.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be ≥ 1, got {self.max_new_tokens!r}.")
        cut = max_observation_tokens if max_observation_tokens is not None else settings.get("max_observation_tokens")
        self.max_observation_tokens: int | None = None if cut is None else int(cut)
        if self.max_observation_tokens is not None and self.max_observation_tokens <= OBSERVATION_TAIL:
            raise ConfigError(f"max_observation_tokens must be > {OBSERVATION_TAIL}, got {self.max_observation_tokens!r}.")
        if self.max_observation_tokens is not None and self.protocol != "text":
            raise ConfigError("max_observation_tokens cuts observations as the trainers do, which needs protocol='text'; "
                              f"got protocol={self.protocol!r}.")
        if temperature < 0:
            raise ConfigError(f"temperature must be ≥ 0, got {temperature!r}.")
        self.temperature = float(temperature)
        self.seed = seed
        self.context_overflows = 0
        self.transcripts: list[ChatTranscript] = []
        self.slot_tokens: list[int] = []
        self._generator: torch.Generator | None = None
        self.reset_batch(1)

    def _start(self, seed: int | None) -> None:
        """Seed sampling for the new episodes (greedy decoding ignores it)."""
        self._generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def act_batch(
        self,
        observations: Sequence[str],
        infos: Sequence[dict[str, Any]],
        slots: Sequence[int] | None = None,
    ) -> list[str]:
        """One action per running episode, generated in one batch.

        Args:
            observations: The latest observation of each episode in ``slots``.
            infos: The matching ``info`` dicts.
            slots: Which episodes (indices into the ``n`` of :meth:`reset_batch`) these are;
                default ``0..len(observations)-1``.

        Raises:
            ValueError: if the lengths disagree or a slot is out of range.
        """
        slots = list(range(len(observations))) if slots is None else list(slots)
        if not len(observations) == len(infos) == len(slots):
            raise ValueError(
                f"Got {len(observations)} observations, {len(infos)} infos and {len(slots)} slots; "
                "they must match."
            )
        if any(not 0 <= s < len(self.transcripts) for s in slots):
            raise ValueError(
                f"Slots {slots} out of range for {len(self.transcripts)} episodes; call reset_batch(n)."
            )
        for slot, observation, info in zip(slots, observations, infos, strict=True):
            if self.max_observation_tokens is not None and self.transcripts[slot].messages:  # not the task prompt
                observation = self.cut(observation)
            self.transcripts[slot].observe(observation, info)
        completions = self.model.complete(
            [(self.transcripts[s].messages, self.transcripts[s].request_tools) for s in slots],
            max_tokens=self.max_new_tokens,
            temperature=self.temperature,
            generator=self._generator,
        )
        actions = []
        for slot, completion in zip(slots, completions, strict=True):
            if completion.finish_reason == "context_length":  # nothing was run: no tokens counted
                actions.append(self._give_up(slot, completion.prompt_tokens))
            else:
                self.slot_tokens[slot] += completion.prompt_tokens + completion.completion_tokens
                actions.append(self.transcripts[slot].reply(completion.message))
        return actions

    def cut(self, observation: str) -> str:
        """``observation`` cut to ``max_observation_tokens`` of the model's tokens as the trainers
        cut it (:func:`baselines.llm.tokenizer.cut_observation`), decoded back to text."""
        tokenizer = self.model.tokenizer
        ids = tokenizer.encode(observation, add_special_tokens=False)
        kept = cut_observation(ids, self.max_observation_tokens)
        return observation if kept is ids else tokenizer.decode(kept, skip_special_tokens=False)

    def _give_up(self, slot: int, prompt_tokens: int) -> str:
        self.context_overflows += 1
        # Warn once per agent: a small model can overflow on every episode of a long-prompt env.
        log = logger.warning if self.context_overflows == 1 else logger.debug
        log(
            "The conversation (%d tokens) no longer fits %s's context of %d tokens; answering empty "
            "(further overflows of this agent are logged at debug level).",
            prompt_tokens,
            self.model.name,
            self.model.context_length,
        )
        return self.transcripts[slot].give_up()
