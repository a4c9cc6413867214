"""Task families of ``ToolGym/Code-v0``: a function to write, its parameters and a reference.

Each :class:`Family` is one kind of programming task (FizzBuzz variants, run-length encoding,
matrix rotation...). A family has a signature, a description written as a
:class:`string.Template` over its parameters, a reference solution (another template), and
samplers for parameters and hidden-test inputs (used by ``envs_data/code/generate.py``).

The same templates read a prompt back: :func:`parse_prompt` compiles every description into a
regular expression, recovers the family and its parameters, and :meth:`Family.solution`
renders the reference. The scripted oracle solves tasks this way, from the prompt alone.

This module is stdlib-only: the data generator loads it by file path without importing
``toolgym``.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

LEVELS: tuple[str, ...] = ("easy", "medium", "hard")
"""Difficulty levels, easiest first."""

PROMPT_HEAD = "Write a Python function `{signature}` that {description}."
"""First paragraph of every prompt."""
PROMPT_EXAMPLE = "Example: `{call}` returns `{result}`."
"""Second paragraph: one visible example."""
PROMPT_TAIL = (
    "Hidden unit tests ({n} of them) call `{function}` with other inputs and compare the results "
    "with the expected values. Use `run_python` to try code in a sandbox and `submit` to run the "
    "hidden tests on your code and see how many pass. Finish with your complete solution (the "
    "definition of `{function}` and any imports or helpers it needs) as the final answer; the "
    "final answer is graded by the hidden tests."
)
"""Last paragraph of every prompt."""

_HEAD_RE = re.compile(
    r"^Write a Python function `(?P<name>[a-z_]+)\((?P<args>[^`]*)` that (?P<description>.*)\.$"
)


@dataclass(frozen=True)
class Param:
    """A family parameter.

    Attributes:
        kind: ``"int"`` (written as digits), ``"str"`` (written as a Python literal in single
            quotes, no quotes or backslashes inside) or ``"choice"`` (one of ``choices``'s keys,
            written bare).
        choices: For ``"choice"``: the text shown in the prompt -> the Python literal that
            replaces the parameter in the reference solution.
    """

    kind: str
    choices: Mapping[str, str] = field(default_factory=dict)

    def pattern(self, name: str) -> str:
        """A regex with one named group that matches how a value of this parameter is written."""
        if self.kind == "int":
            return rf"(?P<{name}>-?\d+)"
        if self.kind == "str":
            return rf"'(?P<{name}>[^'\\\n]*)'"
        options = sorted(self.choices, key=len, reverse=True)
        return f"(?P<{name}>{'|'.join(re.escape(o) for o in options)})"

    def text(self, value: Any) -> str:
        """How ``value`` is written in the prompt."""
        return repr(value) if self.kind == "str" else str(value)

    def code(self, value: Any) -> str:
        """The Python literal that replaces the parameter in the reference solution."""
        return self.choices[value] if self.kind == "choice" else repr(value)

    def read(self, text: str) -> Any:
        """Inverse of :meth:`text` (given the regex group)."""
        return int(text) if self.kind == "int" else text


@dataclass(frozen=True)
class Family:
    """One kind of task.

    Attributes:
        key: Stable identifier (stored in task metadata).
        level: Difficulty (one of :data:`LEVELS`).
        function: Name of the function to write.
        signature: ``name(args) -> type`` as shown in the prompt.
        description: :class:`string.Template` text; ``$param`` is replaced by the parameter's
            :meth:`Param.text`.
        params: Parameter specs, by name.
        solution: :class:`string.Template` source of the reference solution; ``$param`` is
            replaced by :meth:`Param.code`.
        sample_params: Draws parameter values.
        sample_inputs: Draws the argument lists of the hidden tests (edge cases first).
    """

    key: str
    level: str
    function: str
    signature: str
    description: str
    params: Mapping[str, Param]
    solution: str
    sample_params: Callable[[random.Random], dict[str, Any]]
    sample_inputs: Callable[[random.Random, dict[str, Any], int], list[list[Any]]]

    def describe(self, values: Mapping[str, Any]) -> str:
        """The description with ``values`` filled in."""
        return string.Template(self.description).substitute(
            {name: spec.text(values[name]) for name, spec in self.params.items()}
        )

    def source(self, values: Mapping[str, Any]) -> str:
        """The reference solution's source for ``values``."""
        return (
            string.Template(self.solution)
            .substitute({name: spec.code(values[name]) for name, spec in self.params.items()})
            .strip()
            + "\n"
        )

    def description_regex(self) -> re.Pattern[str]:
        """A regex that matches :meth:`describe`'s output and captures every parameter."""
        parts: list[str] = []
        seen: set[str] = set()
        pos = 0
        for match in string.Template.pattern.finditer(self.description):
            parts.append(re.escape(self.description[pos : match.start()]))
            name = match.group("named") or match.group("braced")
            if name is None:  # "$$" escapes a dollar sign
                parts.append(re.escape("$"))
            elif name in seen:
                parts.append(f"'(?P={name})'" if self.params[name].kind == "str" else f"(?P={name})")
            else:
                seen.add(name)
                parts.append(self.params[name].pattern(name))
            pos = match.end()
        parts.append(re.escape(self.description[pos:]))
        return re.compile("^" + "".join(parts) + "$")

    def read(self, description: str) -> dict[str, Any] | None:
        """The parameter values of a description of this family, or ``None`` if it is not one."""
        match = self.description_regex().match(description)
        if match is None:
            return None
        return {name: spec.read(match.group(name)) for name, spec in self.params.items()}


