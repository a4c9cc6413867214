"""Escape and fault suite, run against every backend.

Each attack must come back within its timeout plus a small margin, with a clear error or a
safe result; the host must be unchanged; the next call must work. Where a backend's isolation
documents that it cannot contain an attack (``isolation_gaps``), the test xfails with that
reason instead; Docker has no gaps.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.conftest import HOST_SECRET, Stopwatch, assert_healthy, gap, require_contained
from toolgym.sandbox import Backend

MARGIN_S = 3.0
"""Slack over a call's timeout: worker cleanup, a loaded 2-core CI machine."""
REPO = Path(__file__).resolve().parents[2]


def run(backend: Backend, code: str, timeout: float = 2.0) -> object:
    """Run dedented ``code`` and check it returned within ``timeout`` + margin."""
    with Stopwatch() as sw:
        result = backend.run(textwrap.dedent(code), timeout=timeout)
    assert sw.seconds < timeout + MARGIN_S, f"took {sw.seconds:.1f} s: {result}"
    return result


# -- network ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_listener() -> tuple[str, int]:
    """A TCP server on the host's loopback that a non-isolated sandbox could reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()
    stop.set()
    server.close()


CONNECT = """
import socket
try:
    socket.create_connection(({host!r}, {port}), timeout=1).close()
    print("CONNECTED")
except OSError as exc:
    print("BLOCKED", type(exc).__name__, exc.errno)
