"""Side-by-side performance benchmarks against peer libraries (see README.md here)."""
