"""Code-v0: the generated tasks, the hidden-test harness, and hostile code in both sandboxes.

The registry-wide suites (``tests/test_env_contract.py``, ``tests/test_oracles.py``,
``tests/test_checker.py``) cover the env contract and the oracle; these tests specify the data,
the grading, and what happens when an agent sends nasty code: a clear result or error
observation, an env that keeps working, and no leaked processes or containers.

Tests that need Docker are marked ``docker``: skipped locally when Docker or the image is
missing, failed when ``CI=true`` (as in ``tests/sandbox``).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.core.errors import ConfigError, ErrorCode
from toolgym.envs.code.env import CodeEnv, result_error, solution_code
from toolgym.envs.code.families import FAMILIES, LEVELS, TESTS_PER_LEVEL, call_text, parse_prompt
from toolgym.envs.code.harness import MARKER, score, values_equal
from toolgym.sandbox import Backend, ExecResult, SandboxUnavailable
from toolgym.sandbox.process import ProcessBackend

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "envs_data" / "code"
HERMES = get_action_format("hermes")
IN_CI = os.environ.get("CI", "").lower() == "true"


def call(env: CodeEnv, tool: str, code: str) -> tuple[str, dict[str, Any]]:
    """Step ``env`` with a well-formed call of ``tool``; return the observation and info."""
    obs, _, _, _, info = env.step(HERMES.render(ToolCall(tool, {"code": code})))
    return obs, info


# ----------------------------------------------------------------------------- data
@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_splits_are_balanced_and_tests_per_task_follow_the_level(split: str) -> None:
    tasks = CodeEnv(split=split, sandbox="process").task_set
    assert set(Counter(t.difficulty for t in tasks).values()) == {len(tasks) // 3}
    for task in tasks:
        spec = task.answer
        assert len(spec["inputs"]) == len(spec["expected"]) == TESTS_PER_LEVEL[task.difficulty]
        assert len({json.dumps(args) for args in spec["inputs"]}) == len(spec["inputs"]), task.id


def test_prompts_are_unique_across_splits_and_every_family_is_tested() -> None:
    prompts = [
        t.prompt for s in ("train", "dev", "test") for t in CodeEnv(split=s, sandbox="process").task_set
    ]
    assert len(prompts) == len(set(prompts))
    test_families = {t.metadata["family"] for t in CodeEnv(split="test", sandbox="process").task_set}
    assert test_families == {f.key for f in FAMILIES}
    assert {f.level for f in FAMILIES} == set(LEVELS)


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_every_prompt_reads_back_to_its_family_and_reference(split: str) -> None:
    for task in CodeEnv(split=split, sandbox="process").task_set:
        reading = parse_prompt(task.prompt)
        assert reading is not None, task.id
        family, params = reading
        assert family.key == task.metadata["family"] and params == task.metadata["params"], task.id
        assert family.source(params) == task.metadata["reference"], task.id


def test_the_visible_example_is_not_a_hidden_test() -> None:
    for task in CodeEnv(split="test", sandbox="process").task_set:
        hidden = {call_text(task.answer["function"], args) for args in task.answer["inputs"]}
        example = task.prompt.split("Example: `", 1)[1].split("`", 1)[0]
        assert example not in hidden, task.id


# ----------------------------------------------------------------------------- grading (host side)
@pytest.mark.parametrize(
    ("got", "expected", "equal"),
    [
        ([1, [2, 3]], [1, [2, 3]], True),
        (1, True, False),
        (True, 1, False),
        (2.0, 2, True),
        (0.1 + 0.2, 0.3, True),
        ("1", 1, False),
        ([1, 2], [1, 2, 3], False),
        ({"a": [1]}, {"a": [1]}, True),
        (None, [], False),
    ],
)
def test_values_are_compared_as_json_with_strict_bools(got: Any, expected: Any, equal: bool) -> None:
    assert values_equal(got, expected) is equal


def test_a_faked_report_cannot_pass_because_expected_values_stay_on_the_host() -> None:
    fake = MARKER + json.dumps({"load_error": None, "missing": False, "results": [{"v": "PASS"}] * 3})
    verdict = score("noise\n" + fake + "\n", [1, 2, 3], "f")
    assert verdict.passed == 0 and not verdict.success
    assert score("no marker at all", [1], "f").problem is not None


def test_solution_code_takes_the_first_fenced_block() -> None:
    assert solution_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1"
    assert solution_code("def f(): return 2") == "def f(): return 2"


def test_sandbox_results_map_to_env_error_codes_in_one_place() -> None:
    assert result_error(ExecResult("2\n", "", 0, False, 0.001), "late") is None
    assert result_error(ExecResult("", "boom", 1, False, 0.001), "late") is None  # the agent's problem
    timeout = result_error(ExecResult("", "", -9, True, 5.0), "too slow")
    assert timeout is not None and timeout.code == ErrorCode.TIMEOUT and timeout.message == "too slow"
    failure = result_error(ExecResult.failure("worker died"), "too slow")
    assert failure is not None and failure.code == ErrorCode.SANDBOX_ERROR
    assert failure.message == "The sandbox failed: worker died"


def test_bad_sandbox_kwargs_are_config_errors_that_say_what_is_expected() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'docker'"):
        CodeEnv(sandbox="dokcer")
    with pytest.raises(ConfigError, match="Backend"):
        CodeEnv(sandbox=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="run_timeout_s"):
        CodeEnv(sandbox="process", run_timeout_s=0)


def test_docker_requested_but_unavailable_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    import toolgym.sandbox.docker as docker

    checks: list[str] = []

    def unavailable(name: str = "", **kwargs: object) -> str:
        checks.append(name)
        raise SandboxUnavailable("Docker is not available (test). Start the daemon or use sandbox='process'.")

    monkeypatch.setattr(docker, "require_docker", unavailable)
    with pytest.raises(SandboxUnavailable, match="sandbox='process'"):
        CodeEnv(sandbox="docker", sandbox_options={"image": "some/image:tag"})
    assert checks == ["some/image:tag"], "Docker is checked once, by the backend"


def test_an_unknown_sandbox_kind_is_checked_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    import toolgym.sandbox.factory as factory

    seen: list[object] = []

    def check_kind(kind: object) -> None:
        seen.append(kind)
        raise SandboxUnavailable(f"bad kind {kind!r} (test)")

    monkeypatch.setattr(factory, "check_kind", check_kind)
    with pytest.raises(ConfigError, match="bad kind 'procss'"):
        CodeEnv(sandbox="procss")
    assert seen == ["procss"]


def test_auto_falls_back_to_the_process_backend_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import toolgym.sandbox.docker as docker

    def unavailable(self: object, **kwargs: object) -> None:
        raise SandboxUnavailable("no Docker daemon (test)")

    monkeypatch.setattr(docker.DockerBackend, "__init__", unavailable)
    env = CodeEnv(split="test", sandbox="auto")
    try:
        env.reset(seed=0)
        with caplog.at_level(logging.WARNING):
            obs, info = call(env, "run_python", "print(6 * 7)")
        assert info["error"] is None and "42" in obs
        assert env.backend is not None and env.backend.name == "process"
        assert "falling back to the process backend" in caplog.text
    finally:
        env.close()


def test_the_env_var_chooses_the_default_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLGYM_SANDBOX", "process")
    assert CodeEnv().sandbox_kind == "process"
    monkeypatch.delenv("TOOLGYM_SANDBOX")
    assert CodeEnv().sandbox_kind == "auto"


# ----------------------------------------------------------------------------- sandbox failures
class BrokenBackend:
    """A backend whose sandbox always fails (or raises), to check the env survives it."""

    name = "process"
    isolation = "none"

    def __init__(self, raises: bool = False) -> None:
        self.raises = raises
        self.closed = False

    def run(self, code: str, *, timeout: float = 5.0, files: Any = None) -> ExecResult:
        if self.raises:
            raise RuntimeError("the sandbox exploded")
        return ExecResult.failure("worker died (test)")

    def acquire(self, timeout: float | None = None) -> Any:
        raise NotImplementedError

    def release(self, handle: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> BrokenBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.mark.parametrize("raises", [False, True], ids=["failed-result", "raising"])
def test_sandbox_failures_become_sandbox_error_observations(raises: bool) -> None:
    backend = BrokenBackend(raises=raises)
    assert isinstance(backend, Backend)
    env = CodeEnv(split="test", sandbox=backend)  # type: ignore[arg-type]
    env.reset(seed=0)
    for tool in ("run_python", "submit"):
        obs, info = call(env, tool, "def f(): pass")
        assert info["error"] == "sandbox_error" and "[sandbox_error]" in obs, obs
    obs, reward, terminated, _, info = env.step(HERMES.render(FinalAnswer("def f(): pass")))
    assert terminated and reward == 0.0 and not info["success"]
    env.close()
    assert not backend.closed, "a backend passed in belongs to the caller"


class SlowBackend(BrokenBackend):
    """Every call times out after printing a line."""

    def run(self, code: str, *, timeout: float = 5.0, files: Any = None) -> ExecResult:
        return ExecResult("partial output\n", "", -9, True, timeout)


def test_timeouts_name_the_limit_and_only_run_python_shows_its_stdout() -> None:
    env = CodeEnv(split="test", sandbox=SlowBackend(), run_timeout_s=1.5, test_timeout_s=0.5)  # type: ignore[arg-type]
    env.reset(seed=0)
    obs, info = call(env, "run_python", "print('partial output')")
    assert info["error"] == "timeout"
    assert "The code did not finish within 1.5 s and was stopped." in obs
    assert "stdout before it was stopped:\npartial output" in obs
    obs, info = call(env, "submit", "def f(): pass")
    assert info["error"] == "timeout"
    assert "The hidden tests did not finish within" in obs and "s and were stopped." in obs
    assert "partial output" not in obs  # the harness's own output stays hidden
    env.close()


def test_a_backend_that_cannot_start_is_a_sandbox_error_and_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import toolgym.sandbox.factory as factory

    attempts = []

    def failing(kind: str = "auto", **options: Any) -> Backend:
        attempts.append(kind)
        raise SandboxUnavailable("cannot start (test)")

    monkeypatch.setattr(factory, "make_backend", failing)
    env = CodeEnv(split="test", sandbox="process")
    env.reset(seed=0)
    for _ in range(2):
        obs, info = call(env, "run_python", "print(1)")
        assert info["error"] == "sandbox_error" and "could not be started" in obs
    assert attempts == ["process", "process"]


# ----------------------------------------------------------------------------- both real backends
@pytest.fixture(scope="module")
def process_backend() -> Iterator[Backend]:
    """One process backend (best isolation here) shared by this module's tests."""
    with ProcessBackend(pool_size=1, prestart=True) as backend:
        yield backend


