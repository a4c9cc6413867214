"""The trainer's control tokens, derived from the env's action format.

The turn grammar of :mod:`baselines.train.batch` (where each control token is legal) is the
grammar of a *tag* format: an assistant turn is ``<call-open> body <call-close>`` or
``<answer-open> text <answer-close>``, then end-of-turn. Every :class:`toolgym.core.formats.TagFormat`
(``hermes``, ``xml_call``, ``qwen3_coder``) has that grammar with its own tag strings, so the
control tokens are the format's four tags (plus the chat template's turn tokens, from the
tokenizer) and the grammar applies unchanged. Formats without tags (``openai_json``,
``pythonic``, ``mistral``, ``auto``) cannot be analysed this way and are rejected with a clear
error rather than silently treated as Hermes.

The roles keep the Hermes names (``tool_call``, ``tool_call_end``, ``answer``, ``answer_end``)
so metric names (``diag/probe/illegal_mean/tool_call``) mean the same role in every format.
"""

from __future__ import annotations

from typing import Any

from baselines.llm.tokenizer import ControlTokens

TAG_ROLES: dict[str, str] = {
    "tool_call": "call_open",
    "tool_call_end": "call_close",
    "answer": "answer_open",
    "answer_end": "answer_close",
}
"""Control-token role -> the attribute of a tag action format holding its string."""


def env_action_format(env: Any) -> Any:
    """The :class:`~toolgym.core.actions.ActionFormat` of a (possibly wrapped) ToolGym env.

    Raises:
        ValueError: if the env has no action format (not a ToolGym text env).
    """
    fmt = getattr(getattr(env, "unwrapped", env), "format", None)
    if fmt is None or not hasattr(fmt, "parse"):
        raise ValueError(f"{type(env).__name__} has no ToolGym action format; the trainers need a ToolGym text env.")
    return fmt


def format_control_tokens(tokenizer: Any, action_format: Any) -> ControlTokens:
    """Control tokens of ``tokenizer`` for ``action_format`` (a name or an ActionFormat).

    Args:
        tokenizer: A HF tokenizer; each of the format's tags must be one token of it.
        action_format: ``"hermes"``, ``"xml_call"``, ... or an ActionFormat instance.

    Returns:
        :class:`~baselines.llm.tokenizer.ControlTokens` whose four tag roles hold the format's tag
        ids, and whose turn tokens (``<|im_start|>``, ``<|im_end|>``, EOS) come from the tokenizer.

    Raises:
        ValueError: for a format without call / answer tags (naming it and what the trainer
            needs), or a tag that is not a single token of the tokenizer.
    """
    from toolgym.core.actions import get_action_format

    fmt = get_action_format(action_format)
    name = getattr(fmt, "name", type(fmt).__name__)
    missing = [attr for attr in TAG_ROLES.values() if not isinstance(getattr(fmt, attr, None), str)]
    if missing:
        raise ValueError(
            f"The trainer cannot analyse action format {name!r}: its turn grammar needs call and answer tags "
            f"(a TagFormat such as 'hermes', 'xml_call' or 'qwen3_coder'), and this format has no {', '.join(missing)}."
        )
    base = ControlTokens.from_tokenizer(tokenizer)
    vocab = tokenizer.get_vocab()
    ids = {role: i for role, i in base.ids.items() if role not in TAG_ROLES}
    for role, attr in TAG_ROLES.items():
        tag = getattr(fmt, attr)
        if tag not in vocab:
            raise ValueError(
                f"Action format {name!r}: its tag {tag!r} is not a single token of the tokenizer; the trainer's "
                "grammar needs each tag as one token (train or extend the tokenizer with the format's tags)."
            )
        ids[role] = int(vocab[tag])
    return ControlTokens(ids=ids, eot_id=base.eot_id, pad_id=base.pad_id)
