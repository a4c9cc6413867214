"""Process helpers for long jobs: worker pools that stop with their parent, one writer per folder.

Two failure modes these prevent, both seen in the collapse study:

* stopping a study (``kill`` of its main process) left its spawned pool workers training on,
  unseen, so that a restarted study trained the same run twice, into the same folder;
* two trainers writing one ``out_dir`` interleave their ``metrics.csv`` rows and checkpoints.

:func:`exit_with_parent` is a pool initializer: each worker ends itself within a second of its
parent's death (checkpoints make that safe: a restarted run resumes). :func:`claim_dir` takes an
exclusive, advisory lock on a folder for the life of the process (POSIX ``flock``; the operating
system drops it when the process dies, however it dies).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

try:  # POSIX only; elsewhere the lock is a no-op
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
"""Name of the lock file :func:`claim_dir` keeps in the folder (it holds the owner's pid)."""


class DirInUseError(RuntimeError):
    """Another process holds the folder's lock (see :func:`claim_dir`)."""


_held: dict[str, list] = {}  # resolved folder -> [open lock file, claims by this process]
_held_guard = threading.Lock()


def claim_dir(path: str | Path) -> Callable[[], None]:
    """Lock ``path`` (created if missing) for this process; returns the function that releases it.

    Claims by one process nest: a second trainer on the same folder in the same process (a test,
    or resuming after an in-process interruption) shares the claim, and the lock is dropped when
    the last claim is released or the process ends.

    Raises:
        DirInUseError: another process holds the lock; the message names its pid.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            return _releaser(key)
        handle: IO[str] = open(folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held open
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "unknown"
                handle.close()
                raise DirInUseError(
                    f"{folder} is in use by another process (pid {owner}): two writers would mix their "
                    "logs and checkpoints. Wait for it to finish or stop it, or choose another folder."
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _held[key] = [handle, 1]
    return _releaser(key)


def dir_in_use(path: str | Path) -> str | None:
    """The pid (as written in its lock file) of *another* process holding ``path``'s lock, else
    ``None`` (also for a folder this process holds, one without a lock file, or without ``flock``)."""
    folder = Path(path)
    lock = folder / LOCK_FILE
    if fcntl is None or not lock.is_file() or str(folder.resolve()) in _held:
        return None
    with open(lock, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return handle.read().strip() or "unknown"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


def _releaser(key: str) -> Callable[[], None]:
    done = False

    def release() -> None:
        nonlocal done
        if done:
            return
        done = True
        with _held_guard:
            entry = _held.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] <= 0:
                del _held[key]
                entry[0].close()  # closing the file drops the flock

    return release


def exit_with_parent(poll_s: float = 1.0) -> None:
    """Pool initializer: end this worker process (``os._exit(1)``) soon after its parent dies.

    A daemon thread compares ``os.getppid()`` with the parent's pid every ``poll_s`` seconds;
    when the parent is gone the worker is re-parented and the pids differ.
    """
    if poll_s <= 0:
        raise ValueError(f"poll_s must be > 0, got {poll_s!r}.")
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
