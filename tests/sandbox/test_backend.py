"""Functional behaviour of every backend: results, files, episodes, threads, recovery."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.sandbox.conftest import assert_healthy
from toolgym.sandbox import Backend, SandboxError


def test_stdout_stderr_and_exit_code(backend: Backend) -> None:
    result = backend.run("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)")
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 3)
    assert not result.timed_out and result.error is None and not result.ok


def test_exception_gives_traceback_and_exit_1(backend: Backend) -> None:
    result = backend.run("def f():\n    1 / 0\nf()")
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError" in result.stderr and "worker.py" not in result.stderr


def test_syntax_error_is_reported_like_python(backend: Backend) -> None:
    result = backend.run("def (:")
    assert result.exit_code == 1 and "SyntaxError" in result.stderr


def test_code_runs_as_main_with_fresh_globals(backend: Backend) -> None:
    backend.run("leak = 1")
    result = backend.run("print(__name__, 'leak' in globals())")
    assert result.stdout == "__main__ False\n"


def test_unicode_round_trips(backend: Backend) -> None:
    result = backend.run("print('héllo ✓ 日本')")
    assert result.stdout == "héllo ✓ 日本\n"


HOSTILE_SOURCES = {
    "lone surrogate in a literal": "x = '\ud800'\nprint(len(x))",
    "printing a lone surrogate": "print('\\ud800')",
    "NUL byte": "print(1)\x00",
    "byte order mark": "\ufeffprint(1)",
}


@pytest.mark.parametrize("code", HOSTILE_SOURCES.values(), ids=HOSTILE_SOURCES.keys())
def test_hostile_source_text_is_a_result_not_an_exception(backend: Backend, code: str) -> None:
    result = backend.run(code)
    assert result.error is None
    assert result.exit_code in (0, 1), result


def test_input_files_text_and_binary(backend: Backend) -> None:
    files = {"data/in.txt": "line1\nline2\n", "blob.bin": bytes(range(256))}
    code = "print(open('data/in.txt').read().count('line'), len(open('blob.bin', 'rb').read()))"
    assert backend.run(code, files=files).stdout == "2 256\n"


def test_one_off_runs_do_not_share_files(backend: Backend) -> None:
    backend.run("open('left.txt', 'w').write('x')")
    assert backend.run("import os; print(os.listdir('.'))").stdout == "[]\n"


def test_episode_handle_keeps_files_until_release(backend: Backend) -> None:
    with backend.acquire() as sandbox:
        sandbox.run("open('notes.txt', 'w').write('step 1')")
        assert sandbox.run("print(open('notes.txt').read())").stdout == "step 1\n"
    with pytest.raises(SandboxError, match="released"):
        sandbox.run("print(1)")
    sandbox.release()  # idempotent


def test_backend_release_is_the_same_as_handle_release(backend: Backend) -> None:
    handle = backend.acquire()
    backend.release(handle)
    assert handle.released


def test_timeout_must_be_positive(backend: Backend) -> None:
    with pytest.raises(ValueError, match="timeout"):
        backend.run("print(1)", timeout=0)


def test_concurrent_callers_share_the_pool_safely(backend: Backend) -> None:
    def call(i: int) -> str:
        return backend.run(f"print({i} * 2)").stdout

    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(call, range(40)))
    assert outputs == [f"{i * 2}\n" for i in range(40)]


def test_concurrent_episodes_are_isolated(backend: Backend) -> None:
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def episode(tag: str) -> None:
        with backend.acquire() as sandbox:
            sandbox.run(f"open('me.txt', 'w').write({tag!r})")
            barrier.wait(timeout=30)
            seen = sandbox.run("print(open('me.txt').read())").stdout.strip()
            if seen != tag:
                errors.append(f"{tag} saw {seen}")

    threads = [threading.Thread(target=episode, args=(t,)) for t in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_acquire_times_out_when_the_pool_is_exhausted(backend: Backend) -> None:
    handles = [backend.acquire() for _ in range(2)]
    try:
        with pytest.raises(SandboxError, match="no sandbox free"):
            backend.acquire(timeout=0.2)
    finally:
        for handle in handles:
            handle.release()


def test_worker_death_is_reported_and_the_worker_restarted(backend: Backend) -> None:
    with backend.acquire() as sandbox:
        sandbox._conn.kill()
        # The handle notices the dead worker before the call and swaps in a fresh one.
        assert sandbox.run("print('fresh')").stdout == "fresh\n"
    # A worker that dies *during* a call gives a sandbox_error result, then recovers.
    handle = backend.acquire()
    conn = handle._conn
    timer = threading.Timer(0.3, conn.kill)
    timer.start()
    result = handle.run("import time; time.sleep(5)", timeout=10)
    timer.join()
    assert result.error is not None and result.exit_code == -1 and not result.ok
    assert handle.run("print('again')").stdout == "again\n"
    handle.release()
    assert backend.run("print('pool ok')").stdout == "pool ok\n"


def test_a_forked_copy_neither_uses_nor_kills_the_parents_workers(backend: Backend) -> None:
    import os

    pid = os.fork()
    if pid == 0:  # child: using the inherited backend is refused; closing it is harmless
        code = 0
        try:
            backend.acquire(timeout=1)
            code = 1
        except SandboxError:
            pass
        backend._pool.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert backend.run("print('parent fine')").stdout == "parent fine\n"


def test_a_handle_needs_only_the_backends_public_worker_interface() -> None:
    from toolgym.sandbox.base import ExecResult
    from toolgym.sandbox.pool import PooledHandle

    class Conn:
        def __init__(self, name: str, alive: bool) -> None:
            self.name, self.alive = name, alive

    class Stub:  # no private attributes at all: what PooledHandle may use
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def execute(self, conn: Conn, code: str, **kwargs: object) -> ExecResult:
            self.calls.append(("execute", conn.name))
            return ExecResult(code, "", 0, False, 0.0)

        def replace_worker(self, conn: Conn) -> Conn:
            self.calls.append(("replace_worker", conn.name))
            return Conn("fresh", True)

        def give_back(self, conn: Conn) -> None:
            self.calls.append(("give_back", conn.name))

    stub = Stub()
    handle = PooledHandle(stub, Conn("dead", False))  # type: ignore[arg-type]
    assert handle.run("x").stdout == "x"
    handle.release()
    handle.release()
    assert stub.calls == [("replace_worker", "dead"), ("execute", "fresh"), ("give_back", "fresh")]
    with pytest.raises(SandboxError, match="released"):
        handle.run("x")


def test_backends_satisfy_the_backend_protocol(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert backend.name in ("docker", "process") and backend.isolation


def test_custom_limits_are_applied() -> None:
    from toolgym.sandbox import Limits
    from toolgym.sandbox.process import ProcessBackend

    limits = Limits(max_output_bytes=10, file_size_mb=1, memory_mb=256)
    with ProcessBackend(pool_size=1, limits=limits) as backend:
        out = backend.run("print('x' * 100)")
        assert out.stdout == "x" * 10 and out.stdout_truncated
        big = backend.run("open('f', 'wb').write(b'0' * 2 * 1024**2)")
        assert big.exit_code != 0  # SIGXFSZ or OSError: File too large
        mem = backend.run("try:\n    bytearray(300 * 1024**2)\nexcept MemoryError:\n    print('capped')")
        assert mem.stdout == "capped\n"


def test_close_removes_the_staging_directory(backend: Backend) -> None:
    # A fresh backend of the same kind (the fixture's is shared by the session).
    kind = type(backend)
    extra = {"isolation": backend.isolation} if backend.name == "process" else {"image": backend.image}
    fresh = kind(pool_size=1, **extra)
    fresh.run("print(1)")
    staging = fresh._staging
    assert os.path.isdir(staging)
    fresh.close()
    assert not os.path.exists(staging)


KILLED_OWNER = """
import os, sys
from toolgym.sandbox.docker import DockerBackend
from toolgym.sandbox.process import ProcessBackend
backends = [ProcessBackend(pool_size=1, isolation=sys.argv[1])]
if sys.argv[2] != "-":
    backends.append(DockerBackend(pool_size=1, image=sys.argv[2]))
for b in backends:
    assert b.run("open('f', 'w').write('x')").error is None
print("\\n".join(b._staging for b in backends), flush=True)
os.kill(os.getpid(), 9)
"""


def test_sweep_removes_the_staging_dirs_of_killed_owners(backend: Backend) -> None:
    import subprocess
    import sys

    from toolgym.sandbox.docker import sweep_containers
    from toolgym.sandbox.pool import sweep_staging

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    image = backend.image if backend.name == "docker" else "-"
    isolation = "bwrap" if backend.name == "docker" else backend.isolation
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_OWNER, isolation, image],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": repo},
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    left = proc.stdout.split()
    assert left and all(os.path.isdir(path) for path in left), proc.stdout
    sweep_containers()  # the killed owner's containers (their dirs are bind-mounted)
    removed = sweep_staging()
    assert set(left) <= set(removed)
    assert not any(os.path.exists(path) for path in left)
    assert os.path.isdir(backend._staging)  # a live owner's directory is spared
    assert_healthy(backend)
