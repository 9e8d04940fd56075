"""Fixtures for busbench tests: the nats-server binary (or a skip with the reason)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def nats_binary() -> str:
    """Path of nats-server, or skip: the integration tests drive a real one."""
    path = shutil.which("nats-server") or shutil.which("/usr/sbin/nats-server")
    if not path:
        pytest.skip("nats-server not installed (make test installs it with apt when root)")
    return path
