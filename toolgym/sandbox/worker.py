r"""The ToolGym sandbox execution worker (stdlib only, Python >= 3.8).

This file is both a module of :mod:`toolgym.sandbox` (the host imports its framing helpers)
and a standalone script that runs *inside* the sandbox: in a Docker container as the main
process, or on the host under bubblewrap/unshare for the process backend. It must therefore
import nothing outside the standard library and keep working on the Python of a minimal
Debian image.

Lifecycle
---------
The worker starts once, pre-imports common stdlib modules, sends a ``hello`` frame and then
serves requests read from its stdin, replying on its stdout (or, with ``--listen PATH``, on
the one connection it accepts on a unix socket). Each frame is a 4-byte big-endian unsigned
length followed by that many bytes of JSON (ASCII-escaped, so also valid UTF-8). Requests are
served one at a time; the host keeps a pool of workers for concurrency.

Each ``run`` request is executed by a forked child (no interpreter start: about a
millisecond), forked in advance so that the fork is off the critical path. The child has its
own session and process group and stdout/stderr pipes; on receiving the code it applies rlimits
(CPU time, address space, processes, file size, open files), enters the call's work dir and
runs the code with ``exec()`` in a fresh ``__main__`` namespace. The parent enforces a
wall-clock timeout, captures and truncates the output, and after replying kills every process
the call left behind (the whole process group, then any orphan re-parented to the worker,
which is PID 1 of its namespace or a child subreaper) before it reads the next request.

Requests (``op``)
-----------------
``run``
    ``{"op": "run", "id": 1, "code": str, "timeout": float, "files": [{"path": str,
    "data": str, "encoding": "utf-8"|"base64"}], "limits": {...}, "max_output": int,
    "session": str|null, "wipe_after": bool}``. With a ``session`` the work dir persists
    across calls of that session (until ``wipe``); without one it is deleted after the call.
    Reply: ``{"id", "ok": true, "stdout", "stderr", "exit_code", "timed_out", "duration_s",
    "stdout_truncated", "stderr_truncated", "strays_killed"}``.
``wipe``
    Kill every process of the sandbox except the worker, delete all work dirs and the
    contents of the scratch dirs (``--scratch``). Reply: ``{"id", "ok": true, "removed": int}``.
``ping``
    Reply ``{"id", "ok": true}``.
``shutdown``
    Reply, then exit.

Any request that fails is answered ``{"id", "ok": false, "error": str}``; the worker keeps
serving.
"""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import struct
import sys
import time

PROTOCOL_VERSION = 1
"""Bumped whenever a request or reply changes incompatibly."""

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 256 * 1024 * 1024
"""Frames larger than this are rejected as corrupt."""

PREIMPORTED = (
    "abc argparse array ast base64 binascii bisect builtins calendar cmath collections "
    "collections.abc contextlib copy csv dataclasses datetime decimal difflib enum fractions "
    "functools glob heapq html io itertools json math numbers operator os pathlib "
    "pickle pprint queue random re resource select shlex shutil statistics string struct subprocess sys "
    "tempfile textwrap threading time traceback types typing unicodedata uuid zlib"
).split()
"""Modules imported once by the worker so that ``import`` in agent code is free."""

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
BASE_ENV = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
"""The environment of every call (plus ``HOME`` and ``TMPDIR``, its work dir)."""


class FrameError(Exception):
    """A frame could not be read or decoded (corrupt stream, oversize frame, bad JSON)."""


def encode_frame(message: dict) -> bytes:
    """Return ``message`` as one frame: 4-byte big-endian length + UTF-8 JSON."""
    # ASCII-escaped JSON: agent text may hold lone surrogates, which UTF-8 cannot encode.
    body = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if len(body) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict:
    """Decode a frame body (without its header) into a JSON object."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"frame body is not UTF-8 JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise FrameError(f"frame body is a {type(message).__name__}, expected an object")
    return message


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, take out complete messages.

    Used by the host, which reads from pipes with timeouts and so cannot block on a read of
    exactly N bytes.
    """

    def __init__(self) -> None:
        """Start with an empty buffer."""
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list:
        """Append ``data`` and return the list of messages completed by it (possibly empty)."""
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME_BYTES:
                raise FrameError(f"frame header announces {length} bytes (max {MAX_FRAME_BYTES})")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[HEADER.size : end])
            del self._buffer[:end]
            messages.append(decode_body(body))
        return messages

    @property
    def pending(self) -> int:
        """Number of buffered bytes that do not yet form a complete frame."""
        return len(self._buffer)