def call_text(function: str, args: list[Any]) -> str:
    """``name(arg1, arg2)`` with each argument as a Python literal."""
    return f"{function}({', '.join(repr(a) for a in args)})"


def render_prompt(
    family: Family, values: Mapping[str, Any], example: list[Any], result: Any, n_tests: int
) -> str:
    """The full task prompt: the specification, one example and the instructions."""
    return "\n\n".join(
        [
            PROMPT_HEAD.format(signature=family.signature, description=family.describe(values)),
            PROMPT_EXAMPLE.format(call=call_text(family.function, example), result=repr(result)),
            PROMPT_TAIL.format(n=n_tests, function=family.function),
        ]
    )


def parse_prompt(prompt: str) -> tuple[Family, dict[str, Any]] | None:
    """Recover the family and parameters of a prompt written by :func:`render_prompt`.

    Returns ``None`` if the prompt was not written from these templates (or is ambiguous).
    """
    head = prompt.strip().split("\n\n", 1)[0]
    match = _HEAD_RE.match(head)
    if match is None:
        return None
    readings = []
    for family in FAMILIES:
        if family.function != match.group("name"):
            continue
        values = family.read(match.group("description"))
        if values is not None:
            readings.append((family, values))
    return readings[0] if len(readings) == 1 else None


# --------------------------------------------------------------------------------------- helpers
_LETTERS = string.ascii_lowercase
_WORDS = (
    "apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "piano", "quartz", "ember",
    "fox", "owl", "sky", "ink", "jam", "a", "I", "to", "be", "Zebra", "Mango", "Delta", "Echo",
)  # fmt: skip
_NAMES = ("Fizz", "Buzz", "Foo", "Bar", "Ping", "Pong", "Zip", "Zap", "Tik", "Tok", "Bim", "Bam")


def _sentence(rng: random.Random, words: int, spaces: tuple[str, ...] = (" ",)) -> str:
    return "".join(rng.choice(_WORDS) + rng.choice(spaces) for _ in range(words)).rstrip(" ")


def _runs(rng: random.Random, alphabet: str, pieces: int, longest: int) -> str:
    out = []
    for _ in range(pieces):
        out.append(rng.choice(alphabet) * rng.randint(1, longest))
    return "".join(out)


def _matrix(rng: random.Random, rows: int, cols: int, low: int = -9, high: int = 20) -> list[list[int]]:
    return [[rng.randint(low, high) for _ in range(cols)] for _ in range(rows)]


# ------------------------------------------------------------------------------------ families
def _fizzbuzz_params(rng: random.Random) -> dict[str, Any]:
    a = rng.randint(2, 7)
    b = rng.choice([x for x in range(a + 1, 10) if x % a])
    w1, w2 = rng.sample(_NAMES, 2)
    return {"a": a, "b": b, "w1": w1, "w2": w2}


