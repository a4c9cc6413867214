"""The airline domain of ``ToolGym/Booking-v0``: database, policy and operations.

One module holds everything that decides what a tool call does to the database: the policy
constants and their rule ids, the fare arithmetic, and :class:`BookingDB`, the per-episode view
of the database whose methods are the env's tools. The data generator
(``envs_data/booking/generate.py``) applies the gold actions through the same class, so the
expected final states it writes are exactly what the env produces for a correct agent.

This module is deliberately **stdlib-only**: the generator loads it by file path, without
importing the ``toolgym`` package (nor gymnasium, jsonschema...).

Database layout (``envs_data/booking/db.json``)::

    {"meta": {"airline": ..., "currency": "USD", "next_reservation_seq": 1},
     "airports": {"LIS": "Lisbon", ...},
     "users": {user_id: {"user_id", "name", "email", "membership",
                         "payment_methods": {pm_id: {"id", "type", ...}}, "reservations": [ids]}},
     "flights": {flight_id: {"flight_id", "flight_number", "origin", "destination", "date",
                             "departure", "arrival", "prices": {cabin: int},
                             "seats_available": {cabin: int}}},
     "reservations": {reservation_id: {"reservation_id", "user_id", "flight_id", "cabin",
                                       "passengers", "baggage", "insurance", "status",
                                       "payments": [{"payment_method_id", "amount"}],
                                       "created_at", "cancel_reason", "refund"}}}

Times are UTC ``"YYYY-MM-DDTHH:MM"`` strings; money is whole US dollars.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------- policy
CABINS: tuple[str, ...] = ("basic_economy", "economy", "business")
TIERS: tuple[str, ...] = ("regular", "silver", "gold")
FREE_BAGS: dict[str, int] = {"regular": 0, "silver": 1, "gold": 2}
"""Free checked bags per passenger, by membership tier."""
EXTRA_BAGS_PER_PASSENGER = 2
"""Paid checked bags allowed per passenger on top of the free allowance."""
BAG_FEE = 50
"""Dollars per checked bag beyond the free allowance."""
INSURANCE_FEE = 30
"""Dollars per passenger for travel insurance."""
MAX_PASSENGERS = 5
CANCEL_WINDOW_HOURS = 24
CANCEL_REASONS: tuple[str, ...] = ("change_of_plans", "medical", "other")
PAYMENT_TYPES: tuple[str, ...] = ("credit_card", "gift_card")
TIME_FORMAT = "%Y-%m-%dT%H:%M"

RULES: dict[str, str] = {
    "R1": (
        "Identity: act only for the customer who writes to you (identified by the e-mail address "
        "in their message). Never book, change or cancel anything for another user or on a "
        "reservation that belongs to another user."
    ),
    "R2": (
        f"Cancellation: a reservation can be cancelled only if its flight departs more than "
        f"{CANCEL_WINDOW_HOURS} hours after the current time, unless its cabin is business or it "
        "has travel insurance (then it can be cancelled any time before departure). A flight that "
        "has departed can never be cancelled. A cancelled reservation is refunded in full to the "
        "payment methods it was paid with."
    ),
    "R3": (
        "Checked bags: each passenger gets free checked bags by membership tier (regular "
        f"{FREE_BAGS['regular']}, silver {FREE_BAGS['silver']}, gold {FREE_BAGS['gold']}); each "
        f"further bag costs ${BAG_FEE}. A reservation may carry at most "
        f"{EXTRA_BAGS_PER_PASSENGER} paid bags per passenger beyond the free allowance. Bags can be "
        "added to a confirmed reservation before departure, never removed."
    ),
    "R4": (
        "Payment: pay with exactly one payment method from the customer's own profile. A gift card "
        "can only be used if its balance covers the whole amount."
    ),
    "R5": f"Passengers: a booking has 1 to {MAX_PASSENGERS} passengers, all in the same cabin.",
    "R6": (
        "Availability: book only flights that have not departed and have enough seats available "
        "in the requested cabin for every passenger."
    ),
    "R7": (
        f"Prices: a booking costs the cabin's fare per passenger, plus ${INSURANCE_FEE} per "
        "passenger for travel insurance (only available when booking), plus the fees of paid "
        "checked bags."
    ),
}
"""The domain policy, by rule id. Refusals cite these ids."""

POLICY_TEXT = "\n".join(
    [
        "You are the customer service agent of ToolGym Air. Help the customer with their request "
        "using the tools, and follow this policy:",
        *(f"{rule}. {text}" for rule, text in RULES.items()),
        "When the policy forbids a request, do not change anything: tell the customer why and "
        "cite the id of the rule that forbids it (for example 'R2'). Finish with a final answer: "
        "your message to the customer, including what they asked for (reservation numbers, flight "
        "numbers, prices, refunds, fees, balances; amounts in whole dollars).",
    ]
)
"""Shown to the agent before every request (the system part of the task prompt)."""


def free_bags(membership: str, passengers: int) -> int:
    """Free checked bags of a reservation."""
    return FREE_BAGS[membership] * passengers


def max_bags(membership: str, passengers: int) -> int:
    """Most checked bags a reservation may carry (rule R3)."""
    return (FREE_BAGS[membership] + EXTRA_BAGS_PER_PASSENGER) * passengers


def bag_fees(membership: str, passengers: int, baggage: int) -> int:
    """Dollars for ``baggage`` checked bags (only bags beyond the free allowance cost)."""
    return BAG_FEE * max(0, baggage - free_bags(membership, passengers))


def booking_total(fare: int, membership: str, passengers: int, baggage: int, insurance: bool) -> int:
    """Price of a booking in dollars (rule R7)."""
    return fare * passengers + bag_fees(membership, passengers, baggage) + (
        INSURANCE_FEE * passengers if insurance else 0
    )


def parse_time(text: str) -> datetime:
    """Parse a ``"YYYY-MM-DDTHH:MM"`` UTC time."""
    return datetime.strptime(text, TIME_FORMAT)


def format_time(when: datetime) -> str:
    """Inverse of :func:`parse_time`."""
    return when.strftime(TIME_FORMAT)


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the form of tool outputs and of hashed states."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """SHA-256 (hex) of ``value``'s :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def reservation_code(key: str) -> str:
    """A 6-character reservation id derived from ``key`` (deterministic, like a hash)."""
    value = int.from_bytes(hashlib.sha256(f"booking|{key}".encode()).digest()[:8], "big")
    chars = []
    for _ in range(6):
        value, rem = divmod(value, len(_ID_ALPHABET))
        chars.append(_ID_ALPHABET[rem])
    return "".join(chars)


