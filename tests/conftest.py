"""Shared fixtures. The example plugin's env is registered here so that every contract test also
runs on a small env that needs no shipped data (the real entry-point path is tested separately)."""

from __future__ import annotations

import importlib.util
import os
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


BFCL_MISSING = importlib.util.find_spec("bfcl_eval") is None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests of the BFCL envs when bfcl-eval is not installed, except in CI (CI=true), which
    installs it (``pip install bfcl-eval --no-deps``) and must run them."""
    if not BFCL_MISSING or os.environ.get("CI", "").lower() == "true":
        return
    skip = pytest.mark.skip(reason="bfcl-eval is not installed: pip install bfcl-eval --no-deps && pip install mpmath")
    for item in items:
        if "BFCL" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture
def toolgym_module() -> object:
    return toolgym
