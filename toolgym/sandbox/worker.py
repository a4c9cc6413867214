r"""The ToolGym sandbox execution worker (stdlib only, Python >= 3.8).

This file is both a module of :mod:`toolgym.sandbox` (the host imports its framing helpers)
and a standalone script that runs *inside* the sandbox: in a Docker container as the main
process, or on the host under bubblewrap/unshare for the process backend. It must therefore
import nothing outside the standard library and keep working on the Python of a minimal
Debian image.

Lifecycle
---------
The worker starts once and first hardens itself against the code it will run
(:func:`harden_worker`: non-dumpable, a seccomp filter denying ``ptrace`` and cross-process
memory access), pre-imports common stdlib modules, sends a ``hello`` frame (with what the
hardening achieved) and then serves requests read from its stdin, replying on its stdout (or,
with ``--connect PATH``, on a unix socket the host listens on). Each frame is a 4-byte big-endian unsigned
length followed by that many bytes of JSON (ASCII-escaped, so also valid UTF-8). Requests are
served one at a time; the host keeps a pool of workers for concurrency.

Each ``run`` request is executed by a forked child (no interpreter start: about a
millisecond; forked from a template process that never sees a request where the cleanup can
spare one, so that no call's memory holds another call's data), forked in advance so that the fork is off the critical path (where the worker can
prove cheaply that a call left no process behind, that child is kept through the cleanup, and
during back-to-back calls it is forked while the previous call runs, so that a call arriving
right after a reply need not wait for it: see :class:`Worker`). The child has its
own session and process group and stdout/stderr pipes; on receiving the code it applies rlimits
(CPU time, address space, processes, file size, open files), drops privileges (``--run-as``;
any capability left when it is still uid 0), enters the call's work dir and runs the code with ``exec()`` in a fresh ``__main__`` namespace. The parent enforces a
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
    contents of the scratch dirs (``--scratch``). Reply: ``{"id", "ok": true, "removed": int,
    "integrity": [str]}`` (signs of interference found by :func:`self_check`; empty if none).
``ping``
    Reply ``{"id", "ok": true, "pid": int, "integrity": [str]}``.
``shutdown``
    Reply, then exit.

Any request that fails is answered ``{"id", "ok": false, "error": str}``; the worker keeps
serving.
"""

from __future__ import annotations

import base64
import json
import math
import os
import select
import signal
import struct
import sys
import time

PROTOCOL_VERSION = 2
"""Bumped whenever a request or reply changes incompatibly."""

STANDBY_MODES = ("auto", "during-call", "after-cleanup")
"""Values of the worker's ``--standby`` (see :class:`Worker`)."""

FORK_FROM = ("template", "worker")
"""Values of the worker's ``--fork-from`` (see :class:`Worker`)."""

TEMPLATE_START_TIMEOUT_S = 10.0
"""How long the worker waits for a new template to be ready (an interpreter start)."""

TEMPLATE_FORK_TIMEOUT_S = 1.0
"""How long the worker waits for the template to fork a child (it takes about a millisecond);
then it starts a fresh template (a call's code may have stopped this one)."""

BURST_GAP_S = 0.003
"""A request read within this time of the previous reply (the worker's cleanup and fork
included) is back to back: the next call's child is then forked while it runs."""

ACK = b"R"
"""Written by a standby child on its status pipe when it has taken its request."""

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


_LIBC = None