FIZZBUZZ = Family(
    key="fizzbuzz",
    level="easy",
    function="fizzbuzz",
    signature="fizzbuzz(n: int) -> list[str]",
    description=(
        "returns a list with one string for each integer i from 1 to n in order: $w1 followed by "
        "$w2 if i is divisible by both $a and $b, $w1 if i is divisible by $a only, $w2 if i is "
        "divisible by $b only, and str(i) otherwise (an empty list if n < 1)"
    ),
    params={"a": Param("int"), "b": Param("int"), "w1": Param("str"), "w2": Param("str")},
    solution="""
def fizzbuzz(n):
    out = []
    for i in range(1, n + 1):
        word = ''
        if i % $a == 0:
            word += $w1
        if i % $b == 0:
            word += $w2
        out.append(word or str(i))
    return out
""",
    sample_params=_fizzbuzz_params,
    sample_inputs=lambda rng, p, n: (
        [[0], [1], [p["a"] * p["b"]]] + [[rng.randint(2, 40)] for _ in range(n - 3)]
    ),
)

_REVERSE_MODES = {
    "reverses the order of the words": "'order'",
    "reverses the letters of each word but keeps the word order": "'letters'",
    "reverses both the word order and the letters of each word": "'both'",
}


def _reverse_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    cases: list[list[Any]] = [[""], ["   "], [_sentence(rng, 1)]]
    while len(cases) < n:
        cases.append([" " * rng.randint(0, 2) + _sentence(rng, rng.randint(2, 7), (" ", "  ", "\t", " \n "))])
    return cases


REVERSE_WORDS = Family(
    key="reverse_words",
    level="easy",
    function="reverse_words",
    signature="reverse_words(s: str) -> str",
    description=(
        "splits s into words (maximal runs of non-whitespace characters), drops the words shorter "
        "than $m characters, $mode, and returns the words joined by $sep"
    ),
    params={"m": Param("int"), "mode": Param("choice", _REVERSE_MODES), "sep": Param("str")},
    solution="""
def reverse_words(s):
    words = [w for w in s.split() if len(w) >= $m]
    mode = $mode
    if mode in ('order', 'both'):
        words = words[::-1]
    if mode in ('letters', 'both'):
        words = [w[::-1] for w in words]
    return $sep.join(words)
""",
    sample_params=lambda rng: {
        "m": rng.randint(1, 4),
        "mode": rng.choice(sorted(_REVERSE_MODES)),
        "sep": rng.choice([" ", "-", ", ", "_", "/", " | "]),
    },
    sample_inputs=_reverse_inputs,
)

_CASE_RULES = {
    "ignoring case": "True",
    "comparing case-sensitively": "False",
}


def _count_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    pool = string.ascii_letters + "  .,!?0123"
    cases: list[list[Any]] = [[""], [p["chars"].upper()]]
    while len(cases) < n:
        cases.append(["".join(rng.choice(pool) for _ in range(rng.randint(1, 40)))])
    return cases


COUNT_CHARS = Family(
    key="count_chars",
    level="easy",
    function="count_chars",
    signature="count_chars(s: str) -> int",
    description="returns how many characters of s are one of the letters in $chars, $case",
    params={"chars": Param("str"), "case": Param("choice", _CASE_RULES)},
    solution="""
def count_chars(s):
    letters = $chars
    if $case:
        s = s.lower()
    return sum(1 for c in s if c in letters)
""",
    sample_params=lambda rng: {
        "chars": "".join(sorted(rng.sample(_LETTERS, rng.randint(2, 6)))),
        "case": rng.choice(sorted(_CASE_RULES)),
    },
    sample_inputs=_count_inputs,
)

_BOUNDS = {"less than": "0", "less than or equal to": "1"}


def _multiples_params(rng: random.Random) -> dict[str, Any]:
    a, b = sorted(rng.sample(range(2, 13), 2))
    return {"a": a, "b": b, "bound": rng.choice(sorted(_BOUNDS))}


