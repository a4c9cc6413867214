"""``ToolGym/Lookup-v0``: pointer-chasing key-value lookup, the cheap env of the collapse study."""

from toolgym.envs.lookup import candidates as _candidates  # noqa: F401 (registers the Discrete(K) candidate generator)
