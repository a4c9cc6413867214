"""``ToolGym/Booking-v0``: serve airline customers through a stateful API, following a policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolgym.core.errors import ToolError
from toolgym.core.tasks import Task, data_root
from toolgym.core.tools import Tool
from toolgym.envs.booking.domain import (
    CABINS,
    CANCEL_REASONS,
    POLICY_TEXT,
    BookingDB,
    BookingError,
    answer_mentions,
    canonical_json,
    digest,
    load_base_db,
    parse_time,
)
from toolgym.envs.booking.templates import CITIES
from toolgym.envs.turn_end import SingleRequestEnv

DEFAULT_NOW = "2024-05-01T00:00"
"""The clock of a task whose metadata has no ``now``."""
NO_CHANGE_HASH = digest({})
"""Expected state hash of a task whose metadata has none: the database must be left unchanged."""

_USER_ID = {
    "type": "string",
    "pattern": "^[a-z]+_[a-z]+_[0-9]{4}$",
    "maxLength": 64,
    "description": "A user id such as 'mia_tanaka_4821' (from find_user).",
}
_RESERVATION_ID = {
    "type": "string",
    "pattern": "^[A-Z0-9]{6}$",
    "description": "A 6-character reservation id such as '4WQ7ZP'.",
}
_PAYMENT_METHOD_ID = {
    "type": "string",
    "pattern": "^(credit_card|gift_card)_[0-9]{7}$",
    "description": "A payment method id from the user's profile, such as 'credit_card_4821337'.",
}
_AIRPORTS = ", ".join(f"{code} ({city})" for code, city in sorted(CITIES.items()))
_BAGGAGE = {
    "type": "integer",
    "minimum": 0,
    "maximum": 50,
    "description": "Total number of checked bags of the reservation (all passengers together).",
}


def _strict(properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema in OpenAI strict style: every property required, nothing else allowed."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


class BookingEnv(SingleRequestEnv):
    """Airline customer service with a stateful database and a domain policy (tau-bench style).

    ## Description
    Each task is one customer's message ("I'm Mia Tanaka (mia.tanaka@example.com). Please cancel
    my reservation from Lisbon to Paris on May 3 ...") at a fixed current time. The agent serves
    it through 7 tools over a generated airline database (400 users, 2016 flights, 785
    reservations) while following a stated policy: identity (R1), cancellation within 24 hours
    only for business cabins or insured reservations (R2), free checked bags by membership tier
    and a cap on paid bags (R3), payment only with a method on file and gift cards only if their
    balance covers the amount (R4), at most 5 passengers (R5), seat availability (R6) and
    pricing (R7). Requests include lookups, cancellations, baggage changes, bookings of a named
    flight, choosing the cheapest flight under constraints, cancel-and-rebook, and traps where
    the policy forbids the request and the right behaviour is to refuse and cite the rule.
    Tool calls that break the policy fail with a ``tool_error`` observation citing the rule and
    change nothing.

    ## Action Space
    Text in the env's action format (default Hermes), calling one of:
    ``find_user(email | name)``, ``get_user(user_id)``, ``search_flights(origin, destination,
    date)``, ``get_reservation(reservation_id)``, ``book(user_id, flight_id, cabin, passengers,
    baggage, insurance, payment_method_id)``, ``cancel(reservation_id, reason)``,
    ``update_baggage(reservation_id, baggage, payment_method_id)``; or a final answer
    ``<answer>message to the customer</answer>``, which ends the episode.

    ## Observation Space
    Text: first the instructions, then the policy (R1-R7), the current time and the customer's
    message. Each tool returns compact JSON with sorted keys (``{"users": [...]}``, a user
    profile, ``{"flights": [...]}``, a reservation with its flight, or the result of a change);
    a failing call returns ``Error [tool_error]: ...`` (``Policy violation (R2): ...`` for a
    policy breach).

    ## Rewards
    ``success_reward`` (1.0) when the episode ends with a final answer, the final database equals
    the expected one (computed by the generator by applying the gold actions to the initial
    database, so missing, extra or wrong changes all fail), and the answer mentions every item of
    the task's ``answer`` list: numbers asked for (price, refund, fee, balance) as numbers,
    reservation ids and flight numbers as whole words (any case), and for a refusal the rule id
    (e.g. ``R2``). 0 otherwise; invalid actions add the ``invalid_action`` penalty (0 by default).

    ## Starting State
    A task drawn with the env's RNG from the split (or the one named in ``options``); the
    episode's database is a fresh copy-on-write view of the initial database, so nothing leaks
    between episodes or envs.

    ## Episode End
    Terminates on a final answer (or on too many invalid actions if the policy says so);
    truncates after ``max_turns`` steps (default 20).
    With ``turn_end="no_call"``, also on any action without a parseable tool call or final
    answer (unanswered: reward 0; see :class:`~toolgym.envs.turn_end.SingleRequestEnv`).

    ## Arguments
    Those of :class:`~toolgym.core.env.ToolEnv`, plus ``turn_end`` (``"tool"``, default, or
    ``"no_call"``: see :class:`~toolgym.envs.turn_end.SingleRequestEnv`); ``difficulty`` is
    ``"easy"`` (a lookup or a permitted change with the ids given), ``"medium"`` (a trap with one
    check, finding a reservation from its description, booking a named flight) or ``"hard"`` (a trap
    that needs arithmetic, choosing the cheapest flight, cancel-and-rebook). Default
    ``max_turns=20``.

    ## Version History
    * v0: initial release.
    """

    data_name = "booking"
    oracle_cls = "toolgym.envs.booking.oracle:BookingOracle"
    grader_version = "1"

    def __init__(self, *, max_turns: int = 20, **kwargs: Any) -> None:
        self.base_db = load_base_db(str(data_root() / self.data_name / "db.json"))
        self._db: BookingDB | None = None
        super().__init__(max_turns=max_turns, **kwargs)

    @property
    def db(self) -> BookingDB | None:
        """The current episode's database (``None`` before the first reset)."""
        return self._db

    def start_episode(self, task: Task) -> None:
        """A fresh database view at the task's current time, for the task's customer."""
        now = parse_time(str(task.metadata.get("now", DEFAULT_NOW)))
        requester = task.metadata.get("user_id")
        self._db = BookingDB(self.base_db, now=now, requester=None if requester is None else str(requester))

    def task_prompt(self, task: Task) -> str:
        """The policy, then the task's prompt (current time and customer message)."""
        return f"{POLICY_TEXT}\n\n{task.prompt}"

    def check_answer(self, task: Task, answer: str) -> bool:
        """The final database equals the expected one and ``answer`` mentions every required item
        (see :func:`~toolgym.envs.booking.domain.answer_mentions`)."""
        if self._db is None:
            return False
        expected = task.metadata.get("expected_state_hash", NO_CHANGE_HASH)
        required = task.answer if isinstance(task.answer, list) else ([] if task.answer is None else [task.answer])
        return self._db.diff_hash() == expected and answer_mentions(answer, [str(a) for a in required])

    # ------------------------------------------------------------------ tools
    def _run(self, method: str) -> Callable[..., str]:
        def run(**arguments: Any) -> str:
            if self._db is None:
                raise ToolError("No episode is running; call reset() first.")
            for key in ("passengers", "baggage"):  # JSON Schema accepts 2.0 as an integer
                if key in arguments:
                    arguments[key] = int(arguments[key])
            try:
                return canonical_json(getattr(self._db, method)(**arguments))
            except BookingError as exc:
                raise ToolError(exc.message) from None

        return run

    def make_tools(self) -> list[Tool]:
        """The 7 tools: four lookups and three changes."""
        return [
            Tool(
                name="find_user",
                description=(
                    "Find users by e-mail address or by full name (give exactly one). Returns "
                    '{"users": [{"user_id", "name", "email"}]}; several users may share a name.'
                ),
                parameters={
                    "type": "object",
                    "properties": {
                        "email": {"type": "string", "format": "email", "maxLength": 254},
                        "name": {"type": "string", "minLength": 1, "maxLength": 100},
                    },
                    "minProperties": 1,
                    "maxProperties": 1,
                    "additionalProperties": False,
                },
                fn=self._run("find_user"),
            ),
            Tool(
                name="get_user",
                description=(
                    "Get a user's profile: name, email, membership tier (regular/silver/gold), "
                    "payment_methods (by id: credit cards with brand and last4, gift cards with "
                    "balance) and the ids of their reservations."
                ),
                parameters=_strict({"user_id": _USER_ID}),
                fn=self._run("get_user"),
                strict=True,
            ),
            Tool(
                name="search_flights",
                description=(
                    "List the flights of a route on a date, by departure time (UTC), with fares "
                    "per passenger and seats available per cabin. Returns {\"flights\": [...]} "
                    f"(empty if none). Airports: {_AIRPORTS}."
                ),
                parameters=_strict({
                    "origin": {"type": "string", "enum": sorted(CITIES), "description": "Airport code."},
                    "destination": {"type": "string", "enum": sorted(CITIES), "description": "Airport code."},
                    "date": {"type": "string", "format": "date", "description": "Departure date, YYYY-MM-DD."},
                }),
                fn=self._run("search_flights"),
                strict=True,
            ),
            Tool(
                name="get_reservation",
                description=(
                    "Get a reservation: owner user_id, flight_id, cabin, passengers, baggage, "
                    "insurance, status, payments, refund, and a summary of its flight."
                ),
                parameters=_strict({"reservation_id": _RESERVATION_ID}),
                fn=self._run("get_reservation"),
                strict=True,
            ),
            Tool(
                name="book",
                description=(
                    "Book a flight for the customer: all passengers in one cabin, the total number "
                    "of checked bags, optional travel insurance, paid in full with one payment "
                    "method. Returns the new reservation and its total_price. Fails (changing "
                    "nothing) if the policy forbids it."
                ),
                parameters=_strict({
                    "user_id": _USER_ID,
                    "flight_id": {
                        "type": "string",
                        "pattern": "^TG[0-9]{3,4}-[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                        "description": "A flight id from search_flights, such as 'TG214-2024-05-03'.",
                    },
                    "cabin": {"type": "string", "enum": list(CABINS)},
                    "passengers": {"type": "integer", "minimum": 1, "maximum": 9, "description": "Number of passengers."},
                    "baggage": _BAGGAGE,
                    "insurance": {"type": "boolean", "description": "Buy travel insurance for every passenger."},
                    "payment_method_id": _PAYMENT_METHOD_ID,
                }),
                fn=self._run("book"),
                strict=True,
            ),
            Tool(
                name="cancel",
                description=(
                    "Cancel a reservation and refund its payments. Returns the refund. Fails "
                    "(changing nothing) if the policy forbids it."
                ),
                parameters=_strict({
                    "reservation_id": _RESERVATION_ID,
                    "reason": {"type": "string", "enum": list(CANCEL_REASONS)},
                }),
                fn=self._run("cancel"),
                strict=True,
            ),
            Tool(
                name="update_baggage",
                description=(
                    "Set the total number of checked bags of a reservation; the fee of any new "
                    "paid bags is charged to the payment method. Returns the fee. Fails (changing "
                    "nothing) if the policy forbids it."
                ),
                parameters=_strict({
                    "reservation_id": _RESERVATION_ID,
                    "baggage": _BAGGAGE,
                    "payment_method_id": _PAYMENT_METHOD_ID,
                }),
                fn=self._run("update_baggage"),
                strict=True,
            ),
        ]
