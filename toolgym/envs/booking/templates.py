"""Customer-request templates shared by the Booking-v0 data generator and its scripted oracle.

The generator (``envs_data/booking/generate.py``) writes every task prompt with
:func:`render_prompt`; the oracle (:mod:`toolgym.envs.booking.oracle`) reads it back with
:func:`parse_prompt`, whose regular expressions are compiled from the same templates. Keeping both
directions in this one module guarantees that the oracle can parse everything the generator
writes.

This module is deliberately **stdlib-only** (the generator loads it by file path, without
importing the ``toolgym`` package).

A prompt is a header with the current time and the customer's identity, then one request::

    Current time: 2024-05-02 14:30 UTC.
    Customer: "Hi, I'm Mia Tanaka (mia.tanaka@example.com). Please cancel my reservation ..."

Request templates use ``{slot}`` placeholders; each slot has one regular expression in
:data:`SLOT_PATTERNS`.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import cache

CITIES: dict[str, str] = {
    "AMS": "Amsterdam",
    "ATH": "Athens",
    "BER": "Berlin",
    "CDG": "Paris",
    "CPH": "Copenhagen",
    "DUB": "Dublin",
    "FCO": "Rome",
    "LIS": "Lisbon",
    "MAD": "Madrid",
    "VIE": "Vienna",
}
"""Airport code -> city name (one airport per city)."""
CODE_BY_CITY: dict[str, str] = {city: code for code, city in CITIES.items()}

CABIN_PHRASES: dict[str, str] = {"basic_economy": "basic economy", "economy": "economy", "business": "business"}
CABIN_BY_PHRASE: dict[str, str] = {v: k for k, v in CABIN_PHRASES.items()}
REASON_PHRASES: dict[str, str] = {
    "change_of_plans": "my plans changed",
    "medical": "I have a medical emergency",
    "other": "something came up",
}
"""Cancellation reason (the ``cancel`` tool's enum) -> how customers say it."""
REASON_BY_PHRASE: dict[str, str] = {v: k for k, v in REASON_PHRASES.items()}
INSURANCE_PHRASES: dict[bool, str] = {True: "with travel insurance", False: "without travel insurance"}
INSURANCE_BY_PHRASE: dict[str, bool] = {v: k for k, v in INSURANCE_PHRASES.items()}
INSURANCE_CLAIM = " I bought travel insurance."
"""What a customer may add to a cancellation request (true or not: the agent must check)."""
CARD_BRANDS: tuple[str, ...] = ("Visa", "Mastercard", "Amex")
MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


def _alternation(options: list[str] | tuple[str, ...]) -> str:
    # Longest first, so "basic economy" is tried before "economy".
    return "|".join(re.escape(o) for o in sorted(options, key=lambda o: (-len(o), o)))


_CITY = _alternation(list(CITIES.values()))
_DATE = rf"(?:{_alternation(MONTHS)}) [1-9][0-9]?"
_CARD = rf"(?:{_alternation(CARD_BRANDS)}) card ending in [0-9]{{4}}"

SLOT_PATTERNS: dict[str, str] = {
    "now": r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}",
    "name": r"[A-Z][A-Za-z'-]*(?: [A-Z][A-Za-z'-]*)*",
    "email": r"[a-z0-9._-]+@[a-z0-9.-]+",
    "rid": r"[A-Z0-9]{6}",
    "reason": _alternation(list(REASON_PHRASES.values())),
    "claim": rf"(?:{re.escape(INSURANCE_CLAIM)})?",
    "origin": _CITY,
    "destination": _CITY,
    "date": _DATE,
    "new_date": _DATE,
    "n": r"[0-9]+",
    "bags": r"[0-9]+",
    "passengers": r"[0-9]+",
    "bag_word": r"bags?",
    "pax_word": r"passengers?",
    "pm": rf"{_CARD}|gift card",
    "card": _CARD,
    "flight_number": r"TG[0-9]{3,4}",
    "cabin": _alternation(list(CABIN_PHRASES.values())),
    "insurance": _alternation(list(INSURANCE_PHRASES.values())),
    "time": r"[0-9]{2}:[0-9]{2}",
}
"""Regular expression of each template slot (no groups of their own)."""

HEADER = "Current time: {now} UTC.\nCustomer: \"Hi, I'm {name} ({email}). "
"""Opens every prompt; the request follows, then a closing quote."""