"""


def test_cannot_connect_to_host_loopback(backend: Backend, host_listener: tuple[str, int]) -> None:
    host, port = host_listener
    result = run(backend, CONNECT.format(host=host, port=port))
    assert result.error is None
    require_contained(backend, "network", "BLOCKED" in result.stdout, result.stdout)
    assert_healthy(backend)


@pytest.mark.parametrize("address", ["10.255.255.1", "8.8.8.8"])
def test_cannot_connect_outside(backend: Backend, address: str) -> None:
    # Without a network namespace the attempt may just time out (no route on this machine),
    # which also counts as blocked; what matters is that no connection is made.
    result = run(backend, CONNECT.format(host=address, port=53))
    assert result.error is None
    require_contained(backend, "network", "BLOCKED" in result.stdout, result.stdout)
    assert_healthy(backend)


def test_has_no_network_interface_but_loopback(backend: Backend) -> None:
    result = run(backend, "import socket; print(sorted(n for _, n in socket.if_nameindex()))")
    names = eval(result.stdout) if result.exit_code == 0 else []  # noqa: S307 - our own output
    require_contained(backend, "network", set(names) <= {"lo"}, result.stdout)


# -- processes ----------------------------------------------------------------------------------


def test_fork_bomb_is_contained(backend: Backend) -> None:
    result = run(
        backend,
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        timeout=1.5,
    )
    assert result.error is None
    assert result.timed_out or result.exit_code != 0
    assert_healthy(backend)


def test_subprocess_fork_bomb_via_shell(backend: Backend) -> None:
    result = run(backend, "import subprocess; subprocess.run(['sh', '-c', ':(){ :|:& };:'])", 1.5)
    assert result.error is None
    assert_healthy(backend)


def test_infinite_loop_times_out(backend: Backend) -> None:
    result = run(backend, "while True: pass", timeout=1.0)
    assert result.timed_out
    assert result.exit_code < 0
    assert result.error is None and not result.ok  # the code timed out; the sandbox worked
    assert_healthy(backend)


def test_sleep_forever_times_out(backend: Backend) -> None:
    result = run(backend, "import time; time.sleep(10**6)", timeout=0.5)
    assert result.timed_out
    assert_healthy(backend)


def test_ignoring_sigterm_does_not_help(backend: Backend) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"
    result = run(backend, code, timeout=0.5)
    assert result.timed_out
    assert_healthy(backend)


def test_daemonised_child_does_not_survive_the_call(backend: Backend) -> None:
    with backend.acquire() as sandbox:
        spawn = sandbox.run(
            textwrap.dedent(
                """
                import os, subprocess, time
                pid = os.fork()
                if pid == 0:
                    os.setsid()
                    if os.fork() == 0:          # classic double fork: re-parented, new session
                        with open("daemon.pid", "w") as fh:
                            fh.write(str(os.getpid()))
                        time.sleep(1000)
                    os._exit(0)
                os.waitpid(pid, 0)
                p = subprocess.Popen(["sleep", "1000"], start_new_session=True)
                with open("sleep.pid", "w") as fh:
                    fh.write(str(p.pid))
                while not os.path.exists("daemon.pid"):
                    time.sleep(0.01)
                print("spawned")
                """
            ),
            timeout=5,
        )
        assert spawn.stdout == "spawned\n", spawn
        probe = sandbox.run(
            textwrap.dedent(
                """
                import os, time

                def running(pid):
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        return False
                    except PermissionError:
                        return True
                    try:  # a zombie is dead too
                        return open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] not in "ZX"
                    except OSError:
                        return False

                for name in ("daemon.pid", "sleep.pid"):
                    pid = int(open(name).read())
                    # The worker SIGKILLs strays after the call and reaps them lazily: on a loaded
                    # machine a killed process may still be exiting. It runs no code any more; a
                    # survivor would still be running after 2 s.
                    deadline = time.monotonic() + 2.0
                    while running(pid) and time.monotonic() < deadline:
                        time.sleep(0.01)
                    print(name, "alive" if running(pid) else "dead")
                """
            ),
            timeout=10,
        )
    assert probe.stdout == "daemon.pid dead\nsleep.pid dead\n", probe
    assert_healthy(backend)


def assert_survived(result: object) -> None:
    """The signal had no effect (PID-1 worker), was refused (the worker is another user), hit
    the code's own group (the worker's group is outside the PID namespace: getpgid gives 0), or
    killed the worker and the call reports a sandbox error; all fine if the backend recovers."""
    refused = "PermissionError" in result.stderr or "ProcessLookupError" in result.stderr
    own_group = result.exit_code == -9 and result.error is None
    assert result.stdout == "after\n" or refused or own_group or result.error is not None, result


def test_killing_the_parent_is_survived(backend: Backend) -> None:
    result = run(backend, "import os, signal; os.kill(os.getppid(), signal.SIGKILL); print('after')")
    assert_survived(result)
    assert_healthy(backend)


def test_killing_the_parent_group_is_survived(backend: Backend) -> None:
    code = "import os, signal; os.killpg(os.getpgid(os.getppid()), signal.SIGKILL); print('after')"
    result = run(backend, code)
    assert_survived(result)
    assert_healthy(backend)


def test_kill_all_reaches_only_the_sandbox(backend: Backend) -> None:
    reason = gap(backend, "kill_all")
    if reason is not None:
        pytest.xfail(f"not run: {reason}")  # running it would kill host processes
    result = run(backend, "import os, signal; os.kill(-1, signal.SIGKILL); print('after')")
    assert result.error is None or "died" in result.error
    assert_healthy(backend)


# -- memory and output --------------------------------------------------------------------------


def test_memory_bomb_fails_cleanly(backend: Backend) -> None:
    result = run(backend, "x = bytearray(4 * 1024**3)\nprint('allocated')", timeout=5)
    assert result.error is None
    assert "allocated" not in result.stdout
    assert result.exit_code != 0 and ("MemoryError" in result.stderr or result.exit_code < 0)
    assert_healthy(backend)


def test_growing_memory_bomb_fails_cleanly(backend: Backend) -> None:
    result = run(backend, "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024**2))", 5)
    assert result.error is None
    assert result.exit_code != 0
    assert_healthy(backend)


def test_memory_summed_over_processes_is_capped(backend: Backend) -> None:
    reason = gap(backend, "memory_total")
    if reason is not None:
        pytest.xfail(f"not run: {reason}")  # would allocate gigabytes on the host
    code = """
    import os, time
    for _ in range(6):
        if os.fork() == 0:
            try:
                block = bytearray(400 * 1024**2)   # 6 x 400 MB > the 512 MB container limit
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(30)
            finally:
                os._exit(0)
    time.sleep(30)
    """
    result = run(backend, code, timeout=3)
    assert result.error is None
    assert result.timed_out or result.exit_code != 0
    assert_healthy(backend)


def test_huge_stdout_is_truncated(backend: Backend) -> None:
    code = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)"
    result = run(backend, code, timeout=1.0)
    limit = backend.limits.max_output_bytes
    assert result.stdout_truncated
    assert len(result.stdout.encode()) <= limit
    assert result.timed_out
    assert_healthy(backend)


def test_one_giant_print_is_truncated(backend: Backend) -> None:
    result = run(backend, "print('y' * (40 * 1024**2)); print('done', flush=True)", timeout=5)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_truncated
    assert len(result.stdout) <= backend.limits.max_output_bytes
    assert_healthy(backend)


def test_huge_file_is_stopped_by_the_size_limit(backend: Backend) -> None:
    code = "with open('big', 'wb') as fh:\n    while True:\n        fh.write(b'z' * 1024**2)"
    result = run(backend, code, timeout=5)
    assert result.exit_code != 0 and not result.timed_out, result
    assert_healthy(backend)


# -- filesystem ---------------------------------------------------------------------------------


def test_cannot_write_outside_the_work_dir(backend: Backend) -> None:
    marker = f"ESCAPED_{uuid.uuid4().hex[:8]}"
    targets = [REPO / marker, Path("/etc") / marker, Path("/usr") / marker, Path("/") / marker]
    code = f"""
    written = []
    for path in {[str(t) for t in targets]!r}:
        try:
            with open(path, "w") as fh:
                fh.write("pwned")
            written.append(path)
        except OSError:
            pass
    print(written)
    """
    try:
        result = run(backend, code)
        leaked = [t for t in targets if t.exists()]
    finally:
        for target in targets:
            if target.exists():
                target.unlink()
    require_contained(backend, "write_outside", not leaked, f"created {leaked}: {result}")
    assert_healthy(backend)


def test_cannot_read_host_files(backend: Backend, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    token = uuid.uuid4().hex
    secret.write_text(token)
    tmp_path.chmod(0o755)
    secret.chmod(0o644)  # world-readable: only a mount namespace can hide it
    this_file = Path(__file__).resolve()
    code = f"""
    for path in [{str(secret)!r}, {str(this_file)!r}, "/etc/shadow"]:
        try:
            print(path, open(path).read()[:200])
        except OSError as exc:
            print(path, "DENIED", type(exc).__name__)
    """
    result = run(backend, code)
    shadow = Path("/etc/shadow").read_text()[:40] if os.access("/etc/shadow", os.R_OK) else None
    assert shadow is None or shadow not in result.stdout, "host /etc/shadow was read"
    leaked = token in result.stdout or "def test_cannot_read_host_files" in result.stdout
    require_contained(backend, "host_files", not leaked, result.stdout)
    assert_healthy(backend)


def test_host_environment_does_not_reach_the_code(backend: Backend) -> None:
    # The worker starts with a minimal environment (and resets it), so neither the code's
    # os.environ nor the initial environment of its process or of the worker holds host variables.
    code = """
    import os
    print(sorted(os.environ))
    for pid in ("self", str(os.getppid()), "1"):
        try:
            print(pid, open(f"/proc/{pid}/environ", "rb").read().decode("utf-8", "replace"))
        except OSError as exc:
            print(pid, "DENIED", type(exc).__name__)
    """
    result = run(backend, code)
    assert result.stdout.splitlines()[0] == "['HOME', 'LANG', 'PATH', 'TMPDIR']", result.stdout
    assert HOST_SECRET not in result.stdout, result.stdout
    assert_healthy(backend)


def test_input_file_names_cannot_escape_the_work_dir(backend: Backend) -> None:
    for name in ("../evil.txt", "/tmp/evil.txt", "a/../../evil.txt"):
        result = backend.run("print('ran')", files={name: "x"})
        assert result.error is not None and "work dir" in result.error, result
    assert_healthy(backend)


def test_no_file_survives_into_the_next_episode(backend: Backend) -> None:
    token = uuid.uuid4().hex[:12]
    places = [
        "workdir.txt",
        f"/tmp/leak-{token}",
        f"/dev/shm/leak-{token}",
        f"/dev/leak-{token}",  # bwrap's /dev is a tmpfs of the sandbox user's (now read-only)
        f"/run/toolgym/leak-{token}",
        f"/var/tmp/leak-{token}",
    ]
    write = f"""
    import os
    for path in {places!r}:
        try:
            with open(path, "w") as fh:
                fh.write({token!r})
        except OSError:
            pass
    print(os.path.exists("workdir.txt"))
    """
    read = f"""
    import os
    found = []
    for path in {places!r}:
        try:
            if {token!r} in open(path).read():
                found.append(path)
        except OSError:
            pass
    for base in ("/tmp", "/dev/shm", os.path.expanduser("~")):
        for root, dirs, files in os.walk(base):
            for name in files:
                try:
                    if {token!r} in open(os.path.join(root, name)).read():
                        found.append(os.path.join(root, name))
                except OSError:
                    pass
    print(sorted(set(found)))
    """
    # Use every worker of the pool, so the next episodes land on the same sandboxes.
    handles = [backend.acquire() for _ in range(2)]
    try:
        for handle in handles:
            assert handle.run(textwrap.dedent(write)).stdout == "True\n"
            # Within an episode the work dir persists.
            assert handle.run("print(open('workdir.txt').read())").stdout.strip() == token
    finally:
        for handle in handles:
            handle.release()
    handles = [backend.acquire() for _ in range(2)]
    try:
        found = [handle.run(textwrap.dedent(read)).stdout.strip() for handle in handles]
    finally:
        for handle in handles:
            handle.release()
        for path in places[1:]:  # clean up a leak on the host (weak isolation levels)
            if os.path.exists(path):
                os.unlink(path)
    require_contained(backend, "scratch_leak", found == ["[]", "[]"], str(found))



SCAN_OWN_MEMORY = """
import json
needles = [bytes.fromhex(h) for h in HEXES]
counts = [0] * len(needles)
regions = open("/proc/self/maps").read().splitlines()
with open("/proc/self/mem", "rb", 0) as mem:
    for line in regions:
        fields = line.split()
        if "r" not in fields[1] or line.endswith(("[vvar]", "[vsyscall]", "[vvar_vclock]")):
            continue
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        try:
            mem.seek(lo)
            data = mem.read(hi - lo)
        except (OSError, OverflowError, ValueError):
            continue
        for i, needle in enumerate(needles):
            counts[i] += data.count(needle)
        del data
