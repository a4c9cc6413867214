"""The sandbox contract: :class:`Backend`, :class:`SandboxHandle`, :class:`ExecResult`, errors.

Every backend runs Python source code in isolation and returns an :class:`ExecResult`. The
agent's own failures (exceptions, non-zero exit, timeouts) are *results*; only failures of
the sandbox itself (a worker that died, a container that could not start) are reported through
``ExecResult.error`` or, when nothing can run at all, raised as :class:`SandboxError`.

Typical use in an environment::

    backend = make_backend("auto")
    with backend.acquire() as sandbox:          # one per episode
        result = sandbox.run("print(1 + 1)", timeout=5.0)   # result.ok, .timed_out, .error
    backend.close()

Mapping results to an env's error codes is the env's job (``toolgym.envs.code.env.result_error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, runtime_checkable

from toolgym.core.errors import ConfigError, ToolGymError


class SandboxError(ToolGymError, RuntimeError):
    """The sandbox itself failed (worker could not start, pool exhausted, backend closed)."""


class SandboxUnavailable(ConfigError):
    """The requested backend cannot be used on this machine; the message says how to fix it."""


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to every call (per process rlimits inside the sandbox).

    ``None`` disables a limit. Containers add their own cgroup limits on top (memory, pids,
    CPU) configured on :class:`~toolgym.sandbox.docker.DockerBackend`.
    """

    memory_mb: int | None = field(default=512, metadata={"help": "address space per process, MiB"})
    nproc: int | None = field(
        default=64,
        metadata={"help": "processes (RLIMIT_NPROC: counted per user, see docs/sandbox.md)"},
    )
    file_size_mb: int | None = field(default=16, metadata={"help": "largest file written, MiB"})
    open_files: int | None = field(default=256, metadata={"help": "open file descriptors"})
    cpu_seconds: int | None = field(default=None, metadata={"help": "CPU time; None = ceil(timeout) + 1"})
    max_output_bytes: int = field(
        default=64 * 1024, metadata={"help": "stdout and stderr are each truncated to this"}
    )

    def __post_init__(self) -> None:
        """Reject non-positive limits, quoting the bad value."""
        for name in ("memory_mb", "nproc", "file_size_mb", "open_files", "cpu_seconds"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"Limits.{name} must be a positive int or None, got {value!r}")
        if not isinstance(self.max_output_bytes, int) or self.max_output_bytes < 0:
            raise ConfigError(f"Limits.max_output_bytes must be an int >= 0, got {self.max_output_bytes!r}")

    def to_request(self) -> dict[str, int | None]:
        """The ``limits`` object of a worker ``run`` request."""
        return {
            "memory_mb": self.memory_mb,
            "nproc": self.nproc,
            "file_size_mb": self.file_size_mb,
            "open_files": self.open_files,
            "cpu_seconds": self.cpu_seconds,
        }


@dataclass(frozen=True)
class ExecResult:
    """The outcome of running one piece of code.

    Attributes:
        stdout: captured standard output (UTF-8, invalid bytes replaced), truncated to
            ``Limits.max_output_bytes``.
        stderr: captured standard error, same rules; holds the traceback on an exception.
        exit_code: the process status: 0 success, 1 uncaught exception, ``-N`` killed by
            signal N (``-9`` after a timeout); ``-1`` when the sandbox failed (see ``error``).
        timed_out: the wall-clock timeout or the CPU-time limit was hit.
        duration_s: seconds the code ran (measured inside the sandbox), or the host-side
            time until failure when ``error`` is set.
        error: ``None``, or a message when the *sandbox* failed (not the agent's code).
        stdout_truncated: more stdout was produced than was kept.
        stderr_truncated: more stderr was produced than was kept.
    """

    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool
    duration_s: float
    error: str | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        """True when the code ran to completion with exit code 0 and the sandbox worked."""
        return self.error is None and not self.timed_out and self.exit_code == 0

    @classmethod
    def failure(cls, message: str, duration_s: float = 0.0) -> ExecResult:
        """A result that reports a sandbox failure (``error`` set, ``exit_code`` -1)."""
        return cls("", "", -1, False, duration_s, error=message)


Files = Mapping[str, "str | bytes"]
"""Input files written into the work dir before the code runs: relative path -> content."""


@runtime_checkable
class Runner(Protocol):
    """Anything with the ``run`` method of a sandbox."""

    def run(self, code: str, *, timeout: float = 5.0, files: Files | None = None) -> ExecResult:
        """Run Python ``code`` and return its :class:`ExecResult` (never raises for bad code)."""
        ...


class SandboxHandle(Protocol):
    """A sandbox reserved for one episode.

    Calls through one handle share a work dir (files written by one call are visible to the
    next); on :meth:`release` everything is wiped, so the next episode starts clean.
    """

    def run(self, code: str, *, timeout: float = 5.0, files: Files | None = None) -> ExecResult:
        """Run Python ``code`` in this episode's sandbox."""
        ...

    def release(self) -> None:
        """Give the sandbox back (wiped). Idempotent."""
        ...

    def __enter__(self) -> SandboxHandle:
        """Return the handle itself."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the handle."""
        ...


@runtime_checkable
class Backend(Protocol):
    """A source of sandboxes.

    ``run`` is a one-off call in a clean sandbox (fresh work dir, wiped afterwards).
    ``acquire``/``release`` reserve a sandbox for an episode. Backends are thread-safe and
    context managers; ``close`` stops every worker and is idempotent.

    Attributes:
        name: ``"docker"`` or ``"process"``.
        isolation: a short description of the isolation actually in use (e.g. ``"docker"``,
            ``"bwrap"``, ``"unshare"``, ``"none"``).
    """

    name: str
    isolation: str

    def run(self, code: str, *, timeout: float = 5.0, files: Files | None = None) -> ExecResult:
        """Run Python ``code`` once in a clean sandbox."""
        ...

    def acquire(self, timeout: float | None = None) -> SandboxHandle:
        """Reserve a sandbox for one episode; waits up to ``timeout`` s for a free one."""
        ...

    def release(self, handle: SandboxHandle) -> None:
        """Return a handle obtained from :meth:`acquire` (same as ``handle.release()``)."""
        ...

    def close(self) -> None:
        """Stop all workers and free their resources."""
        ...

    def __enter__(self) -> Backend:
        """Return the backend itself."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the backend."""
        ...