@pytest.fixture(scope="module")
def docker_backend() -> Iterator[Backend]:
    """One Docker backend; skipped locally (failed with CI=true) if Docker is unavailable."""
    from toolgym.sandbox.docker import DockerBackend

    try:
        backend = DockerBackend(pool_size=1)
    except SandboxUnavailable as exc:
        if IN_CI:
            pytest.fail(f"Docker sandbox unavailable: {exc} (CI=true: docker tests must run)")
        pytest.skip(f"Docker sandbox unavailable: {exc}")
    with backend:
        yield backend


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker), "process"])
def env(request: pytest.FixtureRequest) -> Iterator[CodeEnv]:
    """A Code-v0 env on a shared backend of each kind, with short time limits."""
    backend = request.getfixturevalue(f"{request.param}_backend")
    code_env = CodeEnv(split="test", sandbox=backend, run_timeout_s=1.0, test_timeout_s=0.5, max_turns=50)
    code_env.reset(seed=0)
    yield code_env
    code_env.close()


def assert_still_works(env: CodeEnv) -> None:
    """The env still runs code correctly (checked after every attack)."""
    obs, info = call(env, "run_python", "print('still ok')")
    assert info["error"] is None and "still ok" in obs, obs


def test_oracle_solves_a_task_of_every_level(env: CodeEnv) -> None:
    oracle = env.make_oracle()
    for level in LEVELS:
        obs, info = env.reset(seed=1, options={"difficulty": level})
        oracle.reset(seed=1)
        while True:
            obs, reward, terminated, truncated, info = env.step(oracle.act(obs, info))
            assert info["error"] is None, info["error_message"]
            if terminated or truncated:
                break
        assert info["success"] and reward == 1.0


