"""``ToolGym/Multi-v0``: questions that need search/open in the Search-v0 knowledge base and then the calculator."""
