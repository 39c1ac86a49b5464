"""HER-SYS sandbox: a stand-in for the national WebAPI with the same contract (docs/contracts.md §3).

Start it with ``python -m hersys_client.sandbox``; from tests use `hersys_client.sandbox.testing.running_sandbox`.
"""
