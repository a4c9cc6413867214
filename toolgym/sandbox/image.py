"""Building (with the docker CLI) and checking (through the Engine API) the sandbox image
(``toolgym-sandbox:latest``).

Two ways to build:

``"debootstrap"`` (default when there is no registry)
    ``debootstrap --variant=minbase --include=python3 bookworm DIR MIRROR`` with the mirror
    taken from the machine's apt sources, the worker copied to ``DIR/opt/toolgym``, then
    ``tar -C DIR -c . | docker import`` with the entrypoint and user set. Needs root,
    ``debootstrap`` and the apt mirror; no registry. About a minute, ~150 MB.
``"dockerfile"``
    ``docker build`` of the shipped ``Dockerfile`` (``FROM debian:bookworm-slim``): needs
    access to Docker Hub (or a mirror of it).

``"auto"`` picks ``dockerfile`` when ``debian:bookworm-slim`` is already present locally,
otherwise ``debootstrap``.

Freshness: every build labels the image ``toolgym.sandbox.recipe=<hash>``, a hash of the
worker, the Dockerfile and the debootstrap recipe (:func:`recipe_hash`). An image whose label
differs was built from another worker: :func:`require_docker` refuses it when its baked worker
would be used (``mount_worker=False``), and ``scripts/setup_docker.sh`` rebuilds it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from toolgym.sandbox import engine
from toolgym.sandbox.base import SandboxError, SandboxUnavailable

logger = logging.getLogger(__name__)

DEFAULT_IMAGE = "toolgym-sandbox:latest"
SANDBOX_DIR = Path(__file__).parent
WORKER_IN_IMAGE = "/opt/toolgym/worker.py"
DEFAULT_SUITE = "bookworm"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
BUILD_METHODS = ("auto", "dockerfile", "debootstrap")
LABEL = "toolgym.sandbox"
RECIPE_LABEL = f"{LABEL}.recipe"
"""Image label holding :func:`recipe_hash` of the sources the image was built from."""
DEBOOTSTRAP_INCLUDE = "python3"
DEBOOTSTRAP_CHANGES = (
    f'ENTRYPOINT ["python3", "-I", "{WORKER_IN_IMAGE}"]',
    "USER 65534:65534",
    "WORKDIR /tmp",
    f"LABEL {LABEL}.image=1",
)
"""``docker import --change`` instructions of the debootstrap build (part of the recipe hash)."""
OUTPUT_TAIL_CHARS = 2000
"""How much of a failed build step's output its :class:`SandboxError` quotes (the last chars)."""

OutputCallback = Callable[[str], None]
"""Receives each line a build step prints (stdout and stderr merged, without the newline)."""


def recipe_hash() -> str:
    """Hash of everything an image build bakes in: worker, Dockerfile, debootstrap recipe."""
    digest = hashlib.sha256()
    for name in ("worker.py", "Dockerfile"):
        digest.update((SANDBOX_DIR / name).read_bytes())
    digest.update(repr((DEFAULT_SUITE, DEBOOTSTRAP_INCLUDE, DEBOOTSTRAP_CHANGES)).encode())
    return digest.hexdigest()[:16]


def _inspect_image(name: str) -> dict | None:
    """The daemon's ``image inspect`` of ``name``, or ``None`` if it is missing or Docker is not
    reachable."""
    try:
        return engine.call(f"inspect image {name}", "inspect_image", name)
    except (SandboxError, SandboxUnavailable):  # a 404 is a missing image
        return None


def image_recipe(name: str = DEFAULT_IMAGE) -> str | None:
    """The :data:`RECIPE_LABEL` of image ``name`` (``""`` if unlabelled, ``None`` if missing)."""
    info = _inspect_image(name)
    if info is None:
        return None
    return ((info.get("Config") or {}).get("Labels") or {}).get(RECIPE_LABEL, "")


def docker_cli() -> str | None:
    """Path of the ``docker`` client, or ``None`` (only building images and the ``stdio``
    transport use it; everything else talks to the daemon through :mod:`toolgym.sandbox.engine`)."""
    return shutil.which("docker")


