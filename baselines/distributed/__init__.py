"""Distributed rollouts: ToolGym episodes collected by Ray actors (:mod:`.ray_rollout`).

Importing this package does not import Ray; install it with ``pip install 'toolgym[ray]'``.
"""
