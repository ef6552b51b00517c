"""Benchmark engines run in our own environment, speaking the peers' JSON-lines protocol (peers/optimum_worker.py)."""
