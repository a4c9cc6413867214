"""Generate the ToolGym/Booking-v0 airline database and its customer-request task splits.

Usage (from a source checkout)::

    python envs_data/booking/generate.py --seed 0 --out envs_data/booking

Writes ``db.json`` (the initial database), ``tasks/{train,dev,test}.jsonl``, ``README.md`` and
``MANIFEST.json`` (SHA-256 of every written file). The output is a pure function of the seed and
of ``toolgym/envs/booking/{domain,templates}.py``: regenerating gives byte-identical files.

Every task is a customer request against the same initial database, at its own fixed current
time. The generator picks a scenario (a user, a reservation or flight, a current time and the
request's details) whose outcome is known by construction (success, or exactly one policy rule
broken), then replays the gold tool calls through :class:`BookingDB` (the env's own domain
logic) to compute the expected final database. Refusals are double-checked: the forbidden call is
attempted on a scratch copy and must break exactly the intended rule.

The script is stdlib-only. It loads ``domain.py`` and ``templates.py`` by file path, so it does
not import the ``toolgym`` package (nor gymnasium, jsonschema...).
"""

from __future__ import annotations

import itertools
import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1]))  # envs_data/_toolgym_generate.py
from _toolgym_generate import jsonl, load_module, run_cli, write_with_manifest  # noqa: E402

GENERATOR_VERSION = "1.0.0"
DEFAULT_SEED = 0
SPLIT_SIZES: dict[str, int] = {"test": 300, "dev": 300, "train": 2000}
"""Tasks per split. Test is drawn first, so changing the train size never changes the test split."""
FIRST_DAY = datetime(2024, 5, 1)
N_DAYS = 21
N_ROUTE_PAIRS = 16
SLOTS_PER_ROUTE = 3
N_USERS = 400
EARLIEST_NOW = datetime(2024, 4, 24)

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "toolgym" / "envs" / "booking"


D = load_module("_toolgym_booking_domain", PACKAGE / "domain.py")
T = load_module("_toolgym_booking_templates", PACKAGE / "templates.py")

FIRST_NAMES = (
    "Mia", "Noah", "Emma", "Liam", "Olivia", "Lucas", "Ava", "Ethan", "Sofia", "Mateo", "Isabella",
    "Leo", "Amelia", "Omar", "Yuki", "Aarav", "Chloe", "Daniel", "Fatima", "Hugo", "Ines", "Jonas",
    "Kenji", "Lena", "Marco", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Samir", "Tara", "Umar",
    "Vera", "Wei", "Xavier", "Yara", "Zoe", "Anton", "Bianca", "Carlos", "Dalia", "Elif", "Felix",
    "Greta", "Hana", "Ivan", "Julia", "Karim", "Lucia", "Milan", "Nora", "Pablo", "Rina", "Sven",
    "Thea", "Viktor", "Wanda", "Yusuf", "Zara",
)
LAST_NAMES = (
    "Tanaka", "Silva", "Novak", "Kowalski", "Garcia", "Rossi", "Muller", "Dubois", "Jensen",
    "Okafor", "Haddad", "Ivanova", "Kim", "Nguyen", "Patel", "Costa", "Larsen", "Moreau", "Fischer",
    "Romano", "Santos", "Berg", "Horvat", "Yilmaz", "Khan", "Lopez", "Sato", "Ferreira", "Weber",
    "Conti", "Nielsen", "Petrov", "Ahmed", "Brennan", "Castillo", "Dimitrov", "Eriksson", "Fontaine",
    "Gallo", "Hoffmann", "Iqbal", "Jovanovic", "Keller", "Lindqvist", "Marin", "Nakamura", "Ortiz",
    "Popescu", "Quist", "Reyes", "Schmidt", "Takahashi", "Urban", "Varga", "Walsh", "Xu", "Young",
    "Zhou", "Abbasi", "Moreno",
)

MIX: dict[tuple[str, str], tuple[int, str]] = {
    ("gift_balance", "ok"): (7, "easy"),
    ("cancel_id", "ok"): (10, "easy"),
    ("add_bags", "ok"): (11, "easy"),
    ("cancel_id", "R2"): (6, "medium"),
    ("cancel_id", "exception"): (4, "medium"),
    ("cancel_id", "R1"): (4, "medium"),
    ("cancel_desc", "ok"): (8, "medium"),
    ("book_flight", "ok"): (10, "medium"),
    ("book_flight", "R5"): (4, "medium"),
    ("add_bags", "R3"): (4, "hard"),
    ("add_bags", "R4"): (3, "hard"),
    ("cancel_desc", "exception"): (4, "hard"),
    ("cancel_desc", "R2"): (4, "hard"),
    ("book_flight", "R3"): (2, "hard"),
    ("book_flight", "R4"): (3, "hard"),
    ("book_flight", "R6"): (3, "hard"),
    ("book_cheapest", "ok"): (8, "hard"),
    ("cancel_rebook", "ok"): (3, "hard"),
    ("cancel_rebook", "R2"): (2, "hard"),
}
"""(family, outcome) -> (tasks per 100, difficulty). ``ok``: the request is carried out;
``exception``: a cancellation within 24 hours that the business cabin or insurance allows;
``R<n>``: the policy rule that forbids the request (the correct behaviour is to refuse)."""