SUM_MULTIPLES = Family(
    key="sum_multiples",
    level="easy",
    function="sum_multiples",
    signature="sum_multiples(n: int) -> int",
    description=(
        "returns the sum of all integers k with 1 <= k and k $bound n that are divisible by $a or "
        "by $b (0 if there are none)"
    ),
    params={"a": Param("int"), "b": Param("int"), "bound": Param("choice", _BOUNDS)},
    solution="""
def sum_multiples(n):
    return sum(k for k in range(1, n + $bound) if k % $a == 0 or k % $b == 0)
""",
    sample_params=_multiples_params,
    sample_inputs=lambda rng, p, n: (
        [[0], [1], [p["a"]], [p["b"]], [p["a"] * p["b"]]] + [[rng.randint(2, 1000)] for _ in range(n - 5)]
    ),
)

DIGIT_POWER_SUM = Family(
    key="digit_power_sum",
    level="easy",
    function="digit_power_sum",
    signature="digit_power_sum(n: int) -> int",
    description=(
        "returns the sum of the digits of the non-negative integer n written in base $base, each "
        "digit raised to the power $p"
    ),
    params={"base": Param("int"), "p": Param("int")},
    solution="""
def digit_power_sum(n):
    total = 0
    while n > 0:
        n, digit = divmod(n, $base)
        total += digit ** $p
    return total
""",
    sample_params=lambda rng: {"base": rng.randint(2, 16), "p": rng.randint(1, 5)},
    sample_inputs=lambda rng, p, n: (
        [[0], [1], [p["base"] - 1], [p["base"]]]
        + [[rng.randint(2, 10 ** rng.randint(2, 7))] for _ in range(n - 4)]
    ),
)

_RLE_ORDERS = {
    "the run length followed by the character": "True",
    "the character followed by the run length": "False",
}
_RLE_SINGLES = {
    "a run of length 1 is written with its length too": "True",
    "a run of length 1 is written as the character alone": "False",
}


def _rle_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    cases: list[list[Any]] = [[""], ["x"], ["q" * rng.randint(10, 25)]]
    while len(cases) < n:
        cases.append([_runs(rng, "abcdeXY", rng.randint(2, 8), 5)])
    return cases


RLE_ENCODE = Family(
    key="rle_encode",
    level="medium",
    function="rle_encode",
    signature="rle_encode(s: str) -> str",
    description=(
        "run-length encodes s: every maximal run of one repeated character becomes $order ($single), "
        "and the pieces are joined by $sep"
    ),
    params={
        "order": Param("choice", _RLE_ORDERS),
        "single": Param("choice", _RLE_SINGLES),
        "sep": Param("str"),
    },
    solution="""
def rle_encode(s):
    pieces = []
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        length = j - i
        if length == 1 and not $single:
            pieces.append(s[i])
        elif $order:
            pieces.append(str(length) + s[i])
        else:
            pieces.append(s[i] + str(length))
        i = j
    return $sep.join(pieces)
""",
    sample_params=lambda rng: {
        "order": rng.choice(sorted(_RLE_ORDERS)),
        "single": rng.choice(sorted(_RLE_SINGLES)),
        "sep": rng.choice(["", ",", ";", " ", "|", "-"]),
    },
    sample_inputs=_rle_inputs,
)


def _rle_decode_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    count_first = p["order"] == "the run length followed by the character"
    plain = [""] + ["".join(_runs(rng, "abcdeXY", rng.randint(1, 7), 13)) for _ in range(n - 1)]
    cases = []
    for text in plain:
        pieces, i = [], 0
        while i < len(text):
            j = i
            while j < len(text) and text[j] == text[i]:
                j += 1
            count = str(j - i)
            pieces.append(count + text[i] if count_first else text[i] + count)
            i = j
        cases.append([p["sep"].join(pieces)])
    return cases


RLE_DECODE = Family(
    key="rle_decode",
    level="medium",
    function="rle_decode",
    signature="rle_decode(s: str) -> str",
    description=(
        "decodes a run-length encoded string s and returns the decoded text: s is a sequence of "
        "pieces joined by $sep, each piece is $order, and a length may have several digits"
    ),
    params={"order": Param("choice", _RLE_ORDERS), "sep": Param("str")},
    solution="""
import re

def rle_decode(s):
    sep = $sep
    if sep:
        s = s.replace(sep, '')
    if $order:
        return ''.join(ch * int(k) for k, ch in re.findall(r'(\\d+)(\\D)', s))
    return ''.join(ch * int(k) for ch, k in re.findall(r'(\\D)(\\d+)', s))
""",
    sample_params=lambda rng: {
        "order": rng.choice(sorted(_RLE_ORDERS)),
        "sep": rng.choice(["", ",", ";", " ", "|", "/"]),
    },
    sample_inputs=_rle_decode_inputs,
)