def test_an_exception_is_a_result_with_the_traceback(env: CodeEnv) -> None:
    obs, info = call(env, "run_python", "print('before')\n1 / 0")
    assert info["error"] is None
    assert "exit code: 1" in obs and "before" in obs and "ZeroDivisionError" in obs


def test_an_infinite_loop_is_a_timeout_error(env: CodeEnv) -> None:
    start = time.monotonic()
    obs, info = call(env, "run_python", "print('started', flush=True)\nwhile True:\n    pass")
    assert info["error"] == "timeout" and "1 s" in obs and "started" in obs
    assert time.monotonic() - start < 5
    assert_still_works(env)


def test_huge_output_is_truncated(env: CodeEnv) -> None:
    obs, info = call(env, "run_python", "import sys\nprint('x' * 10**7)\nprint('e' * 10**6, file=sys.stderr)")
    assert info["error"] is None
    assert "characters cut" in obs and len(obs) < 2 * env.max_stream_chars + 500
    assert "output truncated" not in obs, "both streams must fit: stderr is not lost to the env's cut"
    assert "stderr:\n[..." in obs and "eeee" in obs
    assert_still_works(env)


def test_shell_commands_run_unprivileged_and_offline(env: CodeEnv) -> None:
    obs, info = call(
        env, "run_python",
        "import os, socket\nos.system('id -u')\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n    print('ONLINE')\n"
        "except OSError as exc:\n    print('offline', type(exc).__name__)",
    )  # fmt: skip
    assert info["error"] is None
    assert "65534" in obs and "offline" in obs and "ONLINE" not in obs


