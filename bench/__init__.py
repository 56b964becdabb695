"""Benchmarks: one script per claim, each writing bench/results/<claim>.json (see _common)."""