_NUMBER_RESULTS = {
    "the list of the integers": "'list'",
    "the sum of the integers": "'sum'",
    "the number of distinct integers": "'distinct'",
}
_SIGNS = {
    "a '-' directly before the digits makes the integer negative": "r'-?\\d+'",
    "a '-' sign is ignored, so every integer is non-negative": "r'\\d+'",
}


def _numbers_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    cases: list[list[Any]] = [[""], ["no digits here"], ["7"]]
    while len(cases) < n:
        parts = []
        for _ in range(rng.randint(2, 8)):
            kind = rng.random()
            if kind < 0.4:
                parts.append(rng.choice(_WORDS))
            elif kind < 0.6:
                parts.append("-" + str(rng.randint(0, 999)))
            elif kind < 0.7:
                parts.append(f"{rng.randint(1, 99)}-{rng.randint(1, 99)}")
            else:
                parts.append(str(rng.randint(0, 5000)))
        cases.append([rng.choice([" ", ", ", "; ", "x"]).join(parts)])
    return cases


PARSE_NUMBERS = Family(
    key="parse_numbers",
    level="medium",
    function="parse_numbers",
    signature="parse_numbers(s: str) -> list[int] | int",
    description=(
        "finds every integer written in s (a maximal run of the digits 0-9; $sign) and returns "
        "$result, in order of appearance for a list, 0 for a sum or count without integers"
    ),
    params={"sign": Param("choice", _SIGNS), "result": Param("choice", _NUMBER_RESULTS)},
    solution="""
import re

def parse_numbers(s):
    numbers = [int(x) for x in re.findall($sign, s)]
    kind = $result
    if kind == 'sum':
        return sum(numbers)
    if kind == 'distinct':
        return len(set(numbers))
    return numbers
""",
    sample_params=lambda rng: {
        "sign": rng.choice(sorted(_SIGNS)),
        "result": rng.choice(sorted(_NUMBER_RESULTS)),
    },
    sample_inputs=_numbers_inputs,
)

_DIRECTIONS = {"forward": "1", "backward": "-1"}


def _caesar_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    cases: list[list[Any]] = [[""], ["xyz XYZ abc"], ["été 123!"]]
    pool = string.ascii_letters + " ,.!?-09"
    while len(cases) < n:
        cases.append(["".join(rng.choice(pool) for _ in range(rng.randint(1, 40)))])
    return cases


CAESAR = Family(
    key="caesar",
    level="medium",
    function="caesar",
    signature="caesar(s: str) -> str",
    description=(
        "shifts every ASCII letter of s by $k positions $direction in the alphabet, wrapping "
        "around between z and a, keeping each letter's case, and leaves all other characters "
        "unchanged"
    ),
    params={"k": Param("int"), "direction": Param("choice", _DIRECTIONS)},
    solution="""
def caesar(s):
    shift = $direction * $k
    out = []
    for c in s:
        if 'a' <= c <= 'z':
            out.append(chr((ord(c) - 97 + shift) % 26 + 97))
        elif 'A' <= c <= 'Z':
            out.append(chr((ord(c) - 65 + shift) % 26 + 65))
        else:
            out.append(c)
    return ''.join(out)
""",
    sample_params=lambda rng: {"k": rng.randint(1, 25), "direction": rng.choice(sorted(_DIRECTIONS))},
    sample_inputs=_caesar_inputs,
)


def _top_words_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    cases: list[list[Any]] = [[""], ["... 123 !!"], ["Echo echo ECHO delta"]]
    while len(cases) < n:
        words = [rng.choice(_WORDS[: rng.randint(4, len(_WORDS))]) for _ in range(rng.randint(3, 25))]
        cases.append([rng.choice([" ", ", ", ". ", "-"]).join(words)])
    return cases