print(json.dumps(counts))
"""


def test_no_earlier_episodes_data_is_in_a_calls_memory(backend: Backend) -> None:
    """An episode's code, input files and output must not be readable from a later episode's
    memory: the worker's heap held them, so a call's child is forked from a template that never
    sees a request (on every backend and isolation level)."""
    token = uuid.uuid4().hex[:12]
    secrets = [f"code-{token}", f"file-{token}", f"out-{token}"]
    control = f"none-{token}"  # never sent: what the scan finds of its own needles
    episode1 = (
        f"secret = {secrets[0]!r}\n"
        "data = open('input.txt').read()\n"
        f"print({secrets[2][:4]!r} + {secrets[2][4:]!r}, len(data))"
    )
    handles = [backend.acquire() for _ in range(2)]  # every worker of the pool
    try:
        for handle in handles:
            # every backend's worker forks the calls' children from a template
            assert handle._conn.hello["template"] is True, handle._conn.hello
            result = handle.run(episode1, files={"input.txt": secrets[1]})
            assert result.error is None and secrets[2] in result.stdout, result
    finally:
        for handle in handles:
            handle.release()
    # the needles travel as hex, so the scan's own text holds none of them
    hexes = [x.encode().hex() for x in [*secrets, control]]
    scan = SCAN_OWN_MEMORY.replace("HEXES", repr(hexes))
    handles = [backend.acquire() for _ in range(2)]
    try:
        counts = [json.loads(handle.run(scan).stdout) for handle in handles for _ in range(2)]
    finally:
        for handle in handles:
            handle.release()
    leaked = sorted({secrets[i] for c in counts for i in range(3) if c[i] > c[3]})
    require_contained(backend, "earlier_calls_memory", not leaked, f"found {leaked} (counts {counts})")
    assert_healthy(backend)


WRITABLE = """
import json, os, stat
allowed = (os.getcwd(), "/tmp", "/dev/shm")
found = {}
for root, dirs, files in os.walk("/"):
    if root in ("/proc", "/sys") or root.startswith(("/proc/", "/sys/")):
        dirs[:] = []
        continue
    if root == "/dev":
        dirs[:] = ["shm"]
    if not os.access(root, os.W_OK):
        continue
    probe = os.path.join(root, ".toolgym-probe")
    try:
        with open(probe, "w"):
            pass
    except OSError:
        continue
    os.unlink(probe)
    if not any(root == a or root.startswith(a.rstrip("/") + "/") for a in allowed):
        found[root] = bool(os.stat(root).st_mode & stat.S_IWOTH)