def read_exact(fd: int, n: int) -> bytes | None:
    """Read exactly ``n`` bytes from ``fd``; ``None`` on EOF before the first byte."""
    chunks = []
    got = 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            if got == 0:
                return None
            raise FrameError(f"EOF after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> dict | None:
    """Block until one frame is read from ``fd``; ``None`` on a clean EOF."""
    header = read_exact(fd, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise FrameError(f"frame header announces {length} bytes (max {MAX_FRAME_BYTES})")
    body = read_exact(fd, length) if length else b""
    if body is None:
        raise FrameError("EOF inside a frame")
    return decode_body(body)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# --------------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------------

_RLIMITS = {
    # request key -> (resource name, scale to bytes/units)
    "cpu_seconds": ("RLIMIT_CPU", 1),
    "memory_mb": ("RLIMIT_AS", 1024 * 1024),
    "nproc": ("RLIMIT_NPROC", 1),
    "file_size_mb": ("RLIMIT_FSIZE", 1024 * 1024),
    "open_files": ("RLIMIT_NOFILE", 1),
}


def _set_subreaper() -> bool:
    """Make this process a child subreaper so orphans of a call are re-parented to it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except Exception:  # noqa: BLE001 - best effort; PID-1 mode does not need it
        return False


def _own_children() -> list:
    """PIDs of this process's direct children (including re-parented orphans)."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        pass
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The comm field may contain spaces and parentheses: split after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me:
            kids.append(int(name))
    return kids


def _reap_all() -> None:
    """Collect every exited child without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_strays(pgid: int | None = None, *, thorough: bool = True) -> int:
    """Kill every process the worker does not need: the call's group, then all descendants.

    As PID 1 of a PID namespace (Docker, bubblewrap ``--as-pid-1``) a single ``kill(-1)``
    reaches every other process of the namespace, daemons included (the kernel refuses a
    ``fork`` while a fatal signal is pending, so nothing slips through). With
    ``thorough=False`` the worker then only reaps what has already exited (the rest are
    reaped next time); with ``thorough=True`` it waits until no other process is left.
    Otherwise the worker is a child subreaper and kills its children until none are left
    (orphans are re-parented to it as their parents die). Returns the number of processes
    signalled (approximate).
    """
    killed = 0
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    if os.getpid() == 1 and not thorough:
        try:
            os.kill(-1, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
        _reap_all()
        return killed
    if os.getpid() == 1:
        for _ in range(50):
            try:
                os.kill(-1, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
            # Blocking reap: everything left was SIGKILLed and exits promptly.
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    break
            if not _other_pids():
                break
        return killed
    for _ in range(200):
        kids = _own_children()
        if not kids:
            break
        for pid in kids:
            for sender in (os.killpg, os.kill):
                try:
                    sender(pid, signal.SIGKILL)
                except OSError:
                    pass
            killed += 1
        for pid in kids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    _reap_all()
    return killed


def _other_pids() -> list:
    """PIDs visible in /proc other than our own (used in PID-1 mode)."""
    me = os.getpid()
    try:
        return [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) != me]
    except OSError:
        return []


def _remove_tree(path: str) -> int:
    """Delete ``path`` recursively, fixing permissions the agent may have removed."""
    import shutil

    removed = 0

    def onerror(func, p, _exc):  # noqa: ANN001 - shutil callback signature
        try:
            parent = os.path.dirname(p)
            os.chmod(parent, 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    if os.path.islink(path) or not os.path.isdir(path):
        try:
            os.unlink(path)
            return 1
        except OSError:
            return 0
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    shutil.rmtree(path, onerror=onerror)
    removed += 1
    return removed


def _clear_dir(path: str) -> int:
    """Delete the contents of ``path`` (not ``path`` itself: it may be a mount point)."""
    removed = 0
    try:
        names = os.listdir(path)
    except OSError:
        return 0
    for name in names:
        removed += _remove_tree(os.path.join(path, name))
    return removed


def _safe_relpath(path: str) -> str:
    """Validate an input-file name: relative, normalised, inside the work dir."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ValueError(f"bad file name {path!r}")
    norm = os.path.normpath(path)
    if os.path.isabs(norm) or norm == "." or norm.startswith(".." + os.sep) or norm == "..":
        raise ValueError(f"file name {path!r} must be relative and stay inside the work dir")
    return norm


class _Standby:
    """A pre-forked child waiting for its code: fork cost is paid between requests."""

    def __init__(self, pid: int, ctl_w: int, out_r: int, err_r: int, status_r: int) -> None:
        self.pid = pid
        self.ctl_w = ctl_w
        self.out_r = out_r
        self.err_r = err_r
        self.status_r = status_r

    def close_fds(self) -> None:
        for fd in (self.ctl_w, self.out_r, self.err_r, self.status_r):
            try:
                os.close(fd)
            except OSError:
                pass


class Worker:
    """State of one worker process: its root dir, scratch dirs and privilege settings.

    To keep a call near a millisecond the worker forks the child for the *next* call right
    after answering the current one (a "standby" child that has already set up its session
    and file descriptors and blocks until it receives code). Cleanup of a call (killing its
    leftover processes, deleting its work dir) also runs after the reply but always before
    the next request is read, so no call can observe the previous one's processes.
    """

    def __init__(self, root: str, scratch: list, run_as: tuple | None) -> None:
        """Serve calls under ``root``; ``wipe`` also empties ``scratch``; children as ``run_as``."""
        self.root = os.path.abspath(root)
        self.scratch = [os.path.abspath(p) for p in scratch]
        self.run_as = run_as if os.geteuid() == 0 else None
        self.pid1 = os.getpid() == 1
        self.subreaper = False if self.pid1 else _set_subreaper()
        self._standby: _Standby | None = None
        self._deferred: list = []
        self._ensure_root()

    def _ensure_root(self) -> None:
        os.makedirs(self.root, mode=0o711, exist_ok=True)

    # -- requests ------------------------------------------------------------------------------
    def handle(self, req: dict) -> dict:
        """Serve one request and return its reply (without ``id``)."""
        op = req.get("op")
        if op == "run":
            return self.run(req)
        if op == "wipe":
            return {"ok": True, "removed": self.wipe()}
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}
        raise ValueError(f"unknown op {op!r}")

    def after_reply(self) -> None:
        """Finish the previous request's cleanup and fork the next standby child."""
        deferred, self._deferred = self._deferred, []
        for action in deferred:
            try:
                action()
            except Exception:  # noqa: BLE001 - cleanup is best effort; wipe is the backstop
                pass
        if self._standby is None:
            try:
                self._standby = self._fork_standby()
            except OSError:
                pass  # e.g. EAGAIN under a pids limit; run() retries and reports the error

    def wipe(self) -> int:
        """Kill stray processes and delete all work dirs and scratch contents."""
        self._discard_standby()
        kill_strays()
        removed = _clear_dir(self.root)
        for path in self.scratch:
            if path != self.root:
                removed += _clear_dir(path)
        self._ensure_root()
        return removed

    def _discard_standby(self) -> None:
        standby, self._standby = self._standby, None
        if standby is not None:
            standby.close_fds()  # the child sees EOF on its control pipe and exits
            try:
                os.kill(standby.pid, signal.SIGKILL)
                os.waitpid(standby.pid, 0)
            except OSError:
                pass

    def _workdir(self, session: str | None) -> tuple:
        if session is not None:
            name = "s-" + "".join(c for c in str(session) if c.isalnum() or c in "-_")[:64]
            path = os.path.join(self.root, name)
            os.makedirs(path, mode=0o700, exist_ok=True)
            return path, False
        import tempfile

        return tempfile.mkdtemp(prefix="call-", dir=self.root), True

    def _write_files(self, workdir: str, files: list) -> None:
        for spec in files or ():
            rel = _safe_relpath(spec.get("path"))
            data = spec.get("data", "")
            raw = base64.b64decode(data) if spec.get("encoding") == "base64" else data.encode()
            target = os.path.join(workdir, rel)
            parent = workdir
            for part in rel.split(os.sep)[:-1]:
                parent = os.path.join(parent, part)
                if not os.path.isdir(parent):
                    os.mkdir(parent, 0o700)
                    self._chown(parent)
            with open(target, "wb") as fh:
                fh.write(raw)
            self._chown(target)

    def _chown(self, path: str) -> None:
        if self.run_as is not None:
            os.chown(path, self.run_as[0], self.run_as[1])

    def run(self, req: dict) -> dict:
        """Execute ``req["code"]`` in the standby child; see the module docstring."""
        code = req.get("code")
        if not isinstance(code, str):
            raise ValueError("'code' must be a string")
        timeout = float(req.get("timeout", 5.0))
        if not timeout > 0:
            raise ValueError(f"'timeout' must be > 0, got {timeout!r}")
        max_output = int(req.get("max_output", 65536))
        limits = dict(req.get("limits") or {})
        if limits.get("cpu_seconds") is None:
            limits["cpu_seconds"] = int(timeout) + 1
        workdir, ephemeral = self._workdir(req.get("session"))
        if ephemeral:
            self._deferred.append(lambda: _remove_tree(workdir))
        if req.get("wipe_after"):
            self._deferred.append(self.wipe)
        self._chown(workdir)
        self._write_files(workdir, req.get("files") or [])
        if self._standby is None:
            self._standby = self._fork_standby()
        standby, self._standby = self._standby, None
        result = self._execute(standby, code, workdir, timeout, limits, max_output)
        result["ok"] = True
        return result

    def _fork_standby(self) -> _Standby:
        ctl_r, ctl_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            _standby_main(ctl_r, out_w, err_w, status_w, self.run_as)
        for fd in (ctl_r, out_w, err_w, status_w):
            os.close(fd)
        return _Standby(pid, ctl_w, out_r, err_r, status_r)

    def _execute(
        self,
        standby: _Standby,
        code: str,
        workdir: str,
        timeout: float,
        limits: dict,
        max_output: int,
    ) -> dict:
        pid = standby.pid
        start = time.monotonic()
        try:
            write_all(standby.ctl_w, encode_frame({"code": code, "workdir": workdir, "limits": limits}))
        except OSError:
            pass  # the standby died; reported below as a signal exit
        os.close(standby.ctl_w)
        captured = {standby.out_r: bytearray(), standby.err_r: bytearray()}
        totals = {standby.out_r: 0, standby.err_r: 0}

        def consume(fd: int, data: bytes) -> None:
            totals[fd] += len(data)
            room = max_output - len(captured[fd])
            if room > 0:
                captured[fd] += data[:room]

        pidfd = -1
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                pidfd = -1
        poller = select.poll()
        open_fds = {standby.out_r, standby.err_r, standby.status_r}
        for fd in open_fds:
            poller.register(fd, select.POLLIN)
        if pidfd >= 0:
            poller.register(pidfd, select.POLLIN)
        status_bytes = b""
        exit_code = None
        reaped = False
        timed_out = False
        deadline = start + timeout
        while exit_code is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            wait_ms = remaining * 1000 if pidfd >= 0 else min(remaining * 1000, 5)
            for fd, _event in poller.poll(max(1, int(wait_ms + 0.999))):
                if fd == pidfd:
                    continue
                chunk = os.read(fd, 65536)
                if fd == standby.status_r:
                    status_bytes += chunk
                    if len(status_bytes) >= 4:
                        (exit_code,) = struct.unpack(">i", status_bytes[:4])
                    elif not chunk:
                        poller.unregister(fd)
                        open_fds.discard(fd)
                elif chunk:
                    consume(fd, chunk)
                else:
                    poller.unregister(fd)
                    open_fds.discard(fd)
            if exit_code is None:
                wpid, wstatus = os.waitpid(pid, os.WNOHANG)
                if wpid == pid:
                    reaped = True
                    exit_code = _exit_status(wstatus)
        if timed_out:
            for sender in (os.killpg, os.kill):
                try:
                    sender(pid, signal.SIGKILL)
                except OSError:
                    pass
            _, wstatus = os.waitpid(pid, 0)
            reaped = True
            exit_code = _exit_status(wstatus)
        duration = time.monotonic() - start
        if pidfd >= 0:
            os.close(pidfd)
        if exit_code == -signal.SIGXCPU:
            timed_out = True
        # The child closed its stdout/stderr before reporting its status, so everything it
        # wrote is in the pipes; read it without blocking (a leftover grandchild may still
        # hold a write end: it is killed after the reply).
        for fd in (standby.out_r, standby.err_r):
            if fd not in open_fds:
                continue
            os.set_blocking(fd, False)
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                consume(fd, chunk)
        stdout = bytes(captured[standby.out_r])
        stderr = bytes(captured[standby.err_r])
        out_total, err_total = totals[standby.out_r], totals[standby.err_r]

        def cleanup() -> None:
            # Per call, as PID 1: one kill(-1) and a non-blocking reap, so that the child's
            # teardown is not waited for; wipe() (between episodes) is thorough.
            kill_strays(pid, thorough=False)
            if not reaped and not self.pid1:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            for fd in (standby.out_r, standby.err_r, standby.status_r):
                os.close(fd)

        self._deferred.insert(0, cleanup)
        return {
            "stdout": stdout.decode("utf-8", "replace"),
            "stderr": stderr.decode("utf-8", "replace"),
            "exit_code": exit_code,
            "timed_out": timed_out,
            "duration_s": round(duration, 6),
            "stdout_truncated": out_total > max_output,
            "stderr_truncated": err_total > max_output,
        }


def _exit_status(wstatus: int) -> int:
    """Exit code like :mod:`subprocess`: the status, or minus the killing signal."""
    if os.WIFEXITED(wstatus):
        return os.WEXITSTATUS(wstatus)
    return -os.WTERMSIG(wstatus)


def _standby_main(ctl_r: int, out_w: int, err_w: int, status_w: int, run_as: tuple | None) -> None:
    """Body of the forked child: isolate, wait for code, limit, exec, report, ``_exit``.

    Everything that does not depend on the request is done before waiting for it, so that
    the work (and the copy-on-write page faults) is off the latency-critical path.
    """
    exit_code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(ctl_r, 3)
        os.dup2(status_w, 4)
        # Close everything else, above all the worker's protocol pipes: agent code must not
        # be able to forge replies or read other requests.
        os.closerange(5, 1 << 16)
        os.set_inheritable(4, False)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as in a normal Python process
        import builtins
        import io
        import types

        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace"
        )
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False),
            encoding="utf-8",
            errors="backslashreplace",
            line_buffering=True,
        )
        sys.argv = ["-c"]
        worker_dir = os.path.dirname(os.path.abspath(__file__))
        sys.path[:] = [""] + [p for p in sys.path if p and os.path.abspath(p) != worker_dir]
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = main
        # os.environ is already BASE_ENV: main() set it once, before the first fork.
        os.umask(0o077)
        _warm_up()
        request = read_frame(3)
        os.close(3)
        if request is None:  # the worker discarded this standby child
            os._exit(0)
        _apply_limits(request["limits"], run_as)
        workdir = request["workdir"]
        os.chdir(workdir)
        os.environ["HOME"] = os.environ["TMPDIR"] = workdir
        exit_code = _exec_code(request["code"], main.__dict__)
    except BaseException:  # noqa: BLE001 - the child must always reach os._exit
        try:
            import traceback

            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
        exit_code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        try:
            # Close our ends of stdout/stderr first so the worker has all output once it
            # reads the status, and need not wait for this process to be torn down.
            os.close(1)
            os.close(2)
            os.write(4, struct.pack(">i", exit_code))
        except BaseException:  # noqa: BLE001
            pass
        os._exit(exit_code)


