"""How long an env's first prompt is: the context a chat model needs before it writes a token.

The first prompt of an episode is what an agent sends before the model's first reply, in either
protocol of :mod:`baselines.agents.chat`:

* ``native``: the default system prompt and the task, with the env's tools passed as ``tools=``
  to the chat template (what ``llm:`` agents, the OpenAI-compatible server and ``vf-eval`` send);
* ``text``: the env's own system prompt (tool list and action format in text) and the task,
  without ``tools=`` (the ToolGym text protocol the tiny trainers use with
  ``include_system_prompt: true``). Its length depends on the env's ``action_format``.

Lengths are counted in tokens of a given tokenizer and in UTF-8 bytes. The byte count bounds the
token count of any byte-level BPE tokenizer (every token of ours covers at least one byte), so
it is the context that fits whatever tokenizer a trainer learns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

PROMPT_PROTOCOLS: tuple[str, ...] = ("native", "text")
"""The two ways an agent sends tools: ``tools=`` through the chat template, or in the system prompt."""


@dataclass(frozen=True)
class FirstPrompt:
    """The first prompt of one episode.

    Attributes:
        env_id: The registered env id.
        split: The task split.
        task_id: The task.
        protocol: ``"native"`` or ``"text"``.
        action_format: The env's ``action_format`` (it changes the ``text`` system prompt).
        messages: The chat messages (system, user).
        tools: The OpenAI function schemas passed as ``tools=`` (``None`` with the text protocol).
    """

    env_id: str
    split: str
    task_id: str
    protocol: str
    action_format: str
    messages: tuple[dict[str, str], ...]
    tools: tuple[dict[str, Any], ...] | None

    def render(self, tokenizer: Any) -> str:
        """The prompt text through ``tokenizer``'s chat template, ending with the generation prompt."""
        return str(
            tokenizer.apply_chat_template(
                list(self.messages),
                tools=list(self.tools) if self.tools else None,
                tokenize=False,
                add_generation_prompt=True,
            )
        )

    def n_tokens(self, tokenizer: Any) -> int:
        """Length of :meth:`render` in ``tokenizer``'s tokens."""
        return len(tokenizer.encode(self.render(tokenizer), add_special_tokens=False))

    def n_bytes(self, tokenizer: Any) -> int:
        """Length of :meth:`render` in UTF-8 bytes: at least :meth:`n_tokens` for any byte-level BPE."""
        return len(self.render(tokenizer).encode("utf-8"))


def first_prompts(
    env_id: str,
    *,
    splits: Sequence[str] = ("train", "dev", "test"),
    protocols: Sequence[str] = PROMPT_PROTOCOLS,
    action_formats: Sequence[str] = ("hermes",),
    max_tasks: int | None = None,
) -> Iterator[FirstPrompt]:
    """The first prompt of every task of ``env_id`` (each split, protocol and action format).

    ``native`` prompts do not depend on the action format and are yielded once per task (with the
    first format). Each task is reset once per format with ``seed=0``.

    Args:
        max_tasks: At most this many tasks per split (``None``: all).

    Raises:
        ValueError: for an unknown protocol or an empty ``action_formats``.
    """
    import gymnasium as gym

    from baselines.agents.chat import NATIVE_SYSTEM_PROMPT

    unknown = [p for p in protocols if p not in PROMPT_PROTOCOLS]
    if unknown:
        raise ValueError(f"Unknown protocol(s) {unknown}; expected some of {list(PROMPT_PROTOCOLS)}.")
    if not action_formats:
        raise ValueError("action_formats must name at least one format, e.g. ('hermes',).")
    for split in splits:
        for n_format, fmt in enumerate(action_formats):
            env = gym.make(env_id, split=split, action_format=fmt)
            try:
                tasks = list(env.unwrapped.task_set)[:max_tasks]
                for task in tasks:
                    _, info = env.reset(seed=0, options={"task_id": task.id})
                    user = {"role": "user", "content": str(info["task_prompt"])}
                    if "native" in protocols and n_format == 0:
                        yield FirstPrompt(
                            env_id, split, task.id, "native", fmt,
                            ({"role": "system", "content": NATIVE_SYSTEM_PROMPT}, user),
                            tuple(info.get("tools") or ()),
                        )
                    if "text" in protocols:
                        system = {"role": "system", "content": str(info.get("system_prompt", ""))}
                        yield FirstPrompt(env_id, split, task.id, "text", fmt, (system, user), None)
            finally:
                env.close()


def longest_first_prompt(
    prompts: Iterator[FirstPrompt] | Sequence[FirstPrompt], tokenizer: Any, *, unit: str = "tokens"
) -> tuple[int, FirstPrompt]:
    """The longest of ``prompts`` rendered with ``tokenizer``'s chat template, and its length.

    Args:
        unit: ``"tokens"`` (of ``tokenizer``) or ``"bytes"`` (UTF-8, a bound for any byte-level BPE).

    Raises:
        ValueError: for an unknown unit or no prompts.
    """
    if unit not in ("tokens", "bytes"):
        raise ValueError(f"unit must be 'tokens' or 'bytes', got {unit!r}.")
    best: tuple[int, FirstPrompt] | None = None
    for prompt in prompts:
        n = prompt.n_tokens(tokenizer) if unit == "tokens" else prompt.n_bytes(tokenizer)
        if best is None or n > best[0]:
            best = (n, prompt)
    if best is None:
        raise ValueError("longest_first_prompt got no prompts.")
    return best
