"""The agent interface shared by oracles, baselines and the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Policy(Protocol):
    """Anything that maps an observation to an action text.

    ``reset`` is called before each episode; ``act`` once per step with the latest observation and
    ``info`` from the env (on the first step: the ``reset`` observation and info).
    """

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous episode; ``seed`` makes any randomness reproducible."""

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """Return the action text for this turn."""


@runtime_checkable
class BatchPolicy(Policy, Protocol):
    """A policy that can also play several episodes at once (e.g. one batched LLM generation per
    turn for every running episode), as :func:`toolgym.evaluation.run_episodes_batched` does.

    ``reset_batch(n, seed=...)`` starts ``n`` episodes in slots ``0..n-1``; ``act_batch`` returns
    one action per observation, ``slots[k]`` naming the slot of ``observations[k]`` (episodes that
    ended are left out, so the running slots shrink turn by turn).
    """

    def reset_batch(self, n: int, *, seed: int | None = None) -> None:
        """Start ``n`` new episodes; ``seed`` makes any randomness reproducible."""

    def act_batch(self, observations: Sequence[str], infos: Sequence[dict[str, Any]],
                  slots: Sequence[int] | None = None) -> list[str]:
        """One action per running episode (``slots``: which slot each observation belongs to)."""


def supports_batch(policy: Any) -> bool:
    """Whether ``policy`` can play several episodes at once (``reset_batch`` and ``act_batch``;
    see :class:`BatchPolicy`)."""
    return callable(getattr(policy, "reset_batch", None)) and callable(getattr(policy, "act_batch", None))