TOP_WORDS = Family(
    key="top_words",
    level="medium",
    function="top_words",
    signature="top_words(text: str) -> list[str]",
    description=(
        "returns the $k most frequent words of text, most frequent first, ties in alphabetical "
        "order (all of them if there are fewer); words are maximal runs of ASCII letters, compared "
        "in lower case and returned in lower case, and words shorter than $m letters are ignored"
    ),
    params={"k": Param("int"), "m": Param("int")},
    solution="""
import re
from collections import Counter

def top_words(text):
    words = [w.lower() for w in re.findall(r'[A-Za-z]+', text) if len(w) >= $m]
    counts = Counter(words)
    return sorted(counts, key=lambda w: (-counts[w], w))[:$k]
""",
    sample_params=lambda rng: {"k": rng.randint(1, 5), "m": rng.randint(1, 3)},
    sample_inputs=_top_words_inputs,
)

_BRACKETS = ("()", "[]", "{}", "<>")


def _balanced_params(rng: random.Random) -> dict[str, Any]:
    chosen = sorted(rng.sample(range(4), rng.randint(1, 4)))
    return {"pairs": "".join(_BRACKETS[i] for i in chosen)}


def _balanced_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    pairs = [p["pairs"][i : i + 2] for i in range(0, len(p["pairs"]), 2)]
    cases: list[list[Any]] = [[""], [pairs[0][1] + pairs[0][0]], [pairs[0][0] * 3]]

    def nested(depth: int) -> str:
        if depth == 0 or rng.random() < 0.3:
            return rng.choice(["", "a", "x1", " "])
        pair = rng.choice(pairs)
        return pair[0] + nested(depth - 1) + pair[1] + nested(depth - 1)

    while len(cases) < n:
        text = nested(4)
        if rng.random() < 0.5 and text:
            i = rng.randrange(len(text))
            noise = rng.choice("()[]{}<>")
            text = text[:i] + noise + text[i + 1 :] if rng.random() < 0.5 else text[:i] + noise + text[i:]
        cases.append([text])
    return cases


IS_BALANCED = Family(
    key="is_balanced",
    level="medium",
    function="is_balanced",
    signature="is_balanced(s: str) -> bool",
    description=(
        "returns True if the brackets of the pairs in $pairs (each pair written as opening then "
        "closing bracket) are balanced and properly nested in s, else False; every other "
        "character is ignored"
    ),
    params={"pairs": Param("str")},
    solution="""
def is_balanced(s):
    pairs = $pairs
    closer = {pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2)}
    closing = set(closer.values())
    stack = []
    for c in s:
        if c in closer:
            stack.append(closer[c])
        elif c in closing:
            if not stack or stack.pop() != c:
                return False
    return not stack
""",
    sample_params=_balanced_params,
    sample_inputs=_balanced_inputs,
)


def _matmul_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    cases: list[list[Any]] = [[[[1]], [[p["m"] + 1]]], [[[2, 3]], [[4], [5]]]]
    while len(cases) < n:
        rows, inner, cols = rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 4)
        cases.append([_matrix(rng, rows, inner), _matrix(rng, inner, cols)])
    return cases


MATMUL_MOD = Family(
    key="matmul_mod",
    level="hard",
    function="matmul_mod",
    signature="matmul_mod(a: list[list[int]], b: list[list[int]]) -> list[list[int]]",
    description=(
        "returns the matrix product of a and b (matrices given as lists of rows, a has as many "
        "columns as b has rows) with every entry reduced modulo $m, so that each entry is in the "
        "range 0 to $m - 1"
    ),
    params={"m": Param("int")},
    solution="""
def matmul_mod(a, b):
    return [
        [sum(a[i][k] * b[k][j] for k in range(len(b))) % $m for j in range(len(b[0]))]
        for i in range(len(a))
    ]
""",
    sample_params=lambda rng: {"m": rng.randint(2, 1000)},
    sample_inputs=_matmul_inputs,
)

_TURNS = {"clockwise": "1", "counterclockwise": "-1"}


def _matrix_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    cases: list[list[Any]] = [[[[7]]], [[[1, 2, 3]]], [[[1], [2], [3]]]]
    while len(cases) < n:
        cases.append([_matrix(rng, rng.randint(1, 5), rng.randint(1, 5))])
    return cases


