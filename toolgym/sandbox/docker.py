"""``DockerBackend``: a warm pool of locked-down containers, each running the sandbox worker.

Every container is started once (the worker is its main process, PID 1) and then serves many
calls, each a ``fork`` inside the container (about a millisecond) instead of a container start
(~0.5 s). The host talks to the worker over a unix socket in a bind-mounted private directory
(``transport="socket"``, the default: the host connects straight to the worker) or over the
stdin/stdout of ``docker run -i`` (``transport="stdio"``: three more hops through the docker
client, dockerd and the shim, but no bind mount, so it also works with a remote daemon).
Either way the connection is the container's lifeline: when the host process goes away the
worker sees EOF, exits, and the container is removed (``--rm``).

Each container runs with:

* ``--network none``: no network interface but loopback;
* ``--read-only`` root filesystem; the only writable places are a small ``/tmp`` tmpfs and
  ``/dev/shm``, both wiped between episodes;
* ``--user 65534:65534`` (nobody), ``--cap-drop ALL``, ``--security-opt no-new-privileges``,
  Docker's default seccomp profile;
* cgroup limits: ``--memory`` (= ``--memory-swap``, so no swap), ``--pids-limit``, ``--cpus``;
* per call, the worker's rlimits (address space, file size, open files, CPU time) and a
  wall-clock timeout that kills the call's process group; leftovers (daemonised children)
  are killed after every call with ``kill(-1)`` from PID 1.

Containers are labelled ``toolgym.sandbox=1`` (and ``toolgym.sandbox.owner=HOST:PID``) and
removed on :meth:`close`, at interpreter exit, or by :func:`sweep_containers` for leftovers of
crashed processes.

The docker CLI is used through :mod:`subprocess`: no Python SDK is needed.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

from toolgym.core.errors import ConfigError
from toolgym.sandbox.base import Limits
from toolgym.sandbox.image import DEFAULT_IMAGE, LABEL, WORKER_IN_IMAGE, docker_cli, require_docker
from toolgym.sandbox.pool import PooledBackend, WorkerConnection, pid_alive

logger = logging.getLogger(__name__)

WORKER_SOURCE = Path(__file__).with_name("worker.py")
DEFAULT_LIMITS = Limits(nproc=None)
"""Per-call limits inside containers. ``RLIMIT_NPROC`` is off because it counts processes per
*host* uid across all containers (all run as 65534); ``--pids-limit`` bounds them instead."""


def owner_label() -> str:
    """The ``toolgym.sandbox.owner`` label value of containers started by this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class DockerBackend(PooledBackend):
    """A warm pool of sandbox containers (strong isolation; see the module docstring).

    Example::

        with DockerBackend(pool_size=4) as backend:
            with backend.acquire() as sandbox:       # one container for the episode
                sandbox.run("open('a.txt', 'w').write('hi')")
                print(sandbox.run("print(open('a.txt').read())").stdout)   # hi
            # released: /tmp wiped, stray processes killed, container back in the pool
    """

    name = "docker"
    isolation = "docker"

    def __init__(
        self,
        *,
        image: str = DEFAULT_IMAGE,
        pool_size: int = 2,
        limits: Limits | None = None,
        memory_mb: int = 512,
        pids_limit: int = 128,
        cpus: float = 1.0,
        tmpfs_mb: int = 64,
        mount_worker: bool = True,
        transport: str = "socket",
        runtime: str | None = None,
        extra_args: Sequence[str] = (),
        max_uses: int | None = None,
        start_timeout: float = 60.0,
        acquire_timeout: float | None = 60.0,
        prestart: bool = True,
    ) -> None:
        """Check Docker and the image, then (by default) start the pool.

        Args:
            image: the sandbox image (build it with ``toolgym sandbox build``).
            pool_size: number of containers (concurrent sandboxes).
            limits: per-call rlimits and output cap (default: :data:`DEFAULT_LIMITS`).
            memory_mb: container memory limit (swap disabled).
            pids_limit: most processes in a container.
            cpus: CPU quota of a container.
            tmpfs_mb: size of the writable ``/tmp``.
            mount_worker: bind-mount this package's ``worker.py`` read-only over the image's
                copy, so editing the worker needs no image rebuild. Set ``False`` for remote
                daemons (``DOCKER_HOST``), which cannot see local files.
            transport: ``"socket"`` (a unix socket in a bind-mounted private dir: fastest) or
                ``"stdio"`` (``docker run -i``; works with remote daemons).
            runtime: OCI runtime (e.g. ``"runsc"`` for gVisor), ``None`` for the default.
            extra_args: more ``docker run`` arguments, inserted before the image name.
            max_uses: replace a container after this many episodes (``None``: never).
            start_timeout: seconds to wait for a container's worker to say hello.
            acquire_timeout: seconds ``acquire``/``run`` wait for a free container.
            prestart: start all ``pool_size`` containers now (in parallel).

        Raises:
            SandboxUnavailable: Docker or the image is missing (the message says how to fix it).
            SandboxError: containers could not be started.
        """
        for name_, value in (("memory_mb", memory_mb), ("pids_limit", pids_limit), ("tmpfs_mb", tmpfs_mb)):
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"DockerBackend {name_} must be a positive int, got {value!r}")
        if not cpus > 0:
            raise ConfigError(f"DockerBackend cpus must be > 0, got {cpus!r}")
        if transport not in ("socket", "stdio"):
            raise ConfigError(f"DockerBackend transport must be 'socket' or 'stdio', got {transport!r}")
        self.daemon_version = require_docker(image, baked_worker=not mount_worker)
        super().__init__(
            pool_size=pool_size,
            limits=limits or DEFAULT_LIMITS,
            max_uses=max_uses,
            acquire_timeout=acquire_timeout,
        )
        self.image = image
        self.start_timeout = start_timeout
        self._docker = docker_cli() or "docker"
        self._counter = itertools.count()
        self.transport = transport
        # Private dir (0700) for the worker copy and the per-container socket dirs.
        self._staging = self._make_staging("docker")
        mounts: list[str] = []
        if mount_worker:
            # A world-readable copy: the checkout may not be readable by uid 65534, and edits
            # to the source during a run do not affect running containers.
            worker_copy = os.path.join(self._staging, "worker.py")
            shutil.copyfile(WORKER_SOURCE, worker_copy)
            os.chmod(worker_copy, 0o644)
            mounts = ["-v", f"{worker_copy}:{WORKER_IN_IMAGE}:ro"]
        self._run_args = [
            "--network", "none",
            "--read-only",
            "--tmpfs", f"/tmp:rw,nosuid,nodev,size={tmpfs_mb}m,mode=1777",
            "--user", "65534:65534",
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--memory", f"{memory_mb}m", "--memory-swap", f"{memory_mb}m",
            "--pids-limit", str(pids_limit),
            "--cpus", str(cpus),
            "--ulimit", "core=0",
            "--log-driver", "none",
            "--label", f"{LABEL}=1",
            "--label", f"{LABEL}.owner={owner_label()}",
            "--workdir", "/tmp",
            *(["--runtime", runtime] if runtime else []),
            *mounts,
            *extra_args,
        ]  # fmt: skip
        self._worker_args = ["--root", "/tmp/toolgym", "--scratch", "/tmp", "--scratch", "/dev/shm"]
        if prestart:
            try:
                self.warm()
            except BaseException:
                self.close()
                raise

    @property
    def gaps(self) -> dict[str, str]:
        """What this backend does not contain: nothing known (kernel exploits aside)."""
        return {}

    def container_argv(self, name: str, socket_dir: str | None = None) -> list[str]:
        """The full ``docker run`` command line of a pool container called ``name``.

        With ``socket_dir`` the container is detached and the worker connects to the host's
        socket ``SOCKET_DIR/host.sock``; the directory is bind-mounted **read-only** at
        ``/run/toolgym`` (connecting to a socket needs no write access to its directory), so
        the code can neither write there nor reach the host disk through it, and the host
        removes the socket once the worker is connected.
        """
        if socket_dir is None:
            return [
                self._docker, "run", "-i", "--rm", "--name", name, *self._run_args,
                self.image, *self._worker_args,
            ]  # fmt: skip
        return [
            self._docker, "run", "-d", "--rm", "--name", name, *self._run_args,
            "-v", f"{socket_dir}:/run/toolgym:ro", self.image, *self._worker_args,
            "--connect", "/run/toolgym/host.sock",
        ]  # fmt: skip

    def _start_worker(self) -> WorkerConnection:
        name = f"toolgym-sbx-{os.getpid()}-{next(self._counter)}-{uuid.uuid4().hex[:6]}"
        socket_dir = None
        if self.transport == "socket":
            # Owned by the host user, read-only in the container: the worker only connects.
            socket_dir = os.path.join(self._staging, name)
            os.mkdir(socket_dir, 0o755)
            os.chmod(socket_dir, 0o755)  # whatever the umask: uid 65534 must traverse it
        conn = WorkerConnection(
            self.container_argv(name, socket_dir),
            name=name,
            start_timeout=self.start_timeout,
            on_kill=self._remove_container,
            listen_path=None if socket_dir is None else os.path.join(socket_dir, "host.sock"),
        )
        if conn.worker_pid is None:  # stdio: the container is not a child of the docker client
            proc = subprocess.run(  # noqa: S603 - fixed docker subcommand
                [self._docker, "inspect", "--format", "{{.State.Pid}}", name],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            pid = proc.stdout.strip()
            conn.worker_pid = int(pid) if proc.returncode == 0 and pid.isdigit() and pid != "0" else None
        return conn

    def _remove_container(self, conn: WorkerConnection) -> None:
        subprocess.run(  # noqa: S603 - fixed docker subcommand
            [self._docker, "rm", "-f", conn.name], capture_output=True, timeout=60, check=False
        )

    def _kill_workers(self, conns: list[WorkerConnection]) -> None:
        """Remove all containers with one ``docker rm -f`` (much faster than one by one)."""
        subprocess.run(  # noqa: S603 - fixed docker subcommand
            [self._docker, "rm", "-f", *(c.name for c in conns)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        for conn in conns:
            conn.disable_kill_hook()


def sweep_containers(*, all_owners: bool = False) -> list[str]:
    """Remove leftover sandbox containers (label ``toolgym.sandbox=1``); return their names.

    By default only containers whose owner process (label ``toolgym.sandbox.owner``) is no
    longer alive on this host are removed, so running backends are not disturbed; with
    ``all_owners=True`` every sandbox container goes.
    """
    cli = docker_cli()
    if cli is None:
        return []
    proc = subprocess.run(  # noqa: S603
        [cli, "ps", "-a", "--filter", f"label={LABEL}=1", "--format",
         f'{{{{.Names}}}}\t{{{{.Label "{LABEL}.owner"}}}}'],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return []
    host = socket.gethostname()
    doomed = []
    for line in proc.stdout.splitlines():
        name, _, owner = line.partition("\t")
        owner_host, _, pid = owner.rpartition(":")
        if not all_owners and owner_host == host and pid.isdigit() and pid_alive(int(pid)):
            continue
        doomed.append(name)
    if doomed:
        subprocess.run([cli, "rm", "-f", *doomed], capture_output=True, timeout=120, check=False)  # noqa: S603
    return doomed
