"""The worker process: its loop, the supervisor of running jobs, interrupts and pools.

Imports nothing at package level: ``djqueue.runtime.gevent_patch`` must be importable
before Django or psycopg."""