ROTATE_MATRIX = Family(
    key="rotate_matrix",
    level="hard",
    function="rotate_matrix",
    signature="rotate_matrix(m: list[list[int]]) -> list[list[int]]",
    description=(
        "returns the rectangular matrix m (a non-empty list of rows) rotated by $k quarter turns "
        "$direction, as a new list of rows"
    ),
    params={"k": Param("int"), "direction": Param("choice", _TURNS)},
    solution="""
def rotate_matrix(m):
    rows = [list(r) for r in m]
    for _ in range(($direction * $k) % 4):
        rows = [list(r) for r in zip(*rows[::-1])]
    return rows
""",
    sample_params=lambda rng: {"k": rng.randint(1, 3), "direction": rng.choice(sorted(_TURNS))},
    sample_inputs=_matrix_inputs,
)

_CORNERS = {"top-left": "0", "top-right": "1", "bottom-right": "2", "bottom-left": "3"}

SPIRAL_ORDER = Family(
    key="spiral_order",
    level="hard",
    function="spiral_order",
    signature="spiral_order(m: list[list[int]]) -> list[int]",
    description=(
        "returns all elements of the rectangular matrix m (a non-empty list of rows) in spiral "
        "order: start at the $corner corner, walk along the border $direction, then continue "
        "inwards ring by ring"
    ),
    params={"corner": Param("choice", _CORNERS), "direction": Param("choice", _TURNS)},
    solution="""
def spiral_order(m):
    rows = [list(r) for r in m]
    corner = $corner
    if $direction < 0:
        rows = [list(r) for r in zip(*rows)]
        corner = (0, 3, 2, 1)[corner]
    for _ in range(corner):
        rows = [list(r) for r in zip(*rows)][::-1]
    out = []
    while rows:
        out += rows.pop(0)
        rows = [list(r) for r in zip(*rows)][::-1]
    return out
""",
    sample_params=lambda rng: {
        "corner": rng.choice(sorted(_CORNERS)),
        "direction": rng.choice(sorted(_TURNS)),
    },
    sample_inputs=_matrix_inputs,
)


def _interval_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    cases: list[list[Any]] = [[[]], [[[3, 5]]], [[[1, 2], [2 + p["g"], 9]]], [[[5, 6], [1, 10]]]]
    while len(cases) < n:
        items = []
        for _ in range(rng.randint(2, 8)):
            start = rng.randint(-20, 40)
            items.append([start, start + rng.randint(0, 8)])
        cases.append([items])
    return cases


MERGE_INTERVALS = Family(
    key="merge_intervals",
    level="hard",
    function="merge_intervals",
    signature="merge_intervals(intervals: list[list[int]]) -> list[list[int]]",
    description=(
        "merges the intervals [start, end] (integers with start <= end, in any order) and returns "
        "the merged intervals as [start, end] lists sorted by start; two intervals are merged when "
        "the later one starts at most $g after the earlier one ends (or they overlap)"
    ),
    params={"g": Param("int")},
    solution="""
def merge_intervals(intervals):
    merged = []
    for start, end in sorted(intervals):
        if merged and start - merged[-1][1] <= $g:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
""",
    sample_params=lambda rng: {"g": rng.randint(0, 5)},
    sample_inputs=_interval_inputs,
)

_ROUNDINGS = {"rounding down (floor division)": "True", "rounding toward zero": "False"}


def _rpn_case(rng: random.Random, p: dict[str, Any], depth: int) -> tuple[list[str], int]:
    """A random RPN token list and its value (division by zero and huge values avoided)."""
    if depth == 0 or rng.random() < 0.25:
        value = rng.randint(-9, 20)
        return [str(value)], value
    left, a = _rpn_case(rng, p, depth - 1)
    op = rng.choice(["+", "-", "*", "/", p["pow"]])
    if op == p["pow"]:
        exponent = rng.randint(0, 3)
        return left + [str(exponent), op], a**exponent
    right, b = _rpn_case(rng, p, depth - 1)
    if op == "/" and b == 0:
        op = "+"
    if op == "+":
        return left + right + [op], a + b
    if op == "-":
        return left + right + [op], a - b
    if op == "*":
        return left + right + [op], a * b
    floor = p["rounding"] == "rounding down (floor division)"
    quotient = a // b if floor else abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
    return left + right + [op], quotient


