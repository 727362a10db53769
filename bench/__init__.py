"""Benchmarks of smspoint-dispatcher against real services and the gateway simulator (``python -m bench``).

See docs/performance.md for what each scenario measures and how to run it.
"""
