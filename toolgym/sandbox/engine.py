"""The Docker Engine API client of this process (the Docker SDK for Python, ``docker``).

Every lifecycle operation of the Docker backend (checking the daemon and the image, starting,
inspecting, listing and removing containers) goes through one low-level
:class:`docker.APIClient` per process: one HTTP request on a kept-alive connection instead of a
``docker`` CLI process each (tens of milliseconds apiece), and no CLI needed on the machine.
``DOCKER_HOST``, ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH`` are honoured
(:func:`docker.from_env`). After a ``fork`` the child makes its own client: a connection pool
must not be shared between processes.

Only building the image (``docker import`` of a debootstrap tree, ``docker build``) and the
``transport="stdio"`` containers (``docker run -i``) still use the CLI.

The SDK is imported on first use, so ``import toolgym`` does not import it.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from toolgym.sandbox.base import SandboxError, SandboxUnavailable

if TYPE_CHECKING:  # pragma: no cover - typing only
    import docker

_lock = threading.Lock()
_client: docker.APIClient | None = None
_client_pid: int | None = None
_server_version: str = "unknown"


REQUEST_TIMEOUT_S = 60
"""How long any request of the client may take (creating, starting, removing containers)."""


def api() -> docker.APIClient:
    """This process's Engine API client (made on first use; a new one after ``fork``); its
    requests time out after :data:`REQUEST_TIMEOUT_S` seconds.

    Raises:
        SandboxUnavailable: the SDK is not installed or the daemon cannot be reached (the
            message says which, and how to fix it).
    """
    global _client, _client_pid, _server_version
    pid = os.getpid()
    if _client is not None and _client_pid == pid:
        return _client
    with _lock:
        if _client is not None and _client_pid == pid:
            return _client
        try:
            import docker
        except ImportError as exc:  # pragma: no cover - docker is a core dependency
            raise SandboxUnavailable(
                "the Docker SDK for Python is not installed (pip install 'docker>=7')"
            ) from exc
        try:
            client = docker.from_env(timeout=REQUEST_TIMEOUT_S).api
            # Asked once per client: the daemon takes ~10 ms to assemble it (a ping takes < 1).
            version = str(client.version().get("Version", "unknown"))
        except (docker.errors.DockerException, OSError) as exc:
            raise SandboxUnavailable(f"cannot reach the Docker daemon: {describe(exc)}") from exc
        _client, _client_pid, _server_version = client, pid, version
        return client


def server_version() -> str:
    """The daemon's version, as it answered when this process's client was made.

    Raises:
        SandboxUnavailable: as :func:`api`.
    """
    api()
    return _server_version


def reset() -> None:
    """Forget this process's client (the next :func:`api` call makes a new one)."""
    global _client, _client_pid
    with _lock:
        if _client is not None and _client_pid == os.getpid():
            try:
                _client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        _client, _client_pid = None, None


def ping(timeout: float) -> None:
    """Ask the daemon whether it is there, waiting at most ``timeout`` seconds (< 1 ms locally).

    Raises:
        SandboxUnavailable: no answer, or not the daemon's "OK".
    """
    client = api()
    try:
        # APIClient is a requests.Session: a plain GET lets this one request have its own timeout.
        response = client.get(f"{client.base_url}/_ping", timeout=timeout)
    except OSError as exc:  # requests' errors are OSErrors
        raise SandboxUnavailable(f"the Docker daemon did not answer a ping: {describe(exc)}") from exc
    if response.status_code != 200:
        raise SandboxUnavailable(f"the Docker daemon answered a ping with HTTP {response.status_code}: {response.text[:200]}")


def describe(exc: BaseException) -> str:
    """One line saying what the daemon (or the connection to it) answered."""
    explanation = getattr(exc, "explanation", None)
    text = explanation.decode(errors="replace") if isinstance(explanation, bytes) else explanation
    return " ".join(str(text or exc).split()) or type(exc).__name__


def is_not_found(exc: BaseException) -> bool:
    """Whether ``exc`` is the daemon's 404 (no such container or image)."""
    import docker

    return isinstance(exc, docker.errors.NotFound)


def call(what: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """``api().method(*args, **kwargs)``, with the SDK's errors raised as :class:`SandboxError`.

    Args:
        what: what the call does, for the error message (``"start container X"``).
        method: the name of the :class:`docker.APIClient` method.

    Raises:
        SandboxUnavailable: the daemon cannot be reached.
        SandboxError: the daemon refused the call (the message quotes its answer).
    """
    import docker

    client = api()
    try:
        return getattr(client, method)(*args, **kwargs)
    except docker.errors.APIError as exc:
        raise SandboxError(f"Docker could not {what}: {describe(exc)}") from exc
    except (docker.errors.DockerException, OSError) as exc:
        # requests' ConnectionError is an OSError: the daemon went away.
        raise SandboxUnavailable(f"Docker could not {what}: {describe(exc)}") from exc