def _rpn_inputs(rng: random.Random, p: dict[str, Any], n: int) -> list[list[Any]]:
    cases: list[list[Any]] = [[["42"]], [["7", "-2", "/"]], [["2", "3", p["pow"]]]]
    while len(cases) < n:
        tokens, value = _rpn_case(rng, p, rng.randint(2, 4))
        if len(tokens) > 1 and abs(value) < 10**9:
            cases.append([tokens])
    return cases


EVAL_RPN = Family(
    key="eval_rpn",
    level="hard",
    function="eval_rpn",
    signature="eval_rpn(tokens: list[str]) -> int",
    description=(
        "evaluates an expression in reverse Polish notation given as a list of tokens and returns "
        "the integer result; a token is an integer (possibly negative, like '-3') or one of the "
        "operators '+', '-', '*', '/' (integer division, $rounding) and $pow (power, with a "
        "non-negative exponent)"
    ),
    params={"rounding": Param("choice", _ROUNDINGS), "pow": Param("str")},
    solution="""
def eval_rpn(tokens):
    stack = []
    for token in tokens:
        if token in ('+', '-', '*', '/', $pow):
            b = stack.pop()
            a = stack.pop()
            if token == '+':
                stack.append(a + b)
            elif token == '-':
                stack.append(a - b)
            elif token == '*':
                stack.append(a * b)
            elif token == '/':
                if $rounding:
                    stack.append(a // b)
                else:
                    stack.append(abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1))
            else:
                stack.append(a ** b)
        else:
            stack.append(int(token))
    return stack[-1]
""",
    sample_params=lambda rng: {
        "rounding": rng.choice(sorted(_ROUNDINGS)),
        "pow": rng.choice(["^", "**", "pow"]),
    },
    sample_inputs=_rpn_inputs,
)

_CASES = {
    "lower-case": "'0123456789abcdefghijklmnopqrstuvwxyz'",
    "upper-case": "'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'",
}

TO_BASE = Family(
    key="to_base",
    level="hard",
    function="to_base",
    signature="to_base(n: int) -> str",
    description=(
        "returns the integer n written in base $base, using the digits 0-9 and then the $case "
        "letters for digit values 10 and above, with a leading '-' for negative numbers and no "
        "leading zeros ('0' for zero)"
    ),
    params={"base": Param("int"), "case": Param("choice", _CASES)},
    solution="""
def to_base(n):
    digits = $case
    if n == 0:
        return '0'
    sign = '-' if n < 0 else ''
    n = abs(n)
    out = []
    while n:
        n, d = divmod(n, $base)
        out.append(digits[d])
    return sign + ''.join(reversed(out))
""",
    sample_params=lambda rng: {
        "base": rng.choice([b for b in range(2, 37) if b != 10]),
        "case": rng.choice(sorted(_CASES)),
    },
    sample_inputs=lambda rng, p, n: (
        [[0], [p["base"]], [-1], [p["base"] ** 3 - 1]]
        + [[rng.randint(-(10**6), 10**9)] for _ in range(n - 4)]
    ),
)

FAMILIES: tuple[Family, ...] = (
    FIZZBUZZ, REVERSE_WORDS, COUNT_CHARS, SUM_MULTIPLES, DIGIT_POWER_SUM,
    RLE_ENCODE, RLE_DECODE, PARSE_NUMBERS, CAESAR, TOP_WORDS, IS_BALANCED,
    MATMUL_MOD, ROTATE_MATRIX, SPIRAL_ORDER, MERGE_INTERVALS, EVAL_RPN, TO_BASE,
)  # fmt: skip
"""Every family, easy ones first."""

TESTS_PER_LEVEL: dict[str, int] = {"easy": 8, "medium": 10, "hard": 12}
"""Hidden tests per task, by difficulty."""


def family(key: str) -> Family:
    """The family called ``key``.

    Raises:
        KeyError: naming the known keys.
    """
    for fam in FAMILIES:
        if fam.key == key:
            return fam
    raise KeyError(f"Unknown code task family {key!r}; expected one of {[f.key for f in FAMILIES]}.")