# ---------------------------------------------------------------------------------- database
def build_db(rng: random.Random) -> dict[str, Any]:
    """The initial database: airports, flights, users with payment methods, reservations."""
    codes = sorted(T.CITIES)
    pairs = sorted(rng.sample(list(itertools.combinations(codes, 2)), N_ROUTE_PAIRS))
    flights: dict[str, dict[str, Any]] = {}
    number = 100
    for a, b in pairs:
        minutes = rng.randrange(95, 235, 5)
        base_fare = rng.randrange(70, 250)
        for origin, destination in ((a, b), (b, a)):
            hours = sorted(rng.sample(range(6, 22), SLOTS_PER_ROUTE))
            for hour in hours:
                number += rng.randrange(1, 9)
                flight_number = f"TG{number}"
                departure_of_day = timedelta(hours=hour, minutes=rng.randrange(0, 60, 5))
                for day in range(N_DAYS):
                    date = FIRST_DAY + timedelta(days=day)
                    departure = date + departure_of_day
                    economy = round(base_fare * rng.uniform(0.75, 1.45))
                    flight_id = f"{flight_number}-{date:%Y-%m-%d}"
                    flights[flight_id] = {
                        "flight_id": flight_id,
                        "flight_number": flight_number,
                        "origin": origin,
                        "destination": destination,
                        "date": f"{date:%Y-%m-%d}",
                        "departure": D.format_time(departure),
                        "arrival": D.format_time(departure + timedelta(minutes=minutes)),
                        "prices": {
                            "basic_economy": round(economy * rng.uniform(0.6, 0.75)),
                            "economy": economy,
                            "business": round(economy * rng.uniform(2.3, 3.2)),
                        },
                        "seats_available": {
                            "basic_economy": 0 if rng.random() < 0.12 else rng.randint(1, 9),
                            "economy": 0 if rng.random() < 0.05 else rng.randint(1, 40),
                            "business": 0 if rng.random() < 0.15 else rng.randint(1, 8),
                        },
                    }
    users: dict[str, dict[str, Any]] = {}
    emails: set[str] = set()
    pm_numbers: set[int] = set()
    names: list[tuple[str, str]] = []
    for _ in range(N_USERS):
        if names and rng.random() < 0.04:  # namesakes: find_user by name is ambiguous
            first, last = rng.choice(names)
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        names.append((first, last))
        email = f"{first}.{last}@example.com".lower()
        suffix = 2
        while email in emails:
            email = f"{first}.{last}{suffix}@example.com".lower()
            suffix += 1
        emails.add(email)
        user_id = f"{first}_{last}_{rng.randint(1000, 9999)}".lower()
        while user_id in users:
            user_id = f"{first}_{last}_{rng.randint(1000, 9999)}".lower()

        def pm_id(kind: str) -> str:
            value = rng.randint(1_000_000, 9_999_999)
            while value in pm_numbers:
                value = rng.randint(1_000_000, 9_999_999)
            pm_numbers.add(value)
            return f"{kind}_{value}"

        methods: dict[str, dict[str, Any]] = {}
        brands = rng.sample(T.CARD_BRANDS, rng.choice((1, 1, 2)))
        for brand in brands:
            ident = pm_id("credit_card")
            methods[ident] = {"id": ident, "type": "credit_card", "brand": brand, "last4": f"{rng.randint(0, 9999):04d}"}
        if rng.random() < 0.5:
            ident = pm_id("gift_card")
            methods[ident] = {"id": ident, "type": "gift_card", "balance": rng.randint(0, 120) * 5}
        users[user_id] = {
            "user_id": user_id,
            "name": f"{first} {last}",
            "email": email,
            "membership": rng.choices(D.TIERS, weights=(50, 30, 20))[0],
            "payment_methods": methods,
            "reservations": [],
        }
    reservations: dict[str, dict[str, Any]] = {}
    flight_ids = sorted(flights)
    for user_id in sorted(users):
        user = users[user_id]
        seen: set[tuple[str, str, str]] = set()
        for _ in range(rng.choices((0, 1, 2, 3, 4), weights=(10, 30, 30, 20, 10))[0]):
            flight = flights[rng.choice(flight_ids)]
            key = (flight["origin"], flight["destination"], flight["date"])
            if key in seen:
                continue
            seen.add(key)
            rid = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
            if rid in reservations:
                continue
            cabin = rng.choices(D.CABINS, weights=(25, 50, 25))[0]
            passengers = rng.choices((1, 2, 3, 4), weights=(50, 30, 15, 5))[0]
            baggage = rng.randint(0, D.max_bags(user["membership"], passengers))
            insurance = rng.random() < 0.35
            method = rng.choice(sorted(user["payment_methods"]))
            total = D.booking_total(flight["prices"][cabin], user["membership"], passengers, baggage, insurance)
            cancelled = rng.random() < 0.12
            created = datetime(2024, 3, 1) + timedelta(minutes=5 * rng.randrange(0, 50 * 24 * 12))
            reservations[rid] = {
                "reservation_id": rid,
                "user_id": user_id,
                "flight_id": flight["flight_id"],
                "cabin": cabin,
                "passengers": passengers,
                "baggage": baggage,
                "insurance": insurance,
                "status": "cancelled" if cancelled else "confirmed",
                "payments": [{"payment_method_id": method, "amount": total}],
                "created_at": D.format_time(created),
                "cancel_reason": rng.choice(D.CANCEL_REASONS) if cancelled else None,
                "refund": total if cancelled else 0,
            }
            user["reservations"].append(rid)
    return {
        "meta": {"airline": "ToolGym Air", "currency": "USD", "next_reservation_seq": 1},
        "airports": dict(sorted(T.CITIES.items())),
        "users": users,
        "flights": flights,
        "reservations": reservations,
    }


