"""Scripted oracle for ``ToolGym/Booking-v0``: serves each request through the tools only.

It reads what an agent sees (the task prompt in ``info["task_prompt"]`` and each tool's JSON
output in ``info["tool_output"]``), parses the request with the templates' regular expressions,
looks everything up with the tools, applies the policy itself and then acts or refuses. It never
reads the task's answer, its metadata or the data files, and it never makes a call the policy
forbids (so it never sees a ``tool_error``).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from toolgym.core.actions import FinalAnswer, ToolCall, get_action_format
from toolgym.envs.booking.domain import (
    BAG_FEE,
    CANCEL_WINDOW_HOURS,
    EXTRA_BAGS_PER_PASSENGER,
    FREE_BAGS,
    INSURANCE_FEE,
    MAX_PASSENGERS,
    parse_time,
)
from toolgym.envs.booking.templates import (
    CABIN_BY_PHRASE,
    CODE_BY_CITY,
    INSURANCE_BY_PHRASE,
    REASON_BY_PHRASE,
    Request,
    parse_date_phrase,
    parse_payment_phrase,
    parse_prompt,
)

Plan = Generator[ToolCall | FinalAnswer, Any, None]
"""A plan yields actions and receives each tool's decoded output (``None`` after an error)."""


class CallFailed(Exception):
    """A tool call returned an error (never happens on the shipped tasks)."""


class Refusal(Exception):
    """The policy forbids the request: answer with the rule."""

    def __init__(self, rule: str, why: str) -> None:
        super().__init__(why)
        self.rule = rule
        self.why = why


def _fee(membership: str, passengers: int, baggage: int) -> int:
    return BAG_FEE * max(0, baggage - FREE_BAGS[membership] * passengers)


def _total(fare: int, membership: str, passengers: int, baggage: int, insurance: bool) -> int:
    return fare * passengers + _fee(membership, passengers, baggage) + (INSURANCE_FEE * passengers if insurance else 0)


