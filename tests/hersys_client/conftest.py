"""Fixtures for hersys_client: one real sandbox (subprocess, mutual TLS) per test session, reset before each test.

No Django and no database: these run with `pytest tests/hersys_client -p no:django` and under pytest-django.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hersys_client import HersysClient
from hersys_client.sandbox.testing import SandboxHandle, running_sandbox


@pytest.fixture(scope="session")
def sandbox_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    with running_sandbox(tmp_path_factory.mktemp("hersys-sandbox")) as sb:
        yield sb


@pytest.fixture
def sandbox(sandbox_session: SandboxHandle) -> SandboxHandle:
    """The session sandbox with no data and no faults (also releases requests hung by timeout_next)."""
    sandbox_session.reset()
    return sandbox_session


@pytest.fixture
def client(sandbox: SandboxHandle) -> Iterator[HersysClient]:
    with sandbox.client_factory() as c:
        yield c
