"""Shared fixtures. The example plugin's env is registered here so that every contract test also
runs on a small env that needs no shipped data (the real entry-point path is tested separately)."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import pytest

import toolgym
from toolgym.registry import env_ids

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = REPO / "examples" / "plugin"
EXAMPLE_ID = "Example/Weather-v0"

if EXAMPLE_ID not in gym.registry:
    sys.path.insert(0, str(EXAMPLE_PLUGIN))
    gym.register(id=EXAMPLE_ID, entry_point="toolgym_example_plugin.weather:WeatherEnv")


def all_env_ids() -> list[str]:
    """Every registered ToolGym env plus the example plugin env."""
    ids = env_ids()
    return ids + ([EXAMPLE_ID] if EXAMPLE_ID not in ids else [])


@pytest.fixture(params=all_env_ids())
def env_id(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over every registered environment."""
    return request.param


@pytest.fixture
def toolgym_module() -> object:
    return toolgym
