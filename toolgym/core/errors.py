"""Typed errors with stable machine-readable codes.

Every way an agent's action can go wrong maps to one :class:`ErrorCode`. Environments never
raise on bad agent text: they turn the problem into an :class:`ActionError`, show its
``message`` to the agent as the observation and put ``code`` in ``info["error"]``.

Codes are part of the public API (trainers count them, leaderboards aggregate them): a code's
string value never changes once released; new failure classes get new codes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class ErrorCode(str, Enum):
    """Stable codes for everything that can be wrong with an action or a tool call."""

    # -- the action text itself -------------------------------------------------------------
    INVALID_ACTION_TYPE = "invalid_action_type"
    """The action is not a ``str``."""
    EMPTY_ACTION = "empty_action"
    """The action is empty or whitespace only."""
    ACTION_TOO_LONG = "action_too_long"
    """The action exceeds the env's ``max_action_chars``."""
    NO_ACTION = "no_action"
    """Neither a tool call nor a final answer was found (no recognised tags)."""
    MISSING_TAG = "missing_tag"
    """An opening tag has no matching closing tag, or the reverse."""
    NESTED_TAGS = "nested_tags"
    """A tag was opened inside another tag."""
    MULTIPLE_ACTIONS = "multiple_actions"
    """More than one tool call / answer in a single turn."""
    BAD_JSON = "bad_json"
    """The tool-call body is not valid JSON."""
    MALFORMED_CALL = "malformed_call"
    """The call is valid JSON but not ``{"name": str, "arguments": object}`` (or, in other
    formats, parses but has the wrong shape: positional arguments, non-literal values...)."""
    BAD_SYNTAX = "bad_syntax"
    """The call is not valid syntax in a non-JSON action format (e.g. a pythonic call)."""
    # -- the call against the env's tools ---------------------------------------------------
    UNKNOWN_TOOL = "unknown_tool"
    """The named tool does not exist in this environment."""
    SCHEMA_VIOLATION = "schema_violation"
    """The arguments do not validate against the tool's JSON Schema."""
    TOOL_ERROR = "tool_error"
    """The tool ran and reported an error (bad id, SQL error, policy violation...)."""
    TIMEOUT = "timeout"
    """The tool did not finish within its time limit."""
    SANDBOX_ERROR = "sandbox_error"
    """The sandbox that runs the tool failed (not the agent's code)."""
    SETUP_ERROR = "setup_error"
    """The env could not set up the episode (a sandbox, database or service failed to start);
    the episode ends at the first step with reward 0, and other episodes are unaffected."""
    # -- the episode ------------------------------------------------------------------------
    TOO_MANY_TURNS = "too_many_turns"
    """The turn limit was reached without a final answer."""
    TOO_MANY_INVALID = "too_many_invalid"
    """The invalid-action policy ended the episode after too many invalid actions."""
    EPISODE_OVER = "episode_over"
    """``step`` was called after the episode had ended; call ``reset`` first."""

    def __str__(self) -> str:  # so f-strings show "bad_json", not "ErrorCode.BAD_JSON"
        return self.value


@dataclass(frozen=True)
class ActionError:
    """A problem with one action: a stable ``code`` and a ``message`` written for the agent.

    The message says what was wrong and what was expected, so that a model can correct itself
    on the next turn.
    """

    code: ErrorCode
    message: str

    def to_dict(self) -> dict[str, str]:
        """Return ``{"code": ..., "message": ...}`` (JSON-serialisable)."""
        return {"code": self.code.value, "message": self.message}


class ToolGymError(Exception):
    """Base class of the exceptions ToolGym raises at *users* (never at agents)."""


class ToolError(Exception):
    """Raised by a tool implementation to report a clear, agent-facing error.

    The env catches it and returns ``message`` as the observation with code ``tool_error``
    (or ``code`` if given, e.g. ``ErrorCode.TIMEOUT``).

    Example::

        def open_doc(doc_id: str) -> str:
            if doc_id not in corpus:
                raise ToolError(f"No document with id {doc_id!r}.")
    """

    def __init__(self, message: str, code: ErrorCode = ErrorCode.TOOL_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ConfigError(ToolGymError, ValueError):
    """A bad argument from the user (env kwargs, configs): names the value and what was expected."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest of ``choices``, or ``""`` if none is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


INVALID_ACTION_CODES: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.INVALID_ACTION_TYPE,
        ErrorCode.EMPTY_ACTION,
        ErrorCode.ACTION_TOO_LONG,
        ErrorCode.NO_ACTION,
        ErrorCode.MISSING_TAG,
        ErrorCode.NESTED_TAGS,
        ErrorCode.MULTIPLE_ACTIONS,
        ErrorCode.BAD_JSON,
        ErrorCode.MALFORMED_CALL,
        ErrorCode.BAD_SYNTAX,
        ErrorCode.UNKNOWN_TOOL,
        ErrorCode.SCHEMA_VIOLATION,
    }
)
"""Codes that make an action *invalid* (the agent's fault, counted by the invalid-action policy
and by format-error rates). Tool errors, timeouts and sandbox failures are not in this set: the
call itself was well formed."""