print(json.dumps(found))
"""


def test_code_can_write_only_to_its_work_dir_and_private_scratch(backend: Backend) -> None:
    # Every directory of the sandbox's filesystem is tried. Writable must be only the work dir,
    # /tmp and /dev/shm (private tmpfs mounts wiped between episodes); not /run/toolgym (the
    # socket mount of the Docker backend) nor anything that is host disk. Where the sandbox
    # sees the host's filesystem (unshare, none) this walks the host's whole disk, which takes
    # tens of seconds with a cold page cache, hence the long timeout.
    result = run(backend, WRITABLE, timeout=240)
    assert result.error is None and result.exit_code == 0, result
    found: dict[str, bool] = json.loads(result.stdout)
    if found and all(found.values()) and gap(backend, "scratch_leak") is not None:
        # The documented gap exactly: world-writable host dirs (/var/tmp, /run/lock, ...).
        pytest.xfail(f"{backend.isolation}: {gap(backend, 'scratch_leak')}: {sorted(found)}")
    # Anything else writable (a dir only the host user may write) is write_outside.
    require_contained(backend, "write_outside", not found, result.stdout)


# -- recovery -----------------------------------------------------------------------------------


def test_dead_worker_is_replaced_within_an_episode(backend: Backend) -> None:
    with backend.acquire() as sandbox:
        conn = sandbox._conn
        conn.kill()  # simulate a crash of the worker / container
        result = sandbox.run("print('recovered')")
        assert result.stdout == "recovered\n", result
    assert_healthy(backend)


# -- the worker ---------------------------------------------------------------------------------
# The code runs in a child of the worker. Were the worker reachable (ptrace, /proc/<pid>/mem),
# code could change it and so every later call and episode it serves.

TAKEOVER = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
worker = os.getppid()
for name, request in (("attach", 16), ("seize", 0x4206)):
    result = libc.ptrace(request, worker, None, None)
    print(name, "OK" if result == 0 else errno.errorcode.get(ctypes.get_errno()))
for mode in ("rb", "r+b"):
    try:
        with open(f"/proc/{worker}/mem", mode):
            print("mem", mode, "OPENED")
    except OSError as exc:
        print("mem", mode, type(exc).__name__)
class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(64)
local = IOVec(ctypes.cast(buf, ctypes.c_void_p), 64)
remote = IOVec(0x400000, 64)
libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
result = libc.process_vm_readv(worker, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
print("vm_readv", "OK" if result >= 0 else errno.errorcode.get(ctypes.get_errno()))
"""


