"""Benchmark harness: `python -m bench` (make bench) and `--quick` (make bench-quick)."""
