"""A random agent: well-formed calls with random arguments, and malformed actions.

The sampler lives in :mod:`toolgym.sampling` (the env checker uses it too); this module keeps the
baseline's name and import path.
"""

from __future__ import annotations

from toolgym.sampling import RandomActionSampler, sample_from_schema

RandomAgent = RandomActionSampler
"""The random baseline: :class:`toolgym.sampling.RandomActionSampler`."""

__all__ = ["RandomAgent", "sample_from_schema"]