# What TAKEOVER prints when every way into the worker is closed.
TAKEOVER_DENIED = ["attach EPERM", "seize EPERM", "mem rb PermissionError", "mem r+b PermissionError", "vm_readv EPERM"]


def test_code_cannot_ptrace_or_write_the_worker(backend: Backend) -> None:
    # Every level: the worker is non-dumpable (so /proc/<worker>/mem and ptrace need
    # CAP_SYS_PTRACE over it, which run code never holds) and a seccomp filter denies ptrace.
    result = run(backend, TAKEOVER, timeout=5)
    assert result.error is None and result.exit_code == 0, result
    assert result.stdout.splitlines() == TAKEOVER_DENIED, result.stdout
    assert_healthy(backend)


def test_ptrace_is_denied_even_on_the_codes_own_children(backend: Backend) -> None:
    # The seccomp filter, independently of the non-dumpable worker: no ptrace at all.
    code = """
    import ctypes, errno, os, time
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    pid = os.fork()
    if pid == 0:
        time.sleep(10)
        os._exit(0)
    result = libc.ptrace(0x4206, pid, None, None)
    print("OK" if result == 0 else errno.errorcode.get(ctypes.get_errno()))
    print(open("/proc/self/status").read().split("Seccomp:")[1].split()[0])
    os.kill(pid, 9)
    """
    result = run(backend, code, timeout=5)
    assert result.stdout == "EPERM\n2\n", result


def test_code_runs_without_capabilities(backend: Backend) -> None:
    # Also when the worker is root (of the host, or of its user namespace).
    code = "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])"
    assert run(backend, code).stdout == "0000000000000000\n"


TRACER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid = int(sys.argv[1])
if libc.ptrace(0x4206, pid, None, None) != 0:  # PTRACE_SEIZE: attach without stopping
    print("FAILED", ctypes.get_errno(), flush=True)
    sys.exit(1)