def _require_cli() -> str:
    """The ``docker`` client's path, for the steps that still need it (building images).

    Raises:
        SandboxUnavailable: it is not installed.
    """
    cli = docker_cli()
    if cli is None:
        raise SandboxUnavailable(
            "building the sandbox image needs the docker command-line client "
            "(apt-get install docker.io, or see docs/sandbox.md)"
        )
    return cli


def daemon_reachable(timeout: float = 10.0) -> tuple[bool, str]:
    """Whether the Docker daemon answers within ``timeout`` seconds; ``(ok, server version or
    the error)``."""
    try:
        engine.ping(timeout)  # < 1 ms: the daemon is (still) there
    except (SandboxError, SandboxUnavailable) as exc:
        return False, str(exc)
    return True, engine.server_version()


def image_present(name: str = DEFAULT_IMAGE) -> bool:
    """Whether the image ``name`` exists locally."""
    return _inspect_image(name) is not None


def require_docker(image: str = DEFAULT_IMAGE, *, baked_worker: bool = False) -> str:
    """Check that Docker can run the sandbox; return the daemon version.

    ``baked_worker``: the image's own worker will run (no bind-mounted current copy), so the
    image must have been built from this package's sources (:func:`recipe_hash`); otherwise a
    stale image is only logged (the current worker is mounted over its copy).

    Raises:
        SandboxUnavailable: with instructions, if the client, the daemon or the image is
            missing, or the image is stale and ``baked_worker``.
    """
    ok, detail = daemon_reachable()
    if not ok:
        raise SandboxUnavailable(
            f"Docker is not available ({detail}). Start the daemon (e.g. "
            "`scripts/setup_docker.sh`, or `sudo systemctl start docker`) or use "
            "sandbox='process'."
        )
    recipe = image_recipe(image)
    if recipe is None:
        raise SandboxUnavailable(
            f"the sandbox image {image!r} does not exist. Build it with "
            "`toolgym sandbox build` (or `python -m toolgym.sandbox.cli build`)."
        )
    expected = recipe_hash()
    if recipe != expected:
        message = (
            f"the sandbox image {image!r} was built from other sources than this package's "
            f"(label {RECIPE_LABEL}={recipe or 'none'}, expected {expected}): rebuild it with "
            f"`toolgym sandbox build --name {image}` (scripts/setup_docker.sh does it)"
        )
        if baked_worker:
            raise SandboxUnavailable(message + "; its worker would be used as it is.")
        logger.info("%s; the current worker is mounted over it, so it still works.", message)
    return detail


def apt_mirror(default: str = FALLBACK_MIRROR) -> str:
    """The Debian mirror of this machine's apt sources (deb822 ``.sources`` or ``sources.list``)."""
    candidates: list[str] = []
    sources_d = Path("/etc/apt/sources.list.d")
    files = sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            if re.search(r"^Enabled:\s*no", stanza, re.M | re.I):
                continue
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            uris = re.search(r"^URIs:\s*(.+)$", stanza, re.M)
            if suites and uris and "security" not in suites.group(1):
                candidates += uris.group(1).split()
    listfile = Path("/etc/apt/sources.list")
    if listfile.is_file():
        for line in listfile.read_text().splitlines():
            match = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if match and "security" not in match.group(2):
                candidates.append(match.group(1))
    for uri in candidates:
        if "debian" in uri and "security" not in uri:
            return uri.rstrip("/")
    return candidates[0].rstrip("/") if candidates else default


@dataclass
class BuildReport:
    """What :func:`build_image` did."""

    name: str
    method: str
    seconds: float
    size_mb: float | None = None
    steps: list[str] = field(default_factory=list)


