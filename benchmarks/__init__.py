"""Benchmarks: scripts that print figures and write JSON records; they assert nothing.

Run from the repository root as modules, e.g. `python -m benchmarks.vs_tutorial` (or `make bench`).
"""