print("SEIZED", flush=True)
while True:  # let the tracee run on: pass its signals through, reap it when it dies
    try:
        _, status = os.waitpid(pid, 0x40000000)  # __WALL
    except ChildProcessError:
        break
    if not os.WIFSTOPPED(status):
        break
    signal = 0 if status >> 16 else os.WSTOPSIG(status)
    libc.ptrace(7, pid, None, ctypes.c_void_p(signal))  # PTRACE_CONT
"""


@pytest.mark.parametrize("when", ["during_the_episode", "at_release"])
def test_a_worker_that_was_interfered_with_is_replaced(backend: Backend, when: str) -> None:
    # Attacks from the code are blocked (above); this attaches from the host, as root, to show
    # that a worker found traced is killed and replaced rather than reused.
    if os.geteuid() != 0:
        pytest.skip("attaching to the worker from outside the sandbox needs root here")
    import subprocess
    import sys

    handle = backend.acquire()
    conn = handle._conn
    assert conn.worker_pid is not None and conn.interference() is None
    assert handle.run("print(1)").stdout == "1\n"
    tracer = subprocess.Popen(
        [sys.executable, "-c", TRACER, str(conn.worker_pid)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert tracer.stdout.readline().strip() == "SEIZED"
        if when == "during_the_episode":
            result = handle.run("print('after')")
            assert result.error is not None and "interfered with (traced by pid" in result.error
            assert not conn.alive
            again = handle.run("print('fresh')")
            assert again.stdout == "fresh\n", again
            assert handle._conn is not conn
            handle.release()
        else:
            handle.release()
            assert not conn.alive  # not put back into the pool
    finally:
        handle.release()
        tracer.kill()
        tracer.wait()
    assert conn not in backend._pool._all
    assert_healthy(backend)


@pytest.mark.parametrize("host_root", [True, False], ids=["host-root", "host-user"])
@pytest.mark.parametrize("level", ["bwrap", "unshare", "none"])
def test_no_process_level_lets_code_take_over_the_worker(
    level: str, host_root: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every isolation level, with the command line it uses under a root host (children as
    # nobody) and under a normal user (host-user: children keep the worker's uid; with unshare
    # they are root of a user namespace, with every capability over the worker until the
    # child drops them). The suite runs as root, so host-user is the non-root command line.
    from toolgym.sandbox import process

    if os.geteuid() != 0 and host_root:
        pytest.skip("the root command lines need root")
    monkeypatch.setattr(process, "_is_root", lambda: host_root)
    with process.ProcessBackend(pool_size=1, isolation=level) as backend:
        result = run(backend, TAKEOVER, timeout=5)
        caps = run(backend, "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])")
    assert result.stdout.splitlines() == TAKEOVER_DENIED, result
    assert caps.stdout == "0000000000000000\n", caps


# -- the next call's child, forked while a call runs -----------------------------------------------

SIBLINGS = """
import os, signal, time
me, worker = os.getpid(), os.getppid()

def parent(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[1])

def children():
    # The worker's other live children (give it the time to fork the next call's child).
    time.sleep(0.2)
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me
            and parent(int(p)) == worker and open(f"/proc/{p}/stat").read().split(")")[1].split()[0] != "Z"]

def is_template(pid):
    # Its children inherit its command line; each starts a session of its own (setsid).
    try:
        stat = open(f"/proc/{pid}/stat").read()
        session = int(stat[stat.rfind(")") + 2 :].split()[3])
        return b"--template" in open(f"/proc/{pid}/cmdline", "rb").read() and session != pid
    except OSError:
        return False

def siblings():
    # The next call's standby child, where the worker forks it while this call runs.
    return [pid for pid in children() if not is_template(pid)]

def templates():
    # The process that forks the standby children, where the worker has one.
    return [pid for pid in children() if is_template(pid)]
