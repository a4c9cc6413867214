"""Host side of the worker protocol: one connection per worker, a thread-safe pool of them.

Both backends are a :class:`PooledBackend`: they differ only in the command that starts a
worker (``docker run -i ...`` or ``bwrap ... python worker.py``) and in how a worker is
killed. Everything else (framing, timeouts, restart of dead workers, per-episode handles,
wiping on release) lives here once.
"""

from __future__ import annotations

import base64
import itertools
import logging
import os
import select
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from toolgym.sandbox.base import ExecResult, Files, Limits, SandboxError
from toolgym.sandbox.worker import PROTOCOL_VERSION, FrameDecoder, FrameError, encode_frame

logger = logging.getLogger(__name__)

REPLY_GRACE_S = 3.0
"""Extra seconds the host waits for a reply beyond the call's own timeout before it declares
the worker hung and kills it (the worker enforces the timeout itself; this is the backstop)."""


class WorkerDied(SandboxError):
    """The worker exited or closed its pipe while a request was in flight."""


class WorkerHung(SandboxError):
    """The worker did not answer in time; it has been killed."""


class WorkerTampered(SandboxError):
    """The worker shows signs of interference (traced, stopped, stray replies); it was killed."""


def _peer_pid(sock: socket.socket) -> int | None:
    """PID (in this process's PID namespace) of the process at the other end of ``sock``."""
    try:
        import struct

        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid = struct.unpack("3i", creds)[0]
    except (OSError, AttributeError):
        return None
    return pid or None


def find_worker_pid(launcher: int, depth: int = 3) -> int | None:
    """PID of the worker started by ``launcher`` (itself, or a descendant running worker.py).

    ``None`` when it is not found (e.g. the docker client: the container is not its child).
    """
    level = [launcher]
    for _ in range(depth + 1):
        following: list[int] = []
        for pid in level:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    argv = fh.read().split(b"\0")
                # The worker is `PYTHON -I .../worker.py ...`; its launchers (bwrap, unshare)
                # carry that command line too, but after their own program name and options.
                if len(argv) > 2 and argv[1] == b"-I" and argv[2].endswith(b"/worker.py"):
                    return pid
                with open(f"/proc/{pid}/task/{pid}/children") as fh:
                    following += [int(p) for p in fh.read().split()]
            except OSError:
                continue
        level = following
    return None


STAGING_PREFIX = "toolgym-staging-"
"""Staging directories are ``STAGING_PREFIX + KIND-PID-RANDOM`` in the temp dir or /dev/shm."""


def staging_roots() -> list[str]:
    """The directories staging directories are created in (see :func:`make_staging`)."""
    roots = [tempfile.gettempdir()]
    if os.path.isdir("/dev/shm"):
        roots.append("/dev/shm")
    return roots


def make_staging(kind: str, parent: str | None = None) -> str:
    """Create a private staging directory named after this process (for :func:`sweep_staging`)."""
    return tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{kind}-{os.getpid()}-", dir=parent)


