"""Benchmarks on PostgreSQL + Redis, reported as ratios against a baseline measured in the same run.

    python -m benchmarks [--quick] [--only launch,delivery,peak] [--out bench-results/x.json]

Every run owns its resources: a dedicated database (``hersys_bench`` next to DATABASE_URL's), a dedicated Redis
database number, a sandbox subprocess and Celery worker subprocesses; all are removed at the end.
See docs/benchmarks.md and docs/adr/0007-benchmarks.md.
"""
