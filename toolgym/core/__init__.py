"""ToolGym's core: the env base class, tools, action formats, tasks and errors."""
