"""Booking-v0: the generated data, the policy enforced by the tools, and the state-based grader.

The registry-wide suites (``tests/test_env_contract.py``, ``tests/test_oracles.py``) cover the
env contract and the oracle; these tests specify what is particular to a stateful env: policy
violations change nothing, wrong side effects fail, and episodes never share state.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.core.tasks import Task
from toolgym.envs.booking.domain import answer_mentions, digest, max_bags
from toolgym.envs.booking.env import BookingEnv
from toolgym.envs.booking.templates import parse_prompt

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "envs_data" / "booking"
HERMES = get_action_format("hermes")


@cache
def _test_env() -> BookingEnv:
    return BookingEnv(split="test")


@pytest.fixture
def env() -> BookingEnv:
    """A fresh test-split env (the initial database is shared, read-only, by every env)."""
    return BookingEnv(split="test", max_turns=50)


def first_task(family: str, outcome: str, where: Callable[[Task], bool] = lambda t: True) -> Task:
    for task in _test_env().task_set:
        if task.metadata["family"] == family and task.metadata["outcome"] == outcome and where(task):
            return task
    raise LookupError(f"no {family}/{outcome} task in the test split")


def start(env: BookingEnv, task: Task) -> None:
    env.reset(seed=0, options={"task_id": task.id})


def call(env: BookingEnv, tool: str, /, **arguments: Any) -> dict[str, Any]:
    """Step one tool call; return the step info."""
    return env.step(HERMES.render(ToolCall(tool, arguments)))[4]


def answer(env: BookingEnv, text: str) -> bool:
    _, reward, terminated, _, info = env.step(HERMES.render(FinalAnswer(text)))
    assert terminated
    return bool(info["success"]) and reward == 1.0


def gold(task: Task) -> list[dict[str, Any]]:
    return task.metadata["gold_actions"]


def gold_call(task: Task, name: str) -> dict[str, Any]:
    return dict(next(a for a in gold(task) if a["name"] == name)["arguments"])


# ----------------------------------------------------------------------------- data
@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_every_prompt_parses_back_to_its_family(split: str) -> None:
    for task in BookingEnv(split=split).task_set:
        request = parse_prompt(task.prompt)
        assert request is not None and request.family == task.metadata["family"], task.id
        assert request.now == task.metadata["now"]
        assert task.metadata["expected_state_hash"] == digest(task.metadata["expected_diff"])
        assert (task.metadata["expected_diff"] == {}) == (task.metadata["outcome"].startswith("R")
                                                          or task.metadata["family"] == "gift_balance")


def test_gold_actions_replayed_through_the_env_solve_every_test_task(env: BookingEnv) -> None:
    # Independent of the oracle: the generator's gold calls, then an answer naming the required items.
    for task in env.task_set:
        start(env, task)
        for action in gold(task):
            info = call(env, action["name"], **action["arguments"])
            assert info["error"] is None, (task.id, info["error_message"])
        assert answer(env, "Done: " + ", ".join(map(str, task.answer))), task.id


# ----------------------------------------------------------------------------- policy
def _forbidden(family: str, outcome: str) -> tuple[Task, dict[str, Any]]:
    task = first_task(family, outcome)
    action = task.metadata["forbidden_action"]
    return task, {"name": action["name"], **action["arguments"]}


def _booking(edit: Callable[[Task, dict[str, Any], BookingEnv], None]) -> Callable[[BookingEnv], tuple[Task, dict[str, Any]]]:
    """A book call derived from a permitted booking task's gold call by ``edit``."""

    def build(env: BookingEnv) -> tuple[Task, dict[str, Any]]:
        task = first_task("book_flight", "ok")
        args = gold_call(task, "book")
        edit(task, args, env)
        return task, {"name": "book", **args}

    return build


def _other_user(env: BookingEnv, task: Task) -> dict[str, Any]:
    users = env.base_db.data["users"]
    return next(u for uid, u in sorted(users.items()) if uid != task.metadata["user_id"])


