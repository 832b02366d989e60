"""Merchant tests: a real bank over HTTP on 127.0.0.1; the ``terminal`` fixture
runs each test on a SQLite store and on a PostgreSQL store."""

from __future__ import annotations

import pytest

from ..bankkit import fresh_database, running_bank
from .kit import new_terminal


@pytest.fixture
def bank(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        yield env


@pytest.fixture(params=["sqlite", "postgres"])
def terminal(request, bank, tmp_path):
    if request.param == "sqlite":
        t = new_terminal(bank, tmp_path / "terminal.db")
        yield t
        t.close()
        return
    with fresh_database("postgres", tmp_path) as url:
        t = new_terminal(bank, url)
        yield t
        t.close()


@pytest.fixture
def holder(bank):
    return bank.holder("Alice")