def sweep_staging(*, all_owners: bool = False) -> list[str]:
    """Remove staging directories whose owner process is gone (all of them with ``all_owners``).

    Backends remove their own on ``close()`` and at interpreter exit; a process that was killed
    leaves them behind. Returns the removed paths.
    """
    import shutil

    removed = []
    for root in staging_roots():
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            if not name.startswith(STAGING_PREFIX):
                continue
            parts = name[len(STAGING_PREFIX) :].split("-")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
            if not all_owners and (pid is None or pid_alive(pid)):
                continue
            path = os.path.join(root, name)
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.exists(path):
                removed.append(path)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (zombies count as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def encode_files(files: Files | None) -> list[dict[str, str]]:
    """Turn a ``{path: str | bytes}`` mapping into the worker's ``files`` list."""
    encoded: list[dict[str, str]] = []
    for path, content in (files or {}).items():
        if not isinstance(path, str):
            raise TypeError(f"file names must be str, got {type(path).__name__}")
        if isinstance(content, bytes):
            data = base64.b64encode(content).decode("ascii")
            encoded.append({"path": path, "data": data, "encoding": "base64"})
        elif isinstance(content, str):
            encoded.append({"path": path, "data": content, "encoding": "utf-8"})
        else:
            raise TypeError(f"content of {path!r} must be str or bytes, got {type(content).__name__}")
    return encoded


class WorkerConnection:
    """A running worker and the channel that speaks the frame protocol to it.

    Two transports: the worker's stdin/stdout (``argv`` is the worker, or a launcher such as
    bwrap or ``docker run -i`` that passes stdio through), or, with ``listen_path``, a unix
    socket the host listens on and the worker connects to (``argv`` then only starts it, e.g.
    ``docker run -d``, or ``launch``, a function that starts it, e.g. through the Docker Engine
    API; the connection is the worker's lifeline). The host accepts exactly one
    connection, then closes the listener and removes the socket file, so nothing started later
    (the agent's code) can connect. Not thread-safe by itself: the pool hands a connection to
    one user at a time.

    ``worker_pid`` is the worker's PID as the host sees it (when it can be known): the pool
    reads ``/proc/<worker_pid>/status`` after every call (:meth:`interference`), so a worker
    that is being traced or was stopped is replaced, never reused.
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        start_timeout: float = 30.0,
        popen_kwargs: dict[str, Any] | None = None,
        on_kill: Callable[[WorkerConnection], None] | None = None,
        listen_path: str | None = None,
        launch: Callable[[], None] | None = None,
    ) -> None:
        """Start the worker with ``argv`` (or ``launch``) and wait for its hello frame.

        Args:
            argv: the command that runs the worker or starts it (empty with ``launch``).
            launch: instead of a command, a function that starts the worker and returns once
                it is started (raising :class:`SandboxError` if it cannot); needs
                ``listen_path``, since there is no process whose pipes could carry the frames.

        Raises:
            SandboxError: if the worker does not start or speaks another protocol version.
        """
        if launch is not None and (listen_path is None or argv):
            raise ValueError("launch= needs listen_path= and an empty argv")
        self.name = name
        self.argv = list(argv)
        self.uses = 0
        self._on_kill = on_kill
        self._decoder = FrameDecoder()
        self._pending: deque[dict[str, Any]] = deque()
        self._dead = False
        self._killed = False
        self._stderr = tempfile.TemporaryFile()
        self._sock: socket.socket | None = None
        self.worker_pid: int | None = None
        self._status_fd: int | None = None
        deadline = time.monotonic() + start_timeout
        listener = None
        if listen_path is not None:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(listen_path)
            os.chmod(listen_path, 0o666)  # the sandbox user may differ from the host user
            listener.listen(1)
        self._proc: subprocess.Popen[bytes] | None = None
        try:
            if launch is not None:
                launch()
            else:
                self._proc = subprocess.Popen(  # noqa: S603 - argv built by the backend, not the agent
                    self.argv,
                    stdin=subprocess.PIPE if listen_path is None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if listen_path is None else subprocess.DEVNULL,
                    stderr=self._stderr,
                    start_new_session=True,
                    **(popen_kwargs or {}),
                )
        except BaseException:
            if listener is not None:
                listener.close()
                os.unlink(listen_path)
            raise
        try:
            if listener is None:
                assert (
                    self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
                )
                self._in_fd = self._proc.stdin.fileno()
                self._out_fd = self._proc.stdout.fileno()
            else:
                try:
                    self._sock = self._accept(listener, deadline)
                finally:
                    listener.close()
                    os.unlink(listen_path)
                self._in_fd = self._out_fd = self._sock.fileno()
                self.worker_pid = _peer_pid(self._sock)
            self._poller = select.poll()
            self._poller.register(self._out_fd, select.POLLIN)
            self.hello = self._read_message(deadline)
            if self.worker_pid is None and self._proc is not None:
                self.worker_pid = find_worker_pid(self._proc.pid)
        except SandboxError as exc:
            self.kill()
            raise SandboxError(f"sandbox worker {name} failed to start: {exc}") from exc
        if self.hello.get("op") != "hello" or self.hello.get("version") != PROTOCOL_VERSION:
            self.kill()
            raise SandboxError(
                f"sandbox worker {name} speaks protocol {self.hello.get('version')!r}, "
                f"expected {PROTOCOL_VERSION} (rebuild the image: toolgym sandbox build)"
            )
        hardening = self.hello.get("hardening") or {}
        if hardening.get("dumpable") != 0:
            self.kill()
            raise SandboxError(
                f"sandbox worker {name} could not make itself non-dumpable ({hardening!r}): the code "
                "it runs could take it over, so it is not used (does its Python have ctypes?)"
            )

    def _accept(self, listener: socket.socket, deadline: float) -> socket.socket:
        """Accept the worker's connection (the launcher may still be running meanwhile)."""
        listener.settimeout(0.01)
        while True:
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                pass
            else:
                sock.setblocking(True)
                return sock
            code = None if self._proc is None else self._proc.poll()
            if code not in (None, 0):
                raise WorkerDied(f"launcher exited with status {code}: {self.stderr_tail()}")
            if time.monotonic() > deadline:
                raise WorkerHung("the worker did not connect in time")

    def interference(self) -> str | None:
        """What shows that someone interfered with the worker (traced, stopped), or ``None``.

        Read from outside the sandbox (``/proc/<worker_pid>/status`` on the host), so code
        that took over the worker cannot hide it. ``None`` too when the PID is unknown.
        """
        if self.worker_pid is None:
            return None
        try:
            if self._status_fd is None:
                # Kept open: it stays bound to this process even if the PID is reused.
                self._status_fd = os.open(f"/proc/{self.worker_pid}/status", os.O_RDONLY | os.O_CLOEXEC)
            status = os.pread(self._status_fd, 4096, 0)
        except OSError:
            return None  # gone: the next request reports the death
        tracer = status.find(b"\nTracerPid:\t")
        if tracer >= 0 and status[tracer + 12 : tracer + 14] != b"0\n":
            end = status.find(b"\n", tracer + 12)
            return f"traced by pid {status[tracer + 12 : end].decode()}"
        state = status.find(b"\nState:\t")
        if state >= 0 and status[state + 8 : state + 9] in (b"T", b"t"):
            return "stopped"
        return None

    @property
    def alive(self) -> bool:
        """True while the worker runs and its channel is intact."""
        if self._dead:
            return False
        if self._sock is None:
            assert self._proc is not None  # no socket: the worker is this process's child
            return self._proc.poll() is None
        # Between requests nothing may be readable: readiness means EOF (the worker is gone).
        if self._poller.poll(0):
            self._dead = True
        return not self._dead

    @property
    def pid(self) -> int | None:
        """PID of the process the host started (the worker, bwrap, or the docker client);
        ``None`` when the worker was started by a ``launch`` function."""
        return None if self._proc is None else self._proc.pid

    def stderr_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` characters the worker (or its launcher) wrote to stderr."""
        try:
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def _death_message(self) -> str:
        code = None if self._proc is None else self._proc.poll()
        tail = self.stderr_tail()
        if self._sock is not None:
            message = "closed its connection (exited, or its container was removed)"
        else:
            message = "exited" if code is None else f"exited with status {code}"
        return f"{message}; stderr: {tail}" if tail else message

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while not self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerHung(f"no reply from sandbox worker {self.name} in time")
            # poll, not select: select fails on descriptors above 1023 (busy trainers).
            if not self._poller.poll(max(1, int(remaining * 1000 + 0.999))):
                continue
            try:
                chunk = os.read(self._out_fd, 1 << 20)
            except OSError as exc:
                self._dead = True
                raise WorkerDied(f"sandbox worker {self.name}: {exc}") from exc
            if not chunk:
                self._dead = True
                # Give the process a moment to exit so the status and stderr are complete.
                try:
                    if self._proc is not None:
                        self._proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    pass
                raise WorkerDied(f"sandbox worker {self.name} {self._death_message()}")
            try:
                self._pending.extend(self._decoder.feed(chunk))
            except FrameError as exc:
                self._dead = True
                raise WorkerDied(f"sandbox worker {self.name} sent a corrupt frame: {exc}") from exc
        return self._pending.popleft()

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send ``message`` and return the worker's reply.

        Raises:
            WorkerDied: the worker is gone (it is marked dead; the pool replaces it).
            WorkerHung: no reply within ``timeout`` s (the worker is killed).
        """
        if not self.alive:
            raise WorkerDied(f"sandbox worker {self.name} {self._death_message()}")
        request_id = next(self._ids)
        frame = encode_frame({**message, "id": request_id})
        try:
            view = memoryview(frame)
            while view:
                written = os.write(self._in_fd, view)
                view = view[written:]
        except OSError as exc:
            self._dead = True
            raise WorkerDied(f"sandbox worker {self.name} {self._death_message()}") from exc
        deadline = time.monotonic() + timeout
        try:
            while True:
                reply = self._read_message(deadline)
                if reply.get("id") == request_id:
                    return reply
                # One request at a time: any other reply is forged or corrupt.
                self.kill()
                raise WorkerTampered(
                    f"sandbox worker {self.name} sent a reply to request {reply.get('id')!r} "
                    f"while {request_id} was in flight; it was replaced"
                )
        except WorkerHung:
            self.kill()
            raise

    def kill(self) -> None:
        """Stop the worker now (idempotent)."""
        self._dead = True
        if self._killed:
            return
        self._killed = True
        if self._on_kill is not None:
            try:
                self._on_kill(self)
            except Exception:  # noqa: BLE001 - killing is best effort
                logger.debug("sandbox worker %s: on_kill hook failed", self.name, exc_info=True)
        if self._sock is not None:
            self._sock.close()  # the worker sees EOF and exits
        if self._proc is not None:
            self._stop_process(self._proc)
        self._stderr.close()
        if self._status_fd is not None:
            os.close(self._status_fd)
            self._status_fd = None

    def _stop_process(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, 9)
            except OSError:
                proc.kill()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            logger.warning("sandbox worker %s did not exit after SIGKILL", self.name)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def disable_kill_hook(self) -> None:
        """Forget the ``on_kill`` hook (used after the backend removed the worker in bulk)."""
        self._on_kill = None

    def shutdown(self, timeout: float = 2.0) -> None:
        """Ask the worker to exit cleanly, then kill it if it does not."""
        if self.alive:
            try:
                self.request({"op": "shutdown"}, timeout)
            except SandboxError:
                pass
        self.kill()


class WorkerPool:
    """A bounded, thread-safe pool of :class:`WorkerConnection`.

    Workers are started on demand (up to ``size``) and kept warm when returned. Dead workers
    are dropped and, while the pool is open, replaced in the background so the pool stays warm.
    """

    def __init__(
        self,
        factory: Callable[[], WorkerConnection],
        size: int,
        *,
        kill_many: Callable[[list[WorkerConnection]], None] | None = None,
    ) -> None:
        """``factory`` starts one worker; ``kill_many`` (optional) stops several at once."""
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self._factory = factory
        self._kill_many = kill_many
        self.size = size
        self._idle: deque[WorkerConnection] = deque()
        self._all: set[WorkerConnection] = set()
        self._starting = 0
        self._cond = threading.Condition()
        self._closed = False
        self._owner_pid = os.getpid()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def _start_one(self) -> WorkerConnection:
        """Start a worker for a slot already counted in ``_starting``."""
        try:
            conn = self._factory()
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._starting -= 1
            if self._closed:
                closed = True
            else:
                closed = False
                self._all.add(conn)
            self._cond.notify_all()
        if closed:
            conn.kill()
            raise SandboxError("the sandbox backend is closed")
        return conn

    def warm(self, n: int | None = None) -> None:
        """Start workers until ``n`` (default: ``size``) exist, in parallel; wait for them."""
        target = self.size if n is None else min(n, self.size)
        with self._cond:
            missing = target - len(self._all) - self._starting
            self._starting += max(0, missing)
        if missing <= 0:
            return
        errors: list[BaseException] = []

        def start() -> None:
            try:
                conn = self._start_one()
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)
                return
            self._put_idle(conn)

        threads = [threading.Thread(target=start, daemon=True) for _ in range(missing)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _put_idle(self, conn: WorkerConnection) -> None:
        with self._cond:
            if self._closed or not conn.alive:
                self._all.discard(conn)
                drop = True
            else:
                self._idle.append(conn)
                drop = False
            self._cond.notify_all()
        if drop:
            conn.kill()

    def acquire(self, timeout: float | None = None) -> WorkerConnection:
        """Take a live worker, starting one if below ``size``; wait up to ``timeout`` s.

        Raises:
            SandboxError: closed pool, no worker free in time, a worker failed to start, or
                the pool was inherited through ``fork`` (create one backend per process).
        """
        if os.getpid() != self._owner_pid:
            raise SandboxError(
                "this sandbox backend was created in another process (inherited via fork); "
                "create one backend per process"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        raise SandboxError("the sandbox backend is closed")
                    if self._idle:
                        conn = self._idle.popleft()
                        break
                    if len(self._all) + self._starting < self.size:
                        self._starting += 1
                        conn = None
                        break
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise SandboxError(
                            f"no sandbox free within {timeout} s (all {self.size} in use; "
                            "raise pool_size or release handles)"
                        )
                    self._cond.wait(remaining)
            if conn is None:
                conn = self._start_one()
            if conn.alive:
                conn.uses += 1
                return conn
            self.discard(conn)

    def release(self, conn: WorkerConnection) -> None:
        """Return a worker (the caller has wiped it); dead ones are replaced."""
        if conn.alive and not self._closed:
            self._put_idle(conn)
        else:
            self.discard(conn)

    def discard(self, conn: WorkerConnection, *, replace: bool = True) -> None:
        """Kill ``conn`` and forget it; start a replacement in the background if ``replace``."""
        with self._cond:
            self._all.discard(conn)
            self._cond.notify_all()
        conn.kill()
        if replace and not self._closed:
            threading.Thread(target=self._replenish, daemon=True).start()

    def _replenish(self) -> None:
        with self._cond:
            if self._closed or self._idle or len(self._all) + self._starting >= self.size:
                return
            self._starting += 1
        try:
            conn = self._start_one()
        except BaseException as exc:  # noqa: BLE001 - next acquire retries and reports
            logger.warning("could not restart a sandbox worker: %s", exc)
            return
        self._put_idle(conn)

    def close(self) -> None:
        """Kill every worker, idle or in use (idempotent)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            if os.getpid() != self._owner_pid:
                # A forked copy must not kill the parent's workers (e.g. at its exit).
                self._all.clear()
                self._idle.clear()
                return
            conns = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        if self._kill_many is not None and conns:
            try:
                self._kill_many(conns)
            except Exception:  # noqa: BLE001 - individual kills below still run
                logger.debug("batch kill failed", exc_info=True)
        for conn in conns:
            conn.kill()

    def stats(self) -> dict[str, int]:
        """Counts of workers: total, idle, starting."""
        with self._cond:
            return {"total": len(self._all), "idle": len(self._idle), "starting": self._starting}


class PooledHandle:
    """A sandbox reserved for one episode (see :class:`~toolgym.sandbox.base.SandboxHandle`)."""

    def __init__(self, backend: PooledBackend, conn: WorkerConnection) -> None:
        """Hold ``conn`` (from ``backend``'s pool) until released."""
        self._backend = backend
        self._conn: WorkerConnection | None = conn
        self._lock = threading.Lock()
        self.session = uuid.uuid4().hex[:16]

    @property
    def released(self) -> bool:
        """True once the handle has been released."""
        return self._conn is None

    def run(self, code: str, *, timeout: float = 5.0, files: Files | None = None) -> ExecResult:
        """Run ``code`` in this episode's work dir (shared by the episode's calls).

        If the worker died (for example the code killed it) it is replaced transparently;
        the episode's files are then lost, and the failing call reports ``error``.
        """
        with self._lock:
            if self._conn is None:
                raise SandboxError("this sandbox handle was released; acquire a new one")
            if not self._conn.alive:
                self._conn = self._backend.replace_worker(self._conn)
            return self._backend.execute(self._conn, code, timeout=timeout, files=files, session=self.session)

    def release(self) -> None:
        """Wipe the sandbox and give it back to the pool (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            self._backend.give_back(conn)

    def __enter__(self) -> PooledHandle:
        """Return the handle itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the handle."""
        self.release()

    def __del__(self) -> None:
        """Return the worker (wiped) to the pool if the handle is dropped without release."""
        if getattr(self, "_conn", None) is not None:
            try:
                self.release()
            except Exception:  # noqa: BLE001 - never raise from a finaliser
                pass


class PooledBackend:
    """Shared implementation of :class:`~toolgym.sandbox.base.Backend` over a worker pool.

    Subclasses implement :meth:`_start_worker` (and may override :meth:`_kill_workers`).
    """

    name = "pooled"
    isolation = "unknown"

    def __init__(
        self,
        *,
        pool_size: int,
        limits: Limits | None = None,
        max_uses: int | None = None,
        acquire_timeout: float | None = 60.0,
    ) -> None:
        """Configure the pool; subclasses start workers lazily or via :meth:`warm`.

        Args:
            pool_size: maximum number of workers (sandboxes) alive at once.
            limits: per-call resource limits (default :class:`Limits`).
            max_uses: recycle (restart) a worker after this many episodes; ``None`` = never.
            acquire_timeout: seconds ``acquire``/``run`` wait for a free sandbox.
        """
        self.limits = limits or Limits()
        self.max_uses = max_uses
        self.acquire_timeout = acquire_timeout
        self._pool = WorkerPool(self._start_worker, pool_size, kill_many=self._kill_workers)
        # Runs on close(), on garbage collection and at interpreter exit (weakref.finalize).
        self._finalizer = weakref.finalize(self, WorkerPool.close, self._pool)
        self._staging_finalizer: weakref.finalize | None = None

    def _make_staging(self, kind: str, parent: str | None = None) -> str:
        """Create this backend's private staging dir; removed on close (after the workers)."""
        import shutil

        path = make_staging(kind, parent)
        self._staging_finalizer = weakref.finalize(self, shutil.rmtree, path, True)
        return path

    # -- to implement ----------------------------------------------------------------------------
    def _start_worker(self) -> WorkerConnection:
        raise NotImplementedError

    def _kill_workers(self, conns: list[WorkerConnection]) -> None:
        """Stop several workers at once (default: nothing; each is then killed singly)."""

    # -- Backend API -----------------------------------------------------------------------------
    def warm(self, n: int | None = None) -> None:
        """Start workers now (default: the whole pool) instead of on first use."""
        self._pool.warm(n)

    def run(self, code: str, *, timeout: float = 5.0, files: Files | None = None) -> ExecResult:
        """Run ``code`` once in a clean sandbox (fresh work dir; wiped afterwards)."""
        start = time.monotonic()
        try:
            conn = self._pool.acquire(self.acquire_timeout)
        except SandboxError as exc:
            return ExecResult.failure(str(exc), time.monotonic() - start)
        try:
            result = self.execute(conn, code, timeout=timeout, files=files, wipe_after=True)
        finally:
            self._pool.release(conn)
        return result

    def acquire(self, timeout: float | None = None) -> PooledHandle:
        """Reserve a sandbox for one episode.

        Raises:
            SandboxError: no sandbox could be started or none became free in time.
        """
        conn = self._pool.acquire(self.acquire_timeout if timeout is None else timeout)
        return PooledHandle(self, conn)

    def release(self, handle: PooledHandle) -> None:  # type: ignore[override]
        """Return ``handle`` (same as ``handle.release()``)."""
        handle.release()

    def close(self) -> None:
        """Stop every worker and remove the staging directory (idempotent)."""
        self._finalizer()
        if self._staging_finalizer is not None:
            self._staging_finalizer()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._pool.closed

    def stats(self) -> dict[str, int]:
        """Worker counts of the pool: total, idle, starting."""
        return self._pool.stats()

    def __enter__(self) -> PooledBackend:
        """Return the backend itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the backend."""
        self.close()

    def __repr__(self) -> str:
        """Show the class, isolation and pool size."""
        return f"{type(self).__name__}(isolation={self.isolation!r}, pool_size={self._pool.size})"

    # -- worker interface (what :class:`PooledHandle` and :meth:`run` build on) -----------------
    def execute(
        self,
        conn: WorkerConnection,
        code: str,
        *,
        timeout: float,
        files: Files | None,
        session: str | None = None,
        wipe_after: bool = False,
    ) -> ExecResult:
        """Run ``code`` on the worker ``conn`` (taken from this backend's pool).

        ``session`` names the work dir shared by an episode's calls (``None``: a fresh one);
        ``wipe_after`` wipes it after the call. A worker that fails, hangs or was interfered
        with gives ``ExecResult.failure`` (and is killed, so the pool replaces it).

        Raises:
            TypeError: ``code`` is not a str.
            ValueError: ``timeout`` is not positive.
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be str, got {type(code).__name__}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        request = {
            "op": "run",
            "code": code,
            "timeout": float(timeout),
            "files": encode_files(files),
            "limits": self.limits.to_request(),
            "max_output": self.limits.max_output_bytes,
            "session": session,
            "wipe_after": wipe_after,
        }
        start = time.monotonic()
        try:
            reply = conn.request(request, timeout + REPLY_GRACE_S)
        except SandboxError as exc:
            logger.warning("sandbox call failed: %s", exc)
            return ExecResult.failure(str(exc), time.monotonic() - start)
        problem = conn.interference()
        if problem is not None:
            return ExecResult.failure(self._tampered(conn, problem), time.monotonic() - start)
        if not reply.get("ok"):
            return ExecResult.failure(
                f"sandbox worker rejected the request: {reply.get('error')}",
                time.monotonic() - start,
            )
        return ExecResult(
            stdout=reply["stdout"],
            stderr=reply["stderr"],
            exit_code=int(reply["exit_code"]),
            timed_out=bool(reply["timed_out"]),
            duration_s=float(reply["duration_s"]),
            stdout_truncated=bool(reply.get("stdout_truncated")),
            stderr_truncated=bool(reply.get("stderr_truncated")),
        )

    def _tampered(self, conn: WorkerConnection, problem: str) -> str:
        """Kill a worker that was interfered with (never reuse it); return the error message."""
        message = f"sandbox worker {conn.name} was interfered with ({problem}); it was replaced"
        logger.warning(message)
        conn.kill()  # dead: the pool and the handle replace it
        return message

    def replace_worker(self, conn: WorkerConnection) -> WorkerConnection:
        """Swap ``conn``, a dead worker held by a handle, for a fresh one from the pool.

        Raises:
            SandboxError: no worker could be started or none became free in time.
        """
        self._pool.discard(conn, replace=False)
        return self._pool.acquire(self.acquire_timeout)

    def give_back(self, conn: WorkerConnection) -> None:
        """Wipe ``conn`` and return it to the pool; recycle it if it is worn out
        (``max_uses``), could not be wiped, or was interfered with."""
        if self.max_uses is not None and conn.uses >= self.max_uses:
            self._pool.discard(conn)
            return
        if conn.alive:
            try:
                reply = conn.request({"op": "wipe"}, 10.0)
                if not reply.get("ok"):
                    raise SandboxError(f"wipe failed: {reply.get('error')}")
                problems = [*reply.get("integrity", ()), conn.interference()]
                problems = [str(p) for p in problems if p]
                if problems:
                    self._tampered(conn, "; ".join(problems))
            except SandboxError as exc:
                logger.warning("recycling sandbox worker %s: %s", conn.name, exc)
                self._pool.discard(conn)
                return
        self._pool.release(conn)
