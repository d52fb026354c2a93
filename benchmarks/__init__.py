"""Benchmark harnesses (not tests): each benchmarks/<name>.py writes benchmarks/results/<name>.json
and .md; `python -m benchmarks.run_all` (make bench) runs them all and writes an index."""
