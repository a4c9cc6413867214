"""Fixtures for the sandbox tests: one warm backend of each kind per session.

``backend`` is parametrised over

* ``docker``: :class:`DockerBackend` (marker ``docker``). If Docker or the image is missing the
  tests are skipped locally, but **fail** when ``CI=true``: CI must never skip them.
* ``process``: :class:`ProcessBackend` with the best isolation this machine offers
  (bubblewrap here).
* ``process-unshare``: :class:`ProcessBackend` with ``isolation="unshare"``, the middle level.
* ``process-none``: :class:`ProcessBackend` with ``isolation="none"``, the weakest level, so
  that its documented gaps (``isolation_gaps``) are exercised and shown as xfail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from toolgym.sandbox import Backend, SandboxUnavailable
from toolgym.sandbox.process import ProcessBackend

IN_CI = os.environ.get("CI", "").lower() == "true"
IMAGE = os.environ.get("TOOLGYM_SANDBOX_IMAGE", "toolgym-sandbox:latest")
POOL_SIZE = 2
HOST_SECRET = "toolgym-host-secret-" + os.urandom(8).hex()
"""Put in this process's environment before any worker starts: no sandboxed code may see it."""
os.environ["TOOLGYM_TEST_HOST_SECRET"] = HOST_SECRET


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``docker`` marker (tests that need the Docker daemon and image)."""
    config.addinivalue_line("markers", "docker: needs the Docker daemon and the sandbox image")


@pytest.fixture(scope="session")
def docker_backend() -> Iterator[Backend]:
    """A warm :class:`DockerBackend`; skipped (locally) or failed (CI) if Docker is missing."""
    from toolgym.sandbox.docker import DockerBackend

    try:
        backend = DockerBackend(image=IMAGE, pool_size=POOL_SIZE)
    except SandboxUnavailable as exc:
        message = f"Docker sandbox unavailable: {exc}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: docker tests must run; see scripts/setup_docker.sh)")
        pytest.skip(message)
    with backend:
        yield backend


@pytest.fixture(scope="session")
def process_backend() -> Iterator[Backend]:
    """A :class:`ProcessBackend` with the best isolation available here."""
    with ProcessBackend(pool_size=POOL_SIZE, prestart=True) as backend:
        yield backend


@pytest.fixture(scope="session")
def process_unshare_backend() -> Iterator[Backend]:
    """A :class:`ProcessBackend` with ``unshare`` namespaces but the host's filesystem."""
    with ProcessBackend(pool_size=POOL_SIZE, isolation="unshare", prestart=True) as backend:
        yield backend


@pytest.fixture(scope="session")
def process_none_backend() -> Iterator[Backend]:
    """A :class:`ProcessBackend` with no isolation beyond rlimits (the documented weakest)."""
    with ProcessBackend(pool_size=POOL_SIZE, isolation="none", prestart=True) as backend:
        yield backend


BACKEND_PARAMS = [
    pytest.param("docker", marks=pytest.mark.docker, id="docker"),
    pytest.param("process", id="process"),
    pytest.param("process-unshare", id="process-unshare"),
    pytest.param("process-none", id="process-none"),
]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every backend kind in turn (see the module docstring)."""
    name = {
        "docker": "docker_backend",
        "process": "process_backend",
        "process-unshare": "process_unshare_backend",
    }.get(request.param, "process_none_backend")
    return request.getfixturevalue(name)


def gap(backend: Backend, prop: str) -> str | None:
    """The documented reason why ``backend`` cannot contain ``prop``, or ``None``."""
    return getattr(backend, "gaps", {}).get(prop)


def require_contained(backend: Backend, prop: str, contained: bool, detail: str = "") -> None:
    """Pass if ``contained``; xfail if it is a documented gap of this backend; fail otherwise."""
    if contained:
        return
    reason = gap(backend, prop)
    if reason is not None:
        pytest.xfail(f"{backend.isolation}: {reason}")
    pytest.fail(f"{backend!r} did not contain {prop}: {detail}")


def assert_healthy(backend: Backend) -> None:
    """The backend still runs code correctly (used after every attack)."""
    result = backend.run("print('still ok')", timeout=10)
    assert result.error is None, result.error
    assert result.stdout == "still ok\n", result


class Stopwatch:
    """``with Stopwatch() as sw: ...; sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.start
