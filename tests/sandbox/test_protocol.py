"""Unit tests of the frame protocol and of the pure-Python parts of the sandbox API."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolgym.core.errors import ConfigError
from toolgym.sandbox import ExecResult, Limits, SandboxUnavailable, make_backend
from toolgym.sandbox.pool import encode_files
from toolgym.sandbox.worker import (
    MAX_FRAME_BYTES,
    FrameDecoder,
    FrameError,
    _safe_relpath,
    encode_frame,
    read_frame,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
messages = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


def test_frame_is_big_endian_length_then_ascii_json() -> None:
    frame = encode_frame({"op": "ping", "é": 1})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert frame[4:].decode("ascii") == '{"op":"ping","\\u00e9":1}'


@given(st.lists(messages, max_size=5), st.data())
def test_decoder_reassembles_frames_split_anywhere(batch: list[dict], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(m) for m in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    decoder = FrameDecoder()
    out: list[dict] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += decoder.feed(stream[start:end])
    assert out == batch
    assert decoder.pending == 0


def test_read_frame_over_a_pipe_and_clean_eof() -> None:
    r, w = os.pipe()
    os.write(w, encode_frame({"a": [1, 2]}) + encode_frame({"b": None}))
    os.close(w)
    assert read_frame(r) == {"a": [1, 2]}
    assert read_frame(r) == {"b": None}
    assert read_frame(r) is None
    os.close(r)


def test_truncated_frame_is_an_error() -> None:
    r, w = os.pipe()
    os.write(w, encode_frame({"a": 1})[:-2])
    os.close(w)
    with pytest.raises(FrameError, match="EOF"):
        read_frame(r)
    os.close(r)


def test_oversized_header_is_rejected() -> None:
    with pytest.raises(FrameError, match="announces"):
        FrameDecoder().feed(struct.pack(">I", MAX_FRAME_BYTES + 1))


@pytest.mark.parametrize("body", [b"\xff\xfe", b"[1, 2]", b"not json"])
def test_bad_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(struct.pack(">I", len(body)) + body)


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", "", ".", "a\x00b"])
def test_unsafe_input_file_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        _safe_relpath(name)


def test_safe_input_file_names_are_normalised() -> None:
    assert _safe_relpath("a/./b/../c.txt") == "a/c.txt"


def test_encode_files_text_and_bytes() -> None:
    encoded = encode_files({"a.txt": "héllo", "b.bin": b"\x00\xff"})
    assert encoded[0] == {"path": "a.txt", "data": "héllo", "encoding": "utf-8"}
    assert encoded[1] == {"path": "b.bin", "data": "AP8=", "encoding": "base64"}
    with pytest.raises(TypeError):
        encode_files({"c": 3})  # type: ignore[dict-item]


def test_limits_validate_their_values() -> None:
    with pytest.raises(ConfigError, match="memory_mb"):
        Limits(memory_mb=0)
    with pytest.raises(ConfigError, match="max_output_bytes"):
        Limits(max_output_bytes=-1)
    assert Limits(nproc=None).to_request()["nproc"] is None


def test_exec_result_ok_only_when_the_code_and_the_sandbox_worked() -> None:
    assert ExecResult("2\n", "", 0, False, 0.001).ok
    assert not ExecResult("", "boom", 1, False, 0.001).ok
    assert not ExecResult("", "", -9, True, 5.0).ok
    failure = ExecResult.failure("worker died")
    assert not failure.ok and failure.exit_code == -1 and failure.error == "worker died"
    assert not hasattr(failure, "tool_error")  # env error codes are the env's business


def test_unknown_backend_kind_is_a_clear_error() -> None:
    with pytest.raises(SandboxUnavailable, match="docker"):
        make_backend("dokcer")


def test_docker_without_image_says_how_to_fix_it() -> None:
    with pytest.raises(SandboxUnavailable, match=r"toolgym sandbox build|daemon|not installed"):
        make_backend("docker", image="toolgym-sandbox-does-not-exist:never")


def test_auto_falls_back_to_process_when_docker_is_unusable(caplog: pytest.LogCaptureFixture) -> None:
    with make_backend("auto", image="toolgym-sandbox-does-not-exist:never", pool_size=1) as backend:
        assert backend.name == "process"
        assert backend.run("print(3)").stdout == "3\n"
    assert "falling back" in caplog.text


def test_sandbox_package_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, toolgym.sandbox; "
        "print(any(m.startswith(('docker', 'toolgym.sandbox.docker')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


FORGER = """
import os, sys
sys.path.insert(0, {root!r})
from toolgym.sandbox.worker import PROTOCOL_VERSION, encode_frame, read_frame
os.write(1, encode_frame({{"op": "hello", "version": PROTOCOL_VERSION, "hardening": {{"dumpable": 0}}}}))
request = read_frame(0)
os.write(1, encode_frame({{"id": request["id"] + 1, "ok": True}}))
read_frame(0)
"""


def test_a_reply_to_another_request_gets_the_worker_replaced() -> None:
    import sys
    from pathlib import Path

    from toolgym.sandbox.pool import WorkerConnection, WorkerTampered

    root = str(Path(__file__).resolve().parents[2])
    conn = WorkerConnection([sys.executable, "-c", FORGER.format(root=root)], name="forger")
    with pytest.raises(WorkerTampered, match="reply to request"):
        conn.request({"op": "ping"}, 5.0)
    assert not conn.alive


def test_the_recipe_hash_follows_the_worker_and_the_dockerfile(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import shutil

    from toolgym.sandbox import image

    before = image.recipe_hash()
    for name in ("worker.py", "Dockerfile"):
        shutil.copy(image.SANDBOX_DIR / name, tmp_path / name)
    monkeypatch.setattr(image, "SANDBOX_DIR", tmp_path)
    assert image.recipe_hash() == before
    for name in ("worker.py", "Dockerfile"):
        original = (tmp_path / name).read_text()
        (tmp_path / name).write_text(original + "\n# changed\n")
        assert image.recipe_hash() != before
        (tmp_path / name).write_text(original)
    monkeypatch.setattr(image, "DEBOOTSTRAP_INCLUDE", "python3,curl")
    assert image.recipe_hash() != before


UNHARDENED = """
import os, sys
sys.path.insert(0, {root!r})
from toolgym.sandbox.worker import PROTOCOL_VERSION, encode_frame
os.write(1, encode_frame({{"op": "hello", "version": PROTOCOL_VERSION, "hardening": {{"dumpable": 1}}}}))
sys.stdin.read()
"""


def test_a_worker_that_could_not_harden_itself_is_not_used() -> None:
    import sys
    from pathlib import Path

    from toolgym.sandbox.base import SandboxError
    from toolgym.sandbox.pool import WorkerConnection

    root = str(Path(__file__).resolve().parents[2])
    with pytest.raises(SandboxError, match="could not make itself non-dumpable"):
        WorkerConnection([sys.executable, "-c", UNHARDENED.format(root=root)], name="soft")


def test_a_task_counter_is_used_only_if_it_counts_exactly_this_process(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from toolgym.sandbox import worker

    shared, own = tmp_path / "shared", tmp_path / "own"
    shared.write_text(f"{worker._own_tasks() + 7}\n")  # a cgroup shared with other processes
    own.write_text(f"{worker._own_tasks()}\n")
    monkeypatch.setattr(worker, "PIDS_COUNTERS", (str(tmp_path / "missing"), str(shared)))
    assert worker.pids_counter() is None
    monkeypatch.setattr(worker, "PIDS_COUNTERS", (str(shared), str(own)))
    assert worker.pids_counter() == str(own)


RETRY = r"""
import os, signal, sys, tempfile, time
sys.path.insert(0, {root!r})
from toolgym.sandbox import worker as w

wk = w.Worker(tempfile.mkdtemp(), [], None)  # not PID 1: a child subreaper, early standby
assert wk.early_standby, "expected the early standby child"
wk.after_reply()
# The standby child dies before it takes a request (a previous call's code killed it) and the
# check before the call misses it (the signal had not been acted on yet).
victim = wk._standby.pid
os.kill(victim, signal.SIGKILL)
while open(f"/proc/{{victim}}/stat").read().split(")")[1].split()[0] != "Z":
    time.sleep(0.001)
w._alive = lambda pid: True
reply = wk.run({{"code": "import os; print('ran', os.getpid())", "timeout": 5}})
print(reply["stdout"].strip(), reply["exit_code"], victim)
"""


def test_a_call_whose_child_died_before_taking_it_runs_on_a_fresh_child() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", RETRY.format(root=root)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    word, pid, exit_code, victim = proc.stdout.split()
    assert word == "ran" and exit_code == "0" and pid != victim, proc.stdout
