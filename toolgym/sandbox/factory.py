"""``make_backend``: choose a sandbox backend by name, falling back when Docker is missing."""

from __future__ import annotations

import logging
from typing import Any

from toolgym.sandbox.base import Backend, SandboxUnavailable

logger = logging.getLogger(__name__)

BACKEND_KINDS = ("auto", "docker", "process")


def check_kind(kind: object) -> None:
    """Check that ``kind`` is one of :data:`BACKEND_KINDS` (the one place that checks).

    Raises:
        SandboxUnavailable: (a ``ConfigError``) naming the bad kind, the valid ones and the
            closest match.
    """
    if kind not in BACKEND_KINDS:
        from toolgym.core.errors import did_you_mean

        raise SandboxUnavailable(
            f"unknown sandbox kind {kind!r}; expected one of {BACKEND_KINDS}."
            + (did_you_mean(kind, BACKEND_KINDS) if isinstance(kind, str) else "")
        )


def make_backend(kind: str = "auto", **options: Any) -> Backend:
    """Create a sandbox backend.

    Args:
        kind: ``"docker"`` (:class:`~toolgym.sandbox.docker.DockerBackend`; raises if Docker or
            the image is unavailable), ``"process"``
            (:class:`~toolgym.sandbox.process.ProcessBackend`) or ``"auto"`` (Docker when the
            daemon answers and the image exists, else the process backend with a warning).
        **options: passed to the backend's constructor. With ``"auto"``, options that only
            one backend knows are dropped for the other (e.g. ``image`` for process).

    Raises:
        SandboxUnavailable: ``kind="docker"`` and Docker cannot be used (the message says how
            to fix it), or ``kind`` is unknown.
    """
    check_kind(kind)
    if kind in ("docker", "auto"):
        from toolgym.sandbox.docker import DockerBackend

        try:
            return DockerBackend(**_options_for(DockerBackend, options, strict=kind == "docker"))
        except SandboxUnavailable as exc:
            if kind == "docker":
                raise
            logger.warning("Docker sandbox unavailable, falling back to the process backend: %s", exc)
    from toolgym.sandbox.process import ProcessBackend

    return ProcessBackend(**_options_for(ProcessBackend, options, strict=kind == "process"))


def _options_for(cls: type, options: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """Keep the options ``cls.__init__`` accepts (all of them when ``strict``: let it raise)."""
    if strict:
        return options
    import inspect

    accepted = set(inspect.signature(cls.__init__).parameters)
    return {k: v for k, v in options.items() if k in accepted}