# ---------------------------------------------------------------------------------- grading
_NUMBER_RE = re.compile(r"(?<![A-Za-z0-9.])\d+(?:\.\d+)?(?![A-Za-z0-9])")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
RULE_ID_RE = re.compile(r"(?<![A-Za-z0-9])R[1-9](?![A-Za-z0-9])", re.IGNORECASE)
"""A rule id (``R1``..``R9``) as a whole word."""


def answer_mentions(answer: str, required: Iterable[str]) -> bool:
    """True if ``answer`` mentions every required item.

    An item made of digits is a number: it must appear as a number in the answer (``"$1,240"``,
    ``"1240"`` and ``"1240.00"`` all mention ``"1240"``; ``"12400"`` and ``"R1240"`` do not).
    Any other item (a reservation id, a flight number, a rule id such as ``"R2"``) must appear as
    a whole word, ignoring case. When rule ids are required (a refusal), the answer must cite
    exactly those rules: listing every rule to be safe does not count.
    """
    required = list(required)
    rules = {item.upper() for item in required if RULE_ID_RE.fullmatch(item)}
    if rules and {m.upper() for m in RULE_ID_RE.findall(answer)} != rules:
        return False
    numbers = {float(m) for m in _NUMBER_RE.findall(_THOUSANDS_RE.sub("", answer))}
    for item in required:
        if item.isdigit():
            if float(item) not in numbers:
                return False
        elif not re.search(rf"(?<![A-Za-z0-9]){re.escape(item)}(?![A-Za-z0-9])", answer, re.IGNORECASE):
            return False
    return True


# ---------------------------------------------------------------------------------- errors
class BookingError(Exception):
    """A tool call that cannot be carried out (unknown id, nothing to change...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PolicyViolation(BookingError):
    """A tool call the policy forbids; ``rules`` lists every rule it breaks (first = main one)."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.rules = [rule for rule, _ in violations]
        text = " ".join(f"Policy violation ({rule}): {why}" for rule, why in violations)
        super().__init__(f"{text} Nothing was changed.")


