"""``ToolGym/Code-v0``: write a Python function that passes hidden unit tests, using a sandbox."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from toolgym.core.errors import ConfigError, ErrorCode, ToolError
from toolgym.core.tasks import Task
from toolgym.core.tools import Tool
from toolgym.envs.code.harness import Verdict, harness_source, score
from toolgym.envs.turn_end import SingleRequestEnv
from toolgym.sandbox import factory
from toolgym.sandbox.base import Backend, ExecResult
from toolgym.sandbox.factory import BACKEND_KINDS

logger = logging.getLogger(__name__)

SANDBOX_ENV_VAR = "TOOLGYM_SANDBOX"
"""Environment variable giving the default ``sandbox`` kind (``"auto"`` when unset)."""
MAX_CODE_CHARS = 12_000
"""Longest ``code`` argument the tools accept."""
_FENCE_RE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n(.*?)```", re.S)


def solution_code(answer: str) -> str:
    """The code in a final answer: the first fenced (```) block if there is one, else the text."""
    match = _FENCE_RE.search(answer)
    return (match.group(1) if match else answer).strip("\n")


def result_error(result: ExecResult, timeout_message: str) -> ToolError | None:
    """Map a sandbox result to the env error contract (the one place that does).

    Returns ``ToolError(code=sandbox_error)`` quoting ``result.error`` when the sandbox itself
    failed, ``ToolError(timeout_message, code=timeout)`` when the code ran past its limit, else
    ``None``: the code ran, and a non-zero exit is the agent's business (it shows in stderr).
    """
    if result.error is not None:
        return ToolError(f"The sandbox failed: {result.error}", ErrorCode.SANDBOX_ERROR)
    if result.timed_out:
        return ToolError(timeout_message, ErrorCode.TIMEOUT)
    return None


def compile_problem(code: str) -> str | None:
    """Why ``code`` cannot be compiled (e.g. ``"SyntaxError: invalid syntax (line 3)"``), or
    ``None`` if it compiles. Compiling runs nothing: it is safe on the host."""
    try:
        compile(code, "<solution>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"{type(exc).__name__}: {exc.msg}{where}"
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None


class CodeEnv(SingleRequestEnv):
    """Programming tasks graded by hidden unit tests, with code run in a sandbox.

    ## Description
    Each task asks for one Python function with a precise specification and one visible
    example, e.g. "Write a Python function `rle_encode(s: str) -> str` that run-length encodes
    s: ..." (FizzBuzz variants, word reversal, run-length encoding and decoding, number parsing,
    Caesar shifts, bracket matching, matrix rotation and spirals, interval merging, reverse
    Polish notation, base conversion; 17 families with random parameters). Hidden unit tests
    (8 to 12 per task) call the function on other inputs. Two tools run code in the sandbox
    backend (``toolgym.sandbox``): ``run_python(code)`` runs a script and returns its exit code,
    stdout and stderr (truncated); ``submit(code)`` runs the hidden tests on a solution and
    returns how many pass and how the others failed (wrong result, exception type, timeout),
    never the hidden inputs or expected values.

    ## Action Space
    Text in the env's action format (default Hermes), e.g.
    ``<tool_call>{"name": "run_python", "arguments": {"code": "print(1 + 1)"}}</tool_call>``,
    ``<tool_call>{"name": "submit", "arguments": {"code": "def f(x): ..."}}</tool_call>``, or the
    final answer ``<answer>def f(x): ...</answer>``: the complete solution code (a fenced
    ```python block inside the answer is accepted too).

    ## Observation Space
    Text: first the instructions and the task, then each tool's output: for ``run_python``
    ``"exit code: N"``, ``"stdout:"`` and ``"stderr:"`` sections (each cut to
    ``max_stream_chars``); for ``submit`` a line such as ``"Hidden tests: 7 of 10 passed.
    Failures: 2 wrong result, 1 raised IndexError."``. Timeouts and sandbox failures are error
    observations (``timeout``, ``sandbox_error``); an exception or non-zero exit of the agent's
    code is a normal result.

    ## Rewards
    ``success_reward`` (1.0) when the final answer's code passes every hidden test, 0 otherwise.
    ``submit`` does not end the episode and gives no reward: it is feedback. Invalid actions add
    the ``invalid_action`` penalty.

    ## Starting State
    A task drawn with the env's RNG from the split (or the one named in ``options``). Every
    ``run_python`` / ``submit`` call starts in a fresh, empty sandbox working directory; nothing
    persists between calls or episodes.

    ## Episode End
    Terminates on a final answer (graded by running the hidden tests on it), or on too many
    invalid actions if the policy says so; truncates after ``max_turns`` (default 10) steps.
    ``submit`` never ends the episode: ToolEnv episodes end with a final answer, so the graded
    artifact is the answer itself, and ``submit`` is how the agent tests it first.
    With ``turn_end="no_call"``, also on any action without a parseable tool call or final
    answer (unanswered: reward 0; see :class:`~toolgym.envs.turn_end.SingleRequestEnv`).

    ## Arguments
    Those of :class:`~toolgym.core.env.ToolEnv`, plus:

    * ``turn_end``: ``"tool"`` (default) or ``"no_call"`` (see
      :class:`~toolgym.envs.turn_end.SingleRequestEnv`).
    * ``sandbox``: ``"auto"`` (Docker when the daemon answers and the image exists, else the
      process backend with a logged warning), ``"docker"`` (raises
      :class:`~toolgym.sandbox.SandboxUnavailable` at construction if Docker cannot be used),
      ``"process"``, or a :class:`~toolgym.sandbox.Backend` instance to share (the env then
      never closes it). Default: the ``TOOLGYM_SANDBOX`` environment variable, else ``"auto"``.
      A backend the env creates is started on the first tool call and closed by ``close()``.
    * ``sandbox_options``: keyword arguments for :func:`~toolgym.sandbox.make_backend`
      (default ``{"pool_size": 1}``), e.g. ``{"image": "my-sandbox:latest"}``.
    * ``run_timeout_s`` (5.0): wall-clock limit of one ``run_python`` call.
    * ``test_timeout_s`` (1.0): wall-clock limit of one hidden test; after the first timeout
      the remaining tests count as timeouts without running.
    * ``max_stream_chars`` (1800): stdout and stderr are each cut to this many characters (and
      to half of ``max_output_chars``, so that both always fit in one observation).

    ``difficulty`` is ``"easy"`` (loops and strings, 8 tests), ``"medium"`` (parsing and
    encoding, 10 tests) or ``"hard"`` (matrices, intervals, expression evaluation, 12 tests).

    ## Version History
    * v0: initial release.
    """

    data_name = "code"
    oracle_cls = "toolgym.envs.code.oracle:CodeOracle"
    concurrent_tools = True
    """Tool calls wait on the sandbox (GIL released): ``gym.make_vec`` steps sub-envs in threads."""

    def __init__(
        self,
        *,
        sandbox: str | Backend | None = None,
        sandbox_options: Mapping[str, Any] | None = None,
        run_timeout_s: float = 5.0,
        test_timeout_s: float = 1.0,
        max_stream_chars: int = 1_800,
        max_turns: int = 10,
        **kwargs: Any,
    ) -> None:
        if sandbox is None:
            sandbox = os.environ.get(SANDBOX_ENV_VAR) or "auto"
        if isinstance(sandbox, str):
            factory.check_kind(sandbox)
        elif not isinstance(sandbox, Backend):
            raise ConfigError(
                f"sandbox must be one of {BACKEND_KINDS} or a toolgym.sandbox.Backend, "
                f"got {type(sandbox).__name__}."
            )
        if not run_timeout_s > 0 or not test_timeout_s > 0:
            raise ConfigError(
                f"run_timeout_s and test_timeout_s must be positive, got {run_timeout_s!r}, {test_timeout_s!r}."
            )
        if not isinstance(max_stream_chars, int) or max_stream_chars < 100:
            raise ConfigError(f"max_stream_chars must be an integer >= 100, got {max_stream_chars!r}.")
        self.sandbox_options: dict[str, Any] = {"pool_size": 1, **dict(sandbox_options or {})}
        self.run_timeout_s = float(run_timeout_s)
        self.test_timeout_s = float(test_timeout_s)
        self.max_stream_chars = max_stream_chars
        self._backend: Backend | None = None
        self._owns_backend = True
        if isinstance(sandbox, str):
            self.sandbox_kind = sandbox
            if sandbox == "docker":
                # Create the backend now, so that a missing Docker or image fails here with the
                # fix in the message (DockerBackend checks it), not at the first tool call. Its
                # containers still start at warm() or the first call, as for other kinds.
                self._backend = factory.make_backend("docker", **{"prestart": False, **self.sandbox_options})
        else:
            self.sandbox_kind = str(getattr(sandbox, "name", "auto"))
            self._backend = sandbox
            self._owns_backend = False
        super().__init__(max_turns=max_turns, **kwargs)

    # ------------------------------------------------------------------ sandbox
    @property
    def backend(self) -> Backend | None:
        """The sandbox backend in use (``None`` until the first tool call or :meth:`warm` of an
        env that creates its own, except with ``sandbox="docker"``: created at construction)."""
        return self._backend

    def warm(self) -> None:
        """Start the sandbox backend now (a pool backend starts its workers) rather than at the
        first tool call; ``gym.make_vec`` does this for all sub-envs at once.

        Raises:
            ToolError: (``sandbox_error``) if no backend can be started.
        """
        from toolgym.sandbox.pool import PooledBackend

        backend = self._sandbox()
        if self._owns_backend and isinstance(backend, PooledBackend):  # no-op once started
            try:
                backend.warm()
            except Exception as exc:  # noqa: BLE001 - the next tool call retries
                raise self._start_failed(exc) from None

    def _sandbox(self) -> Backend:
        """The backend, created on first use.

        Raises:
            ToolError: (``sandbox_error``) if no backend can be started.
        """
        if self._backend is None:
            try:
                self._backend = factory.make_backend(self.sandbox_kind, **self.sandbox_options)
            except Exception as exc:  # noqa: BLE001 - becomes an error observation, next call retries
                raise self._start_failed(exc) from None
            self._owns_backend = True
        return self._backend

    def _start_failed(self, exc: Exception) -> ToolError:
        """The ``sandbox_error`` for a backend that could not be started (logged)."""
        logger.warning("Could not start the %r sandbox: %s", self.sandbox_kind, exc)
        return ToolError(
            f"The sandbox could not be started ({type(exc).__name__}: {str(exc)[:200]}); "
            "this is not a problem with your code, try again.",
            ErrorCode.SANDBOX_ERROR,
        )

    def _execute(
        self, code: str, timeout: float, timeout_message: str, *, show_stdout: bool = False
    ) -> ExecResult:
        """Run ``code`` in a clean sandbox; return the result of code that finished in time.

        Raises:
            ToolError: from :func:`result_error`: ``sandbox_error`` if the sandbox failed (one
                that raises counts as failed: the env never crashes because of it), ``timeout``
                with ``timeout_message`` (followed by the stdout printed so far if
                ``show_stdout``) if the code ran past ``timeout`` s.
        """
        backend = self._sandbox()
        try:
            result = backend.run(code, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - the env never crashes because of the sandbox
            logger.warning("Sandbox run failed: %s", exc)
            result = ExecResult.failure(f"{type(exc).__name__}: {str(exc)[:200]}")
        if show_stdout and result.timed_out and result.stdout:
            timeout_message += "\nstdout before it was stopped:\n" + self._cut(
                result.stdout, result.stdout_truncated
            )
        error = result_error(result, timeout_message)
        if error is not None:
            raise error
        return result

    def run_hidden_tests(self, task: Task, code: str) -> Verdict:
        """Run ``task``'s hidden tests on ``code`` in the sandbox.

        Raises:
            ToolError: ``timeout`` if the whole run exceeded its limit, ``sandbox_error`` if the
                sandbox failed.
        """
        spec = task.answer
        function, cases, expected = spec["function"], spec["inputs"], spec["expected"]
        problem = compile_problem(code)
        if problem is not None:
            return Verdict(len(cases), 0, f"Your code does not compile: {problem}.")
        # Loading gets 2 test slots, each test one; after a timeout the rest are skipped.
        limit = self.test_timeout_s * (len(cases) + 3) + 2.0
        result = self._execute(
            harness_source(code, function, cases, self.test_timeout_s),
            limit,
            f"The hidden tests did not finish within {limit:g} s and were stopped.",
        )
        return score(result.stdout, expected, function)

    def close(self) -> None:
        """Close the sandbox backend if this env created it (a backend passed in is left open)."""
        backend, self._backend = self._backend, None
        if backend is not None and self._owns_backend:
            try:
                backend.close()
            except Exception:  # noqa: BLE001 - closing must not raise
                logger.warning("Closing the sandbox backend failed", exc_info=True)
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        # Backends hold processes and sockets: a clone creates its own of the same kind.
        state = super().__getstate__()
        state["_backend"] = None
        state["_owns_backend"] = True
        if self.sandbox_kind not in BACKEND_KINDS:
            state["sandbox_kind"] = "auto"
        return state

    # ------------------------------------------------------------------ tools
    def make_tools(self) -> list[Tool]:
        """``run_python(code)`` and ``submit(code)``."""
        code_schema = {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_CODE_CHARS,
                    "description": "Python 3 source code.",
                }
            },
            "required": ["code"],
            "additionalProperties": False,
        }
        return [
            Tool(
                name="run_python",
                description=(
                    "Run a Python 3 script (standard library only, no network, no input) in a "
                    "fresh sandbox and return its exit code, stdout and stderr (each cut to "
                    f"{self.max_stream_chars} characters). Stopped after {self.run_timeout_s:g} s."
                ),
                parameters=code_schema,
                fn=self._run_python,
                strict=True,
            ),
            Tool(
                name="submit",
                description=(
                    "Run the task's hidden unit tests on your solution code (which must define the "
                    "requested function) and return how many pass and how the others failed. Does "
                    "not end the episode: give the final solution as your final answer."
                ),
                parameters=code_schema,
                fn=self._submit,
                strict=True,
            ),
        ]

    def _run_python(self, code: str) -> str:
        result = self._execute(
            code,
            self.run_timeout_s,
            f"The code did not finish within {self.run_timeout_s:g} s and was stopped.",
            show_stdout=True,
        )
        return (
            f"exit code: {result.exit_code}\n"
            f"stdout:\n{self._cut(result.stdout, result.stdout_truncated) or '(empty)'}\n"
            f"stderr:\n{self._cut(result.stderr, result.stderr_truncated, tail=True) or '(empty)'}"
        )

    def _submit(self, code: str) -> str:
        if self._task is None:
            raise ToolError("No task is active; call reset() to start an episode.")
        verdict = self.run_hidden_tests(self._task, code)
        hint = (
            " All tests pass: give this code as your final answer to finish."
            if verdict.success
            else " Fix the code and submit again, or give your final answer."
        )
        return verdict.describe() + hint

    def _cut(self, text: str, truncated_by_sandbox: bool, tail: bool = False) -> str:
        """``text`` cut to ``max_stream_chars`` (its end kept for stderr, where tracebacks end),
        and to half the env's ``max_output_chars``, so both streams always fit in one output."""
        limit = min(self.max_stream_chars, max(100, (self.max_output_chars - 200) // 2))
        if len(text) > limit:
            dropped = len(text) - limit
            note = f"[... {dropped} characters cut ...]"
            text = note + "\n" + text[-limit:] if tail else text[:limit] + "\n" + note
        elif truncated_by_sandbox:
            text += "\n[... output cut by the sandbox ...]"
        return text.rstrip("\n")

    # ------------------------------------------------------------------ grading
    def check_answer(self, task: Task, answer: str) -> bool:
        """True if the answer's code passes every hidden test. A sandbox failure or a timeout
        while grading counts as a failure (and is logged)."""
        code = solution_code(answer)
        if not code.strip():
            return False
        try:
            return self.run_hidden_tests(task, code).success
        except ToolError as exc:
            if exc.code == ErrorCode.SANDBOX_ERROR:
                logger.warning("Grading task %s failed in the sandbox: %s", task.id, exc.message)
            return False
