"""Tokenizer with control tokens, the ChatML chat template, and control-token lookup.

Control tokens (the tags that structure a tool-use turn and the turn markers) are single tokens,
so that their probabilities can be read off one softmax entry and their positions found by id.
As in Qwen2.5, the turn markers are *special* tokens and the tags are plain added tokens (text
decoded with ``skip_special_tokens=True`` keeps the tags); the tokenizer's EOS is the end-of-turn
``<|im_end|>`` and its pad token ``<|endoftext|>``. The conversation format is ChatML (Qwen2.5 style)::

    <|im_start|>system\\n{system}<|im_end|>\\n
    <|im_start|>user\\n{task}<|im_end|>\\n
    <|im_start|>assistant\\n<tool_call>{...}</tool_call><|im_end|>\\n
    <|im_start|>user\\n<tool_response>\\n{output}\\n</tool_response><|im_end|>\\n
    <|im_start|>assistant\\n<answer>...</answer><|im_end|>

:class:`ChatFormat` renders the same text piece by piece (prompt, then each observation), which
is what rollouts and SFT use: a conversation is tokenized as the concatenation of its pieces and
the policy's own tokens, never re-tokenized as a whole (token-in/token-out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

CONTROL_TOKEN_STRINGS: dict[str, str] = {
    "tool_call": "<tool_call>",
    "tool_call_end": "</tool_call>",
    "answer": "<answer>",
    "answer_end": "</answer>",
    "tool_response": "<tool_response>",
    "tool_response_end": "</tool_response>",
    "im_start": IM_START,
    "im_end": IM_END,
    "eos": ENDOFTEXT,
}
"""Control-token *names* (used in metric names, e.g. ``diag/probe/leak_mean/tool_call``) and strings."""

SPECIAL_TOKENS: tuple[str, ...] = (
    ENDOFTEXT,
    IM_START,
    IM_END,
    "<tool_call>",
    "</tool_call>",
    "<answer>",
    "</answer>",
    "<tool_response>",
    "</tool_response>",
)
"""Reserved tokens of the tokenizer trained by :func:`train_tokenizer`, in id order (0..8): each is
a single token. Only :data:`TURN_TOKENS` are *special* (dropped by ``skip_special_tokens=True``);
the :data:`TAG_TOKENS` are plain added tokens, so decoded text keeps them."""

TURN_TOKENS: tuple[str, ...] = SPECIAL_TOKENS[:3]
"""``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``: special tokens (as in Qwen2.5)."""

TAG_TOKENS: tuple[str, ...] = SPECIAL_TOKENS[3:]
"""The tool-call, answer and tool-response tags: single, non-special added tokens, so that
``decode(..., skip_special_tokens=True)`` (``pipeline``'s default) keeps them."""

CHAT_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"""
"""Jinja ChatML template with tool support: byte for byte the chat template of Qwen3-Instruct-2507
(as shipped by ``Qwen/Qwen3-4B-Instruct-2507``, Apache-2.0; TRL keeps the same text as
``trl.chat_template_utils.qwen3_instruct_2507_chat_template``).

Being that exact string, tools that recognise chat templates by comparing them with known ones
recognise ours: TRL's ``add_response_schema`` gives it Qwen3's tool-call parser and
``get_training_chat_template`` its ``{% generation %}`` version (for assistant-only loss). Tools
(full OpenAI schemas, one JSON object per line inside ``<tools>``), assistant tool calls
(``<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>``, ``arguments`` as a JSON string or
an object) and tool results (consecutive ``tool`` messages share one ``user`` turn of
``<tool_response>`` blocks) render exactly as in Qwen2.5's template (which writes ``arguments``
given as a JSON string as a quoted string instead), so servers that detect
Hermes-style tool calls (vLLM's ``hermes`` parser) handle it. Unlike Qwen2.5's, it adds no default
system prompt and no ``<think>`` block: a conversation without a system message and without tools
renders exactly as :class:`ChatFormat`'s pieces (which the tiny models are trained on).

Rendering ``[system, user, assistant, tool, ...]`` with ``add_generation_prompt=True`` gives the
same text as :class:`ChatFormat`'s pieces joined with the assistant turns (when each tool
message's content is the bare tool output; ToolGym observations are already wrapped in
``<tool_response>`` and are passed as ``user`` messages by :class:`ChatFormat`)."""


@dataclass(frozen=True)
class ControlTokens:
    """Ids of the control tokens a tokenizer has.

    Attributes:
        ids: Control-token name (a key of :data:`CONTROL_TOKEN_STRINGS`) -> token id, for the
            tokens that exist as single tokens in this tokenizer.
        eot_id: End-of-turn id: ``<|im_end|>`` if present, else the EOS token.
        pad_id: Padding id (the pad token, else EOS).
    """

    ids: dict[str, int]
    eot_id: int
    pad_id: int
    names_by_id: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names_by_id", {v: k for k, v in self.ids.items()})

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase) -> ControlTokens:
        """Find the control tokens of any HF tokenizer (ours, Qwen-style, ...).

        A control token counts only if its string is a single token of the vocabulary.

        Raises:
            ValueError: if the tokenizer has neither ``<|im_end|>`` nor an EOS token.
        """
        vocab = tokenizer.get_vocab()
        ids = {name: vocab[s] for name, s in CONTROL_TOKEN_STRINGS.items() if s in vocab}
        if tokenizer.eos_token_id is not None and "eos" not in ids:
            ids["eos"] = int(tokenizer.eos_token_id)
        eot = ids.get("im_end", ids.get("eos"))
        if eot is None:
            raise ValueError(
                "The tokenizer has no end-of-turn token: expected '<|im_end|>' or an EOS token."
            )
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ids.get("eos", eot)
        return cls(ids=ids, eot_id=int(eot), pad_id=int(pad))

    @property
    def names(self) -> list[str]:
        """Names of the control tokens present, in :data:`CONTROL_TOKEN_STRINGS` order."""
        return [n for n in CONTROL_TOKEN_STRINGS if n in self.ids]

    @property
    def id_list(self) -> list[int]:
        """Ids of the control tokens present (same order as :attr:`names`)."""
        return [self.ids[n] for n in self.names]

    def mask(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Boolean tensor, same shape as ``token_ids``: True where the token is a control token."""
        import torch

        return torch.isin(token_ids, torch.tensor(self.id_list, device=token_ids.device))

    def get(self, name: str) -> int | None:
        """Id of the named control token, or None if the tokenizer lacks it."""
        return self.ids.get(name)


