"""The benchmark run: one process per copy (copy.py, worker.py), coordinated by benchmark.py."""
