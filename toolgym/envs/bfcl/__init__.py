"""``ToolGym/BFCL-MultiTurn-*``: the Berkeley Function Calling Leaderboard multi-turn tasks.

Data, tool documentation and the stateful API simulators come from the ``bfcl-eval`` package
(Apache-2.0), which is an optional, separately installed dependency: see ``docs/bfcl.md``.
"""
