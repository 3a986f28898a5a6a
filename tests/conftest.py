"""Shared fixtures: the tiny protocol prepared once per test session in a private cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aipbench.pipeline.steps import open_store
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


@pytest.fixture(scope="session")
def tiny_prepared(tiny_rankers):
    """``Prepared`` over the tiny store (its rankers loaded once for the session; treat as read-only)."""
    from aipbench.pipeline.prepared import Prepared

    return Prepared("tiny", home=tiny_rankers.root.parent, log=lambda m: None)


@pytest.fixture
def in_process(monkeypatch):
    """Attack code runs in the test's own process (``isolation="none"``), for tests of what the harness
    checks and reports, not of the child process (a handful of tests keep that: test_evaluate)."""
    import aipbench.harness.evaluate

    monkeypatch.setattr(aipbench.harness.evaluate, "DEFAULT_ISOLATION", "none")


def copy_artifacts(store, names, home: Path):
    """A store under ``home`` holding only ``names`` of ``store`` (folders and manifest records copied,
    nothing re-trained)."""
    from aipbench.pipeline.steps import open_store

    copy = open_store(store.protocol, home=home)
    copy.root.mkdir(parents=True)
    manifest = json.loads(store.manifest_path.read_text())
    manifest["artifacts"] = {n: manifest["artifacts"][n] for n in names}
    for n in names:
        shutil.copytree(store.dir(n), copy.dir(n))
    copy.manifest_path.write_text(json.dumps(manifest))
    return copy