class BookingOracle:
    """Solves every request family of Booking-v0, one tool call per turn."""

    def __init__(self) -> None:
        self._plan: Plan | None = None

    def reset(self, *, seed: int | None = None) -> None:
        """Forget the previous episode (the oracle is deterministic)."""
        self._plan = None

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next action of the plan for this episode's request."""
        fmt = get_action_format(info.get("action_format", "hermes"))
        try:
            if self._plan is None or info.get("turn", 0) == 0:
                self._plan = self._solve(str(info.get("task_prompt", observation)))
                action = next(self._plan)
            else:
                output = info.get("tool_output")
                action = self._plan.send(json.loads(output) if output and not info.get("error") else None)
        except StopIteration:
            action = FinalAnswer("Sorry, I could not complete your request.")
        return fmt.render(action)

    # ------------------------------------------------------------------ plans
    def _solve(self, prompt: str) -> Plan:
        request = parse_prompt(prompt)
        if request is None:
            yield FinalAnswer("Sorry, I did not understand your request.")
            return
        handler = getattr(self, f"_{request.family}")
        try:
            text = yield from handler(request)
        except Refusal as refusal:
            text = f"I'm sorry, I cannot do that: {refusal.why} This is not allowed by rule {refusal.rule}."
        except CallFailed as failed:
            text = f"Sorry, I could not complete your request: {failed}"
        yield FinalAnswer(text)

    @staticmethod
    def _call(name: str, **arguments: Any) -> Generator[ToolCall, Any, Any]:
        result = yield ToolCall(name, arguments)
        if result is None:
            raise CallFailed(f"the {name} call failed.")
        return result

    def _login(self, request: Request, *, profile: bool = True) -> Generator[ToolCall, Any, dict[str, Any]]:
        found = yield from self._call("find_user", email=request.email)
        user = found["users"][0]
        if profile:
            user = yield from self._call("get_user", user_id=user["user_id"])
        return user

    def _find_reservation(
        self, request: Request, user: dict[str, Any]
    ) -> Generator[ToolCall, Any, dict[str, Any]]:
        """The user's reservation described by ``origin``, ``destination`` and ``date``."""
        slots = request.slots
        origin, destination = CODE_BY_CITY[slots["origin"]], CODE_BY_CITY[slots["destination"]]
        date = parse_date_phrase(slots["date"], int(request.now[:4]))
        for rid in user["reservations"]:
            res = yield from self._call("get_reservation", reservation_id=rid)
            flight = res["flight"]
            if (flight["origin"], flight["destination"], flight["date"]) == (origin, destination, date):
                return res
        raise CallFailed("I could not find that reservation in your profile.")

    @staticmethod
    def _check_cancel(request: Request, user_id: str, res: dict[str, Any]) -> None:
        if res["user_id"] != user_id:
            raise Refusal("R1", f"reservation {res['reservation_id']} belongs to another customer.")
        hours = (parse_time(res["flight"]["departure"]) - parse_time(request.now)) / timedelta(hours=1)
        if hours <= 0:
            raise Refusal("R2", f"the flight of reservation {res['reservation_id']} has already departed.")
        if hours <= CANCEL_WINDOW_HOURS and res["cabin"] != "business" and not res["insurance"]:
            raise Refusal(
                "R2",
                f"the flight departs in {hours:.1f} hours, and {res['cabin'].replace('_', ' ')} reservations "
                f"without travel insurance can only be cancelled more than {CANCEL_WINDOW_HOURS} hours "
                "before departure.",
            )

    @staticmethod
    def _payment(user: dict[str, Any], phrase: str, amount: int) -> str:
        """The id of the payment method the customer named, checked against rule R4."""
        kind, brand, last4 = parse_payment_phrase(phrase)
        for pm_id, method in sorted(user["payment_methods"].items()):
            if method["type"] != kind:
                continue
            if kind == "credit_card" and (method["brand"], method["last4"]) != (brand, last4):
                continue
            if kind == "gift_card" and method["balance"] < amount:
                raise Refusal(
                    "R4", f"your gift card balance (${method['balance']}) does not cover the ${amount} due."
                )
            return pm_id
        raise Refusal("R4", f"there is no {phrase} in your profile, and only payment methods on file can be used.")

    # ------------------------------------------------------------------ families
    def _gift_balance(self, request: Request) -> Generator[ToolCall, Any, str]:
        user = yield from self._login(request)
        balances = [m["balance"] for _, m in sorted(user["payment_methods"].items()) if m["type"] == "gift_card"]
        if not balances:
            return "You have no gift card on file."
        return f"Your gift card balance is ${balances[0]}."

    def _cancel_id(self, request: Request) -> Generator[ToolCall, Any, str]:
        user = yield from self._login(request, profile=False)
        res = yield from self._call("get_reservation", reservation_id=request.slots["rid"])
        return (yield from self._cancel(request, user["user_id"], res))

    def _cancel_desc(self, request: Request) -> Generator[ToolCall, Any, str]:
        user = yield from self._login(request)
        res = yield from self._find_reservation(request, user)
        return (yield from self._cancel(request, user["user_id"], res))

    def _cancel(self, request: Request, user_id: str, res: dict[str, Any]) -> Generator[ToolCall, Any, str]:
        self._check_cancel(request, user_id, res)
        out = yield from self._call(
            "cancel", reservation_id=res["reservation_id"], reason=REASON_BY_PHRASE[request.slots["reason"]]
        )
        return f"Reservation {res['reservation_id']} is cancelled; you will be refunded ${out['refund']}."

    def _add_bags(self, request: Request) -> Generator[ToolCall, Any, str]:
        user = yield from self._login(request)
        res = yield from self._call("get_reservation", reservation_id=request.slots["rid"])
        if res["user_id"] != user["user_id"]:
            raise Refusal("R1", f"reservation {res['reservation_id']} belongs to another customer.")
        if parse_time(res["flight"]["departure"]) <= parse_time(request.now):
            raise Refusal("R3", "the flight has already departed.")
        tier, pax, current = user["membership"], res["passengers"], res["baggage"]
        new = current + int(request.slots["n"])
        limit = (FREE_BAGS[tier] + EXTRA_BAGS_PER_PASSENGER) * pax
        if new > limit:
            raise Refusal("R3", f"a {tier} member with {pax} passenger(s) may check at most {limit} bags.")
        fee = _fee(tier, pax, new) - _fee(tier, pax, current)
        pm_id = self._payment(user, request.slots["pm"], fee)
        out = yield from self._call(
            "update_baggage", reservation_id=res["reservation_id"], baggage=new, payment_method_id=pm_id
        )
        return f"Reservation {res['reservation_id']} now has {out['baggage']} checked bags; the fee is ${out['fee']}."

    def _book_flight(self, request: Request) -> Generator[ToolCall, Any, str]:
        s = request.slots
        user = yield from self._login(request)
        pax = int(s["passengers"])
        if pax > MAX_PASSENGERS:
            raise Refusal("R5", f"a booking can have at most {MAX_PASSENGERS} passengers.")
        date = parse_date_phrase(s["date"], int(request.now[:4]))
        found = yield from self._call(
            "search_flights", origin=CODE_BY_CITY[s["origin"]], destination=CODE_BY_CITY[s["destination"]], date=date
        )
        flight = next((f for f in found["flights"] if f["flight_number"] == s["flight_number"]), None)
        if flight is None:
            raise Refusal("R6", f"flight {s['flight_number']} does not operate on that date.")
        cabin = CABIN_BY_PHRASE[s["cabin"]]
        if parse_time(flight["departure"]) <= parse_time(request.now):
            raise Refusal("R6", f"flight {s['flight_number']} has already departed.")
        if flight["seats_available"][cabin] < pax:
            raise Refusal(
                "R6", f"flight {s['flight_number']} has only {flight['seats_available'][cabin]} {s['cabin']} seat(s) left."
            )
        return (yield from self._book(request, user, flight, cabin, pax, s["pm"]))

    def _book(
        self,
        request: Request,
        user: dict[str, Any],
        flight: dict[str, Any],
        cabin: str,
        pax: int,
        pm_phrase: str,
        *,
        baggage: int | None = None,
        insurance: bool | None = None,
    ) -> Generator[ToolCall, Any, str]:
        s = request.slots
        tier = user["membership"]
        bags = int(s["bags"]) if baggage is None else baggage
        insured = INSURANCE_BY_PHRASE[s["insurance"]] if insurance is None else insurance
        limit = (FREE_BAGS[tier] + EXTRA_BAGS_PER_PASSENGER) * pax
        if bags > limit:
            raise Refusal("R3", f"a {tier} member with {pax} passenger(s) may check at most {limit} bags.")
        total = _total(flight["prices"][cabin], tier, pax, bags, insured)
        pm_id = self._payment(user, pm_phrase, total)
        out = yield from self._call(
            "book", user_id=user["user_id"], flight_id=flight["flight_id"], cabin=cabin, passengers=pax,
            baggage=bags, insurance=insured, payment_method_id=pm_id,
        )
        rid = out["reservation"]["reservation_id"]
        return (
            f"You are booked on flight {flight['flight_number']} ({flight['departure'].replace('T', ' ')} UTC): "
            f"reservation {rid}, total price ${out['total_price']}."
        )

    def _cheapest(
        self, flights: list[dict[str, Any]], cabin: str, pax: int, now: str, after: str = "00:00"
    ) -> dict[str, Any]:
        fits = [
            f for f in flights
            if f["departure"][11:] > after
            and parse_time(f["departure"]) > parse_time(now)
            and f["seats_available"][cabin] >= pax
        ]
        if not fits:
            raise Refusal("R6", "no flight with enough seats matches your request.")
        return min(fits, key=lambda f: (f["prices"][cabin], f["departure"]))

    def _book_cheapest(self, request: Request) -> Generator[ToolCall, Any, str]:
        s = request.slots
        user = yield from self._login(request)
        pax = int(s["passengers"])
        if pax > MAX_PASSENGERS:
            raise Refusal("R5", f"a booking can have at most {MAX_PASSENGERS} passengers.")
        date = parse_date_phrase(s["date"], int(request.now[:4]))
        found = yield from self._call(
            "search_flights", origin=CODE_BY_CITY[s["origin"]], destination=CODE_BY_CITY[s["destination"]], date=date
        )
        cabin = CABIN_BY_PHRASE[s["cabin"]]
        flight = self._cheapest(found["flights"], cabin, pax, request.now, s["time"])
        total = _total(flight["prices"][cabin], user["membership"], pax, int(s["bags"]), INSURANCE_BY_PHRASE[s["insurance"]])
        gifts = [m for _, m in sorted(user["payment_methods"].items()) if m["type"] == "gift_card"]
        phrase = "gift card" if gifts and gifts[0]["balance"] >= total else s["card"]
        return (yield from self._book(request, user, flight, cabin, pax, phrase))

    def _cancel_rebook(self, request: Request) -> Generator[ToolCall, Any, str]:
        s = request.slots
        user = yield from self._login(request)
        res = yield from self._find_reservation(request, user)
        self._check_cancel(request, user["user_id"], res)
        new_date = parse_date_phrase(s["new_date"], int(request.now[:4]))
        found = yield from self._call(
            "search_flights", origin=res["flight"]["origin"], destination=res["flight"]["destination"], date=new_date
        )
        flight = self._cheapest(found["flights"], res["cabin"], res["passengers"], request.now)
        total = _total(flight["prices"][res["cabin"]], user["membership"], res["passengers"], res["baggage"], res["insurance"])
        self._payment(user, s["card"], total)  # check before cancelling anything
        cancelled = yield from self._call(
            "cancel", reservation_id=res["reservation_id"], reason=REASON_BY_PHRASE[s["reason"]]
        )
        booked = yield from self._book(
            request, user, flight, res["cabin"], res["passengers"], s["card"],
            baggage=res["baggage"], insurance=res["insurance"],
        )
        return f"Reservation {res['reservation_id']} is cancelled (refund ${cancelled['refund']}). {booked}"
