"""The agent registry: how ``toolgym run`` and ``toolgym leaderboard`` find agents, the way
:mod:`toolgym.registry` finds envs.

An agent *kind* is found by the prefix of a spec: ``random`` and ``oracle`` are whole specs,
``sb3:PATH``, ``llm:PATH`` and ``openai:MODEL@BASE_URL`` take an argument after the colon.
``toolgym`` itself ships no agents (it must not import the baselines, which depend on it):
packages register kinds with :func:`register_agent` from a function named in the
``toolgym.agents`` entry-point group, loaded on the first lookup. In ``pyproject.toml``::

    [project.entry-points."toolgym.agents"]
    mylab = "mylab_agents:register"    # calls toolgym.agents.register_agent(...)

The same function may call :func:`register_leaderboard` to give ``toolgym leaderboard`` its
runner (the baselines do).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from toolgym.core.errors import ConfigError, did_you_mean
from toolgym.core.policy import Policy

ENTRY_POINT_GROUP = "toolgym.agents"


@dataclass(frozen=True)
class AgentKind:
    """One registered agent kind.

    Attributes:
        name: The spec prefix (``"random"``, ``"sb3"``...).
        factory: ``factory(spec, env, seed)`` builds the agent from the whole spec.
        check: ``check(spec)`` raises :class:`ConfigError` for a bad spec without building the
            agent (no model load, no torch import); ``None`` accepts every spec of this kind.
        skip: ``skip(spec, env_id)`` says why the agent does not play ``env_id`` (``None`` if it
            does); ``None`` means it plays every env.
        takes_argument: Whether specs look like ``name:ARG`` (else the spec is just ``name``).
        help: How the spec is written, e.g. ``"sb3:PATH"``.
    """

    name: str
    factory: Callable[[str, Any, int | None], Policy]
    check: Callable[[str], None] | None = None
    skip: Callable[[str, str], str | None] | None = None
    takes_argument: bool = False
    help: str = ""


_kinds: dict[str, AgentKind] = {}
_leaderboard: list[Callable[[], Any]] = []
_loaded: set[str] = set()  # entry points already loaded (or failed)


def register_agent(
    name: str,
    factory: Callable[[str, Any, int | None], Policy],
    *,
    check: Callable[[str], None] | None = None,
    skip: Callable[[str, str], str | None] | None = None,
    takes_argument: bool = False,
    help: str = "",
) -> None:
    """Register (or replace) the agent kind ``name``; see :class:`AgentKind` for the arguments.

    Raises:
        ConfigError: for a name that is empty or contains ``:``.
    """
    if not name or ":" in name:
        raise ConfigError(f"Agent kind name {name!r} must be non-empty and contain no ':'.")
    _kinds[name] = AgentKind(name, factory, check, skip, takes_argument, help or (f"{name}:ARG" if takes_argument else name))


def register_leaderboard(loader: Callable[[], Any]) -> None:
    """Give ``toolgym leaderboard`` its runner: ``loader()`` returns an object (a module) with
    ``resolve_envs``, ``run_leaderboard`` and ``write_outputs`` (see :mod:`baselines.leaderboard`)."""
    _leaderboard[:] = [loader]


def load_agent_plugins() -> None:
    """Load every ``toolgym.agents`` entry point once; a broken one only warns."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _loaded:
            continue
        _loaded.add(ep.name)
        try:
            target = ep.load()
            if callable(target):
                target()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break toolgym
            warnings.warn(f"ToolGym agent plugin {ep.name!r} ({ep.value}) failed to load: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)


def agent_kinds() -> list[AgentKind]:
    """Every registered agent kind (plugins loaded), in registration order."""
    load_agent_plugins()
    return list(_kinds.values())


def agent_specs_text() -> str:
    """The registered specs (plugins loaded) as a phrase, ``"random, oracle or sb3:PATH"``: what
    ``toolgym run --help`` lists and an unknown-agent error expects."""
    helps = [k.help for k in agent_kinds()]
    if not helps:
        return f"none registered (no {ENTRY_POINT_GROUP!r} entry point is installed; `pip install -e .` in a clone)"
    return helps[0] if len(helps) == 1 else ", ".join(helps[:-1]) + " or " + helps[-1]


def agent_kind(spec: str) -> AgentKind:
    """The registered kind that ``spec`` names.

    Raises:
        ConfigError: for an unknown kind, with the expected specs and a did-you-mean.
    """
    name, sep, _ = spec.partition(":")
    kind = next((k for k in agent_kinds() if k.name == name and k.takes_argument == bool(sep)), None)
    if kind is None and not _kinds:
        raise ConfigError(f"Unknown agent {spec!r}: no agents are registered (no {ENTRY_POINT_GROUP!r} entry "
                          "point is installed); reinstall toolgym with `pip install -e .`.")
    if kind is None:
        hint = did_you_mean(name if sep else spec, list(_kinds))
        raise ConfigError(f"Unknown agent {spec!r}; expected {agent_specs_text()}.{hint}")
    return kind


def check_agent_spec(spec: str) -> None:
    """Validate an agent spec without building the agent (no torch import, no model load).

    Raises:
        ConfigError: naming the spec, what was expected and the closest valid name.
    """
    kind = agent_kind(spec)
    if kind.check is not None:
        kind.check(spec)


def make_agent(spec: str, env: Any, *, seed: int | None = None) -> Policy:
    """Build the agent ``spec`` names for ``env`` (a Gymnasium env, possibly wrapped).

    Raises:
        ConfigError: for an unknown spec or bad options.
    """
    return agent_kind(spec).factory(spec, env, seed)


def skip_reason(spec: str, env_id: str) -> str | None:
    """Why the agent ``spec`` does not play ``env_id`` (``None`` if it does)."""
    kind = agent_kind(spec)
    return kind.skip(spec, env_id) if kind.skip is not None else None


def leaderboard_runner() -> Any:
    """The runner :func:`register_leaderboard` registered.

    Raises:
        ConfigError: if no plugin registered one.
    """
    load_agent_plugins()
    if not _leaderboard:
        raise ConfigError(f"No leaderboard runner is registered (no {ENTRY_POINT_GROUP!r} entry point "
                          "provides one): reinstall toolgym with `pip install -e .`.")
    return _leaderboard[0]()
