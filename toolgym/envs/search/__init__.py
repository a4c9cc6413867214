"""``ToolGym/Search-v0``: multi-hop QA over a generated fictional knowledge base."""
