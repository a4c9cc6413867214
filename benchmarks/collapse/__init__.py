"""The collapse experiment: does vanilla GRPO collapse on multi-turn tool use, and which
supervisory signals prevent it? See ``python -m benchmarks.collapse --help`` and
``benchmarks/results/collapse/README.md`` (the second edition; the first is in
``first_edition/`` there)."""