def _libc():  # noqa: ANN202 - ctypes handle, loaded once (children inherit it)
    """The C library through :mod:`ctypes`, or ``None`` if ctypes is unavailable."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL(None, use_errno=True)
        except Exception:  # noqa: BLE001 - a minimal Python may lack ctypes
            _LIBC = False
    return _LIBC or None


PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# Syscalls that read or write another process's memory or take over its execution. Run code
# must not use them on the worker; the worker is also non-dumpable, so without
# CAP_SYS_PTRACE they fail anyway: the filter is the second, independent lock.
# (audit arch, {name: number}) per ABI a process of this machine can use.
_DENIED_SYSCALLS = {
    "x86_64": (
        (0xC000003E, {"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438}),
        (0x40000003, {"ptrace": 26, "process_vm_readv": 347, "process_vm_writev": 348, "pidfd_getfd": 438}),
    ),
    "aarch64": (
        (0xC00000B7, {"ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438}),
        (0x40000028, {"ptrace": 26, "process_vm_readv": 376, "process_vm_writev": 377, "pidfd_getfd": 438}),
    ),
}
_X32_BIT = 0x40000000


def seccomp_program(machine: str) -> list | None:
    """Classic-BPF seccomp filter (``[(code, jt, jf, k)]``) denying ``_DENIED_SYSCALLS``.

    A denied syscall fails with ``EPERM``; so does every syscall of an ABI the table does not
    know (e.g. x32, or 32-bit ARM on a kernel that has it); everything else is allowed (the
    container runtime's own filter, if any, still applies: seccomp filters stack). ``None``
    when ``machine`` (``platform.machine()``) is not in the table.
    """
    abis = _DENIED_SYSCALLS.get(machine)
    if abis is None:
        return None
    ld_abs, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    # Layout: [ld arch] then per ABI [jeq arch (skip block if not)] [block]; [ret deny].
    # A block is: ld nr, (x32 check), one jeq per denied number (to its own "ret deny"), ret allow.
    prog: list = [(ld_abs, 0, 0, 4)]
    for index, (arch, numbers) in enumerate(abis):
        block: list = [(ld_abs, 0, 0, 0)]
        checks = list(numbers.values())
        x32 = machine == "x86_64" and index == 0
        n_tests = len(checks) + (1 if x32 else 0)
        # Each test jumps forward to the deny at the end of the block: n_tests - i - 1 tests and
        # one "ret allow" lie between test i and it.
        test_no = 0
        if x32:
            block.append((jset, n_tests - test_no, 0, _X32_BIT))
            test_no += 1
        for number in checks:
            block.append((jeq, n_tests - test_no, 0, number))
            test_no += 1
        block.append((ret, 0, 0, allow))
        block.append((ret, 0, 0, deny))
        prog.append((jeq, 0, len(block), arch))
        prog += block
    prog.append((ret, 0, 0, deny))
    return prog


def _install_seccomp(libc) -> bool:  # noqa: ANN001 - ctypes handle
    """Install :func:`seccomp_program` on this process (inherited by every child)."""
    import ctypes
    import platform

    program = seccomp_program(platform.machine())
    if program is None:
        return False

    class SockFilter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_ushort),
            ("jt", ctypes.c_ubyte),
            ("jf", ctypes.c_ubyte),
            ("k", ctypes.c_uint),
        ]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(program))(*[SockFilter(*ins) for ins in program])
    fprog = SockFprog(len(program), filters)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0


def harden_worker() -> dict:
    """Make the worker unreachable from the code it runs; return what was achieved.

    * ``PR_SET_DUMPABLE 0``: ``/proc/<worker>/mem`` and ``ptrace`` of the worker then need
      ``CAP_SYS_PTRACE`` over it, which run code never has (it runs without capabilities;
      see :func:`_drop_capabilities`).
    * a seccomp filter (:func:`seccomp_program`) that denies ``ptrace``,
      ``process_vm_readv/writev`` and ``pidfd_getfd`` to the worker and all its children.
    * ``PR_SET_NO_NEW_PRIVS`` (needed for the filter): run code cannot gain privileges by
      executing a setuid program.
    """
    libc = _libc()
    if libc is None:
        return {"dumpable": None, "seccomp": False}
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    try:
        seccomp = _install_seccomp(libc)
    except Exception:  # noqa: BLE001 - reported in hello; the host decides
        seccomp = False
    return {"dumpable": libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), "seccomp": seccomp}


def self_check() -> list:
    """Signs that this worker was interfered with: a tracer, lost hardening. Empty if none."""
    problems = []
    try:
        with open("/proc/self/status") as fh:
            status = fh.read()
    except OSError:
        status = ""
    for line in status.splitlines():
        if line.startswith("TracerPid:") and line.split()[1] != "0":
            problems.append(f"traced by pid {line.split()[1]}")
    libc = _libc()
    if libc is not None and libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0:
        problems.append("worker became dumpable")
    return problems


def _drop_capabilities() -> None:
    """Drop every capability of this process for good (when it still runs as uid 0).

    The case: a worker that is root in its own user namespace (``unshare --map-root-user``)
    or on the host with no ``--run-as``. Without this, code would hold ``CAP_SYS_PTRACE`` over
    the worker and could open ``/proc/<worker>/mem``. ``PR_SET_NO_NEW_PRIVS`` (set by
    :func:`harden_worker`) keeps ``execve`` from granting them back.
    """
    import ctypes

    libc = _libc()
    if libc is None:
        raise OSError("cannot drop capabilities: ctypes is unavailable")
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability of this kernel
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all zero
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


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


PIDS_COUNTERS = ("/sys/fs/cgroup/pids.current", "/sys/fs/cgroup/pids/pids.current")
"""The pids cgroup's task counter, cgroup v2 then v1, as a container with its own cgroup
namespace sees it."""


def _read_counter(path: str) -> int | None:
    try:
        with open(path, "rb") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return None


def _own_tasks() -> int:
    """The number of threads of this process."""
    return len(os.listdir("/proc/self/task"))


def pids_counter() -> str | None:
    """The path of a task counter that counts exactly this process and its descendants.

    Usable only by a PID-1 worker, called while it has no child: the counter must then equal
    its own thread count (otherwise it counts other processes too, e.g. a host cgroup that the
    worker merely shares).
    """
    for path in PIDS_COUNTERS:
        count = _read_counter(path)
        try:
            if count is not None and count == _own_tasks():
                return path
        except OSError:  # no /proc: the count cannot be checked
            return None
    return None


def _reap_all() -> None:
    """Collect every exited child without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_strays(pgid: int | None = None, *, thorough: bool = True, spare: tuple = ()) -> int:
    """Kill every process the worker does not need: the call's group, then all descendants.

    As PID 1 of a PID namespace (Docker, bubblewrap ``--as-pid-1``, ``unshare --fork``) and
    with nothing to spare, a single ``kill(-1)`` reaches every other process of the namespace,
    daemons included (the kernel refuses a ``fork`` while a fatal signal is pending, so nothing
    slips through). With ``thorough=False`` the worker then only reaps what has already exited
    (the rest are reaped next time); with ``thorough=True`` it waits until no other process is
    left. Otherwise the worker kills its children but those in ``spare`` (the next call's
    standby child and the template), waiting for each, until none is left: it is a child
    subreaper or PID 1, so every process it did not spare descends from it, and orphans are
    re-parented to it as their parents die (always thorough).
    Returns the number of processes signalled (approximate).
    """
    killed = 0
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    kill_all = os.getpid() == 1 and not spare  # one kill(-1) reaches every other process
    if kill_all and not thorough:
        try:
            os.kill(-1, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
        _reap_all()
        return killed
    if kill_all:
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
        kids = [k for k in _own_children() if k not in spare]
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

    To keep a call near a millisecond the worker runs it in a child forked in advance (a
    "standby" child that has already set up its session and file descriptors and blocks until
    it receives code). Cleanup of a call (killing its leftover processes, deleting its work
    dir) runs after the reply but always before the next request is read, so no call can
    observe the previous one's processes.

    Where it is forked from: a child forked by the worker would start with a copy of the
    worker's memory, which holds remnants of the code, input files and output of every call it
    served before (other episodes' too). So with the early standby below (whose cleanup spares
    other processes) the children are forked from a template (:class:`_Template`): a fresh
    interpreter that never sees a request, so a call's memory holds nothing of another call.
    Only with ``standby="after-cleanup"``, ``fork_from="worker"`` or a template that cannot
    start are they forked from the worker (the hello's ``"template"`` says which).

    When the next standby child is forked depends on what the worker can check cheaply:

    * **early** (``early_standby``): right after the reply, *before* the cleanup; and while a
      call runs if that call came within ``BURST_GAP_S`` of the previous reply (``burst``), so
      that back-to-back requests find it ready without spaced calls paying for a fork during
      the call. This needs a cleanup that spares it: as PID 1 with
      a task counter of its own cgroup (:func:`pids_counter`; Docker), the worker kills the
      call's process group and reads the counter, and only if it shows a process besides
      itself, the template, the standby child and the calls' children not reaped yet does it
      fall back to ``kill(-1)`` (which kills the standby child and the template too);
      otherwise (PID 1 without such a counter: bubblewrap, unshare; or a child subreaper:
      isolation "none") it kills every child but the standby child and the template, waiting
      for each, until no other is left (every other process descends from the worker, and
      orphans are re-parented to it). The standby child
      blocks every signal until it has its request and then discards what is pending, and the
      worker sends it ``SIGCONT`` after each cleanup, so a call's code can at most kill it
      (it may run as the same user): the child acknowledges its request, and a call whose
      child died before that is retried once on a fresh child.
    * **after the cleanup** with ``standby="after-cleanup"`` (the design before; for
      comparisons), where one ``kill(-1)`` as PID 1 ends every other process.
    """

    def __init__(
        self, root: str, scratch: list, run_as: tuple | None, standby: str = "auto", fork_from: str = "template"
    ) -> None:
        """Serve calls under ``root``; ``wipe`` also empties ``scratch``; children as ``run_as``.

        ``standby`` (see the class): ``"auto"``; ``"during-call"`` forks the next standby child
        while every call runs (where possible), not only back-to-back ones; ``"after-cleanup"``
        never before the cleanup. ``fork_from`` (see the class): ``"template"`` where the
        cleanup can spare it, else the worker; ``"worker"`` always the worker (the design before).
        """
        if standby not in STANDBY_MODES:
            raise ValueError(f"standby must be one of {STANDBY_MODES}, got {standby!r}")
        if fork_from not in FORK_FROM:
            raise ValueError(f"fork_from must be one of {FORK_FROM}, got {fork_from!r}")
        early = standby != "after-cleanup"
        self.root = os.path.abspath(root)
        self.scratch = [os.path.abspath(p) for p in scratch]
        self.run_as = run_as if os.geteuid() == 0 else None
        self.pid1 = os.getpid() == 1
        self.subreaper = False if self.pid1 else _set_subreaper()
        self.counter = pids_counter() if self.pid1 and early else None
        # PID 1 or a child subreaper: every process it did not spare descends from it.
        self.early_standby = early and (self.pid1 or self.subreaper)
        # The template must survive the cleanup, which only the early-standby cleanups allow.
        self.template = None
        if fork_from == "template" and self.early_standby:
            try:
                self.template = _Template(self.run_as)
            except OSError:  # e.g. no interpreter to start: fork from the worker (hello says so)
                self.template = None
        self.always_during_call = standby == "during-call"
        self._standby: _Standby | None = None
        self._unreaped: list = []
        self.burst = False
        """Set by the serving loop: this request came right after the previous reply."""
        self._deferred: list = []
        os.makedirs(self.root, mode=0o711, exist_ok=True)

    def _ensure_root(self) -> None:
        """Re-create the root after a wipe, but not its parents: where the root lies in the
        host's staging directory (isolation "unshare", "none"), a host that died and had that
        directory swept must not see it re-created by a worker finishing its last cleanup."""
        try:
            os.mkdir(self.root, 0o711)
        except (FileExistsError, FileNotFoundError):
            pass

    # -- requests ------------------------------------------------------------------------------
    def handle(self, req: dict) -> dict:
        """Serve one request and return its reply (without ``id``)."""
        op = req.get("op")
        if op == "run":
            return self.run(req)
        if op == "wipe":
            return {"ok": True, "removed": self.wipe(), "integrity": self_check()}
        if op == "ping":
            return {"ok": True, "pid": os.getpid(), "integrity": self_check()}
        raise ValueError(f"unknown op {op!r}")

    def after_reply(self) -> None:
        """Finish the previous request's cleanup and fork the next standby child."""
        deferred, self._deferred = self._deferred, []
        if self.early_standby and self._standby is None and deferred:
            try:
                self._standby = self._fork_standby()  # first, so that the cleanup can spare it
            except OSError:
                pass  # e.g. EAGAIN under a pids limit: forked below, after the cleanup
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
        """Kill stray processes and delete all work dirs and scratch contents.

        A standby child forked early is kept when the worker can tell that no other process
        is left (see the class); it has run no code.
        """
        if not self._spare_standby(None, True):
            self._discard_standby()
            self._unreaped = []
            kill_strays()
            self._template_killed()
        removed = _clear_dir(self.root)
        for path in self.scratch:
            if path != self.root:
                removed += _clear_dir(path)
        self._ensure_root()
        return removed

    def _template_killed(self) -> None:
        """After a cleanup that killed every process: the template went too (a fresh one is
        started when the next child is needed; its old pid may already belong to another)."""
        if self.template is not None:
            self.template.forget()

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
            # The work dir of a session holds what earlier calls left, symlinks included: never
            # follow one (a worker running as root would otherwise write through it).
            for part in rel.split(os.sep)[:-1]:
                parent = os.path.join(parent, part)
                if os.path.islink(parent) or (os.path.lexists(parent) and not os.path.isdir(parent)):
                    os.unlink(parent)
                if not os.path.isdir(parent):
                    os.mkdir(parent, 0o700)
                    self._chown(parent)
            if os.path.islink(target):
                os.unlink(target)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                write_all(fd, raw)
                if self.run_as is not None:
                    os.fchown(fd, self.run_as[0], self.run_as[1])
            finally:
                os.close(fd)

    def _chown(self, path: str) -> None:
        if self.run_as is not None:
            os.lchown(path, self.run_as[0], self.run_as[1])

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
        for attempt in range(2):
            if self._standby is not None and not _alive(self._standby.pid):
                self._discard_standby()
            if self._standby is None:
                self._standby = self._fork_standby()
            standby, self._standby = self._standby, None
            result, started = self._execute(standby, code, workdir, timeout, limits, max_output)
            # A child that died before it took the request ran none of the code (a previous
            # call's code may have killed the standby child): run it again on a fresh one.
            if started or result["timed_out"] or attempt:
                break
        result["ok"] = True
        return result

    def _fork_standby(self) -> _Standby:
        if self.template is not None:
            return self.template.fork()
        return _fork_child(self.run_as)

    def _spare_standby(self, call_pid: int | None, reaped: bool) -> bool:
        """Clean up after the call of child ``call_pid`` (``None``: after every call, for
        ``wipe``) sparing the standby child forked early; ``False`` if that is not possible
        (the caller then kills everything, the standby child included)."""
        standby = self._standby
        if standby is None or not self.early_standby:
            return False
        if call_pid is not None:
            try:
                os.killpg(call_pid, signal.SIGKILL)
            except OSError:
                pass
        if self.counter is not None:
            # Every process of the namespace descends from the worker and is counted until it
            # is reaped (a zombie too). After the killpg above the call's child (and its
            # group) can no longer fork; until it is reaped it counts once (more while its
            # other threads exit: then the check fails safe). So a count of the worker's
            # threads + the standby child + the calls' children not reaped yet means that no
            # other process exists, and none can appear. A child's teardown is not waited for.
            # Call children not reaped yet: only this method reaps them (any other reaping
            # empties the list first), so no pid in it can have been reused.
            if not reaped and call_pid is not None:
                self._unreaped.append(call_pid)
            self._unreaped = [pid for pid in self._unreaped if _alive(pid)]
            template = 1 if self.template is not None and self.template.alive() else 0
            expected = _own_tasks() + 1 + len(self._unreaped) + template
            if not _alive(standby.pid) or _read_counter(self.counter) != expected:
                return False
        else:
            spare = (standby.pid,) if self.template is None else (standby.pid, self.template.pid)
            kill_strays(call_pid, spare=spare)  # thorough as a subreaper: until none is left
            if not _alive(standby.pid):
                return False
        try:
            os.kill(standby.pid, signal.SIGCONT)  # undo a SIGSTOP the call's code may have sent
        except OSError:
            return False
        return True

    def _execute(
        self,
        standby: _Standby,
        code: str,
        workdir: str,
        timeout: float,
        limits: dict,
        max_output: int,
    ) -> tuple:
        """Run ``code`` in ``standby``: ``(reply fields, whether the child took the request)``."""
        pid = standby.pid
        start = time.monotonic()
        try:
            write_all(standby.ctl_w, encode_frame({"code": code, "workdir": workdir, "limits": limits}))
        except OSError:
            pass  # the standby died; reported below as a signal exit
        os.close(standby.ctl_w)
        pending = False  # a standby child asked of the template, collected after the call
        if self.early_standby and (self.burst or self.always_during_call) and self._standby is None:
            try:
                if self.template is not None:
                    pending = self.template.request()  # it forks while the call runs
                else:
                    self._standby = self._fork_standby()  # while the call runs (see the class)
            except OSError:
                pass  # e.g. EAGAIN under a pids limit: after_reply forks it
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
                    # b"R" (request taken), then the 4-byte exit status
                    status = status_bytes[1:] if status_bytes[:1] == ACK else status_bytes
                    if len(status) >= 4:
                        (exit_code,) = struct.unpack(">i", status[:4])
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
        if pending:
            try:
                self._standby = self.template.collect()
            except OSError:
                pass  # after_reply forks it
        stdout = bytes(captured[standby.out_r])
        stderr = bytes(captured[standby.err_r])
        out_total, err_total = totals[standby.out_r], totals[standby.err_r]

        def cleanup() -> None:
            if not self._spare_standby(pid, reaped):
                self._unreaped = []  # reaped below, or counted as strays next time
                self._discard_standby()
                # Per call, as PID 1: one kill(-1) and a non-blocking reap, so that the child's
                # teardown is not waited for; wipe() (between episodes) is thorough.
                kill_strays(pid, thorough=False)
                self._template_killed()
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
        }, status_bytes[:1] == ACK


def _send_fds(sock, data: bytes, fds: list) -> None:  # noqa: ANN001 - socket.socket
    """Send ``data`` with ``fds`` attached (``SCM_RIGHTS``)."""
    import array
    import socket

    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([data], ancillary)


def _recv_fds(sock, size: int, max_fds: int) -> tuple:  # noqa: ANN001 - socket.socket
    """Receive up to ``size`` bytes and up to ``max_fds`` attached descriptors."""
    import array
    import socket

    fds = array.array("i")
    data, ancillary, _flags, _addr = sock.recvmsg(size, socket.CMSG_SPACE(max_fds * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


class _Template:
    """The worker's side of its template: a process that forks the standby children.

    A child forked by the worker would start with a copy of the worker's memory, where the code,
    input files and output of every earlier call (other episodes' too) leave remnants. The
    template is a fresh interpreter (``worker.py --template``, started by ``fork`` + ``exec``)
    that pre-imports the same modules and never sees a request. For each standby child it forks
    an intermediate process that forks the child and exits at once, so the child is re-parented
    to the worker (PID 1 or a child subreaper) and the worker waits for it, signals it and reads
    its status exactly as for a child of its own; the template passes the worker the child's pid
    and the worker's ends of its pipes over a unix socket (``SCM_RIGHTS``). A template that
    died (killed with the strays of a call) or stopped answering is replaced by a fresh one.
    """

    def __init__(self, run_as: tuple | None) -> None:
        self.run_as = run_as
        self.pid = -1
        self.sock = None
        self._asked = False
        """A request was sent and its answer not read yet."""
        self.start()

    def start(self) -> None:
        """Start a fresh template and wait until it is ready."""
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-I", os.path.abspath(__file__), "--template", str(theirs.fileno())]
        if self.run_as is not None:
            argv += ["--run-as", f"{self.run_as[0]}:{self.run_as[1]}"]
        pid = os.fork()
        if pid == 0:  # replaced by exec at once: nothing of the worker's memory survives it
            try:
                fd = theirs.fileno()
                os.set_inheritable(fd, True)
                os.closerange(3, fd)
                os.closerange(fd + 1, 1 << 16)
                os.execv(sys.executable, argv)
            finally:
                os._exit(127)
        theirs.close()
        ours.settimeout(TEMPLATE_START_TIMEOUT_S)
        self.pid, self.sock = pid, ours
        try:
            ready = ours.recv(1)
        except OSError:
            ready = b""
        ours.settimeout(TEMPLATE_FORK_TIMEOUT_S)
        if ready != b"T":
            self.stop()
            raise OSError("the sandbox worker's template process did not start")

    def alive(self) -> bool:
        """Whether the template has not exited (it is reaped if it has)."""
        return self.pid > 0 and _alive(self.pid)

    def stop(self) -> None:
        """Kill and reap the template (if any) and close the socket."""
        if self.pid > 0:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        self.forget()

    def forget(self) -> None:
        """Drop the template (killed with every other process, or by :meth:`stop`): close the
        socket and reap it if it has exited."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.pid > 0:
            _alive(self.pid)  # reaps it if it has exited
        self.pid = -1
        self._asked = False

    def fork(self) -> _Standby:
        """A new standby child, a child of this process (a fresh template if needed)."""
        self.request()
        return self.collect()

    def request(self) -> bool:
        """Ask the template for a standby child (collect it with :meth:`collect`); ``False``
        if the request could not be sent (:meth:`collect` then starts a fresh template)."""
        try:
            if self.sock is None or not self.alive():
                raise OSError("no template")
            os.kill(self.pid, signal.SIGCONT)  # undo a SIGSTOP from a call's code
            self.sock.sendall(b"F")
            self._asked = True
        except OSError:
            self._asked = False
        return self._asked

    def collect(self) -> _Standby:
        """The standby child asked for with :meth:`request`; if that fails, one from a fresh
        template (raises ``OSError`` if it cannot fork either)."""
        for attempt in range(2):
            if attempt or not self._asked:
                self.stop()
                self.start()
                if not self.request():
                    continue
            self._asked = False
            try:
                data, fds = _recv_fds(self.sock, 4, 4)
            except OSError:
                continue  # dead or not answering: replaced
            if len(data) != 4:
                for fd in fds:
                    os.close(fd)
                continue
            (pid,) = struct.unpack(">i", data)
            if pid > 0 and len(fds) == 4:
                return _Standby(pid, *fds)
            for fd in fds:
                os.close(fd)
            import errno

            raise OSError(errno.EAGAIN, "the template could not fork a standby child")
        raise OSError("the sandbox worker's template process does not answer")


def _template_main(fd: int, run_as: tuple | None) -> int:
    """Body of ``worker.py --template FD``: fork standby children for the worker on request."""
    import gc
    import socket

    harden_worker()
    # The code of a call may run as the template's user (in Docker): a signal it sends stays
    # pending, blocked, except SIGKILL (the worker then starts a fresh template) and SIGSTOP
    # (the worker sends SIGCONT before each request).
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    os.environ.clear()
    os.environ.update(BASE_ENV)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _preimport()
    gc.collect()
    gc.freeze()
    sock = socket.socket(fileno=fd)
    # Keep fds 3 and 4 taken (as in the worker), so that no pipe of a child gets a number that
    # _standby_main's dup2 onto 3 and 4 would overwrite before copying it.
    while True:
        spare = os.open(os.devnull, os.O_RDONLY)
        if spare > 4:
            os.close(spare)
            break
    sock.sendall(b"T")
    while True:
        try:
            request = sock.recv(1)
        except OSError:
            return 0
        if not request:  # the worker is gone
            return 0
        try:
            pid, fds = _double_fork(run_as)
        except OSError:
            pid, fds = -1, []
        try:
            _send_fds(sock, struct.pack(">i", pid), fds)
        except OSError:
            return 0
        finally:
            for f in fds:
                os.close(f)


def _double_fork(run_as: tuple | None) -> tuple:
    """Fork a standby child through an intermediate process that exits at once, so that the
    child is re-parented to the worker; return its pid and the worker's ends of its pipes."""
    (ctl_r, out_w, err_w, status_w), ours = _standby_pipes()
    report_r, report_w = os.pipe()
    # The template blocks every signal, so the child starts with every signal blocked (see
    # _standby_main) and unblocks them all once it has its request, like a child of the worker.
    mask: set = set()
    middle = os.fork()
    if middle == 0:
        code = 1
        try:
            os.close(report_r)
            pid = os.fork()
            if pid == 0:  # never returns
                os.close(report_w)
                _standby_main(ctl_r, out_w, err_w, status_w, run_as, mask)
            os.write(report_w, struct.pack(">i", pid))
            code = 0
        finally:
            os._exit(code)
    for fd in (ctl_r, out_w, err_w, status_w, report_w):
        os.close(fd)
    try:
        os.waitpid(middle, 0)  # once the intermediate is gone, the child's parent is the worker
        data = read_exact(report_r, 4)
    finally:
        os.close(report_r)
    if data is None:
        for fd in ours:
            os.close(fd)
        raise OSError("the standby child could not be forked")
    (pid,) = struct.unpack(">i", data)
    return pid, ours


def _alive(pid: int) -> bool:
    """Whether child ``pid`` has not exited (it is reaped if it has)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == 0
    except ChildProcessError:
        return False


def _exit_status(wstatus: int) -> int:
    """Exit code like :mod:`subprocess`: the status, or minus the killing signal."""
    if os.WIFEXITED(wstatus):
        return os.WEXITSTATUS(wstatus)
    return -os.WTERMSIG(wstatus)


def _standby_pipes() -> tuple:
    """The pipes of a standby child: ``([ctl_r, out_w, err_w, status_w], [ctl_w, out_r, err_r,
    status_r])``, the child's ends then its parent's (in :class:`_Standby`'s order)."""
    ctl_r, ctl_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    return [ctl_r, out_w, err_w, status_w], [ctl_w, out_r, err_r, status_r]


def _fork_child(run_as: tuple | None) -> _Standby:
    """Fork a standby child of this process (see :func:`_standby_main`) and return it."""
    theirs, ours = _standby_pipes()
    # The child starts with every signal blocked (see _standby_main).
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:  # child: never returns
            _standby_main(*theirs, run_as, mask)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for fd in theirs:
        os.close(fd)
    return _Standby(pid, *ours)


def _standby_main(
    ctl_r: int, out_w: int, err_w: int, status_w: int, run_as: tuple | None, mask: set
) -> None:
    """Body of the forked child: isolate, wait for code, limit, exec, report, ``_exit``.

    Everything that does not depend on the request is done before waiting for it, so that
    the work (and the copy-on-write page faults) is off the latency-critical path. The child
    starts with every signal blocked; once it has the request it acknowledges it (``ACK`` on
    the status pipe), discards the signals sent to it while it waited (another call's code
    may have sent some) and restores the signal mask ``mask``.
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
        os.write(4, ACK)
        for sig in signal.sigpending():
            handler = signal.getsignal(sig)
            signal.signal(sig, signal.SIG_IGN)  # ignoring a pending signal discards it
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
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
    if os.geteuid() == 0:
        _drop_capabilities()
    libc = _libc()
    if libc is not None:
        # Inherited from the (non-dumpable) worker; the code's own process need not be.
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


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


def _connect_to_host(path: str) -> int:
    """Connect to the host's unix socket ``path`` and return the connection's fd.

    The host listens there (in a directory mounted read-only into the sandbox), accepts this
    one connection and then removes the socket, so nothing else can connect afterwards. The
    connection is the worker's lifeline: EOF means the host is gone, and the worker exits.
    """
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    return conn.detach()


def main(argv: list | None = None) -> int:
    """Serve requests on stdin/stdout until EOF or ``shutdown``."""
    import argparse

    parser = argparse.ArgumentParser(description="ToolGym sandbox worker")
    parser.add_argument("--root", default="/tmp/toolgym-sandbox", help="parent of work dirs")
    parser.add_argument("--scratch", action="append", default=[], help="dir whose contents wipe deletes")
    parser.add_argument("--run-as", default=None, help="UID:GID for children (root only)")
    parser.add_argument(
        "--connect",
        default=None,
        help="serve the host over this unix socket (it listens) instead of stdin/stdout",
    )
    parser.add_argument(
        "--standby",
        choices=STANDBY_MODES,
        default="auto",
        help="when to fork the next call's child where the cleanup can spare it: after the reply, "
        "and during back-to-back calls (auto), during every call, or only after the cleanup "
        "(see Worker)",
    )
    parser.add_argument(
        "--fork-from",
        choices=FORK_FROM,
        default="template",
        help="fork each call's child from a template process that never sees a request (where the "
        "cleanup can spare it) or from the worker itself (see Worker)",
    )
    parser.add_argument("--template", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    run_as = None
    if args.run_as:
        uid, _, gid = args.run_as.partition(":")
        run_as = (int(uid), int(gid or uid))
    if args.template is not None:  # the template process (see _Template)
        return _template_main(args.template, run_as)

    # Keep the protocol on private fds; fds 0/1 become harmless so a stray print (ours or a
    # library's) cannot corrupt the stream.
    # Before anything else: from here on the code's processes cannot reach this one.
    hardening = harden_worker()
    if args.connect:
        proto_in = proto_out = _connect_to_host(args.connect)
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
    worker = Worker(args.root, args.scratch, run_as, standby=args.standby, fork_from=args.fork_from)
    hello = {
        "op": "hello",
        "version": PROTOCOL_VERSION,
        "pid": os.getpid(),
        "pid1": worker.pid1,
        "subreaper": worker.subreaper,
        "early_standby": worker.early_standby,
        "template": worker.template is not None,
        "uid": os.getuid(),
        "python": sys.version.split()[0],
        "hardening": hardening,
    }
    worker.after_reply()  # fork the first standby child before announcing readiness
    write_all(proto_out, encode_frame(hello))
    replied = -math.inf
    while True:
        try:
            req = read_frame(proto_in)
            worker.burst = time.monotonic() - replied < BURST_GAP_S
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
        replied = time.monotonic()
        worker.after_reply()


if __name__ == "__main__":
    sys.exit(main())
