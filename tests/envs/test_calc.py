"""Calc-v0: the generated word problems, the safe calculator, and the numeric grader.

The registry-wide suites (``tests/test_env_contract.py``, ``tests/test_oracles.py``) cover the env
contract and the oracle; these tests specify the data and the calculator's safety.
"""

from __future__ import annotations

import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolgym.core.actions import ToolCall, get_action_format
from toolgym.core.errors import ToolError
from toolgym.envs.calc.calculator import calculate, evaluate, format_number
from toolgym.envs.calc.env import CalcEnv
from toolgym.envs.calc.grading import number_matches, parse_numbers
from toolgym.envs.calc.templates import LEVELS, parse_problem

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "envs_data" / "calc"
HERMES = get_action_format("hermes")


# ----------------------------------------------------------------------------- data
@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_splits_are_balanced_across_difficulties(split: str) -> None:
    levels = CalcEnv(split=split).task_set.difficulties()
    assert set(levels) == set(LEVELS) and len(set(levels.values())) == 1


def test_prompts_are_unique_across_splits() -> None:
    prompts = [t.prompt for split in ("train", "dev", "test") for t in CalcEnv(split=split).task_set]
    assert len(prompts) == len(set(prompts))


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_every_problem_reads_back_and_the_calculator_reproduces_every_value(split: str) -> None:
    # Independent of the oracle: parse with the templates, compute each step with the calculator.
    for task in CalcEnv(split=split).task_set:
        parsed = parse_problem(task.prompt)
        assert parsed is not None, task.id
        value, steps = parsed
        assert [s.key for s, _, _ in steps] == task.metadata["steps"], task.id
        values = [calculate(value)]
        for step, x, y in steps:
            value = calculate(step.render_expression(value, x, y))
            values.append(value)
        assert values == task.metadata["values"], task.id
        assert value == task.answer, task.id


def test_harder_levels_have_more_steps_and_decimals() -> None:
    tasks = CalcEnv(split="test").task_set
    steps = {lv: Counter(len(t.metadata["steps"]) for t in tasks if t.difficulty == lv) for lv in LEVELS}
    assert max(steps["easy"]) < min(steps["hard"]) and max(steps["medium"]) <= max(steps["hard"])
    assert any("." in t.answer for t in tasks if t.difficulty == "hard")
    assert all("." not in t.answer for t in tasks if t.difficulty != "hard")


# ----------------------------------------------------------------------------- calculator
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("0.1 + 0.2", "0.3"),
        ("733.34 * (1 - 50 / 100)", "366.67"),
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("2 ** -3", "0.125"),
        ("2^10", "1024"),
        ("3 × 4 ÷ 6 − 1", "1"),
        ("-(-5)", "5"),
        ("1/7*7", "1"),
        ("sqrt(16) + abs(-2)", "6"),
        ("round(2.5) + round(-2.675, 2)", "0.32"),
        ("min(3, 1, 2) + max(3, 1, 2) + floor(2.7) + ceil(2.1)", "9"),
        ("10**99 - 1", "9" * 99),
        ("(" * 150 + "1" + ")" * 150, "1"),
    ],
)
def test_calculator_is_exact(expression: str, expected: str) -> None:
    assert calculate(expression) == expected


def test_inexact_results_are_marked_approximate() -> None:
    assert calculate("1/3") == "≈0.3333333333333333 (exactly 1/3)"
    assert calculate("sqrt(2)").startswith("≈1.41421356237309")
    assert calculate("pi").startswith("≈3.14159265358979")
    assert not evaluate("2 ** 0.5").exact and evaluate("4 ** 0.5").number == 2


NASTY_EXPRESSIONS: list[tuple[str, str]] = [
    ("9**9**9", "Overflow"),
    ("10**100000", "Overflow"),
    ("2**100000000000", "Overflow"),
    ("(10**50)**(10**50)", "Overflow"),
    ("10**99 * 10**99", "Overflow"),
    ("1e308 * 1e308", "Overflow"),
    ("1e99999", "out of range"),
    ("1e9999999999", "out of range"),
    ("1e-9999999999", "out of range"),
    ("10**100", "Overflow"),
    ("2**333", "Overflow"),
    ("1/0", "Division by zero"),
    ("1 // 0", "Division by zero"),
    ("5 % 0", "Division by zero"),
    ("0 ** -1", "Division by zero"),
    ("(-8) ** 0.5", "not real"),
    ("sqrt(-1)", "not real"),
    ("__import__('os').system('id')", "not allowed"),
    ("__import__('os')", "Unknown function"),
    ("().__class__", "Not allowed: attribute access"),
    ("().__class__.__bases__[0].__subclasses__()", "Not allowed"),
    ("(1).__add__(2)", "Not allowed: attribute access"),
    ("lambda: 1", "Not allowed: lambda"),
    ("[x for x in range(10**9)]", "Not allowed"),
    ("open('/etc/passwd').read()", "Not allowed"),
    ("eval('1')", "Unknown function 'eval'"),
    ("exec", "Unknown name 'exec'"),
    ("x", "Unknown name 'x'"),
    ("sqr(2)", "Did you mean 'sqrt'"),
    ("sqrt", "is a function"),
    ("'a' * 10**9", "Strings are not allowed"),
    ("b'x'", "not allowed"),
    ("1j", "not allowed"),
    ("True + 1", "not allowed"),
    ("None", "not allowed"),
    ("1 < 2", "Not allowed: comparisons"),
    ("1 if 1 else 2", "Not allowed: conditional"),
    ("(x := 5)", "Not allowed"),
    ("1,000", "thousands separators"),
    ("5 & 3", "not supported"),
    ("~5", "Only unary"),
    ("not 1", "Only unary"),
    ("abs(x=1)", "positional"),
    ("round(1, 2, 3)", "one or two arguments"),
    ("round(1, 0.5)", "ndigits must be an integer"),
    ("max()", "at least one argument"),
    ("x = 3", "Syntax error"),
    ("1 +", "Syntax error"),
    ("import os", "Syntax error"),
    ("1; 2", "Syntax error"),
    ("", "empty"),
    ("   ", "empty"),
    ("\x00", "Syntax error"),
    ("1" * 100_000, "at most"),
    ("9" * 5_000, "at most"),
    ("(" * 300 + "1" + ")" * 300, "at most"),
    ("(" * 210 + "1" + ")" * 210, "too many nested parentheses"),
    ("-" * 450 + "1", "too complex"),
    ("+".join(["1"] * 240), "too complex"),
    ("sqrt(" * 62 + "1" + ")" * 62, "nested too deeply"),
]


