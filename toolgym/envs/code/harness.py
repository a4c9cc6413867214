"""Hidden-test harness of ``ToolGym/Code-v0``: the program sent to the sandbox, and its verdict.

:func:`harness_source` builds a self-contained Python program that runs the agent's code in a
fresh namespace, calls the function on each hidden test's arguments (with a per-test time
limit) and prints one line: a marker followed by a JSON report with, per test, the returned value
(``{"v": ...}``), the exception type (``{"e": "TypeError"}``), a timeout (``{"t": 1}``; after
the first timeout the remaining tests are not run and count as timeouts too) or a value that
cannot be written as JSON (``{"u": "set"}``).

The **expected values never enter the sandbox**: they stay on the host, and
:func:`score` compares them with the values the program printed. Code that tampers with the
harness can therefore only fail, never fake a pass: to print the right values it has to compute
them. Values are compared after a JSON round trip (tuples equal lists), ``bool`` never equals a
number, and floats match within a relative tolerance of 1e-9.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MARKER = "@@toolgym-hidden-tests@@"
"""Prefix of the harness's result line."""
MAX_VALUE_CHARS = 4_000
"""A returned value whose JSON is longer than this counts as wrong (expected values are small)."""
FLOAT_REL_TOL = 1e-9

_PROGRAM = """\
import copy as _copy
import io as _io
import json as _json
import signal as _signal
import sys as _sys

_SOURCE = {source!r}
_NAME = {name!r}
_CASES = _json.loads({cases!r})
_PER_TEST = {per_test!r}
_MAX_CHARS = {max_chars!r}


class _TestTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _TestTimeout()


def _encode(value):
    try:
        text = _json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return {{"u": type(value).__name__}}
    if len(text) > _MAX_CHARS:
        return {{"u": "value too large"}}
    return {{"v": _json.loads(text)}}


def _main():
    real_stdout = _sys.stdout
    _sys.stdout = _io.StringIO()
    namespace = {{"__name__": "solution", "__builtins__": __builtins__}}
    report = {{"load_error": None, "missing": False, "results": []}}
    _signal.signal(_signal.SIGALRM, _alarm)
    try:
        _signal.setitimer(_signal.ITIMER_REAL, _PER_TEST * 2)
        exec(compile(_SOURCE, "<solution>", "exec"), namespace)
        _signal.setitimer(_signal.ITIMER_REAL, 0)
    except _TestTimeout:
        report["load_error"] = "TimeoutError: loading the code took longer than %g s" % (_PER_TEST * 2)
    except BaseException as exc:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        report["load_error"] = type(exc).__name__ + ": " + str(exc)[:200]
    function = namespace.get(_NAME)
    if report["load_error"] is None and not callable(function):
        report["missing"] = True
    if report["load_error"] is None and not report["missing"]:
        for args in _CASES:
            if report["results"] and "t" in report["results"][-1]:
                report["results"].append({{"t": 1}})  # one timeout is enough: skip the rest
                continue
            try:
                _signal.setitimer(_signal.ITIMER_REAL, _PER_TEST)
                value = function(*_copy.deepcopy(args))
                _signal.setitimer(_signal.ITIMER_REAL, 0)
                report["results"].append(_encode(value))
            except _TestTimeout:
                report["results"].append({{"t": 1}})
            except BaseException as exc:
                _signal.setitimer(_signal.ITIMER_REAL, 0)
                report["results"].append({{"e": type(exc).__name__}})
            _sys.stdout = _io.StringIO()
    _sys.stdout = real_stdout
    real_stdout.write("\\n" + {marker!r} + _json.dumps(report) + "\\n")
    real_stdout.flush()


_main()
"""


