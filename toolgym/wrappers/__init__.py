"""Gymnasium wrappers for ToolGym envs (none subclasses an env, none knows a particular env).

* :class:`DiscreteActionWrapper`: ``Discrete(K)`` candidate actions and a ``Box`` feature vector,
  for classical RL libraries such as Stable-Baselines3. It is not thin: it holds the candidate
  generator registry (:func:`register_candidates`, :func:`candidate_generator_for`, the generic
  :func:`generic_generator`) and the featuriser (:class:`ActionAdapter`) that the SB3 baseline
  also drives. Each env registers its own generator (the built-ins in
  ``toolgym/envs/<name>/candidates.py``).
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
