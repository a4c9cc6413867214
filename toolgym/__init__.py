"""ToolGym: Gymnasium environments for training and evaluating LLM agents on multi-step tool use.

Importing :mod:`toolgym` registers the built-in environments under the ``ToolGym/`` namespace
and loads third-party environments from the ``toolgym.envs`` entry-point group::

    import gymnasium as gym
    import toolgym  # noqa: F401

    env = gym.make("ToolGym/Search-v0", split="test")
    obs, info = env.reset(seed=0)

This package never imports torch.
"""

from toolgym.core.actions import (
    ActionFormat,
    FinalAnswer,
    ToolCall,
    action_format_names,
    get_action_format,
    register_action_format,
)
from toolgym.core.env import InvalidActionPolicy, ToolEnv
from toolgym.core.errors import ActionError, ConfigError, ErrorCode, ToolError, ToolGymError
from toolgym.core.policy import BatchPolicy, Policy
from toolgym.core.spaces import TextSpace
from toolgym.core.tasks import Task, TaskSet
from toolgym.core.tools import Tool, tool
from toolgym.registry import env_ids, load_plugins, register_builtins

__version__ = "0.1.0"

__all__ = [
    "ActionError",
    "ActionFormat",
    "BatchPolicy",
    "ConfigError",
    "ErrorCode",
    "FinalAnswer",
    "InvalidActionPolicy",
    "Policy",
    "Task",
    "TaskSet",
    "TextSpace",
    "Tool",
    "ToolCall",
    "ToolEnv",
    "ToolError",
    "ToolGymError",
    "action_format_names",
    "env_ids",
    "get_action_format",
    "load_plugins",
    "register_action_format",
    "register_builtins",
    "tool",
    "__version__",
]

register_builtins()
load_plugins()
