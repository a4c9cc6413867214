"""``ToolGym/Search-v0``: multi-hop QA over a generated fictional knowledge base."""

from toolgym.envs.search import candidates as _candidates  # noqa: F401 (registers the Discrete(K) candidate generator)