class ChatFormat:
    """Renders a ToolGym episode as ChatML text pieces and tokenizes them.

    Args:
        tokenizer: A tokenizer with ``<|im_start|>`` and ``<|im_end|>`` tokens.
        include_system_prompt: Put the env's system prompt (tools and format) in the prompt. A
            tiny model trained from scratch does not need it (it is the same in every episode),
            and dropping it makes sequences several times shorter.

    Raises:
        ValueError: if the tokenizer lacks the ChatML turn markers.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, include_system_prompt: bool = True) -> None:
        vocab = tokenizer.get_vocab()
        missing = [t for t in (IM_START, IM_END) if t not in vocab]
        if missing:
            raise ValueError(
                f"ChatFormat needs the ChatML turn markers as single tokens; the tokenizer lacks "
                f"{missing}. Use a ChatML tokenizer (ours or Qwen-style)."
            )
        self.tokenizer = tokenizer
        self.include_system_prompt = include_system_prompt
        self.control = ControlTokens.from_tokenizer(tokenizer)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (special-token strings become their single ids; no BOS/EOS added)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt_text(self, system: str | None, user: str) -> str:
        """System (optional) and user turns, then the assistant generation prompt."""
        head = ""
        if system and self.include_system_prompt:
            head = f"{IM_START}system\n{system}{IM_END}\n"
        return f"{head}{IM_START}user\n{user}{IM_END}\n{IM_START}assistant\n"

    def observation_text(self, observation: str) -> str:
        """What follows an assistant turn (which ends with ``<|im_end|>``): the env's observation
        as a user turn, then the next assistant generation prompt."""
        return f"\n{IM_START}user\n{observation}{IM_END}\n{IM_START}assistant\n"

    def prompt_ids(self, system: str | None, user: str) -> list[int]:
        """Token ids of :meth:`prompt_text`."""
        return self.encode(self.prompt_text(system, user))

    def observation_ids(self, observation: str, max_tokens: int | None = None) -> list[int]:
        """Token ids of :meth:`observation_text`; the observation itself is cut to ``max_tokens``
        (keeping its head and its last 4 tokens, e.g. the closing ``</tool_response>``)."""
        body = cut_observation(self.encode(observation), max_tokens)
        return (
            self.encode(f"\n{IM_START}user\n")
            + body
            + self.encode(f"{IM_END}\n{IM_START}assistant\n")
        )

    def action_ids(self, action: str) -> list[int]:
        """Token ids of an assistant turn written as text (expert data), ending with end-of-turn."""
        return self.encode(action) + [self.control.eot_id]

    def decode_action(self, token_ids: Sequence[int]) -> str:
        """The text of a sampled assistant turn, without its end-of-turn token."""
        ids = list(token_ids)
        if ids and ids[-1] == self.control.eot_id:
            ids = ids[:-1]
        return self.tokenizer.decode(ids, skip_special_tokens=False)


OBSERVATION_TAIL = 4
"""Tokens kept from the end of a cut observation (e.g. a closing ``</tool_response>``)."""


def cut_observation(ids: list[int], max_tokens: int | None) -> list[int]:
    """``ids`` cut to ``max_tokens`` (``None``: uncut): its head, then its last
    :data:`OBSERVATION_TAIL` tokens; the rule the trainers and the LLM agent share."""
    if max_tokens is None or len(ids) <= max_tokens:
        return ids
    return ids[: max_tokens - OBSERVATION_TAIL] + ids[-OBSERVATION_TAIL:]


def conversation_text(
    system: str | None, user: str, actions: Sequence[str], observations: Sequence[str]
) -> str:
    """A whole episode as ChatML text (what :class:`ChatFormat`'s pieces concatenate to): the
    text to train a tokenizer on, so that turn markers and role names merge into few tokens."""
    head = f"{IM_START}system\n{system}{IM_END}\n" if system else ""
    text = f"{head}{IM_START}user\n{user}{IM_END}\n{IM_START}assistant\n"
    for turn, action in enumerate(actions):
        text += f"{action}{IM_END}"
        if turn < len(observations):
            text += f"\n{IM_START}user\n{observations[turn]}{IM_END}\n{IM_START}assistant\n"
    return text


def train_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 2048,
    min_frequency: int = 2,
    model_max_length: int = 1024,
    split_words: bool = True,
) -> Any:
    """Train a byte-level BPE tokenizer on ``texts`` with :data:`SPECIAL_TOKENS` as single tokens.

    ``split_words=True`` (default) is GPT-2's pre-tokenization (merges stay within words, digits
    and punctuation runs); ``False`` lets merges cross them (fewer tokens on repetitive
    scaffolding, odd token boundaries).

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` with the ChatML :data:`CHAT_TEMPLATE` and the
        chat conventions of :func:`with_chat_conventions` (EOS ``<|im_end|>``, pad
        ``<|endoftext|>``, tags as non-special added tokens); ``save_pretrained`` /
        ``AutoTokenizer.from_pretrained`` round-trip it.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=split_words)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return _chat_tokenizer(core, model_max_length=model_max_length, chat_template=CHAT_TEMPLATE)


def with_chat_conventions(tokenizer: PreTrainedTokenizerBase) -> Any:
    """A copy of one of our ChatML tokenizers with the conventions standard tools expect.

    :data:`TAG_TOKENS` become non-special added tokens (same ids, still single tokens), EOS
    becomes ``<|im_end|>``, pad ``<|endoftext|>``, and the chat template :data:`CHAT_TEMPLATE`;
    the vocabulary, ids and encodings are unchanged. Used to re-save checkpoints written before
    these conventions.

    Raises:
        ValueError: if the tokenizer lacks one of :data:`SPECIAL_TOKENS` as a single token.
    """
    from tokenizers import Tokenizer

    vocab = tokenizer.get_vocab()
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ValueError(f"with_chat_conventions needs one of our ChatML tokenizers; this one lacks {missing}.")
    core = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    return _chat_tokenizer(
        core,
        model_max_length=int(tokenizer.model_max_length),
        chat_template=CHAT_TEMPLATE,
    )


def _chat_tokenizer(core: Any, *, model_max_length: int, chat_template: str) -> Any:
    """Wrap a ``tokenizers.Tokenizer`` holding :data:`SPECIAL_TOKENS` with our conventions."""
    import json

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    data = json.loads(core.to_str())
    for added in data.get("added_tokens", []):
        if added["content"] in SPECIAL_TOKENS:
            added["special"] = added["content"] in TURN_TOKENS
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(data)),
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START],
        model_max_length=model_max_length,
        padding_side="left",
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def load_tokenizer(path: str | Path) -> Any:
    """Load a saved tokenizer (ours or any local HF tokenizer directory); nothing is downloaded."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
