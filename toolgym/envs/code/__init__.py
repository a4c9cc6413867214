"""``ToolGym/Code-v0``: Python functions graded by hidden unit tests, with code run in a sandbox."""
