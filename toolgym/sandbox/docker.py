"""``DockerBackend``: a warm pool of locked-down containers, each running the sandbox worker.

Every container is started once (the worker is its main process, PID 1) and then serves many
calls, each a ``fork`` inside the container (about a millisecond) instead of a container start
(~0.5 s). The host talks to the worker over a unix socket in a bind-mounted private directory
(``transport="socket"``, the default: the host connects straight to the worker) or over the
stdin/stdout of ``docker run -i`` (``transport="stdio"``: three more hops through the docker
client, dockerd and the shim, but no bind mount, so it also works with a remote daemon).
Either way the connection is the container's lifeline: when the host process goes away the
worker sees EOF, exits, and the container is removed (auto-remove, ``--rm``).

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

The backend talks to the daemon through the Docker SDK for Python (:mod:`toolgym.sandbox.engine`:
one Engine API client per process, ``DOCKER_HOST`` honoured): checking the daemon and the image,
creating, starting, inspecting and removing containers. The flags above are the ``docker run``
spelling of the same settings. Only ``transport="stdio"`` runs the ``docker`` CLI
(``docker run -i``, whose attached stdin/stdout carry the frames).
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from toolgym.core.errors import ConfigError
from toolgym.sandbox import engine
from toolgym.sandbox.base import Limits, SandboxError, SandboxUnavailable
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
        run_options: Mapping[str, Any] | None = None,
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
            extra_args: more ``docker run`` arguments, inserted before the image name; only
                with ``transport="stdio"`` (the one transport that runs the CLI).
            run_options: more container settings for ``transport="socket"``: keyword
                arguments of docker-py's ``APIClient.create_host_config`` (e.g.
                ``{"cpuset_cpus": "0"}``); they override the defaults above, so they can also
                weaken the isolation.
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
        if extra_args and transport != "stdio":
            raise ConfigError(
                "DockerBackend extra_args are docker CLI arguments and apply only with "
                "transport='stdio'; with transport='socket' pass run_options= (keyword arguments "
                "of docker-py's APIClient.create_host_config)"
            )
        if run_options and transport != "socket":
            raise ConfigError("DockerBackend run_options apply only with transport='socket'; use extra_args")
        self.daemon_version = require_docker(image, baked_worker=not mount_worker)
        super().__init__(
            pool_size=pool_size,
            limits=limits or DEFAULT_LIMITS,
            max_uses=max_uses,
            acquire_timeout=acquire_timeout,
        )
        self.image = image
        self.start_timeout = start_timeout
        cli = docker_cli()
        self._docker = cli or "docker"
        if transport == "stdio" and cli is None:
            raise SandboxUnavailable(
                "DockerBackend(transport='stdio') runs `docker run -i`, but the docker command-line "
                "client is not installed; use transport='socket' (the default) or install it"
            )
        self._counter = itertools.count()
        self.transport = transport
        # Private dir (0700) for the worker copy and the per-container socket dirs.
        self._staging = self._make_staging("docker")
        mounts: list[str] = []
        self._binds: dict[str, dict[str, str]] = {}
        if mount_worker:
            # A world-readable copy: the checkout may not be readable by uid 65534, and edits
            # to the source during a run do not affect running containers.
            worker_copy = os.path.join(self._staging, "worker.py")
            shutil.copyfile(WORKER_SOURCE, worker_copy)
            os.chmod(worker_copy, 0o644)
            mounts = ["-v", f"{worker_copy}:{WORKER_IN_IMAGE}:ro"]
            self._binds[worker_copy] = {"bind": WORKER_IN_IMAGE, "mode": "ro"}
        # The same settings as _run_args, as Engine API host config (socket transport).
        self._host_config: dict[str, Any] = {
            "network_mode": "none",
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={tmpfs_mb}m,mode=1777"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "mem_limit": f"{memory_mb}m",
            "memswap_limit": f"{memory_mb}m",
            "pids_limit": pids_limit,
            "nano_cpus": int(round(cpus * 1e9)),
            "ulimits": [{"Name": "core", "Soft": 0, "Hard": 0}],
            "log_config": {"Type": "none", "Config": {}},
            "auto_remove": True,
            **({"runtime": runtime} if runtime else {}),
            **dict(run_options or {}),
        }
        extra_binds = self._host_config.pop("binds", None) or {}
        if not isinstance(extra_binds, Mapping):
            raise ConfigError(
                "DockerBackend run_options['binds'] must be a dict {host_path: {'bind': path, 'mode': 'ro'}}, "
                f"got {type(extra_binds).__name__}"
            )
        self._binds.update(extra_binds)
        self._labels = {f"{LABEL}": "1", f"{LABEL}.owner": owner_label()}
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
        """The ``docker run`` command line of a pool container called ``name``.

        The stdio transport runs it. For the socket transport (``socket_dir``) it is the CLI
        spelling of what :meth:`_launch` asks the Engine API for: the container is detached and
        the worker connects to the host's socket ``SOCKET_DIR/host.sock``; the directory is
        bind-mounted **read-only** at ``/run/toolgym`` (connecting to a socket needs no write
        access to its directory), so the code can neither write there nor reach the host disk
        through it, and the host removes the socket once the worker is connected.
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
        if self.transport == "stdio":
            conn = WorkerConnection(
                self.container_argv(name),
                name=name,
                start_timeout=self.start_timeout,
                on_kill=self._remove_container,
            )
            # The container is not a child of the docker client: ask the daemon for its PID.
            try:
                pid = engine.call(f"inspect container {name}", "inspect_container", name)["State"]["Pid"]
            except (SandboxError, SandboxUnavailable):
                pid = 0
            conn.worker_pid = int(pid) or None
            return conn
        socket_dir = self.make_socket_dir(name)
        return WorkerConnection(
            [],
            name=name,
            start_timeout=self.start_timeout,
            on_kill=self._remove_container,
            listen_path=os.path.join(socket_dir, "host.sock"),
            launch=lambda: self._launch(name, socket_dir),
        )

    def make_socket_dir(self, name: str) -> str:
        """Create the private directory container ``name``'s worker connects through (socket
        transport): owned by the host user, traversable by the sandbox user, mounted read-only."""
        socket_dir = os.path.join(self._staging, name)
        os.mkdir(socket_dir, 0o755)
        os.chmod(socket_dir, 0o755)  # whatever the umask: uid 65534 must traverse it
        return socket_dir

    def _launch(self, name: str, socket_dir: str) -> None:
        """Create and start container ``name`` through the Engine API (socket transport).

        Raises:
            SandboxError: the daemon refused, or went away (the pool treats both as a worker
                that could not start).
        """
        try:
            self._create_and_start(name, socket_dir)
        except SandboxUnavailable as exc:
            raise SandboxError(str(exc)) from exc

    def _create_and_start(self, name: str, socket_dir: str) -> None:
        api = engine.api()
        host_config = api.create_host_config(
            binds={**self._binds, socket_dir: {"bind": "/run/toolgym", "mode": "ro"}}, **self._host_config
        )
        container = engine.call(
            f"create container {name} from {self.image}",
            "create_container",
            self.image,
            command=[*self._worker_args, "--connect", "/run/toolgym/host.sock"],
            name=name,
            user="65534:65534",
            working_dir="/tmp",
            labels=self._labels,
            host_config=host_config,
        )
        try:
            engine.call(f"start container {name}", "start", container["Id"])
        except (SandboxError, SandboxUnavailable):
            self._remove(name)
            raise

    @staticmethod
    def _remove(name: str) -> None:
        """Remove container ``name`` (killing it first); one already gone is no error."""
        try:
            engine.call(f"remove container {name}", "remove_container", name, force=True)
        except (SandboxError, SandboxUnavailable) as exc:
            cause = exc.__cause__
            if cause is None or not engine.is_not_found(cause):
                # 409 "removal already in progress" (auto-remove racing us) is fine too.
                logger.debug("removing sandbox container %s: %s", name, exc)

    def _remove_container(self, conn: WorkerConnection) -> None:
        self._remove(conn.name)

    def _kill_workers(self, conns: list[WorkerConnection]) -> None:
        """Remove all containers at once (concurrent requests: much faster than one by one)."""
        _remove_all([c.name for c in conns])
        for conn in conns:
            conn.disable_kill_hook()


