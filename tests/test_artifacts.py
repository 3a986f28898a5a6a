"""The artifact store: idempotent builds, hash-detected corruption, staleness, atomicity."""

from __future__ import annotations

import json

import pytest

from aipbench.errors import ArtifactError
from aipbench.pipeline.store import ArtifactStore, Step
from aipbench.protocol import load_protocol


@pytest.fixture
def calls():
    return []


@pytest.fixture
def store(tmp_path, calls):
    def build_a(store, out):
        calls.append("a")
        (out / "a.txt").write_text("alpha" * (1 + calls.count("a-changes")))

    def build_b(store, out):
        calls.append("b")
        a = store.path("a", "a.txt").read_text()
        (out / "b.txt").write_text(a + "+beta")

    steps = {
        "a": Step("a", ("a.txt",), (), build_a),
        "b": Step("b", ("b.txt",), ("a",), build_b),
    }
    return ArtifactStore(load_protocol("tiny"), steps, home=tmp_path)


def test_root_is_keyed_by_protocol_hash(store, tmp_path):
    proto = load_protocol("tiny")
    assert store.root == tmp_path / f"tiny-{proto.sha256[:12]}"


def test_second_prepare_does_nothing(store, calls):
    assert store.prepare(log=lambda m: None) == ["a", "b"]
    assert store.prepare(log=lambda m: None) == []
    assert calls == ["a", "b"]
    manifest = json.loads(store.manifest_path.read_text())
    assert manifest["protocol"]["sha256"] == load_protocol("tiny").sha256
    assert set(manifest["artifacts"]) == {"a", "b"}
    assert len(manifest["artifacts"]["a"]["files"]["a.txt"]) == 64


def test_hand_edited_artifact_is_detected_and_rebuilt(store, calls):
    store.prepare(log=lambda m: None)
    (store.dir("b") / "b.txt").write_text("tampered")
    assert store.state("b") == "corrupt"
    with pytest.raises(ArtifactError, match=r"b.txt: artifact 'b' is corrupt; run `aipbench prepare --protocol tiny`"):
        store.path("b", "b.txt")
    messages = []
    assert store.prepare(log=messages.append) == ["b"]
    assert messages == ["b: corrupt, building (b)"]
    assert (store.dir("b") / "b.txt").read_text() == "alpha+beta"


def test_rebuilt_dependency_with_new_content_makes_dependents_stale(store, calls):
    store.prepare(log=lambda m: None)
    (store.dir("a") / "a.txt").write_text("corrupted")
    # rebuilt to the same bytes: 'b' was made from identical input and stays valid
    assert store.prepare(log=lambda m: None) == ["a"]
    calls.append("a-changes")  # now 'a' builds to new content
    (store.dir("a") / "a.txt").write_text("corrupted")
    assert store.prepare(["a"], log=lambda m: None) == ["a"]
    assert store.state("b") == "stale"
    assert store.prepare(log=lambda m: None) == ["b"]
    assert (store.dir("b") / "b.txt").read_text() == "alphaalpha+beta"


def test_deleted_file_and_foreign_manifest_mean_missing(store, calls):
    store.prepare(log=lambda m: None)
    (store.dir("a") / "a.txt").unlink()
    assert store.state("a") == "missing"
    store.prepare(log=lambda m: None)
    store.manifest_path.write_text("{not json")
    assert store.state("a") == "missing"


def test_failed_build_leaves_nothing_half_written(tmp_path):
    def broken(store, out):
        (out / "x.txt").write_text("partial")
        raise RuntimeError("boom")

    store = ArtifactStore(load_protocol("tiny"), {"x": Step("x", ("x.txt",), (), broken)}, home=tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        store.prepare(log=lambda m: None)
    assert not store.dir("x").exists()
    # a folder left holding nothing but its lock is removed with it
    assert not store.root.exists() or [p.name for p in store.root.iterdir()] in ([".lock", "manifest.json"],
                                                                                  ["manifest.json", ".lock"])
    assert store.state("x") == "missing"


def test_step_that_forgets_a_file_is_an_error(tmp_path):
    store = ArtifactStore(load_protocol("tiny"), {"x": Step("x", ("x.txt",), (), lambda s, o: None)}, home=tmp_path)
    with pytest.raises(ArtifactError, match="did not write x.txt"):
        store.prepare(log=lambda m: None)


def test_unknown_target(store):
    with pytest.raises(ArtifactError, match="unknown artifact 'zzz'"):
        store.prepare(["zzz"], log=lambda m: None)
