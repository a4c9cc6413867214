"""Gymnasium wrappers for ToolGym envs (thin, one concern each; none subclasses an env).

* :class:`DiscreteActionWrapper`: ``Discrete(K)`` candidate actions and a ``Box`` feature vector,
  for classical RL libraries such as Stable-Baselines3.
"""

from toolgym.wrappers.discrete import (
    NOOP_ACTION,
    ActionAdapter,
    CandidateGenerator,
    CandidateState,
    DiscreteActionWrapper,
    Turn,
    candidate_generator_for,
    extract_spans,
    generic_generator,
    hashed_bag_of_words,
    register_candidates,
)

__all__ = [
    "NOOP_ACTION",
    "ActionAdapter",
    "CandidateGenerator",
    "CandidateState",
    "DiscreteActionWrapper",
    "Turn",
    "candidate_generator_for",
    "extract_spans",
    "generic_generator",
    "hashed_bag_of_words",
    "register_candidates",
]
