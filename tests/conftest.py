"""Shared fixtures: the tiny protocol prepared once per test session in a private cache."""

from __future__ import annotations

import pytest

from aipbench.pipeline import open_store
from aipbench.protocol import load_protocol


@pytest.fixture(scope="session")
def tiny():
    return load_protocol("tiny")


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory):
    return tmp_path_factory.mktemp("aipbench-home")


@pytest.fixture(scope="session")
def tiny_store(tiny, tiny_home):
    """The tiny protocol with data, BPR and candidate sets built (shared, treat as read-only)."""
    store = open_store(tiny, home=tiny_home)
    store.prepare(["candidates"])
    return store


@pytest.fixture(scope="session")
def tiny_rankers(tiny_store):
    """The tiny store with the extractor, features and all four rankers built too."""
    tiny_store.prepare(["alexrank", "vbpr", "dvbpr", "amr"])
    return tiny_store
