"""Benchmarks and experiments (runnable scripts; results are committed under benchmarks/results)."""
