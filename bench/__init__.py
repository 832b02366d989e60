"""Benchmarks (run as scripts: ``python bench/crypto.py``)."""
