"""``ProcessBackend``: the sandbox worker on the host, under the strongest isolation available.

This is the fallback when Docker is not available. It is **weaker** than
:class:`~toolgym.sandbox.docker.DockerBackend` and says which isolation it got in
``backend.isolation``:

``"bwrap"``
    bubblewrap: new user, PID, network, IPC and UTS namespaces, a read-only view of the
    system directories only (``/usr``, ``/lib*``, the Python prefix; not ``/home``, ``/root``,
    ``/etc``, the repo), private tmpfs ``/tmp`` and ``/dev/shm``, the worker as PID 1 of the
    namespace. When the host runs as root the sandbox runs as ``nobody`` (65534).
    No cgroup limits: memory is limited per process (``RLIMIT_AS``), processes by
    ``RLIMIT_NPROC`` inside the user namespace.
``"unshare"``
    util-linux ``unshare``: new PID, network, IPC, UTS and mount namespaces (PID 1 worker, no
    network), but the host filesystem is visible (read access as the sandbox user; children
    run as ``nobody`` when the host is root).
``"none"``
    plain subprocess with rlimits, its own session, a child-subreaper worker that kills
    leftovers after each call, and ``nobody`` as user when the host is root. No network or
    filesystem isolation at all: use only for trusted code.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.sandbox.base import Limits, SandboxError, SandboxUnavailable
from toolgym.sandbox.pool import PooledBackend, WorkerConnection
from toolgym.sandbox.worker import BASE_ENV as WORKER_ENV  # stdlib-only module

logger = logging.getLogger(__name__)

WORKER_SOURCE = Path(__file__).with_name("worker.py")
SANDBOX_UID = 65534
"""``nobody``: the user sandboxed code runs as when the host process is root."""

ISOLATION_LEVELS = ("bwrap", "unshare", "none")
PROBE_CODE = "import socket, sqlite3, ctypes\nprint(1)"
"""Run once per worker command line: the sandbox works and can import what it did not preload."""
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/alternatives")
_probe_cache: dict[tuple[str, ...], tuple[str, list[str], dict[str, Any], str] | str] = {}
_probe_lock = threading.Lock()


def _is_root() -> bool:
    return os.geteuid() == 0


def isolation_gaps(level: str, root: bool | None = None) -> dict[str, str]:
    """What an isolation level does *not* contain: ``{property: reason}``.

    Properties: ``network`` (reach host or outside addresses), ``host_files`` (read files of
    the host), ``write_outside`` (write outside the work dir on the host), ``scratch_leak``
    (a file written outside the work dir survives into the next episode), ``kill_all``
    (``kill(-1)`` reaches processes outside the sandbox), ``memory_total`` (memory summed
    over several processes is not capped). ``root`` defaults to "this process is root".
    The test suite xfails exactly these; docs/sandbox.md explains them.
    """
    root = _is_root() if root is None else root
    gaps: dict[str, str] = {
        "memory_total": "no cgroup: memory is capped per process (RLIMIT_AS), so several "
        "processes together can use more; use DockerBackend for a total cap",
    }
    if level == "bwrap":
        return gaps
    user = "nobody (the host is root)" if root else "the host user"
    gaps["host_files"] = f"no mount namespace hiding the host: files readable by {user} can be read"
    gaps["scratch_leak"] = (
        "no private /tmp: files written to world-writable host dirs (/tmp, /dev/shm) survive the episode"
    )
    if not root:
        gaps["write_outside"] = "children run as the host user: they can write wherever it can"
    if level == "none":
        gaps["network"] = "no network namespace: the host network is reachable"
        gaps["kill_all"] = f"no PID namespace: kill(-1) reaches every process of {user} on the host"
    return gaps


def _python_prefixes(python: str) -> list[str]:
    """Directories an interpreter needs besides the system dirs (its prefixes)."""
    out = subprocess.run(  # noqa: S603 - our own interpreter path
        [python, "-I", "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    real = os.path.realpath(python)
    paths = {os.path.realpath(p) for p in out} | {os.path.dirname(os.path.dirname(real))}
    return sorted(p for p in paths if not any(p == d or p.startswith(d + "/") for d in _SYSTEM_DIRS))


class ProcessBackend(PooledBackend):
    """A pool of sandbox workers running as host processes (weaker isolation than Docker).

    Example::

        with ProcessBackend(pool_size=2) as backend:
            print(backend.isolation)                 # "bwrap", "unshare" or "none"
            print(backend.run("print(6 * 7)").stdout)
    """

    name = "process"

    def __init__(
        self,
        *,
        pool_size: int = 2,
        isolation: str = "auto",
        python: str | None = None,
        limits: Limits | None = None,
        tmpfs_size_mb: int = 64,
        max_uses: int | None = None,
        start_timeout: float = 30.0,
        acquire_timeout: float | None = 60.0,
        prestart: bool = False,
    ) -> None:
        """Pick the isolation, verify it works, and prepare the pool.

        Args:
            pool_size: maximum number of concurrent workers.
            isolation: ``"auto"`` (best that works: bwrap > unshare > none) or one of
                ``"bwrap"``, ``"unshare"``, ``"none"`` (raises if it does not work here).
            python: interpreter for the worker (default: this one, or the system
                ``python3`` when the sandbox user cannot read this one).
            limits: per-call resource limits.
            tmpfs_size_mb: size of the private ``/tmp`` (bwrap only).
            max_uses: restart a worker after this many episodes (``None``: never).
            start_timeout: seconds to wait for a worker to start.
            acquire_timeout: seconds to wait for a free worker.
            prestart: start the whole pool now instead of on first use.

        Raises:
            SandboxUnavailable: the requested isolation cannot be set up on this machine.
        """
        if isolation != "auto" and isolation not in ISOLATION_LEVELS:
            raise SandboxUnavailable(
                f"isolation must be 'auto' or one of {ISOLATION_LEVELS}, got {isolation!r}"
            )
        super().__init__(
            pool_size=pool_size, limits=limits, max_uses=max_uses, acquire_timeout=acquire_timeout
        )
        self.start_timeout = start_timeout
        self.tmpfs_size_mb = tmpfs_size_mb
        self._counter = itertools.count()
        # A private copy of the worker (and, without bwrap, the work dirs) on a tmpfs if
        # possible: the repo checkout need not be readable by the sandbox user.
        self._staging = self._make_staging("process", _fast_tmp_dir())
        self._worker_extra: list[str] = []  # more worker arguments (tests, benchmarks: --standby)
        os.chmod(self._staging, 0o711)
        self._worker_path = os.path.join(self._staging, "worker.py")
        shutil.copyfile(WORKER_SOURCE, self._worker_path)
        os.chmod(self._worker_path, 0o644)
        pythons = [python] if python else _python_candidates()
        levels = ISOLATION_LEVELS if isolation == "auto" else (isolation,)
        failures: list[str] = []
        for level in levels:
            for candidate in pythons:
                plan = self._plan(level, candidate)
                if plan is None:
                    continue
                argv, popen_kwargs, detail = plan
                problem = self._probe(argv, popen_kwargs)
                if problem is None:
                    self.isolation = level
                    self.isolation_detail = detail
                    self.python = candidate
                    self._argv = argv
                    self._popen_kwargs = popen_kwargs
                    break
                failures.append(f"{level} with {candidate}: {problem}")
            else:
                continue
            break
        else:
            self.close()
            raise SandboxUnavailable(
                f"no usable process isolation ({isolation!r}) on this machine: "
                + "; ".join(failures or ["not supported"])
                + ". Install bubblewrap (apt-get install bubblewrap) or use isolation='none'."
            )
        if isolation == "auto" and self.isolation != "bwrap":
            logger.warning(
                "ProcessBackend: using weak isolation %r (%s). Install bubblewrap or use Docker.",
                self.isolation,
                "; ".join(failures) or "bwrap not installed",
            )
        logger.info("ProcessBackend isolation: %s (%s)", self.isolation, self.isolation_detail)
        if prestart:
            self.warm()

    # -- command lines ---------------------------------------------------------------------------
    def _plan(self, level: str, python: str) -> tuple[list[str], dict[str, Any], str] | None:
        """The argv, Popen kwargs and a description for ``level`` with ``python``."""
        root = _is_root()
        worker_args = ["--scratch", "/tmp", "--scratch", "/dev/shm"]
        if level == "bwrap":
            bwrap = shutil.which("bwrap")
            if bwrap is None:
                return None
            try:
                prefixes = _python_prefixes(python)
            except (OSError, subprocess.SubprocessError):
                return None
            size = ["--size", str(self.tmpfs_size_mb * 1024 * 1024)]
            argv = [
                bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
                "--unshare-uts", "--unshare-cgroup-try", "--new-session", "--as-pid-1",
                "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            ]  # fmt: skip
            for path in _SYSTEM_DIRS:
                if os.path.islink(path):
                    argv += ["--symlink", os.readlink(path), path]
                elif os.path.isdir(path):
                    argv += ["--ro-bind", path, path]
            for path in _ETC_FILES:
                argv += ["--ro-bind-try", path, path]
            for path in prefixes:
                argv += ["--ro-bind", path, path]
            argv += [
                "--ro-bind", self._worker_path, "/opt/toolgym/worker.py",
                "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", *size, "--tmpfs", "/tmp",
                "--perms", "1777", *size, "--tmpfs", "/dev/shm",
                # /dev is bwrap's own tmpfs, owned by the sandbox user and never wiped: a file
                # written there would survive into later episodes on this worker.
                "--remount-ro", "/dev", "--remount-ro", "/",
                "--clearenv", *(a for k, v in WORKER_ENV.items() for a in ("--setenv", k, v)),
                "--chdir", "/tmp",
                python, "-I", "/opt/toolgym/worker.py", "--root", "/tmp/toolgym", *worker_args,
            ]  # fmt: skip
            kwargs: dict[str, Any] = {}
            who = f"uid {os.geteuid()}"
            if root:
                kwargs = {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []}
                who = f"uid {SANDBOX_UID} (nobody)"
            return argv, kwargs, f"bwrap {who}, python {python}"
        # Each worker gets its own --root, appended by _start_worker (the last one wins).
        worker = [python, "-I", self._worker_path]
        run_as = ["--run-as", f"{SANDBOX_UID}:{SANDBOX_UID}"] if root else []
        if level == "unshare":
            unshare = shutil.which("unshare")
            if unshare is None:
                return None
            user = [] if root else ["--user", "--map-root-user"]
            argv = [
                unshare, *user, "--fork", "--pid", "--mount-proc", "--net", "--ipc", "--uts",
                "--kill-child", *worker, *(run_as if root else []),
            ]  # fmt: skip
            who = f"children as uid {SANDBOX_UID}" if root else "user namespace"
            return argv, {"env": dict(WORKER_ENV)}, f"unshare, {who}, python {python}"
        who = f"children as uid {SANDBOX_UID}" if root else "same user"
        return [*worker, *run_as], {"env": dict(WORKER_ENV)}, f"none, {who}, python {python}"

    @property
    def gaps(self) -> dict[str, str]:
        """What this backend's isolation does not contain (see :func:`isolation_gaps`)."""
        return isolation_gaps(self.isolation)

    def _probe(self, argv: Sequence[str], popen_kwargs: dict[str, Any]) -> str | None:
        """Start a worker with ``argv`` and run ``print(1)``; the problem, or ``None``."""
        key = (*argv, repr(sorted(popen_kwargs.items())))
        with _probe_lock:
            cached = _probe_cache.get(key)
        if cached is not None:
            return cached or None
        problem: str | None = None
        try:
            conn = self._connect(argv, popen_kwargs, name="probe", root_id="probe")
        except (SandboxError, OSError) as exc:
            problem = str(exc)
        else:
            try:
                # Modules the worker did not import: the sandbox user must be able to read the
                # interpreter's library (not so for a pyenv Python under /root and children
                # running as nobody), else the next candidate interpreter is tried.
                probe = {"op": "run", "code": PROBE_CODE, "timeout": 10.0, "limits": {}}
                reply = conn.request(probe, 15.0)
                if not reply.get("ok") or reply.get("stdout") != "1\n":
                    problem = f"test run failed: {reply}"
            except SandboxError as exc:
                problem = str(exc)
            finally:
                conn.shutdown()
        with _probe_lock:
            _probe_cache[key] = problem or ""
        return problem

    def _connect(
        self, argv: Sequence[str], popen_kwargs: dict[str, Any], name: str, root_id: str
    ) -> WorkerConnection:
        argv = list(argv)
        if self.isolation_for(argv) != "bwrap":  # bwrap workers use their private /tmp
            root = os.path.join(self._staging, root_id)
            argv += ["--root", root, "--scratch", root]
        argv += self._worker_extra
        return WorkerConnection(argv, name=name, start_timeout=self.start_timeout, popen_kwargs=popen_kwargs)

    @staticmethod
    def isolation_for(argv: Sequence[str]) -> str:
        """The isolation level a worker command line uses."""
        launcher = os.path.basename(argv[0])
        return launcher if launcher in ("bwrap", "unshare") else "none"

    def _start_worker(self) -> WorkerConnection:
        n = next(self._counter)
        return self._connect(
            self._argv, self._popen_kwargs, name=f"process-{os.getpid()}-{n}", root_id=f"w{n}"
        )


def _python_candidates() -> list[str]:
    candidates = [sys.executable]
    system = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin")
    if system and os.path.realpath(system) != os.path.realpath(sys.executable):
        candidates.append(system)
    return candidates


def _fast_tmp_dir() -> str:
    """Return a tmpfs for work dirs if there is one (``/dev/shm``), else the temp dir.

    Creating and deleting a directory per call is much cheaper on a tmpfs than on disk.
    """
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()