def _foreign_payment(task: Task, args: dict[str, Any], env: BookingEnv) -> None:
    args["payment_method_id"] = next(iter(_other_user(env, task)["payment_methods"]))


def _for_other_user(task: Task, args: dict[str, Any], env: BookingEnv) -> None:
    other = _other_user(env, task)
    args["user_id"] = other["user_id"]
    args["payment_method_id"] = next(iter(other["payment_methods"]))


def _too_many_bags(task: Task, args: dict[str, Any], env: BookingEnv) -> None:
    tier = env.base_db.data["users"][args["user_id"]]["membership"]
    args["baggage"] = max_bags(tier, args["passengers"]) + 1


def _full_flight(task: Task, args: dict[str, Any], env: BookingEnv) -> None:
    now = task.metadata["now"]
    flight = next(
        f for _, f in sorted(env.base_db.data["flights"].items())
        if f["departure"] > now and f["seats_available"]["business"] == 0
    )
    args.update(flight_id=flight["flight_id"], cabin="business", passengers=1, baggage=0)


def _set(**changes: Any) -> Callable[[Task, dict[str, Any], BookingEnv], None]:
    return lambda task, args, env: args.update(changes)


POLICY_CASES: dict[str, tuple[Callable[[BookingEnv], tuple[Task, dict[str, Any]]], str, str]] = {
    "cancel_within_24h": (lambda env: _forbidden("cancel_id", "R2"), "tool_error", "R2"),
    "cancel_other_users_reservation": (lambda env: _forbidden("cancel_id", "R1"), "tool_error", "R1"),
    "add_bags_beyond_tier_limit": (lambda env: _forbidden("add_bags", "R3"), "tool_error", "R3"),
    "bags_paid_with_method_not_on_file": (lambda env: _forbidden("add_bags", "R4"), "tool_error", "R4"),
    "book_with_payment_method_not_on_file": (_booking(_foreign_payment), "tool_error", "R4"),
    "book_for_another_user": (_booking(_for_other_user), "tool_error", "R1"),
    "book_too_many_bags_for_tier": (_booking(_too_many_bags), "tool_error", "R3"),
    "book_full_flight": (_booking(_full_flight), "tool_error", "R6"),
    "book_six_passengers": (_booking(_set(passengers=6, baggage=0)), "tool_error", "R5"),
    "book_gift_card_short": (lambda env: _forbidden("book_flight", "R4"), "tool_error", "R4"),
    "book_zero_passengers": (_booking(_set(passengers=0)), "schema_violation", "passengers must be bigger than or equal to 1"),
    "book_negative_passengers": (_booking(_set(passengers=-3)), "schema_violation", "passengers must be bigger than or equal to 1"),
    "book_huge_passengers": (_booking(_set(passengers=10**12)), "schema_violation", "passengers must be smaller than or equal to 9"),
    "book_float_passengers": (_booking(_set(passengers=1.5)), "schema_violation", "passengers must be integer"),
    "book_sql_in_user_id": (_booking(_set(user_id="x'; DROP TABLE users; --")), "schema_violation", "must match pattern"),
    "book_json_in_flight_id": (_booking(_set(flight_id='{"$ne": null}')), "schema_violation", "must match pattern"),
    "book_unknown_cabin": (_booking(_set(cabin="first")), "schema_violation", "cabin"),
    "book_extra_argument": (_booking(_set(discount=100)), "schema_violation", "discount"),
}


@pytest.mark.parametrize("case", POLICY_CASES)
def test_forbidden_or_malformed_calls_fail_clearly_and_change_nothing(env: BookingEnv, case: str) -> None:
    build, code, cited = POLICY_CASES[case]
    task, action = build(env)
    start(env, task)
    before = env.db.state_hash()
    info = call(env, action.pop("name"), **action)
    assert info["error"] == code, info["error_message"]
    assert cited in info["error_message"] and len(info["error_message"]) > 30
    if code == "tool_error":
        assert f"Policy violation ({cited})" in info["error_message"]
        assert "Nothing was changed" in info["error_message"]
    assert env.db.diff() == {} and env.db.state_hash() == before


