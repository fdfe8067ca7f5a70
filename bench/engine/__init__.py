"""Matching engine benchmark: ours against PyPI peers on shared/WORKLOAD.md's workload.

Run from the repository root: ``python -m bench.engine`` (``--quick`` skips the deep books).
"""
