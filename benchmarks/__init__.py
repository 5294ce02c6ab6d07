"""Throughput and latency benchmarks of djqueue, with Celery + Redis beside it."""