def sweep_containers(*, all_owners: bool = False) -> list[str]:
    """Remove leftover sandbox containers (label ``toolgym.sandbox=1``); return their names.

    By default only containers whose owner process (label ``toolgym.sandbox.owner``) is no
    longer alive on this host are removed, so running backends are not disturbed; with
    ``all_owners=True`` every sandbox container goes.
    """
    try:
        listed = engine.call(
            "list sandbox containers", "containers", all=True, filters={"label": f"{LABEL}=1"}
        )
    except (SandboxError, SandboxUnavailable):  # no daemon (or no SDK): nothing to sweep
        return []
    host = socket.gethostname()
    doomed = []
    for info in listed:
        name = (info.get("Names") or ["/" + info.get("Id", "")])[0].lstrip("/")
        owner = (info.get("Labels") or {}).get(f"{LABEL}.owner", "")
        owner_host, _, pid = owner.rpartition(":")
        if not all_owners and owner_host == host and pid.isdigit() and pid_alive(int(pid)):
            continue
        doomed.append(name)
    _remove_all(doomed)
    return doomed


def _remove_all(names: Sequence[str]) -> None:
    """Remove the containers ``names`` with concurrent requests (much faster than one by one)."""
    if names:
        with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
            list(pool.map(DockerBackend._remove, names))