@pytest.mark.parametrize(
    ("name", "arguments", "code"),
    [
        ("find_user", {"name": "Robert'); DROP TABLE users;--"}, "tool_error"),
        ("find_user", {"name": '{"$gt": ""}'}, "tool_error"),
        ("find_user", {"email": "' OR 1=1 --"}, "schema_violation"),
        ("find_user", {}, "schema_violation"),
        ("find_user", {"email": "a@example.com", "name": "A"}, "schema_violation"),
        ("get_user", {"user_id": "mia_tanaka_0000"}, "tool_error"),
        ("get_reservation", {"reservation_id": "ZZZZZZ"}, "tool_error"),
        ("get_reservation", {"reservation_id": "1; DELETE"}, "schema_violation"),
        ("search_flights", {"origin": "LIS", "destination": "LIS", "date": "2024-05-03"}, "tool_error"),
        ("search_flights", {"origin": "LIS", "destination": "CDG", "date": "2024-02-30"}, "schema_violation"),
        ("search_flights", {"origin": "XXX", "destination": "CDG", "date": "2024-05-03"}, "schema_violation"),
        ("cancel", {"reservation_id": "ZZZZZZ", "reason": "other"}, "tool_error"),
        ("cancel", {"reservation_id": "ZZZZZZ", "reason": "bored"}, "schema_violation"),
    ],
)
def test_junk_and_unknown_ids_give_errors_without_changes(
    env: BookingEnv, name: str, arguments: dict[str, Any], code: str
) -> None:
    start(env, first_task("book_flight", "ok"))
    info = call(env, name, **arguments)
    assert info["error"] == code and info["error_message"]
    assert env.db.diff() == {}


def test_cancelling_twice_and_removing_bags_are_refused(env: BookingEnv) -> None:
    task = first_task("cancel_id", "ok")
    start(env, task)
    for action in gold(task):
        call(env, action["name"], **action["arguments"])
    after_cancel = env.db.state_hash()
    info = call(env, "cancel", **gold_call(task, "cancel"))
    assert info["error"] == "tool_error" and "already cancelled" in info["error_message"]
    assert env.db.state_hash() == after_cancel

    reservations = env.base_db.data["reservations"]

    def current_bags(task: Task) -> int:
        return reservations[gold_call(task, "update_baggage")["reservation_id"]]["baggage"]

    task = first_task("add_bags", "ok", lambda t: current_bags(t) >= 1)
    start(env, task)
    args = gold_call(task, "update_baggage")
    args["baggage"] = current_bags(task) - 1
    info = call(env, "update_baggage", **args)
    assert info["error"] == "tool_error" and "(R3)" in info["error_message"]
    assert env.db.diff() == {}


# ----------------------------------------------------------------------------- grading
def test_correct_changes_and_answer_succeed(env: BookingEnv) -> None:
    task = first_task("book_flight", "ok")
    start(env, task)
    for action in gold(task):
        call(env, action["name"], **action["arguments"])
    assert answer(env, f"Booked! Reservation {task.answer[0]}, total ${task.answer[1]}.")


def test_answer_missing_the_requested_value_fails(env: BookingEnv) -> None:
    task = first_task("book_flight", "ok")
    start(env, task)
    for action in gold(task):
        call(env, action["name"], **action["arguments"])
    assert not answer(env, f"Booked! Reservation {task.answer[0]}.")


def test_booking_the_wrong_flight_fails_even_with_a_plausible_answer(env: BookingEnv) -> None:
    task = first_task("book_cheapest", "ok")
    start(env, task)
    *lookups, book = gold(task)
    outputs = [call(env, a["name"], **a["arguments"])["tool_output"] for a in lookups]
    flights = json.loads(outputs[-1])["flights"]
    args = dict(book["arguments"])
    wrong = next(f for f in flights if f["flight_id"] != args["flight_id"] and f["seats_available"][args["cabin"]] >= args["passengers"])
    args["flight_id"] = wrong["flight_id"]
    info = call(env, "book", **args)
    assert info["error"] is None, info["error_message"]
    assert not answer(env, "Booked: " + ", ".join(task.answer))