def _stream(
    cmd: list[str],
    *,
    timeout: float,
    on_output: OutputCallback | None = None,
    stdin: IO[bytes] | int | None = None,
) -> tuple[int, str]:
    """Run ``cmd`` with stdout and stderr merged; ``(status, last OUTPUT_TAIL_CHARS of output)``.

    Each line goes to ``on_output`` as it arrives (``\\r``-separated progress updates count as
    lines). ``timeout`` is a deadline for the whole command, output or not.

    Raises:
        SandboxError: the command ran past ``timeout`` (it is killed; the message quotes
            the command and its output tail).
    """
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
    assert proc.stdout is not None
    tail = ""
    pending = b""

    def emit(raw: bytes) -> None:
        nonlocal tail
        line = raw.decode(errors="replace")
        tail = (tail + line + "\n")[-OUTPUT_TAIL_CHARS:]
        if on_output is not None and line.strip():
            on_output(line)

    def timed_out() -> SandboxError:
        return SandboxError(
            f"`{' '.join(cmd)}` did not finish within {timeout:g} s; its last output:\n{tail}"
        )

    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise timed_out()
                if not selector.select(remaining):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                *lines, pending = re.split(rb"\r\n|\r|\n", pending + chunk)
                for line in lines:
                    emit(line)
        if pending:
            emit(pending)
        try:
            status = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise timed_out() from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    return status, tail


def _run_step(
    cmd: list[str],
    steps: list[str],
    *,
    timeout: float,
    on_output: OutputCallback | None = None,
) -> None:
    """Run one build step, streaming its output to ``on_output``; record it in ``steps``.

    Raises:
        SandboxError: it failed or ran past ``timeout``; the message quotes the command and
            the last :data:`OUTPUT_TAIL_CHARS` characters of its output.
    """
    steps.append(" ".join(cmd))
    logger.info("+ %s", " ".join(cmd))
    status, tail = _stream(cmd, timeout=timeout, on_output=on_output)
    if status != 0:
        raise SandboxError(f"`{' '.join(cmd)}` failed with status {status}:\n{tail}")


def build_image(
    method: str = "auto",
    name: str = DEFAULT_IMAGE,
    *,
    mirror: str | None = None,
    suite: str = DEFAULT_SUITE,
    base_image: str = "debian:bookworm-slim",
    on_output: OutputCallback | None = None,
) -> BuildReport:
    """Build the sandbox image ``name``.

    Args:
        method: ``"auto"``, ``"dockerfile"`` or ``"debootstrap"`` (see the module docstring).
        name: image tag to create.
        mirror: apt mirror for debootstrap (default: from the machine's apt sources).
        suite: Debian suite for debootstrap.
        base_image: base for the dockerfile method (must match the shipped Dockerfile's FROM
            unless you edit it; used by ``auto`` to detect registry-less machines).
        on_output: called with each line the build's commands print (``docker build``,
            ``debootstrap``, ``docker import``), as they print it; ``None`` discards it.

    Raises:
        SandboxUnavailable: docker or debootstrap missing, or not root for debootstrap.
        SandboxError: a build step failed or timed out (the message quotes the command and
            the last 2000 characters of its output).
    """
    if method not in BUILD_METHODS:
        raise SandboxUnavailable(f"method must be one of {BUILD_METHODS}, got {method!r}")
    ok, detail = daemon_reachable()
    if not ok:
        raise SandboxUnavailable(
            f"cannot build {name!r}: Docker is not available ({detail}). "
            "Run scripts/setup_docker.sh or start dockerd."
        )
    if method == "auto":
        method = "dockerfile" if image_present(base_image) else "debootstrap"
    start = time.monotonic()
    steps: list[str] = []
    if method == "dockerfile":
        _build_dockerfile(name, steps, on_output)
    else:
        _build_debootstrap(name, mirror or apt_mirror(), suite, steps, on_output)
    info = _inspect_image(name)
    size = None if info is None else round(int(info.get("Size", 0)) / 1e6, 1)
    report = BuildReport(name, method, round(time.monotonic() - start, 1), size, steps)
    logger.info("built %s with %s in %.1f s", name, method, report.seconds)
    return report


def _build_dockerfile(name: str, steps: list[str], on_output: OutputCallback | None) -> None:
    cli = _require_cli()
    with tempfile.TemporaryDirectory(prefix="toolgym-build-") as ctx:
        shutil.copy(SANDBOX_DIR / "Dockerfile", ctx)
        shutil.copy(SANDBOX_DIR / "worker.py", ctx)
        _run_step(
            [cli, "build", "--label", f"{RECIPE_LABEL}={recipe_hash()}", "-t", name, ctx],
            steps,
            timeout=1800,
            on_output=on_output,
        )


