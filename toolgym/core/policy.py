"""The agent interface shared by oracles, baselines and the CLI."""

from __future__ import annotations

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