# ---------------------------------------------------------------------------------- tasks
class Skip(Exception):
    """The drawn scenario does not fit the requested outcome: draw another."""


class Builder:
    """Draws scenarios for each (family, outcome) against one initial database."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.base = D.BaseDB(data)
        self.users = data["users"]
        self.flights = data["flights"]
        self.reservations = data["reservations"]
        self.user_ids = sorted(self.users)
        self.confirmed = sorted(r for r, v in self.reservations.items() if v["status"] == "confirmed")

    # ------------------------------------------------------------------ helpers
    def episode(self, now: datetime, requester: str) -> Any:
        """A fresh episode database (a :class:`BookingDB`) at ``now`` for ``requester``."""
        return D.BookingDB(self.base, now=now, requester=requester)

    @staticmethod
    def now_before(departure: str, hours: float) -> datetime:
        """A current time about ``hours`` before ``departure``, on a 5-minute grid."""
        now = D.parse_time(departure) - timedelta(minutes=5 * round(hours * 12))
        if now < EARLIEST_NOW:
            raise Skip
        return now

    def replay(self, db: Any, actions: list[dict[str, Any]]) -> list[Any]:
        """Apply gold actions (all must succeed) and return their results."""
        return [getattr(db, a["name"])(**a["arguments"]) for a in actions]

    def check_refusal(self, now: datetime, requester: str, action: dict[str, Any], rule: str) -> None:
        """The forbidden call must break exactly ``rule`` (and change nothing)."""
        db = self.episode(now, requester)
        try:
            getattr(db, action["name"])(**action["arguments"])
        except D.PolicyViolation as exc:
            if exc.rules != [rule]:
                raise Skip from None
        else:
            raise Skip
        assert db.diff() == {}

    def pick_claim(self, rng: random.Random, insurance: bool) -> str:
        """The customer's (possibly false) claim to have bought insurance, or ``""``."""
        if insurance:
            return T.INSURANCE_CLAIM if rng.random() < 0.5 else ""
        return T.INSURANCE_CLAIM if rng.random() < 0.25 else ""

    def find_reservation_calls(self, user: dict[str, Any], rid: str) -> list[dict[str, Any]]:
        """``get_reservation`` on the user's reservations, in profile order, up to ``rid``."""
        calls = []
        for other in user["reservations"]:
            calls.append(call("get_reservation", reservation_id=other))
            if other == rid:
                return calls
        raise AssertionError("reservation not in the user's list")

    def card(self, rng: random.Random, user: dict[str, Any]) -> dict[str, Any]:
        """One of the user's credit cards."""
        cards = [m for _, m in sorted(user["payment_methods"].items()) if m["type"] == "credit_card"]
        return rng.choice(cards)

    def gift(self, user: dict[str, Any]) -> dict[str, Any] | None:
        """The user's gift card, if any (users have at most one)."""
        gifts = [m for _, m in sorted(user["payment_methods"].items()) if m["type"] == "gift_card"]
        return gifts[0] if gifts else None

    def foreign_card_phrase(self, rng: random.Random, user: dict[str, Any]) -> str:
        """A card the user does not have ("Visa card ending in 1234")."""
        owned = {m.get("last4") for m in user["payment_methods"].values()}
        last4 = f"{rng.randint(0, 9999):04d}"
        while last4 in owned:
            last4 = f"{rng.randint(0, 9999):04d}"
        return f"{rng.choice(T.CARD_BRANDS)} card ending in {last4}"

    def bad_payment(self, rng: random.Random, user: dict[str, Any], amount: int) -> tuple[str, str]:
        """A payment phrase that breaks R4 for ``amount``, and the id the agent might try."""
        gift = self.gift(user)
        options = ["foreign"]
        if gift is None:
            options.append("no_gift")
        elif gift["balance"] < amount:
            options += ["low_gift", "low_gift"]
        kind = rng.choice(options)
        if kind == "foreign":
            return self.foreign_card_phrase(rng, user), "credit_card_0000000"
        if kind == "no_gift":
            return "gift card", "gift_card_0000000"
        return "gift card", gift["id"]

    # ------------------------------------------------------------------ families
    def gift_balance(self, rng: random.Random, outcome: str) -> dict[str, Any]:
        """Ask for the gift card's balance."""
        user = self.users[rng.choice(self.user_ids)]
        gift = self.gift(user)
        if gift is None:
            raise Skip
        now = EARLIEST_NOW + timedelta(minutes=5 * rng.randrange(0, 26 * 24 * 12))
        actions = [call("find_user", email=user["email"]), call("get_user", user_id=user["user_id"])]
        return dict(user=user, now=now, actions=actions, slots={}, answer=[str(gift["balance"])])

    def _cancel_scenario(self, rng: random.Random, outcome: str) -> tuple[Any, ...]:
        """A confirmed reservation, its flight and a current time that give ``outcome``."""
        rid = rng.choice(self.confirmed)
        res = self.reservations[rid]
        flight = self.flights[res["flight_id"]]
        protected = res["cabin"] == "business" or res["insurance"]
        if outcome in ("ok", "R1"):
            hours = rng.uniform(25.5, 150)
        elif outcome == "exception":
            if not protected:
                raise Skip
            hours = rng.uniform(1, 23.5)
        else:  # R2
            if protected and rng.random() < 0.85:
                raise Skip
            hours = rng.uniform(-30, -1) if protected else (
                rng.uniform(-30, -1) if rng.random() < 0.15 else rng.uniform(0.5, 23.5)
            )
        return res, flight, self.now_before(flight["departure"], hours)

    def cancel_id(self, rng: random.Random, outcome: str) -> dict[str, Any]:
        """Cancel a reservation named by its id (possibly another user's: R1)."""
        res, _flight, now = self._cancel_scenario(rng, outcome)
        owner = self.users[res["user_id"]]
        user = owner
        if outcome == "R1":
            user = self.users[rng.choice(self.user_ids)]
            if user is owner:
                raise Skip
        reason = rng.choice(D.CANCEL_REASONS)
        actions = [
            call("find_user", email=user["email"]),
            call("get_reservation", reservation_id=res["reservation_id"]),
        ]
        cancel = call("cancel", reservation_id=res["reservation_id"], reason=reason)
        slots = {
            "rid": res["reservation_id"],
            "reason": T.REASON_PHRASES[reason],
            "claim": self.pick_claim(rng, res["insurance"]),
        }
        return self._finish_cancel(user, now, actions, cancel, slots, res, outcome)

    def cancel_desc(self, rng: random.Random, outcome: str) -> dict[str, Any]:
        """Cancel a reservation described by route and date (found through the profile)."""
        res, flight, now = self._cancel_scenario(rng, outcome)
        user = self.users[res["user_id"]]
        reason = rng.choice(D.CANCEL_REASONS)
        actions = [call("find_user", email=user["email"]), call("get_user", user_id=user["user_id"])]
        actions += self.find_reservation_calls(user, res["reservation_id"])
        cancel = call("cancel", reservation_id=res["reservation_id"], reason=reason)
        slots = {
            "origin": T.CITIES[flight["origin"]],
            "destination": T.CITIES[flight["destination"]],
            "date": T.date_phrase(flight["date"]),
            "reason": T.REASON_PHRASES[reason],
            "claim": self.pick_claim(rng, res["insurance"]),
        }
        return self._finish_cancel(user, now, actions, cancel, slots, res, outcome)

    def _finish_cancel(
        self,
        user: dict[str, Any],
        now: datetime,
        actions: list[dict[str, Any]],
        cancel: dict[str, Any],
        slots: dict[str, str],
        res: dict[str, Any],
        outcome: str,
    ) -> dict[str, Any]:
        if outcome.startswith("R"):
            self.check_refusal(now, user["user_id"], cancel, outcome)
            return dict(user=user, now=now, actions=actions, slots=slots, answer=[outcome], forbidden=cancel)
        refund = sum(p["amount"] for p in res["payments"])
        return dict(user=user, now=now, actions=[*actions, cancel], slots=slots, answer=[str(refund)])

    def add_bags(self, rng: random.Random, outcome: str) -> dict[str, Any]:
        """Add checked bags to a reservation and report the fee."""
        res = self.reservations[rng.choice(self.confirmed)]
        flight = self.flights[res["flight_id"]]
        user = self.users[res["user_id"]]
        now = self.now_before(flight["departure"], rng.uniform(2, 150))
        tier, pax, current = user["membership"], res["passengers"], res["baggage"]
        limit = D.max_bags(tier, pax)
        room = limit - current
        if outcome == "R3":
            if room >= 3:
                raise Skip
            n = room + rng.randint(1, 2)
        else:
            if room < 1:
                raise Skip
            n = rng.randint(1, min(3, room))
        fee = D.bag_fees(tier, pax, current + n) - D.bag_fees(tier, pax, current)
        gift = self.gift(user)
        if outcome == "R4":
            if fee == 0 and rng.random() < 0.8:
                raise Skip
            pm_phrase, pm_id = self.bad_payment(rng, user, fee)
        elif gift is not None and gift["balance"] >= fee and rng.random() < 0.3:
            pm_phrase, pm_id = "gift card", gift["id"]
        else:
            card = self.card(rng, user)
            pm_phrase, pm_id = T.payment_phrase(card), card["id"]
        actions = [
            call("find_user", email=user["email"]),
            call("get_user", user_id=user["user_id"]),
            call("get_reservation", reservation_id=res["reservation_id"]),
        ]
        update = call("update_baggage", reservation_id=res["reservation_id"], baggage=current + n, payment_method_id=pm_id)
        slots = {"n": str(n), "bag_word": T.plural(n, "bag"), "rid": res["reservation_id"], "pm": pm_phrase}
        if outcome.startswith("R"):
            self.check_refusal(now, user["user_id"], update, outcome)
            return dict(user=user, now=now, actions=actions, slots=slots, answer=[outcome], forbidden=update)
        return dict(user=user, now=now, actions=[*actions, update], slots=slots, answer=[str(fee)])

    def book_flight(self, rng: random.Random, outcome: str) -> dict[str, Any]:
        """Book a named flight; report the reservation id and the total."""
        user = self.users[rng.choice(self.user_ids)]
        flight = self.flights[rng.choice(sorted(self.flights))]
        cabin = rng.choices(D.CABINS, weights=(25, 50, 25))[0]
        seats = flight["seats_available"][cabin]
        now = self.now_before(flight["departure"], rng.uniform(3, 190))
        tier = user["membership"]
        if outcome == "R5":
            pax = rng.randint(D.MAX_PASSENGERS + 1, D.MAX_PASSENGERS + 2)
        elif outcome == "R6":
            if seats >= D.MAX_PASSENGERS:
                raise Skip
            pax = rng.randint(seats + 1, min(D.MAX_PASSENGERS, seats + 3))
        else:
            pax = rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]
        if outcome != "R6" and seats < pax:
            raise Skip
        limit = D.max_bags(tier, pax)
        bags = limit + rng.randint(1, 2) if outcome == "R3" else rng.randint(0, min(limit, 2 * pax))
        insurance = rng.random() < 0.35
        total = D.booking_total(flight["prices"][cabin], tier, pax, bags, insurance)
        gift = self.gift(user)
        if outcome == "R4":
            pm_phrase, pm_id = self.bad_payment(rng, user, total)
        elif gift is not None and gift["balance"] >= total and rng.random() < 0.5:
            pm_phrase, pm_id = "gift card", gift["id"]
        else:
            card = self.card(rng, user)
            pm_phrase, pm_id = T.payment_phrase(card), card["id"]
        actions = [
            call("find_user", email=user["email"]),
            call("get_user", user_id=user["user_id"]),
            call("search_flights", origin=flight["origin"], destination=flight["destination"], date=flight["date"]),
        ]
        book = call(
            "book", user_id=user["user_id"], flight_id=flight["flight_id"], cabin=cabin, passengers=pax,
            baggage=bags, insurance=insurance, payment_method_id=pm_id,
        )
        slots = {
            "flight_number": flight["flight_number"],
            "origin": T.CITIES[flight["origin"]],
            "destination": T.CITIES[flight["destination"]],
            "date": T.date_phrase(flight["date"]),
            "cabin": T.CABIN_PHRASES[cabin],
            "passengers": str(pax),
            "pax_word": T.plural(pax, "passenger"),
            "bags": str(bags),
            "bag_word": T.plural(bags, "bag"),
            "insurance": T.INSURANCE_PHRASES[insurance],
            "pm": pm_phrase,
        }
        if outcome.startswith("R"):
            self.check_refusal(now, user["user_id"], book, outcome)
            return dict(user=user, now=now, actions=actions, slots=slots, answer=[outcome], forbidden=book)
        return dict(user=user, now=now, actions=[*actions, book], slots=slots, answer=["{new_rid}", str(total)])

    def cheapest(self, route: tuple[str, str, str], cabin: str, pax: int, after: str = "00:00") -> dict[str, Any]:
        """The unique cheapest flight of ``route`` departing after ``after`` with seats for ``pax``."""
        flights = [self.flights[f] for f in self.base.flights_by_route.get(route, [])]
        fits = [f for f in flights if f["departure"][11:] > after and f["seats_available"][cabin] >= pax]
        if not fits:
            raise Skip
        best = min(f["prices"][cabin] for f in fits)
        winners = [f for f in fits if f["prices"][cabin] == best]
        if len(winners) != 1:
            raise Skip
        return winners[0]

    def book_cheapest(self, rng: random.Random, outcome: str) -> dict[str, Any]:
        """Book the cheapest flight under constraints, paying by gift card if it covers the total."""
        user = self.users[rng.choice(self.user_ids)]
        gift = self.gift(user)
        if gift is None:
            raise Skip
        route = rng.choice(sorted(self.base.flights_by_route))
        flights = [self.flights[f] for f in self.base.flights_by_route[route]]
        cabin = rng.choices(D.CABINS, weights=(25, 50, 25))[0]
        pax = rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]
        after = f"{rng.randint(5, int(flights[1]['departure'][11:13])):02d}:00"
        if any(f["departure"][11:] == after for f in flights):
            raise Skip  # "departs after 10:00" must not hinge on a flight at 10:00 exactly
        chosen = self.cheapest(route, cabin, pax, after)
        # Make the constraints matter: the cheapest flight of the day must be excluded.
        overall = min(f["prices"][cabin] for f in flights)
        if chosen["prices"][cabin] == overall and rng.random() < 0.7:
            raise Skip
        if len([f for f in flights if f["departure"][11:] > after]) < 2:
            raise Skip
        now = datetime.strptime(route[2], "%Y-%m-%d") - timedelta(minutes=5 * rng.randrange(6 * 12, 5 * 24 * 12))
        if now < EARLIEST_NOW:
            raise Skip
        tier = user["membership"]
        bags = rng.randint(0, min(D.max_bags(tier, pax), 2 * pax))
        insurance = rng.random() < 0.35
        total = D.booking_total(chosen["prices"][cabin], tier, pax, bags, insurance)
        card = self.card(rng, user)
        pm_id = gift["id"] if gift["balance"] >= total else card["id"]
        actions = [
            call("find_user", email=user["email"]),
            call("get_user", user_id=user["user_id"]),
            call("search_flights", origin=route[0], destination=route[1], date=route[2]),
            call(
                "book", user_id=user["user_id"], flight_id=chosen["flight_id"], cabin=cabin, passengers=pax,
                baggage=bags, insurance=insurance, payment_method_id=pm_id,
            ),
        ]
        slots = {
            "cabin": T.CABIN_PHRASES[cabin],
            "origin": T.CITIES[route[0]],
            "destination": T.CITIES[route[1]],
            "date": T.date_phrase(route[2]),
            "time": after,
            "passengers": str(pax),
            "pax_word": T.plural(pax, "passenger"),
            "bags": str(bags),
            "bag_word": T.plural(bags, "bag"),
            "insurance": T.INSURANCE_PHRASES[insurance],
            "card": T.payment_phrase(card),
        }
        answer = [chosen["flight_number"], "{new_rid}", str(total)]
        return dict(user=user, now=now, actions=actions, slots=slots, answer=answer)

    def cancel_rebook(self, rng: random.Random, outcome: str) -> dict[str, Any]:
        """Cancel a reservation and book the cheapest flight of its route on another day."""
        res, flight, now = self._cancel_scenario(rng, rng.choice(("ok", "exception")) if outcome == "ok" else outcome)
        if D.parse_time(flight["departure"]) <= now:
            raise Skip  # a departed flight: rebooking "instead" makes no sense
        user = self.users[res["user_id"]]
        first_day = (now + timedelta(days=1)).date()
        days = [
            d for d in range(N_DAYS)
            if (FIRST_DAY + timedelta(days=d)).date() >= first_day
            and f"{FIRST_DAY + timedelta(days=d):%Y-%m-%d}" != flight["date"]
        ]
        if not days:
            raise Skip
        new_date = f"{FIRST_DAY + timedelta(days=rng.choice(days)):%Y-%m-%d}"
        route = (flight["origin"], flight["destination"], new_date)
        new = self.cheapest(route, res["cabin"], res["passengers"])
        reason = rng.choice(D.CANCEL_REASONS)
        card = self.card(rng, user)
        actions = [call("find_user", email=user["email"]), call("get_user", user_id=user["user_id"])]
        actions += self.find_reservation_calls(user, res["reservation_id"])
        cancel = call("cancel", reservation_id=res["reservation_id"], reason=reason)
        slots = {
            "origin": T.CITIES[flight["origin"]],
            "destination": T.CITIES[flight["destination"]],
            "date": T.date_phrase(flight["date"]),
            "reason": T.REASON_PHRASES[reason],
            "new_date": T.date_phrase(new_date),
            "card": T.payment_phrase(card),
        }
        if outcome.startswith("R"):
            self.check_refusal(now, user["user_id"], cancel, outcome)
            return dict(user=user, now=now, actions=actions, slots=slots, answer=[outcome], forbidden=cancel)
        total = D.booking_total(
            new["prices"][res["cabin"]], user["membership"], res["passengers"], res["baggage"], res["insurance"]
        )
        actions += [
            call("search_flights", origin=route[0], destination=route[1], date=new_date),
            cancel,
            call(
                "book", user_id=user["user_id"], flight_id=new["flight_id"], cabin=res["cabin"],
                passengers=res["passengers"], baggage=res["baggage"], insurance=res["insurance"],
                payment_method_id=card["id"],
            ),
        ]
        return dict(user=user, now=now, actions=actions, slots=slots, answer=["{new_rid}", str(total)])

    # ------------------------------------------------------------------ one task
    def make_task(self, rng: random.Random, family: str, outcome: str, task_id: str) -> dict[str, Any]:
        """One task row, or raise :class:`Skip`."""
        draw: Callable[[random.Random, str], dict[str, Any]] = getattr(self, family)
        s = draw(rng, outcome)
        user, now = s["user"], s["now"]
        db = self.episode(now, user["user_id"])
        results = self.replay(db, s["actions"])
        new_rids = [r["reservation"]["reservation_id"] for r in results if isinstance(r, dict) and "reservation" in r]
        answer = [new_rids[-1] if a == "{new_rid}" else a for a in s["answer"]]
        diff = db.diff()
        if outcome.startswith("R") and diff:
            raise AssertionError(f"refusal task {task_id} changes the database")
        variant = rng.randrange(len(T.REQUESTS[family]))
        prompt = T.render_prompt(
            family, variant, now=D.format_time(now), name=user["name"], email=user["email"], **s["slots"]
        )
        parsed = T.parse_prompt(prompt)
        if parsed is None or parsed.family != family or (parsed.name, parsed.email) != (
            user["name"], user["email"]
        ) or parsed.slots != {
            k: v for k, v in s["slots"].items() if k in parsed.slots
        }:
            raise AssertionError(f"prompt of {task_id} does not parse back: {prompt!r}")
        return {
            "id": task_id,
            "prompt": prompt,
            "answer": answer,
            "difficulty": MIX[(family, outcome)][1],
            "metadata": {
                "family": family,
                "outcome": outcome,
                "rule": outcome if outcome.startswith("R") else None,
                "user_id": user["user_id"],
                "now": D.format_time(now),
                "gold_actions": s["actions"],
                "forbidden_action": s.get("forbidden"),
                "num_calls": len(s["actions"]),
                "expected_diff": diff,
                "expected_state_hash": D.digest(diff),
            },
        }