# ---------------------------------------------------------------------------------- database
class BaseDB:
    """The initial database (read-only, shared by every episode of a process).

    Pickles by path, so that pickled envs stay small and reload (or reuse) the cached copy.
    """

    def __init__(self, data: Mapping[str, Any], path: str | None = None) -> None:
        self.data = data
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self.path is None:
            return BaseDB, (self.data, None)
        return load_base_db, (self.path,)

    @cached_property
    def users_by_email(self) -> dict[str, str]:
        """Lower-cased e-mail -> user id (e-mails never change)."""
        return {u["email"].lower(): uid for uid, u in self.data["users"].items()}

    @cached_property
    def users_by_name(self) -> dict[str, list[str]]:
        """Lower-cased full name -> user ids, in id order."""
        out: dict[str, list[str]] = {}
        for uid in sorted(self.data["users"]):
            out.setdefault(self.data["users"][uid]["name"].lower(), []).append(uid)
        return out

    @cached_property
    def flights_by_route(self) -> dict[tuple[str, str, str], list[str]]:
        """``(origin, destination, date)`` -> flight ids, by departure time."""
        out: dict[tuple[str, str, str], list[str]] = {}
        for fid, f in self.data["flights"].items():
            out.setdefault((f["origin"], f["destination"], f["date"]), []).append(fid)
        flights = self.data["flights"]
        return {k: sorted(v, key=lambda i: (flights[i]["departure"], i)) for k, v in out.items()}


_BASE_CACHE: dict[str, BaseDB] = {}


def load_base_db(path: str) -> BaseDB:
    """Load ``db.json`` once per process and path."""
    base = _BASE_CACHE.get(path)
    if base is None:
        with Path(path).open(encoding="utf-8") as fh:
            base = _BASE_CACHE[path] = BaseDB(json.load(fh), path)
    return base


TABLES: tuple[str, ...] = ("users", "flights", "reservations")