@pytest.mark.parametrize(("expression", "message"), NASTY_EXPRESSIONS, ids=range(len(NASTY_EXPRESSIONS)))
def test_nasty_expressions_are_refused_quickly_with_a_clear_error(expression: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ToolError) as caught:
        calculate(expression)
    assert time.perf_counter() - started < 0.5  # typically < 1 ms; generous for loaded CI machines
    assert message.lower() in caught.value.message.lower(), caught.value.message
    assert caught.value.code == "tool_error"


def test_calculator_errors_reach_the_agent_as_tool_errors() -> None:
    env = CalcEnv(split="test", max_turns=50)
    env.reset(seed=0)
    for expression, _ in NASTY_EXPRESSIONS[:20]:
        obs, reward, terminated, truncated, info = env.step(HERMES.render(ToolCall("calculator", {"expression": expression})))
        assert info["error"] == "tool_error" and not terminated and "[tool_error]" in obs
    *_, info = env.step(HERMES.render(ToolCall("calculator", {"expression": "2 + 2"})))
    assert info["error"] is None and info["tool_output"] == "4"


def test_results_needing_too_many_decimals_are_rounded_not_refused() -> None:
    assert calculate("1.005 ** 360").startswith("≈6.0225752122632")
    assert calculate("10 ** -200") == "≈0"
    assert calculate("0.1 ** 60").startswith("≈1e-60")
    assert not evaluate("1.5e-150").exact


def test_format_number_writes_terminating_decimals_in_full() -> None:
    assert format_number(Fraction(51, 4)) == "12.75"
    assert format_number(Fraction(-1, 8)) == "-0.125"
    assert format_number(Fraction(10**20)) == "1" + "0" * 20
    assert format_number(Fraction(1, 2**40)).startswith("≈")  # 40 decimals: rounded


# ----------------------------------------------------------------------------- grading
@pytest.mark.parametrize(
    ("answer", "gold", "ok"),
    [
        ("55", "55", True),
        ("55 apples", "55", True),
        ("The answer is 55.", "55", True),
        ("$1,234.50", "1234.5", True),
        ("1234.50 dollars", "1234.5", True),
        ("−3", "-3", True),
        ("3/4", "0.75", True),
        ("1e3", "1000", True),
        ("1.0000001", "1", True),  # within relative tolerance 1e-6
        ("1.00001", "1", False),
        ("54", "55", False),
        ("55 or 56", "55", False),  # exactly one number is required
        ("72 - 17 = 55", "55", False),
        ("fifty-five", "55", False),
        ("", "55", False),
        ("1,2,3", "1", False),
    ],
)
def test_numeric_grading(answer: str, gold: str, ok: bool) -> None:
    assert number_matches(answer, gold) is ok


def test_parse_numbers_handles_separators_and_signs() -> None:
    assert parse_numbers("$1,234.50 and -3/4") == [Fraction(2469, 2), Fraction(-3, 4)]
    assert parse_numbers("no digits") == []


def test_oracle_works_in_other_action_formats() -> None:
    for fmt in ("pythonic", "openai_json", "xml_call"):
        env = CalcEnv(split="test", action_format=fmt)
        oracle = env.make_oracle()
        for seed in range(5):
            obs, info = env.reset(seed=seed)
            oracle.reset(seed=seed)
            for _ in range(env.max_turns):
                obs, reward, terminated, truncated, info = env.step(oracle.act(obs, info))
                if terminated or truncated:
                    break
            assert info["success"], (fmt, info["task_id"])


_atoms = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.sampled_from(["pi", "e", "x", "1e400", "9" * 120, "0", "()", "''", "[]"]),
)
_expressions = st.recursive(
    _atoms,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "^", ",", " ", "."]), inner).map("".join),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"-{e}"),
        st.tuples(st.sampled_from(["sqrt", "abs", "round", "min", "max", "floor", "eval", "getattr"]), inner)
        .map(lambda t: f"{t[0]}({t[1]})"),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(expression=st.one_of(_expressions, st.text(max_size=60)))
def test_calculator_never_raises_anything_but_tool_errors(expression: str) -> None:
    started = time.perf_counter()
    try:
        result = calculate(expression)
    except ToolError as exc:
        assert exc.message
    else:
        assert isinstance(result, str) and result
    assert time.perf_counter() - started < 0.5


def test_results_do_not_depend_on_the_callers_decimal_context() -> None:
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = 12
        assert calculate("1/3") == "≈0.3333333333333333 (exactly 1/3)"
        assert calculate("1.005 ** 360").startswith("≈6.0225752122632")