def _build_debootstrap(
    name: str, mirror: str, suite: str, steps: list[str], on_output: OutputCallback | None
) -> None:
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None
    )
    if debootstrap is None:
        raise SandboxUnavailable(
            "debootstrap is not installed (apt-get install debootstrap), or build from the "
            "Dockerfile with --method dockerfile on a machine with registry access"
        )
    if os.geteuid() != 0:
        raise SandboxUnavailable("the debootstrap build needs root (run it with sudo)")
    cli = _require_cli()
    with tempfile.TemporaryDirectory(prefix="toolgym-rootfs-") as tmp:
        rootfs = os.path.join(tmp, "rootfs")
        _run_step(
            [debootstrap, "--variant=minbase", f"--include={DEBOOTSTRAP_INCLUDE}", suite, rootfs, mirror],
            steps,
            timeout=1800,
            on_output=on_output,
        )
        # Shrink: package caches and lists are not needed at run time.
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            path = os.path.join(rootfs, sub)
            if os.path.isdir(path):
                for entry in os.listdir(path):
                    target = os.path.join(path, entry)
                    if os.path.isdir(target) and not os.path.islink(target):
                        shutil.rmtree(target, ignore_errors=True)
                    else:
                        try:
                            os.unlink(target)
                        except OSError:
                            pass
        worker_dir = os.path.join(rootfs, "opt", "toolgym")
        os.makedirs(worker_dir, exist_ok=True)
        shutil.copy(SANDBOX_DIR / "worker.py", os.path.join(worker_dir, "worker.py"))
        os.chmod(os.path.join(worker_dir, "worker.py"), 0o644)
        changes = [*DEBOOTSTRAP_CHANGES, f"LABEL {RECIPE_LABEL}={recipe_hash()}"]
        cmd = [cli, "import"]
        for change in changes:
            cmd += ["--change", change]
        cmd += ["-", name]
        steps.append(f"tar -C {rootfs} -c . | {' '.join(cmd)}")
        logger.info("+ %s", steps[-1])
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)  # noqa: S603,S607
        assert tar.stdout is not None
        try:
            status, tail = _stream(cmd, timeout=1800, on_output=on_output, stdin=tar.stdout)
        finally:
            tar.stdout.close()
            if tar.poll() is None:
                tar.kill()
            tar.wait()
        if status != 0 or tar.returncode != 0:
            raise SandboxError(f"docker import failed (tar {tar.returncode}, docker {status}):\n{tail}")


@dataclass
class CheckReport:
    """What :func:`check` found. ``ok`` is True when a sandboxed call worked."""

    daemon: bool
    daemon_detail: str
    image: str
    image_present: bool
    ok: bool = False
    start_s: float | None = None
    first_call_ms: float | None = None
    p50_ms: float | None = None
    isolation: str | None = None
    problems: list[str] = field(default_factory=list)


def check(name: str = DEFAULT_IMAGE, calls: int = 20) -> CheckReport:
    """Check the daemon, the image, and time a container start and ``calls`` sandboxed calls."""
    daemon, detail = daemon_reachable()
    present = image_present(name) if daemon else False
    report = CheckReport(daemon, detail, name, present)
    if not daemon:
        report.problems.append(f"Docker daemon not reachable: {detail}")
        return report
    if not present:
        report.problems.append(f"image {name} missing: run `toolgym sandbox build`")
        return report
    from toolgym.sandbox.docker import DockerBackend

    start = time.monotonic()
    try:
        with DockerBackend(image=name, pool_size=1, prestart=True) as backend:
            report.start_s = round(time.monotonic() - start, 3)
            report.isolation = backend.isolation
            with backend.acquire() as handle:
                t = time.perf_counter()
                first = handle.run("print(1 + 1)")
                report.first_call_ms = round((time.perf_counter() - t) * 1e3, 2)
                if first.stdout != "2\n":
                    report.problems.append(f"test call returned {first}")
                    return report
                times = []
                for _ in range(calls):
                    t = time.perf_counter()
                    handle.run("print(1 + 1)")
                    times.append(time.perf_counter() - t)
            times.sort()
            report.p50_ms = round(times[len(times) // 2] * 1e3, 2)
            report.ok = True
    except (SandboxError, SandboxUnavailable) as exc:
        report.problems.append(str(exc))
    return report
