"""``Example/Weather-v0``: compare two cities' temperatures with a ``get_weather`` tool."""

from __future__ import annotations

import re
from itertools import combinations
from typing import Any

from toolgym import FinalAnswer, Task, TaskSet, Tool, ToolCall, ToolEnv, ToolError, get_action_format, tool

TEMPERATURES = {"Oslo": 3, "Lima": 19, "Cairo": 27, "Reykjavik": -1, "Hanoi": 24, "Quito": 14}
TASKS = [
    Task(
        id=f"weather-{a.lower()}-{b.lower()}",
        prompt=f"Which city is warmer today, {a} or {b}? Answer with the city name.",
        answer=a if TEMPERATURES[a] > TEMPERATURES[b] else b,
        difficulty="easy",
    )
    for a, b in combinations(TEMPERATURES, 2)
]


class WeatherEnv(ToolEnv):
    """Answer which of two cities is warmer by calling ``get_weather`` for each."""

    oracle_cls = "toolgym_example_plugin.weather:WeatherOracle"

    def load_tasks(self, split: str) -> TaskSet:
        # Inline tasks instead of envs_data files; a real env would ship train/dev/test splits.
        return TaskSet(TASKS, name="weather", split=split)

    def make_tools(self) -> list[Tool]:
        @tool(
            "get_weather",
            "Current temperature of a city in degrees Celsius.",
            {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        )
        def get_weather(city: str) -> str:
            if city not in TEMPERATURES:
                raise ToolError(f"Unknown city {city!r}; known: {', '.join(TEMPERATURES)}.")
            return f"{city}: {TEMPERATURES[city]} °C"

        return [get_weather]

    def check_answer(self, task: Task, answer: str) -> bool:
        return answer.strip().lower() == str(task.answer).lower()


class WeatherOracle:
    """Looks both cities up, then answers the warmer one."""

    def reset(self, *, seed: int | None = None) -> None:
        self.cities: list[str] = []
        self.temps: dict[str, int] = {}

    def act(self, observation: str, info: dict[str, Any]) -> str:
        fmt = get_action_format(info.get("action_format", "hermes"))
        if not self.cities:
            self.cities = re.findall(r"warmer today, (\w+) or (\w+)\?", info["task_prompt"])[0]
        if info.get("tool_output"):
            city, temp = info["tool_output"].split(": ")
            self.temps[city] = int(temp.split()[0])
        for city in self.cities:
            if city not in self.temps:
                return fmt.render(ToolCall("get_weather", {"city": city}))
        return fmt.render(FinalAnswer(max(self.temps, key=self.temps.__getitem__)))