def harness_source(code: str, function: str, cases: list[list[Any]], per_test_timeout_s: float) -> str:
    """The program that runs ``code`` and calls ``function(*args)`` for each of ``cases``.

    Args:
        code: The agent's solution (any text; it is embedded as a string literal).
        function: Name of the function the solution must define.
        cases: Argument lists of the hidden tests (JSON values).
        per_test_timeout_s: Wall-clock limit of one call (and twice that for loading the code).
    """
    return _PROGRAM.format(
        source=code,
        name=function,
        cases=json.dumps(cases),
        per_test=float(per_test_timeout_s),
        max_chars=MAX_VALUE_CHARS,
        marker=MARKER,
    )


@dataclass(frozen=True)
class Verdict:
    """The outcome of running the hidden tests.

    Attributes:
        total: Number of hidden tests.
        passed: Tests whose result equals the expected value.
        problem: Why no test could run (code did not load, function missing...), else ``None``.
        failures: Counts of failure kinds: ``"wrong result"``, ``"timeout"``, an exception name,
            ``"returned a set"``...
    """

    total: int
    passed: int
    problem: str | None = None
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """Every hidden test passed."""
        return self.problem is None and self.passed == self.total

    def describe(self) -> str:
        """A one-paragraph report for the agent (counts only: the hidden tests stay hidden)."""
        if self.problem is not None:
            return f"Hidden tests: 0 of {self.total} passed. {self.problem}"
        text = f"Hidden tests: {self.passed} of {self.total} passed."
        if self.failures:
            parts = [
                f"{n} {kind}" for kind, n in sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0]))
            ]
            text += " Failures: " + ", ".join(parts) + "."
        return text


def values_equal(got: Any, expected: Any) -> bool:
    """Compare JSON values: ``bool`` only equals ``bool``, numbers compare numerically (floats
    within a relative tolerance of 1e-9), lists element-wise, dicts key by key."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(got, bool) and isinstance(expected, bool) and got == expected
    if isinstance(expected, int | float) and isinstance(got, int | float):
        if isinstance(expected, int) and isinstance(got, int):
            return got == expected
        return math.isclose(got, expected, rel_tol=FLOAT_REL_TOL, abs_tol=1e-12)
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(
            values_equal(g, e) for g, e in zip(got, expected, strict=True)
        )
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(values_equal(got[k], expected[k]) for k in expected)
    return type(got) is type(expected) and got == expected


def read_report(stdout: str) -> dict[str, Any] | None:
    """The harness's report from its stdout (its last marker line), or ``None`` if absent or
    malformed."""
    at = stdout.rfind(MARKER)
    if at < 0:
        return None
    line = stdout[at + len(MARKER) :].split("\n", 1)[0]
    try:
        report = json.loads(line)
    except ValueError:
        return None
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        return None
    return report


def score(stdout: str, expected: list[Any], function: str) -> Verdict:
    """Compare the harness's printed results with the ``expected`` values of the hidden tests."""
    total = len(expected)
    report = read_report(stdout)
    if report is None:
        return Verdict(
            total, 0,
            "The test run ended before reporting results (did the code exit the interpreter, "
            "kill its process or write over the output?).",
        )  # fmt: skip
    if report.get("load_error"):
        return Verdict(total, 0, f"Running your code raised {report['load_error']}.")
    if report.get("missing"):
        return Verdict(total, 0, f"Your code does not define a function named `{function}`.")
    results = report["results"]
    if len(results) != total:
        return Verdict(total, 0, "The test run reported a wrong number of results.")
    passed = 0
    failures: Counter[str] = Counter()
    for result, want in zip(results, expected, strict=True):
        if not isinstance(result, dict):
            failures["unreadable result"] += 1
        elif "v" in result:
            if values_equal(result["v"], want):
                passed += 1
            else:
                failures["wrong result"] += 1
        elif "t" in result:
            failures["timeout"] += 1
        elif "e" in result:
            failures[f"raised {str(result['e'])[:60]}"] += 1
        elif result.get("u") == "value too large":
            failures["returned a value too large"] += 1
        else:
            failures[f"returned a {str(result.get('u'))[:40]} (not a JSON value)"] += 1
    return Verdict(total, passed, None, dict(failures))
