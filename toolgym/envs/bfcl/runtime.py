"""Running BFCL's API simulators in-process, and grading with BFCL's own checker.

Each episode holds two sets of API instances built from the task's ``initial_config``: the
agent's (its tool calls run against them) and the ground truth's (the ground-truth calls of each
user turn are replayed on them when the turn ends). Results are turned into text exactly as BFCL
does (strings as they are, dicts as JSON, anything else with ``str``; an exception becomes
``"Error during execution: ..."``), so the response check compares the same strings as BFCL.
The state and response comparisons are BFCL's own ``state_checker`` and ``response_checker``.
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from toolgym.core.errors import ConfigError
from toolgym.envs.bfcl.data import import_module

CHECKER_MODULE = "bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker"
BACKEND_CONFIG_MODULE = "bfcl_eval.constants.executable_backend_config"


@lru_cache(maxsize=16)
def api_class(class_name: str) -> type:
    """The BFCL API class called ``class_name`` (imported from the installed package)."""
    config = import_module(BACKEND_CONFIG_MODULE)
    module = import_module(config.CLASS_FILE_PATH_MAPPING[class_name])
    return getattr(module, class_name)


def make_instances(
    involved_classes: Sequence[str], initial_config: Mapping[str, Any], *, long_context: bool
) -> dict[str, Any]:
    """Fresh API instances, each loaded with its part of ``initial_config`` (as BFCL does)."""
    stateless = set(import_module(BACKEND_CONFIG_MODULE).STATELESS_CLASSES)
    instances: dict[str, Any] = {}
    for name in involved_classes:
        instance = api_class(name)()
        if name not in stateless:
            instance._load_scenario(
                copy.deepcopy(dict(initial_config.get(name, {}))), long_context=long_context
            )
        instances[name] = instance
    return instances


def method_owners(instances: Mapping[str, Any]) -> dict[str, str]:
    """Public method name -> the class that serves it (the last involved class wins, as in BFCL)."""
    owners: dict[str, str] = {}
    for class_name, instance in instances.items():
        for method_name, _ in inspect.getmembers(instance, predicate=inspect.ismethod):
            if not method_name.startswith("_"):
                owners[method_name] = class_name
    return owners


def result_text(result: Any) -> str:
    """A call's result as BFCL records it: a ``str`` as is, a ``dict`` as JSON, else ``str()``."""
    if type(result) is str:
        return result
    if type(result) is dict:
        try:
            return json.dumps(result)
        except (TypeError, ValueError):
            return str(result)
    return str(result)


def error_text(exc: BaseException) -> str:
    """What BFCL records for a call that raised."""
    return f"Error during execution: {exc}"


@dataclass(frozen=True)
class CallSpec:
    """A ground-truth call parsed from BFCL's Python syntax, e.g. ``sort('report.pdf')``."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def keyword_arguments(self, method: Any) -> dict[str, Any]:
        """All arguments by name (positional ones named from ``method``'s signature), JSON-ready."""
        signature = inspect.signature(method)
        params = list(signature.parameters.values())
        if params and params[0].name == "self":  # a function looked up on the class
            signature = signature.replace(parameters=params[1:])
        bound = signature.bind_partial(*self.args, **self.kwargs)
        return {key: _jsonable(value) for key, value in bound.arguments.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def parse_call(text: str) -> CallSpec:
    """Parse one BFCL ground-truth call (a Python call with literal arguments).

    Raises:
        ConfigError: if ``text`` is not ``name(literal, ..., key=literal, ...)``.
    """
    try:
        node = ast.parse(text.strip(), mode="eval").body
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            raise ValueError("not a plain function call")
        args = tuple(ast.literal_eval(a) for a in node.args)
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg is not None}
        if len(kwargs) != len(node.keywords):
            raise ValueError("**kwargs are not supported")
    except (SyntaxError, ValueError) as exc:
        raise ConfigError(f"Cannot parse BFCL ground-truth call {text!r}: {exc}") from exc
    return CallSpec(node.func.id, args, kwargs)


def run_ground_truth(instances: Mapping[str, Any], calls: Sequence[str]) -> list[str]:
    """Replay ground-truth calls on ``instances``; returns their results as BFCL records them."""
    owners = method_owners(instances)
    results = []
    for text in calls:
        try:
            call = parse_call(text)
            if call.name not in owners:
                raise NameError(f"name '{call.name}' is not defined")
            output = getattr(instances[owners[call.name]], call.name)(*call.args, **call.kwargs)
            results.append(result_text(output))
        except Exception as exc:  # noqa: BLE001 - recorded as BFCL records it
            results.append(error_text(exc))
    return results


@dataclass(frozen=True)
class TurnVerdict:
    """The outcome of BFCL's checks at the end of one user turn.

    Attributes:
        checked: Whether the turn was checked (BFCL skips turns whose ground truth is empty).
        valid: Whether it passed (``True`` for unchecked turns).
        error_type: BFCL's error type (``multi_turn:instance_state_mismatch``,
            ``multi_turn:execution_response_mismatch``, ``multi_turn:empty_turn_model_response``).
        message: BFCL's error message.
    """

    checked: bool
    valid: bool
    error_type: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "checked": self.checked,
            "valid": self.valid,
            "error_type": self.error_type,
            "message": self.message,
        }


def check_turn(
    *,
    turn_index: int,
    ground_truth_calls: Sequence[str],
    ground_truth_results: Sequence[str],
    agent_calls_this_turn: int,
    agent_results_so_far: Sequence[str],
    agent_instances: Mapping[str, Any],
    ground_truth_instances: Mapping[str, Any],
) -> TurnVerdict:
    """BFCL's per-turn check (``multi_turn_checker``'s loop body), with BFCL's sub-checkers.

    A turn with an empty ground truth is not checked. Otherwise the agent must have made at
    least one call in the turn, every API instance's public state must equal the ground truth's
    (``state_checker``), and every ground-truth result of this turn must occur among the agent's
    results of all turns so far, as a multiset and in any order (``response_checker``).
    """
    if not ground_truth_calls:
        return TurnVerdict(checked=False, valid=True)
    if agent_calls_this_turn == 0:
        return TurnVerdict(
            True,
            False,
            "multi_turn:empty_turn_model_response",
            f"Model response list is empty for turn {turn_index}",
        )
    checker = import_module(CHECKER_MODULE)
    state = checker.state_checker(dict(agent_instances), dict(ground_truth_instances))
    if not state["valid"]:
        return TurnVerdict(True, False, state["error_type"], state["error_message"])
    response = checker.response_checker(list(agent_results_so_far), list(ground_truth_results), turn_index)
    if not response["valid"]:
        return TurnVerdict(True, False, response["error_type"], response["error_message"])
    return TurnVerdict(checked=True, valid=True)