def call(name: str, **arguments: Any) -> dict[str, Any]:
    """A gold action."""
    return {"name": name, "arguments": arguments}


def mix_schedule(rng: random.Random, size: int) -> list[tuple[str, str]]:
    """``size`` (family, outcome) pairs in the proportions of :data:`MIX` (shuffled per 100)."""
    block = [key for key, (weight, _) in MIX.items() for _ in range(weight)]
    out: list[tuple[str, str]] = []
    while len(out) < size:
        chunk = list(block)
        rng.shuffle(chunk)
        out += chunk
    return out[:size]


def generate_tasks(builder: Builder, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Every split's rows (prompts are unique across splits)."""
    seen: set[str] = set()
    splits: dict[str, list[dict[str, Any]]] = {}
    for index, (split, size) in enumerate(SPLIT_SIZES.items()):
        rng = random.Random(seed * 1000 + 17 * (index + 1))
        rows = []
        for i, (family, outcome) in enumerate(mix_schedule(rng, size)):
            task_id = f"booking-{split}-{i:05d}"
            for _attempt in range(10_000):
                try:
                    row = builder.make_task(rng, family, outcome, task_id)
                except Skip:
                    continue
                if row["prompt"] not in seen:
                    break
            else:
                raise RuntimeError(f"could not draw a {family}/{outcome} task")
            seen.add(row["prompt"])
            rows.append(row)
        splits[split] = rows
    return splits


# ---------------------------------------------------------------------------------- output
def readme(data: dict[str, Any], splits: dict[str, list[dict[str, Any]]], seed: int) -> str:
    """The data card."""
    lines = [
        "# ToolGym/Booking-v0 data",
        "",
        "A generated airline database and customer requests in the spirit of tau-bench: the agent",
        "serves one customer per episode through 7 tools and must follow a stated domain policy",
        "(rules R1-R7, see `toolgym/envs/booking/domain.py`). Some requests must be refused.",
        "",
        f"Generated by `generate.py` (version {GENERATOR_VERSION}, seed {seed}); stdlib-only and",
        "deterministic. Regenerate (byte-identical, checked against `MANIFEST.json` by",
        "`tests/test_env_data.py`):",
        "",
        "```",
        f"python envs_data/booking/generate.py --seed {seed} --out envs_data/booking",
        "```",
        "",
        "Request templates live in `toolgym/envs/booking/templates.py` (shared with the scripted",
        "oracle); the policy and the database operations in `toolgym/envs/booking/domain.py` (shared",
        "with the env). Changing either changes the data: regenerate and bump the env version.",
        "",
        "## Files",
        "",
        f"- `db.json`: the initial database: {len(data['users'])} users, {len(data['flights'])} flights "
        f"({N_ROUTE_PAIRS * 2} routes x {SLOTS_PER_ROUTE} daily flights x {N_DAYS} days from "
        f"{FIRST_DAY:%Y-%m-%d}), {len(data['reservations'])} reservations, {len(data['airports'])} airports.",
        "- `tasks/{train,dev,test}.jsonl`: one task per line: `{\"id\", \"prompt\", \"answer\",",
        "  \"difficulty\", \"metadata\"}`. `prompt` states the current time (UTC) and the customer's",
        "  message. `answer` lists what the final answer must mention (numbers, reservation ids, flight",
        "  numbers, or the rule id of a refusal). `metadata` has `family`, `outcome` (`ok`,",
        "  `exception` or the rule id that forbids the request), `rule`, `user_id` (the customer),",
        "  `now`, `gold_actions` (the tool calls of a correct agent), `forbidden_action` (for refusals:",
        "  the call the policy forbids), `num_calls`, `expected_diff` (every record of the final",
        "  database that differs from `db.json`) and `expected_state_hash` (SHA-256 of its canonical",
        "  JSON: the env's grader compares it with the episode's).",
        "- `MANIFEST.json`: seed, generator version and SHA-256 of every other file.",
        "",
        "## Grading",
        "",
        "An episode succeeds iff it ends with a final answer and (1) the episode's database differs",
        "from `db.json` by exactly `expected_diff` (the env compares SHA-256 hashes of the canonical",
        "JSON, so a missing, extra or wrong change fails: booking the wrong flight, cancelling one",
        "reservation too many, a duplicate booking), and (2) the answer mentions every item of",
        "`answer`: digit strings as numbers (`$1,240.00` mentions `1240`), other items (reservation",
        "ids, flight numbers, rule ids) as whole words in any case. A refusal must cite exactly its",
        "rule: an answer naming other rule ids too fails. Tool calls the policy forbids return a",
        "`tool_error` citing the rule and change nothing.",
        "",
        "## Tasks",
        "",
        "| family | outcome | difficulty | " + " | ".join(splits) + " |",
        "|---|---|---|" + "---|" * len(splits),
    ]
    counts = {split: Counter((r["metadata"]["family"], r["metadata"]["outcome"]) for r in rows) for split, rows in splits.items()}
    for key, (_weight, level) in MIX.items():
        lines.append(f"| {key[0]} | {key[1]} | {level} | " + " | ".join(str(counts[s][key]) for s in splits) + " |")
    levels = {split: Counter(r["difficulty"] for r in rows) for split, rows in splits.items()}
    for level in ("easy", "medium", "hard"):
        lines.append(f"| **all** | | {level} | " + " | ".join(str(levels[s][level]) for s in splits) + " |")
    lines.append("")
    return "\n".join(lines)


def write_all(out: Path, seed: int) -> None:
    """Generate every file under ``out``."""
    data = build_db(random.Random(seed))
    splits = generate_tasks(Builder(data), seed)
    files: dict[str, str] = {"db.json": json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"}
    for split in ("train", "dev", "test"):
        files[f"tasks/{split}.jsonl"] = jsonl(splits[split])
    files["README.md"] = readme(data, splits, seed)
    write_with_manifest(out, files, seed=seed, generator_version=GENERATOR_VERSION)


if __name__ == "__main__":
    run_cli(write_all, __doc__, __file__, default_seed=DEFAULT_SEED)
