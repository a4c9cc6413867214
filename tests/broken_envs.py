"""Deliberately broken variants of the example Weather env, for testing ``toolgym check``."""

from __future__ import annotations

import os
import random

from toolgym_example_plugin.weather import TEMPERATURES, WeatherEnv

from toolgym import Task


class NondeterministicWeather(WeatherEnv):
    """Reports temperatures with noise from the global RNG (ignores the env seed)."""

    def make_tools(self):  # type: ignore[no-untyped-def]
        tool = super().make_tools()[0]
        inner = tool.fn
        tool.fn = lambda city: inner(city) + f" (±{random.random():.3f})"
        return [tool]


class LeakyWeather(WeatherEnv):
    """Opens a file at every reset and never closes it."""

    def start_episode(self, task: Task) -> None:
        self._handles = getattr(self, "_handles", [])
        self._handles.append(open(os.devnull))  # noqa: SIM115 - the leak is the point


class LenientGraderWeather(WeatherEnv):
    """Accepts an empty answer as correct."""

    def check_answer(self, task: Task, answer: str) -> bool:
        return answer.strip() == "" or super().check_answer(task, answer)


class StatefulWeather(WeatherEnv):
    """Temperatures drift with the number of calls since the env was created (state leaks)."""

    calls = 0

    def make_tools(self):  # type: ignore[no-untyped-def]
        tool = super().make_tools()[0]

        def get_weather(city: str) -> str:
            self.calls += 1
            if city not in TEMPERATURES:
                return "unknown city"
            return f"{city}: {TEMPERATURES[city] + self.calls // 7} °C"

        tool.fn = get_weather
        return [tool]


class FaultyWeather(WeatherEnv):
    """Fault injection: the tool crashes for Cairo, and setting up tasks about Quito fails."""

    def make_tools(self):  # type: ignore[no-untyped-def]
        tool = super().make_tools()[0]
        inner = tool.fn

        def get_weather(city: str) -> str:
            if city == "Cairo":
                raise RuntimeError("weather service crashed")
            return inner(city)

        tool.fn = get_weather
        return [tool]

    def start_episode(self, task: Task) -> None:
        if "quito" in task.id:
            raise ConnectionError("sandbox pool unavailable")