"""


@pytest.fixture(scope="module", params=[pytest.param("docker", marks=pytest.mark.docker), "process-none"])
def during_call_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A one-worker backend whose worker forks the next call's child while *every* call runs
    (``--standby during-call``; by default only back-to-back calls, which timing decides), on
    the two kinds that can: Docker (PID 1 with the container's task counter) and isolation
    "none" (a child subreaper)."""
    from tests.sandbox.conftest import IMAGE, IN_CI
    from toolgym.sandbox import SandboxUnavailable
    from toolgym.sandbox.process import ProcessBackend

    if request.param == "docker":
        from toolgym.sandbox.docker import DockerBackend

        try:
            backend = DockerBackend(image=IMAGE, pool_size=1, prestart=False)
        except SandboxUnavailable as exc:
            if IN_CI:
                pytest.fail(f"Docker sandbox unavailable: {exc} (CI=true: docker tests must run)")
            pytest.skip(f"Docker sandbox unavailable: {exc}")
        backend._worker_args = [*backend._worker_args, "--standby", "during-call"]
    else:
        backend = ProcessBackend(pool_size=1, isolation="none", prestart=False)
        backend._worker_extra = ["--standby", "during-call"]
    with backend:
        yield backend


def test_the_child_forked_during_a_call_serves_the_next_calls_through_cleanups_and_wipes(
    during_call_backend: Backend,
) -> None:
    # The mechanism of fast back-to-back calls: the child forked during a call has run no code
    # and is kept when the cleanup (after a call) or the wipe (after a one-off call or an
    # episode) finds nothing else left. Seen from the code: the next call runs in that child.
    backend = during_call_backend
    with backend.acquire() as sandbox:
        assert sandbox._conn.hello["early_standby"] is True, sandbox._conn.hello
        pids = []
        for wipe_after in (False, True, False, True):
            result = backend.execute(sandbox._conn, textwrap.dedent(SIBLINGS + "print(os.getpid(), *siblings())"),
                                     timeout=5, files=None, session=sandbox.session, wipe_after=wipe_after)
            assert result.error is None and result.exit_code == 0, result
            pids.append(result.stdout.split())
    for (_, *standby), (pid, *_) in zip(pids[:-1], pids[1:], strict=True):
        assert standby == [pid], pids


SIGNALS = pytest.mark.parametrize(
    "signals",
    ["SIGSTOP", "SIGKILL", "SIGINT SIGTERM SIGHUP SIGUSR1 SIGALRM SIGTSTP"],
    ids=["stop", "kill", "catchable"],
)


def signal_siblings_then_call(backend: Backend, signals: str) -> tuple[int, int, int, object]:
    """Signal the worker's other children (the next call's child and the template) from a call;
    ``(standby children found, signals sent, refused, next call)``."""
    attack = SIBLINGS + f"""
standby, template = siblings(), templates()
targets = standby + template
sent = refused = 0
for pid in targets:
    for name in {signals.split()!r}:
        try:
            os.kill(pid, getattr(signal, name))
            sent += 1
        except PermissionError:
            refused += 1
print(len(standby), sent, refused)
"""
    with backend.acquire() as sandbox:
        hit = sandbox.run(textwrap.dedent(attack), timeout=5)
        assert hit.error is None and hit.exit_code == 0, hit
        after = sandbox.run("print('next call ok')", timeout=5)
    assert after.error is None and after.exit_code == 0 and not after.timed_out, after
    assert after.stdout == "next call ok\n" and after.stderr == "", after
    found, sent, refused = map(int, hit.stdout.split())
    return found, sent, refused, after


@SIGNALS
def test_signalling_the_next_calls_child_does_not_break_the_next_call(
    during_call_backend: Backend, signals: str
) -> None:
    # The code may run as the same user as the worker's children (Docker), so it can signal
    # the child forked for the next call, and the template that forks it. That child blocks
    # every signal until it has its request and drops what is pending, the worker sends it
    # SIGCONT after the cleanup, and a child that died before taking its request is replaced
    # (the call is retried); the template blocks every signal, the worker sends it SIGCONT
    # before each fork and replaces it when it died: the next call runs as if nothing had
    # happened (checked in the helper). Where the children run as
    # another user than the worker (the process backend as root) the signals are refused.
    backend = during_call_backend
    found, sent, refused, _ = signal_siblings_then_call(backend, signals)
    assert found == 1
    if backend.name == "docker":  # the attack lands, on the next call's child and the template
        assert (sent, refused) == (2 * len(signals.split()), 0)
    assert_healthy(backend)


@SIGNALS
def test_signalling_the_workers_other_children_does_not_break_the_next_call(backend: Backend, signals: str) -> None:
    # The same on every backend with its default settings, whether or not a child for the
    # next call exists while this one runs (that depends on the level and on timing).
    found, _, _, _ = signal_siblings_then_call(backend, signals)
    assert found <= 1
    assert_healthy(backend)