def test_an_extra_cancellation_fails_even_with_the_right_answer(env: BookingEnv) -> None:
    data = env.base_db.data

    def has_spare(task: Task) -> bool:
        user = data["users"][task.metadata["user_id"]]
        rid = gold_call(task, "cancel")["reservation_id"]
        return any(
            r != rid and data["reservations"][r]["status"] == "confirmed"
            and data["flights"][data["reservations"][r]["flight_id"]]["departure"] > task.metadata["now"]
            and (data["reservations"][r]["insurance"] or data["reservations"][r]["cabin"] == "business")
            for r in user["reservations"]
        )

    task = first_task("cancel_desc", "ok", has_spare)
    start(env, task)
    for action in gold(task):
        call(env, action["name"], **action["arguments"])
    user = data["users"][task.metadata["user_id"]]
    rid = gold_call(task, "cancel")["reservation_id"]
    spare = next(
        r for r in user["reservations"]
        if r != rid and data["reservations"][r]["status"] == "confirmed"
        and (data["reservations"][r]["insurance"] or data["reservations"][r]["cabin"] == "business")
        and data["flights"][data["reservations"][r]["flight_id"]]["departure"] > task.metadata["now"]
    )
    assert call(env, "cancel", reservation_id=spare, reason="other")["error"] is None
    assert not answer(env, f"Cancelled; refund ${task.answer[0]}.")


def test_a_refusal_must_change_nothing_and_cite_exactly_its_rule(env: BookingEnv) -> None:
    task = first_task("cancel_id", "R2")
    assert task.answer == ["R2"]
    start(env, task)
    assert answer(env, "Sorry, rule R2 forbids cancelling within 24 hours of departure.")
    start(env, task)
    assert not answer(env, "Sorry, one of R1, R2, R3, R4, R5, R6 or R7 forbids it.")
    start(env, task)
    assert not answer(env, "I cancelled it for you.")


def test_answer_mentions_matches_numbers_and_whole_words() -> None:
    assert answer_mentions("Refund: $1,240.00", ["1240"])
    assert not answer_mentions("Refund: $12400", ["1240"])
    assert answer_mentions("booked on tg186, ref rlvybs", ["TG186", "RLVYBS"])
    assert not answer_mentions("booked on TG1860", ["TG186"])
    assert not answer_mentions("alpha river", ["R2"])


# ----------------------------------------------------------------------------- isolation
def test_episodes_start_from_the_same_initial_state_and_never_leak(env: BookingEnv) -> None:
    task = first_task("cancel_rebook", "ok")
    base_digest = digest(env.base_db.data)
    start(env, task)
    initial = env.db.state_hash()
    for action in gold(task):
        call(env, action["name"], **action["arguments"])
    assert env.db.state_hash() != initial
    other = BookingEnv(split="test")
    other.reset(seed=0, options={"task_id": task.id})
    assert other.db.state_hash() == initial and other.db.diff() == {}
    start(env, task)
    assert env.db.state_hash() == initial and env.db.diff() == {}
    assert digest(env.base_db.data) == base_digest, "the shared initial database was modified"


def test_pickling_mid_episode_keeps_the_episode_state(env: BookingEnv) -> None:
    task = first_task("book_flight", "ok")
    start(env, task)
    for action in gold(task):
        call(env, action["name"], **action["arguments"])
    clone = pickle.loads(pickle.dumps(env))
    assert clone.db.diff() == env.db.diff() != {}
    assert len(pickle.dumps(env.db)) < 10_000, "the initial database must pickle by path"
    assert answer(clone, " ".join(task.answer))