class BookingDB:
    """One episode's database: the initial one plus this episode's changes (copy on write).

    Reading is free; the first write to a record copies it, so episodes never share mutable
    state and the initial database is never modified. Each public method is one tool: it returns
    a JSON-serialisable result or raises :class:`BookingError` / :class:`PolicyViolation`
    **before** changing anything.

    Args:
        base: The initial database.
        now: The current time of the episode (the policy's clock).
        requester: User id of the customer making the request (rule R1); ``None`` disables R1.
    """

    def __init__(self, base: BaseDB, *, now: datetime, requester: str | None = None) -> None:
        self.base = base
        self.now = now
        self.requester = requester
        self.meta: dict[str, Any] = dict(base.data["meta"])
        self._own: dict[str, dict[str, Any]] = {table: {} for table in TABLES}

    # ------------------------------------------------------------------ records
    def _get(self, table: str, key: str) -> dict[str, Any] | None:
        own = self._own[table].get(key)
        return own if own is not None else self.base.data[table].get(key)

    def _mut(self, table: str, key: str) -> dict[str, Any]:
        own = self._own[table].get(key)
        if own is None:
            own = self._own[table][key] = copy.deepcopy(self.base.data[table][key])
        return own

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self._get("users", user_id)
        if user is None:
            raise BookingError(f"No user with id {user_id[:64]!r}. Use find_user to look up a user id.")
        return user

    def _flight(self, flight_id: str) -> dict[str, Any]:
        flight = self._get("flights", flight_id)
        if flight is None:
            raise BookingError(
                f"No flight with id {flight_id[:64]!r}. Use search_flights to find flight ids."
            )
        return flight

    def _reservation(self, reservation_id: str) -> dict[str, Any]:
        res = self._get("reservations", reservation_id)
        if res is None:
            raise BookingError(
                f"No reservation with id {reservation_id[:64]!r}. Reservation ids are listed by get_user."
            )
        return res

    def hours_until(self, departure: str) -> float:
        """Hours from the episode's current time to ``departure`` (negative once departed)."""
        return (parse_time(departure) - self.now) / timedelta(hours=1)

    # ------------------------------------------------------------------ read tools
    def find_user(self, email: str | None = None, name: str | None = None) -> dict[str, Any]:
        """Users matching an e-mail address (exact, any case) or a full name (exact, any case)."""
        if (email is None) == (name is None):
            raise BookingError("Give exactly one of 'email' or 'name'.")
        if email is not None:
            uid = self.base.users_by_email.get(email.strip().lower())
            ids = [uid] if uid else []
            what = f"e-mail {email[:80]!r}"
        else:
            ids = self.base.users_by_name.get(" ".join(str(name).split()).lower(), [])
            what = f"name {str(name)[:80]!r}"
        if not ids:
            raise BookingError(f"No user with {what}.")
        users = [self._user(uid) for uid in ids]
        return {"users": [{k: u[k] for k in ("user_id", "name", "email")} for u in users]}

    def get_user(self, user_id: str) -> dict[str, Any]:
        """A user's profile: membership, payment methods and reservation ids."""
        return copy.deepcopy(self._user(user_id))

    def search_flights(self, origin: str, destination: str, date: str) -> dict[str, Any]:
        """Flights of a route on a date, by departure time (departed ones included)."""
        if origin == destination:
            raise BookingError("Origin and destination must differ.")
        ids = self.base.flights_by_route.get((origin, destination, date), [])
        return {"flights": [copy.deepcopy(self._flight(fid)) for fid in ids]}

    def get_reservation(self, reservation_id: str) -> dict[str, Any]:
        """A reservation, with a summary of its flight."""
        res = copy.deepcopy(self._reservation(reservation_id))
        flight = self._flight(res["flight_id"])
        res["flight"] = {
            k: flight[k] for k in ("flight_number", "origin", "destination", "date", "departure", "arrival")
        }
        return res

    # ------------------------------------------------------------------ write tools
    def book(
        self,
        user_id: str,
        flight_id: str,
        cabin: str,
        passengers: int,
        baggage: int,
        insurance: bool,
        payment_method_id: str,
    ) -> dict[str, Any]:
        """Book ``passengers`` seats in ``cabin`` of a flight, paid with one payment method."""
        user = self._user(user_id)
        flight = self._flight(flight_id)
        violations: list[tuple[str, str]] = []
        if self.requester is not None and user_id != self.requester:
            violations.append(("R1", f"user {user_id} is not the customer making this request."))
        if passengers > MAX_PASSENGERS:
            violations.append(("R5", f"{passengers} passengers; a booking has at most {MAX_PASSENGERS}."))
        if self.hours_until(flight["departure"]) <= 0:
            violations.append(("R6", f"flight {flight_id} departed at {flight['departure']}."))
        elif flight["seats_available"][cabin] < passengers:
            violations.append((
                "R6",
                f"flight {flight_id} has {flight['seats_available'][cabin]} {cabin} seat(s) available, "
                f"{passengers} requested.",
            ))
        limit = max_bags(user["membership"], passengers)
        if baggage > limit:
            violations.append((
                "R3",
                f"{baggage} checked bags; a {user['membership']} member with {passengers} passenger(s) "
                f"may check at most {limit}.",
            ))
        total = booking_total(flight["prices"][cabin], user["membership"], passengers, baggage, insurance)
        method = user["payment_methods"].get(payment_method_id)
        if method is None:
            violations.append(("R4", f"payment method {payment_method_id} is not in the profile of {user_id}."))
        elif method["type"] == "gift_card" and method["balance"] < total:
            violations.append((
                "R4",
                f"gift card {payment_method_id} has a balance of ${method['balance']}, "
                f"less than the total of ${total}.",
            ))
        if violations:
            raise PolicyViolation(violations)
        # The id depends on the episode's booking count, customer, flight and clock: deterministic,
        # yet different across tasks, so it cannot be guessed or memorised.
        seq = int(self.meta["next_reservation_seq"])
        stamp = f"{user_id}|{flight_id}|{format_time(self.now)}"
        reservation_id = reservation_code(f"{seq}|{stamp}")
        while self._get("reservations", reservation_id) is not None:  # astronomically rare
            seq += 1
            reservation_id = reservation_code(f"{seq}|{stamp}")
        self.meta["next_reservation_seq"] = seq + 1
        self._mut("flights", flight_id)["seats_available"][cabin] -= passengers
        user = self._mut("users", user_id)
        user["reservations"].append(reservation_id)
        if method is not None and method["type"] == "gift_card":
            user["payment_methods"][payment_method_id]["balance"] -= total
        reservation = {
            "reservation_id": reservation_id,
            "user_id": user_id,
            "flight_id": flight_id,
            "cabin": cabin,
            "passengers": passengers,
            "baggage": baggage,
            "insurance": insurance,
            "status": "confirmed",
            "payments": [{"payment_method_id": payment_method_id, "amount": total}],
            "created_at": format_time(self.now),
            "cancel_reason": None,
            "refund": 0,
        }
        self._own["reservations"][reservation_id] = reservation
        return {"reservation": copy.deepcopy(reservation), "total_price": total}

    def cancel(self, reservation_id: str, reason: str) -> dict[str, Any]:
        """Cancel a reservation and refund every payment to its payment method."""
        res = self._reservation(reservation_id)
        if res["status"] == "cancelled":
            raise BookingError(f"Reservation {reservation_id} is already cancelled.")
        flight = self._flight(res["flight_id"])
        violations: list[tuple[str, str]] = []
        if self.requester is not None and res["user_id"] != self.requester:
            violations.append(("R1", f"reservation {reservation_id} belongs to another user."))
        hours = self.hours_until(flight["departure"])
        if hours <= 0:
            violations.append(("R2", f"the flight of {reservation_id} departed at {flight['departure']}."))
        elif hours <= CANCEL_WINDOW_HOURS and res["cabin"] != "business" and not res["insurance"]:
            violations.append((
                "R2",
                f"the flight of {reservation_id} departs in {hours:.1f} hours (at {flight['departure']}), "
                f"within {CANCEL_WINDOW_HOURS} hours, and the reservation is {res['cabin']} without "
                "travel insurance.",
            ))
        if violations:
            raise PolicyViolation(violations)
        res = self._mut("reservations", reservation_id)
        owner = self._mut("users", res["user_id"])
        refund = 0
        for payment in res["payments"]:
            method = owner["payment_methods"].get(payment["payment_method_id"])
            if method is not None and method["type"] == "gift_card":
                method["balance"] += payment["amount"]
            refund += payment["amount"]
        res["status"] = "cancelled"
        res["cancel_reason"] = reason
        res["refund"] = refund
        self._mut("flights", res["flight_id"])["seats_available"][res["cabin"]] += res["passengers"]
        return {"reservation_id": reservation_id, "status": "cancelled", "refund": refund}

    def update_baggage(self, reservation_id: str, baggage: int, payment_method_id: str) -> dict[str, Any]:
        """Set a reservation's total number of checked bags; the fee of new paid bags is charged."""
        res = self._reservation(reservation_id)
        if res["status"] == "cancelled":
            raise BookingError(f"Reservation {reservation_id} is cancelled.")
        if baggage == res["baggage"]:
            raise BookingError(f"Reservation {reservation_id} already has {baggage} checked bag(s).")
        flight = self._flight(res["flight_id"])
        owner = self._user(res["user_id"])
        violations: list[tuple[str, str]] = []
        if self.requester is not None and res["user_id"] != self.requester:
            violations.append(("R1", f"reservation {reservation_id} belongs to another user."))
        if self.hours_until(flight["departure"]) <= 0:
            violations.append(("R3", f"the flight of {reservation_id} departed at {flight['departure']}."))
        if baggage < res["baggage"]:
            violations.append((
                "R3", f"bags cannot be removed ({res['baggage']} checked now, {baggage} requested).",
            ))
        limit = max_bags(owner["membership"], res["passengers"])
        if baggage > limit:
            violations.append((
                "R3",
                f"{baggage} checked bags; a {owner['membership']} member with {res['passengers']} "
                f"passenger(s) may check at most {limit}.",
            ))
        fee = max(0, bag_fees(owner["membership"], res["passengers"], baggage) - bag_fees(
            owner["membership"], res["passengers"], res["baggage"]
        ))
        method = owner["payment_methods"].get(payment_method_id)
        if method is None:
            violations.append((
                "R4", f"payment method {payment_method_id} is not in the profile of {res['user_id']}.",
            ))
        elif method["type"] == "gift_card" and method["balance"] < fee:
            violations.append((
                "R4",
                f"gift card {payment_method_id} has a balance of ${method['balance']}, less than the "
                f"fee of ${fee}.",
            ))
        if violations:
            raise PolicyViolation(violations)
        res = self._mut("reservations", reservation_id)
        res["baggage"] = baggage
        if fee > 0:
            res["payments"].append({"payment_method_id": payment_method_id, "amount": fee})
            if method is not None and method["type"] == "gift_card":
                self._mut("users", res["user_id"])["payment_methods"][payment_method_id]["balance"] -= fee
        return {"reservation_id": reservation_id, "baggage": baggage, "fee": fee}

    # ------------------------------------------------------------------ state
    def diff(self) -> dict[str, Any]:
        """Every record that differs from the initial database (new ones included), by table."""
        out: dict[str, Any] = {}
        for table in TABLES:
            base = self.base.data[table]
            changed = {k: v for k, v in self._own[table].items() if base.get(k) != v}
            if changed:
                out[table] = changed
        if self.meta != self.base.data["meta"]:
            out["meta"] = self.meta
        return out

    def diff_hash(self) -> str:
        """SHA-256 of :meth:`diff`: equal for two episodes iff their final databases are equal."""
        return digest(self.diff())

    def snapshot(self) -> dict[str, Any]:
        """The whole current database (a deep copy)."""
        data = copy.deepcopy(dict(self.base.data))
        data["meta"] = copy.deepcopy(self.meta)
        for table in TABLES:
            data[table].update(copy.deepcopy(self._own[table]))
        return data

    def state_hash(self) -> str:
        """SHA-256 of the whole current database (slow: for tests and debugging)."""
        return digest(self.snapshot())
