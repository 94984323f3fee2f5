"""Performance benchmarks of the pipeline: ``make bench`` and ``make bench-quick`` (see docs/performance.md).

Benchmarks measure and print figures; nothing here is pipeline code and no test asserts a time.
"""
