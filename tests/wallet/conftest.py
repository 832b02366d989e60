"""Wallet tests run against a real bank over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ..bankkit import running_bank


@pytest.fixture(params=["sqlite", "postgres"])
def env(request, tmp_path):
    with running_bank(request.param, tmp_path) as e:
        yield e
