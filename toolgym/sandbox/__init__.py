"""Sandboxed execution of agent-written code.

One stdlib-only worker (:mod:`toolgym.sandbox.worker`) executes code everywhere: it starts
once and forks a limited child per call. Two backends run that worker:

* :class:`~toolgym.sandbox.docker.DockerBackend`: a warm pool of locked-down containers
  (no network, read-only root, non-root, no capabilities, cgroup limits). Use this for
  untrusted code.
* :class:`~toolgym.sandbox.process.ProcessBackend`: the worker on the host under bubblewrap,
  ``unshare`` or nothing; weaker isolation, reported in ``backend.isolation``.

:func:`make_backend` picks one (``"auto"`` | ``"docker"`` | ``"process"``). See
``docs/sandbox.md``. Importing this package is cheap: backends load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolgym.sandbox.base import (
    Backend,
    ExecResult,
    Limits,
    SandboxError,
    SandboxHandle,
    SandboxUnavailable,
)
from toolgym.sandbox.factory import BACKEND_KINDS, make_backend

if TYPE_CHECKING:
    from toolgym.sandbox.docker import DockerBackend
    from toolgym.sandbox.process import ProcessBackend

__all__ = [
    "BACKEND_KINDS",
    "Backend",
    "DockerBackend",
    "ExecResult",
    "Limits",
    "ProcessBackend",
    "SandboxError",
    "SandboxHandle",
    "SandboxUnavailable",
    "make_backend",
]


def __getattr__(name: str) -> Any:
    if name == "DockerBackend":
        from toolgym.sandbox.docker import DockerBackend

        return DockerBackend
    if name == "ProcessBackend":
        from toolgym.sandbox.process import ProcessBackend

        return ProcessBackend
    raise AttributeError(f"module 'toolgym.sandbox' has no attribute {name!r}")
