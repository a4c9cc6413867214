"""``ToolGym/Calc-v0``: multi-step arithmetic word problems solved with a safe calculator tool."""

from toolgym.envs.calc import candidates as _candidates  # noqa: F401 (registers the Discrete(K) candidate generator)