def _warm_up() -> None:
    """Touch, before the code arrives, the memory a typical call writes to.

    After ``fork`` every page the child writes is copied on first touch; doing the common
    ones here moves those page faults off the latency-critical path.
    """
    import io

    sink = io.StringIO()
    namespace: dict = {"__builtins__": __builtins__, "sink": sink}
    exec(compile("print(sum(i * 2 for i in range(50)), 'x', file=sink)", "<warm>", "exec"), namespace)


def _apply_limits(limits: dict, run_as: tuple | None) -> None:
    """Set the rlimits of ``limits`` (see ``_RLIMITS``) and drop privileges if asked."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, (name, scale) in _RLIMITS.items():
        value = limits.get(key)
        if value is None:
            continue
        amount = int(value * scale)
        resource.setrlimit(getattr(resource, name), (amount, amount))
    if run_as is not None:
        os.setgroups([])
        os.setgid(run_as[1])
        os.setuid(run_as[0])


def _exec_code(code: str, namespace: dict) -> int:
    """Run ``code`` like ``python -c`` does and return the process exit status."""
    import traceback

    try:
        compiled = compile(code, "<string>", "exec")
        exec(compiled, namespace)  # noqa: S102 - executing untrusted code is the whole point
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code & 0xFF
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException as exc:  # noqa: BLE001 - report any failure like the interpreter
        tb = exc.__traceback__
        # Hide this function's frame so the traceback starts in the agent's code.
        if tb is not None and tb.tb_frame.f_code is _exec_code.__code__:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        return 1
    return 0


def _preimport() -> None:
    import importlib

    for name in PREIMPORTED:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a minimal image may lack a module
            pass


def _accept_one(path: str, timeout: float = 120.0) -> int:
    """Listen on the unix socket ``path``, accept one connection, return its fd.

    The socket file is removed once connected: nobody else can connect afterwards, and the
    connection is the worker's lifeline (EOF = the host is gone, so the worker exits).
    """
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    listener.bind(tmp)
    os.chmod(tmp, 0o666)  # the host user may differ from the sandbox user
    listener.listen(1)
    os.rename(tmp, path)  # appears atomically, already listening
    listener.settimeout(timeout)
    try:
        conn, _ = listener.accept()
    finally:
        listener.close()
        try:
            os.unlink(path)
        except OSError:
            pass
    conn.setblocking(True)
    return conn.detach()


def main(argv: list | None = None) -> int:
    """Serve requests on stdin/stdout until EOF or ``shutdown``."""
    import argparse

    parser = argparse.ArgumentParser(description="ToolGym sandbox worker")
    parser.add_argument("--root", default="/tmp/toolgym-sandbox", help="parent of work dirs")
    parser.add_argument("--scratch", action="append", default=[], help="dir whose contents wipe deletes")
    parser.add_argument("--run-as", default=None, help="UID:GID for children (root only)")
    parser.add_argument(
        "--listen",
        default=None,
        help="serve one connection on this unix socket instead of stdin/stdout",
    )
    args = parser.parse_args(argv)
    run_as = None
    if args.run_as:
        uid, _, gid = args.run_as.partition(":")
        run_as = (int(uid), int(gid or uid))

    # Keep the protocol on private fds; fds 0/1 become harmless so a stray print (ours or a
    # library's) cannot corrupt the stream.
    if args.listen:
        proto_in = proto_out = _accept_one(args.listen)
    else:
        proto_in = os.dup(0)
        proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # PID 1 ignores SIGTERM otherwise
    # Reset the environment once here rather than in every child (about 0.3 ms per call after a
    # fork): children inherit it. Launchers start the worker with a minimal environment too, so
    # that no host variable is in the process's initial environment (/proc/<pid>/environ).
    os.environ.clear()
    os.environ.update(BASE_ENV)
    _preimport()
    import gc

    # Objects that exist now are never collected: children then do not touch (and so copy)
    # their memory when the garbage collector runs.
    gc.collect()
    gc.freeze()
    worker = Worker(args.root, args.scratch, run_as)
    hello = {
        "op": "hello",
        "version": PROTOCOL_VERSION,
        "pid": os.getpid(),
        "pid1": worker.pid1,
        "subreaper": worker.subreaper,
        "uid": os.getuid(),
        "python": sys.version.split()[0],
    }
    worker.after_reply()  # fork the first standby child before announcing readiness
    write_all(proto_out, encode_frame(hello))
    while True:
        try:
            req = read_frame(proto_in)
        except FrameError as exc:
            write_all(proto_out, encode_frame({"id": None, "ok": False, "error": str(exc)}))
            return 2
        if req is None:
            return 0
        if req.get("op") == "shutdown":
            write_all(proto_out, encode_frame({"id": req.get("id"), "ok": True}))
            kill_strays()
            return 0
        try:
            reply = worker.handle(req)
        except Exception as exc:  # noqa: BLE001 - report and keep serving
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        reply["id"] = req.get("id")
        write_all(proto_out, encode_frame(reply))
        worker.after_reply()


if __name__ == "__main__":
    sys.exit(main())
