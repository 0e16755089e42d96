"""Helpers of the ringproxy load benchmark (tests/bench/bench.py)."""
