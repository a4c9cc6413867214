"""ToolGym's training machinery inside other trainers.

:mod:`baselines.integrations.trl_guard` brings the collapse diagnostics and the supervisory loss
terms of :mod:`baselines.train` into TRL's ``GRPOTrainer``. It lives in ``baselines`` (not in
``toolgym.integrations``) because it reuses ``baselines.train``'s loss functions and diagnostics,
and ``toolgym`` never imports ``baselines``. Nothing here imports torch or TRL at package import.
"""
