"""Shared fixtures: the ECASH-1 vectors, copied into the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors"


def load_vector(name: str) -> dict:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def vectors() -> dict[str, dict]:
    return {p.stem: load_vector(p.name) for p in VECTORS.glob("*.json")}