def test_files_outside_the_sandbox_are_invisible_and_nothing_persists(env: CodeEnv) -> None:
    secret = REPO / "pyproject.toml"
    obs, info = call(env, "run_python", f"print(open({str(secret)!r}).read())")
    assert info["error"] is None and ("FileNotFoundError" in obs or "PermissionError" in obs), obs
    call(env, "run_python", "open('left_behind.txt', 'w').write('x')\nopen('/tmp/left.txt', 'w').write('x')")
    obs, _ = call(env, "run_python", "import os\nprint(os.listdir('.'), os.path.exists('/tmp/left.txt'))")
    assert "[] False" in obs


def test_a_fork_bomb_is_contained(env: CodeEnv) -> None:
    start = time.monotonic()
    obs, info = call(env, "run_python", "import os\nwhile True:\n    os.fork()")
    assert info["error"] in (None, "timeout"), obs
    assert time.monotonic() - start < 10
    assert_still_works(env)


def test_killing_the_interpreter_or_exiting_is_a_result(env: CodeEnv) -> None:
    obs, info = call(env, "run_python", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert info["error"] is None and "exit code: -9" in obs
    obs, info = call(env, "run_python", "raise SystemExit(7)")
    assert "exit code: 7" in obs
    assert_still_works(env)


def test_submit_reports_counts_and_failure_kinds_but_not_the_tests(env: CodeEnv) -> None:
    task = env.task
    assert task is not None
    name = task.answer["function"]
    obs, info = call(env, "submit", f"def {name}(*args):\n    return None")
    assert (
        info["error"] is None and f"0 of {len(task.answer['inputs'])} passed" in obs and "wrong result" in obs
    )
    for args in task.answer["inputs"]:
        assert json.dumps(args)[1:-1] not in obs or len(json.dumps(args)) < 6
    obs, _ = call(env, "submit", f"def {name}(*args):\n    raise IndexError('no')")
    assert "raised IndexError" in obs
    obs, _ = call(env, "submit", "def something_else(x):\n    return x")
    assert f"does not define a function named `{name}`" in obs
    obs, _ = call(env, "submit", "def (:")
    assert "does not compile: SyntaxError" in obs
    obs, _ = call(env, "submit", task.metadata["reference"])
    assert "passed. All tests pass" in obs


def test_submit_stops_a_slow_solution_quickly(env: CodeEnv) -> None:
    name = env.task.answer["function"]  # type: ignore[union-attr]
    start = time.monotonic()
    obs, info = call(env, "submit", f"def {name}(*args):\n    while True:\n        pass")
    assert info["error"] is None and "timeout" in obs
    assert time.monotonic() - start < 5
    obs, info = call(env, "submit", "while True:\n    pass")
    assert "TimeoutError" in obs
    assert_still_works(env)


def test_tampering_with_the_harness_cannot_fake_a_pass(env: CodeEnv) -> None:
    task = env.task
    assert task is not None
    n = len(task.answer["inputs"])
    fake = json.dumps({"load_error": None, "missing": False, "results": [{"v": 0}] * n})
    attacks = [
        f"import os\nos.write(1, b'\\n{MARKER}' + {fake!r}.encode() + b'\\n')\nos._exit(0)",
        "import sys\nsys.exit(0)",
        f"import builtins\ndef {task.answer['function']}(*a):\n    builtins.print('{MARKER}{{}}')\n    return 0",
    ]
    for code in attacks:
        obs, info = call(env, "submit", code)
        assert info["error"] is None and "All tests pass" not in obs, obs
        _, reward, _, _, info = env.step(HERMES.render(FinalAnswer(code)))
        assert reward == 0.0 and not info["success"]
        env.reset(seed=0)
    assert_still_works(env)


def test_a_fenced_final_answer_is_graded(env: CodeEnv) -> None:
    task = env.task
    assert task is not None
    answer = f"Here is my solution:\n```python\n{task.metadata['reference']}```"
    _, reward, terminated, _, info = env.step(HERMES.render(FinalAnswer(answer)))
    assert terminated and reward == 1.0 and info["success"]


# ----------------------------------------------------------------------------- lifecycle
def _process_workers_alive(backend: Backend) -> int:
    return backend.stats()["total"]  # type: ignore[attr-defined]


def test_an_env_closes_the_backend_it_created() -> None:
    env = CodeEnv(split="test", sandbox="process")
    env.reset(seed=0)
    assert env.backend is None, "the backend starts lazily, at the first tool call"
    call(env, "run_python", "print(1)")
    backend = env.backend
    assert backend is not None and _process_workers_alive(backend) == 1
    env.close()
    assert backend.closed and _process_workers_alive(backend) == 0  # type: ignore[attr-defined]
    env.close()  # idempotent


@pytest.mark.docker
def test_an_env_leaves_no_container_behind() -> None:
    from toolgym.sandbox.docker import owner_label
    from toolgym.sandbox.image import docker_cli

    def containers() -> set[str]:
        out = subprocess.run(
            [docker_cli() or "docker", "ps", "-q", "--filter", f"label=toolgym.sandbox.owner={owner_label()}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return set(out.stdout.split())

    try:
        env = CodeEnv(split="test", sandbox="docker")
    except SandboxUnavailable as exc:
        if IN_CI:
            pytest.fail(f"Docker sandbox unavailable: {exc}")
        pytest.skip(str(exc))
    before = containers()  # other tests' shared backends may hold containers of this process
    env.reset(seed=0)
    call(env, "run_python", "print(1)")
    assert len(containers() - before) == 1
    env.close()
    assert containers() == before


def test_a_pickled_env_gets_its_own_backend(process_backend: Backend) -> None:
    env = CodeEnv(split="test", sandbox=process_backend)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.backend is None and clone.sandbox_kind == "process"
    clone.reset(seed=0)
    obs, info = call(clone, "run_python", "print(2 + 2)")
    assert info["error"] is None and "4" in obs
    assert clone.backend is not process_backend
    clone.close()
    assert not process_backend.closed  # type: ignore[attr-defined]


def test_gym_make_accepts_the_sandbox_kwargs() -> None:
    env = gym.make("ToolGym/Code-v0", sandbox="process", run_timeout_s=2.0)
    assert env.unwrapped.sandbox_kind == "process" and env.unwrapped.run_timeout_s == 2.0
    env.close()
