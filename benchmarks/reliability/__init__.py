"""Proof under faults and load (issue #12): malformed images, kill -9, soak, API fuzzing.

Each module runs as ``python -m benchmarks.reliability.<name>``; the test suite runs a
short version of each (``tests/reliability/``). Figures: docs/reliability.md.
"""