REQUESTS: dict[str, tuple[str, ...]] = {
    "gift_balance": (
        "How much money is left on my gift card?",
        "Could you tell me the remaining balance of my gift card?",
    ),
    "cancel_id": (
        "Please cancel my reservation {rid} because {reason}.{claim} How much will be refunded?",
        "I need to cancel reservation {rid}: {reason}.{claim} Please tell me the refund amount.",
    ),
    "cancel_desc": (
        "Please cancel my reservation from {origin} to {destination} on {date} because {reason}.{claim} "
        "How much will be refunded?",
        "I want to cancel my trip from {origin} to {destination} on {date}: {reason}.{claim} "
        "Please tell me the refund amount.",
    ),
    "add_bags": (
        "Please add {n} checked {bag_word} to my reservation {rid} and charge any fee to my {pm}. "
        "How much is the fee?",
        "I'd like {n} more checked {bag_word} on reservation {rid}. Please charge any fee to my {pm} "
        "and tell me the fee.",
    ),
    "book_flight": (
        "Please book flight {flight_number} from {origin} to {destination} on {date} in {cabin} for "
        "{passengers} {pax_word} with {bags} checked {bag_word}, {insurance}, paid with my {pm}. "
        "Please tell me the reservation number and the total price.",
        "I'd like to book {passengers} {pax_word} in {cabin} on flight {flight_number} from {origin} "
        "to {destination} on {date}, with {bags} checked {bag_word} and {insurance}. Please charge "
        "my {pm} and tell me the reservation number and the total price.",
    ),
    "book_cheapest": (
        "Please book the cheapest {cabin} flight from {origin} to {destination} on {date} that "
        "departs after {time}, for {passengers} {pax_word} with {bags} checked {bag_word}, "
        "{insurance}. Pay with my gift card if its balance covers the total, otherwise with my "
        "{card}. Please tell me the flight number, the reservation number and the total price.",
    ),
    "cancel_rebook": (
        "Please cancel my reservation from {origin} to {destination} on {date} because {reason}, "
        "and instead book the cheapest flight on the same route on {new_date} in the same cabin, "
        "with the same number of passengers, checked bags and insurance choice, paid with my "
        "{card}. If the cancellation is not allowed, don't book anything. Please tell me the new "
        "reservation number and the total price.",
    ),
}
"""Request templates by task family (the oracle dispatches on the family)."""


@dataclass(frozen=True)
class Request:
    """A parsed prompt: the family, the current time, the customer and the request's slots."""

    family: str
    now: str
    """``"YYYY-MM-DDTHH:MM"`` (UTC)."""
    name: str
    email: str
    slots: dict[str, str] = field(default_factory=dict)


def _compile(template: str) -> re.Pattern[str]:
    parts = []
    for literal, slot, _spec, _conv in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if slot is not None:
            parts.append(f"(?P<{slot}>{SLOT_PATTERNS[slot]})")
    return re.compile("".join(parts))


@cache
def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    return [
        (family, _compile(HEADER + request + '"'))
        for family, variants in REQUESTS.items()
        for request in variants
    ]


def render_prompt(family: str, variant: int, *, now: str, name: str, email: str, **slots: str) -> str:
    """The prompt of one task. ``now`` is ``"YYYY-MM-DDTHH:MM"``; ``slots`` fill the request."""
    request = REQUESTS[family][variant % len(REQUESTS[family])]
    return HEADER.format(now=now.replace("T", " "), name=name, email=email) + request.format(**slots) + '"'


def parse_prompt(text: str) -> Request | None:
    """Parse a prompt written by :func:`render_prompt` (also inside a longer text, e.g. after the
    policy); ``None`` if no template matches."""
    for family, pattern in _patterns():
        match = pattern.search(text)
        if match:
            groups = match.groupdict()
            now = groups.pop("now").replace(" ", "T")
            name, email = groups.pop("name"), groups.pop("email")
            return Request(family=family, now=now, name=name, email=email, slots=groups)
    return None


def date_phrase(date: str) -> str:
    """``"2024-05-03"`` -> ``"May 3"``."""
    _year, month, day = date.split("-")
    return f"{MONTHS[int(month) - 1]} {int(day)}"


def parse_date_phrase(phrase: str, year: int) -> str:
    """``"May 3"`` -> ``"2024-05-03"`` (for ``year=2024``)."""
    month, day = phrase.split()
    return f"{year:04d}-{MONTHS.index(month) + 1:02d}-{int(day):02d}"


def plural(count: int, word: str) -> str:
    """``word`` with an ``s`` unless ``count`` is 1."""
    return word if count == 1 else word + "s"


def payment_phrase(method: dict[str, object]) -> str:
    """How a customer names a payment method: ``"Visa card ending in 4242"`` or ``"gift card"``."""
    if method["type"] == "gift_card":
        return "gift card"
    return f"{method['brand']} card ending in {method['last4']}"


def parse_payment_phrase(phrase: str) -> tuple[str, str | None, str | None]:
    """``(type, brand, last4)`` of a payment phrase: ``("credit_card", "Visa", "4242")`` or
    ``("gift_card", None, None)``."""
    if phrase == "gift card":
        return "gift_card", None, None
    brand, _card, _ending, _in, last4 = phrase.split()
    return "credit_card", brand, last4
