"""ToolGym baselines: agents and trainers.

Importing :mod:`baselines` is light: torch and transformers are imported only by the modules
that need them (:mod:`baselines.llm`, :mod:`baselines.train`), which require the ``train`` extra.
"""
