"""Adapters that let other trainers use any ToolGym env unchanged.

* :mod:`toolgym.integrations.trl`: TRL's ``GRPOTrainer`` (``environment_factory``), extra
  ``toolgym[trl]``.
* :mod:`toolgym.integrations.verifiers`: Prime Intellect's ``verifiers``
  (``load_environment``), extra ``toolgym[verifiers]``.

Nothing here is imported by ``import toolgym``; each adapter imports its trainer only when
used. See ``docs/integrations.md`` for the semantics.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "EpisodeRecord",
    "EpisodeSession",
    "StepRecord",
    "oracle_conversations",
    "replay_reward",
    "trl",
    "verifiers",
]

_SUBMODULES = {"trl", "verifiers"}
_SESSION_NAMES = {"EpisodeRecord", "EpisodeSession", "StepRecord", "oracle_conversations", "replay_reward"}


def __getattr__(name: str) -> Any:
    """Import the adapter submodules (and the shared session types) on first use."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _SESSION_NAMES:
        return getattr(importlib.import_module(f"{__name__}._session"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
