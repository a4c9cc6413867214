"""Fixtures for the distributed tests: a local 2-CPU Ray cluster and the tiny trainer fixtures.

Ray and accelerate are optional extras: the tests are skipped when they are missing locally, but
**fail** when ``CI=true`` (CI must run them; install ``toolgym[ray,accelerate]``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.train.conftest import (  # noqa: F401  (shared session fixtures: tiny tokenizer, SFT checkpoint)
    _torch_threads,
    bank,
    chat,
    sft_checkpoint,
    tokenizer,
    trajectories,
)

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(module: str) -> ModuleType:
    """Import ``module``; skip the test if it is missing, or fail under ``CI=true``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"{module} is not installed ({exc}); pip install 'toolgym[ray,accelerate]'"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: distributed tests must run)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A local Ray instance with 2 logical CPUs (one per rollout actor), shut down at the end."""
    ray = require("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
