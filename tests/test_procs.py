"""Process helpers: one writer per training folder, and pool workers that end with their parent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from baselines.procs import LOCK_FILE, DirInUseError, claim_dir, dir_in_use, exit_with_parent

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock and re-parenting are POSIX")

HOLDER = textwrap.dedent(
    """
    import sys, time
    from baselines.procs import claim_dir
    claim_dir(sys.argv[1])
    print("held", flush=True)
    time.sleep(120)
    """
)


def _holder(folder: Path) -> subprocess.Popen:
    """A second process that claims ``folder`` and keeps it until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _claimable_elsewhere(folder: Path) -> bool:
    """Whether another process can claim ``folder`` now."""
    code = "import sys\nfrom baselines.procs import claim_dir, DirInUseError\n" \
           "try:\n    claim_dir(sys.argv[1])\nexcept DirInUseError:\n    sys.exit(3)\n"
    return subprocess.run([sys.executable, "-c", code, str(folder)], check=False).returncode == 0


def test_a_second_process_cannot_claim_a_held_folder_until_the_holder_dies(tmp_path) -> None:
    holder = _holder(tmp_path)
    try:
        with pytest.raises(DirInUseError, match=rf"in use by another process \(pid {holder.pid}\)"):
            claim_dir(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    release = claim_dir(tmp_path)  # the OS dropped the dead holder's lock
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    release()


def test_dir_in_use_names_another_holder_only(tmp_path) -> None:
    assert dir_in_use(tmp_path) is None  # no lock file
    release = claim_dir(tmp_path)
    assert dir_in_use(tmp_path) is None  # this process's own claim is not "another process"
    release()
    assert dir_in_use(tmp_path) is None  # a lock file left behind, nobody holding it
    holder = _holder(tmp_path)
    try:
        assert dir_in_use(tmp_path) == str(holder.pid)
        assert dir_in_use(tmp_path) == str(holder.pid)  # probing does not take the lock
    finally:
        holder.kill()
        holder.wait()
    assert dir_in_use(tmp_path) is None


def test_claims_nest_within_a_process_and_the_last_release_frees_the_folder(tmp_path) -> None:
    first, second = claim_dir(tmp_path), claim_dir(tmp_path)
    first()
    first()  # releasing twice is harmless
    assert not _claimable_elsewhere(tmp_path)
    second()
    assert _claimable_elsewhere(tmp_path)


def test_a_trainer_refuses_an_out_dir_another_process_is_training_into(tmp_path) -> None:
    from baselines.train.config import SFTConfig
    from baselines.train.sft import SFTTrainer

    holder = _holder(tmp_path)
    try:
        with pytest.raises(DirInUseError, match=str(holder.pid)):
            SFTTrainer(SFTConfig(env="ToolGym/Lookup-v0", out_dir=str(tmp_path), progress=False, tensorboard=False))
        assert not (tmp_path / "config.yaml").exists()  # refused before writing anything
    finally:
        holder.kill()
        holder.wait()


def test_the_train_cli_names_the_other_process_in_one_line(tmp_path, capsys) -> None:
    from baselines.train import __main__ as train_cli

    holder = _holder(tmp_path)
    try:
        assert train_cli.main(["sft", "--env", "ToolGym/Lookup-v0", "--out", str(tmp_path), "--quiet"]) == 1
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"pid {holder.pid}" in err and len(err.strip().splitlines()) == 1


POOL_PARENT = textwrap.dedent(
    """
    import os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from baselines.procs import exit_with_parent

    def work() -> int:
        time.sleep(120)
        return 0

    if __name__ == "__main__":
        with ProcessPoolExecutor(1, mp_context=get_context(sys.argv[1]), initializer=exit_with_parent) as pool:
            pool.submit(work)
            pool.submit(os.getpid)
            time.sleep(0.5)
            print(" ".join(str(p) for p in pool._processes), flush=True)
            time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its new parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_pool_workers_end_when_their_parent_is_killed(tmp_path, method) -> None:
    script = tmp_path / "parent.py"
    script.write_text(POOL_PARENT)
    parent = subprocess.Popen([sys.executable, str(script), method], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    assert parent.stdout is not None
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert workers and all(_alive(p) for p in workers)
    parent.kill()  # SIGKILL: no cleanup in the parent at all
    parent.wait()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), f"workers {workers} outlived their parent"


def test_exit_with_parent_rejects_a_non_positive_poll() -> None:
    with pytest.raises(ValueError, match="poll_s must be > 0"):
        exit_with_parent(0)
