"""verifiers plugin module for ToolGym: ``vf-eval toolgym-verifiers --env.taskset.env-id ToolGym/...``.

verifiers resolves a taskset / harness / env id to a top-level module (``toolgym-verifiers`` ->
``toolgym_verifiers``) and takes the classes it exports in ``__all__``. This module only
re-exports :mod:`toolgym.integrations.verifiers`.
"""

from toolgym.integrations.verifiers import (
    PLUGIN_ID,
    ToolGymEnv,
    ToolGymEnvConfig,
    ToolGymHarness,
    ToolGymHarnessConfig,
    ToolGymTask,
    ToolGymTaskData,
    ToolGymTaskset,
    ToolGymTasksetConfig,
    load_environment,
)

__all__ = [
    "PLUGIN_ID",
    "ToolGymEnv",
    "ToolGymEnvConfig",
    "ToolGymHarness",
    "ToolGymHarnessConfig",
    "ToolGymTask",
    "ToolGymTaskData",
    "ToolGymTaskset",
    "ToolGymTasksetConfig",
    "load_environment",
]
