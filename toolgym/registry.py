"""Registration of the built-in environments and discovery of third-party ones.

Built-ins are registered under the ``ToolGym/`` namespace when :mod:`toolgym` is imported, with
string entry points so that nothing heavy is imported until an env is made.

Third-party packages add environments through the ``toolgym.envs`` entry-point group. The entry
point's *name* is the plugin's namespace and its *value* is a module or a zero-argument function
that calls :func:`gymnasium.register` with ids **without** a namespace; ToolGym loads it inside
``gymnasium.envs.registration.namespace(name)``, so a plugin can never overwrite ``ToolGym/``
ids. In ``pyproject.toml``::

    [project.entry-points."toolgym.envs"]
    MyLab = "mylab_envs:register"      # ids become MyLab/<Name>-vN
"""

from __future__ import annotations

import importlib
import logging
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import namespace

from toolgym.vector import vector_entry_point

logger = logging.getLogger(__name__)

NAMESPACE = "ToolGym"
ENTRY_POINT_GROUP = "toolgym.envs"


@dataclass(frozen=True)
class EnvEntry:
    """A built-in environment: its id, ``module:Class`` entry point and default kwargs."""

    id: str
    entry_point: str
    kwargs: dict[str, Any] = field(default_factory=dict)


_BFCL = "toolgym.envs.bfcl.env:BFCLMultiTurnEnv"

BUILTIN_ENVS: tuple[EnvEntry, ...] = (
    EnvEntry(f"{NAMESPACE}/Search-v0", "toolgym.envs.search.env:SearchEnv"),
    EnvEntry(f"{NAMESPACE}/Lookup-v0", "toolgym.envs.lookup.env:LookupEnv"),
    EnvEntry(f"{NAMESPACE}/Calc-v0", "toolgym.envs.calc.env:CalcEnv"),
    EnvEntry(f"{NAMESPACE}/SQL-v0", "toolgym.envs.sql.env:SQLEnv"),
    EnvEntry(f"{NAMESPACE}/Multi-v0", "toolgym.envs.multi.env:MultiEnv"),
    EnvEntry(f"{NAMESPACE}/Booking-v0", "toolgym.envs.booking.env:BookingEnv"),
    EnvEntry(f"{NAMESPACE}/Code-v0", "toolgym.envs.code.env:CodeEnv"),
    # BFCL multi-turn (needs bfcl-eval installed with --no-deps; see docs/bfcl.md): one id per category.
    EnvEntry(f"{NAMESPACE}/BFCL-MultiTurn-v0", _BFCL, {"category": "base"}),
    EnvEntry(f"{NAMESPACE}/BFCL-MultiTurn-MissFunc-v0", _BFCL, {"category": "miss_func"}),
    EnvEntry(f"{NAMESPACE}/BFCL-MultiTurn-MissParam-v0", _BFCL, {"category": "miss_param"}),
    EnvEntry(f"{NAMESPACE}/BFCL-MultiTurn-LongContext-v0", _BFCL, {"category": "long_context"}),
)

PINNED_DATA_FINGERPRINTS: dict[str, str] = {
    f"{NAMESPACE}/Search-v0": "aa1c41b24d2ae902",
    f"{NAMESPACE}/Lookup-v0": "c1bb493090bf6b8c",
    f"{NAMESPACE}/Calc-v0": "08109957ffc816e2",
    f"{NAMESPACE}/SQL-v0": "6c6b9464f8add525",
    f"{NAMESPACE}/Multi-v0": "39befb0f81514315",
    f"{NAMESPACE}/Booking-v0": "480f6ed421d78e4d",
    f"{NAMESPACE}/Code-v0": "4875173d864458f0",
    # The BFCL ids pin envs_data/bfcl/source.json, which pins bfcl-eval's version and file hashes.
    **{f"{NAMESPACE}/BFCL-MultiTurn{v}-v0": "7204bc7a2de615a3" for v in ("", "-MissFunc", "-MissParam", "-LongContext")},
}
"""The :func:`toolgym.core.tasks.data_fingerprint` each env version was released with. It goes
into the env spec's kwargs (``pinned_data_fingerprint``), so every spec records its data version, and
an env whose data changed without a ``-vN`` bump warns when it is made."""

_plugin_ids: dict[str, str] = {}  # env id -> plugin (entry point) name
_plugin_errors: dict[str, str] = {}  # plugin name -> error message


def register_builtins() -> None:
    """Register every built-in env with Gymnasium (idempotent), with
    :func:`toolgym.vector.make_vector_env` as its vector entry point (what ``gym.make_vec`` uses
    unless ``vectorization_mode`` says otherwise)."""
    for entry in BUILTIN_ENVS:
        if entry.id not in gym.registry:
            kwargs = dict(entry.kwargs)
            if entry.id in PINNED_DATA_FINGERPRINTS:
                kwargs["pinned_data_fingerprint"] = PINNED_DATA_FINGERPRINTS[entry.id]
            gym.register(
                id=entry.id,
                entry_point=entry.entry_point,
                vector_entry_point=vector_entry_point(entry.id),
                kwargs=kwargs,
            )


def load_plugins() -> dict[str, str]:
    """Load every ``toolgym.envs`` entry point (idempotent); a broken plugin only warns.

    Returns:
        Mapping of plugin name to an error message, for plugins that failed to load.
    """
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _plugin_errors or ep.name in _plugin_ids.values():
            continue
        before = set(gym.registry)
        try:
            with namespace(ep.name):
                target = ep.load()
                if callable(target):
                    target()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break toolgym
            message = f"{type(exc).__name__}: {exc}"
            _plugin_errors[ep.name] = message
            warnings.warn(
                f"ToolGym plugin {ep.name!r} ({ep.value}) failed to load: {message}", stacklevel=2
            )
            continue
        added = set(gym.registry) - before
        if not added:
            logger.warning("ToolGym plugin %r (%s) registered no environments.", ep.name, ep.value)
        for env_id in added:
            _plugin_ids[env_id] = ep.name
    return dict(_plugin_errors)


def env_ids(*, plugins: bool = True) -> list[str]:
    """Ids of all ToolGym environments: built-ins, then (optionally) plugin envs, sorted."""
    builtin = sorted(i for i in gym.registry if i.startswith(f"{NAMESPACE}/"))
    if not plugins:
        return builtin
    return builtin + sorted(i for i in _plugin_ids if i in gym.registry)


def plugin_of(env_id: str) -> str | None:
    """The plugin that registered ``env_id`` (``None`` for built-ins and unknown ids)."""
    return _plugin_ids.get(env_id)


def env_class(env_id: str) -> type:
    """The class an env id's entry point names (imports its module).

    Raises:
        gymnasium.error.Error: for an unknown id (Gymnasium suggests close matches).
    """
    spec = gym.spec(env_id)
    if callable(spec.entry_point):
        return spec.entry_point  # type: ignore[return-value]
    module, _, attr = str(spec.entry_point).partition(":")
    return getattr(importlib.import_module(module), attr)
