"""Content-addressed artifact cache: one folder per protocol hash, a manifest of SHA-256s, atomic builds."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from aipbench.errors import ArtifactError
from aipbench.hashing import sha256_file
from aipbench.paths import aipbench_home

if TYPE_CHECKING:
    from aipbench.protocol.schema import Protocol

__all__ = ["INPUT_PREFIX", "ArtifactStore", "Step", "deterministic_torch"]

MANIFEST_SCHEMA = 1
# In ``hashes()``, a file an artifact was built from that lives outside the cache (a real data set's
# file, ImageNet weights) is listed beside the artifact's own files under this prefix: results carry it,
# and the leaderboard and reproductions compare it like any artifact file.
INPUT_PREFIX = "input:"


def _identity(path: Path) -> tuple[int, int, int]:
    """What changes when a file is rewritten: size, modification time (ns) and inode."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


@contextlib.contextmanager
def deterministic_torch() -> Iterator[None]:
    """Build with torch's deterministic kernels (e.g. the scatter-adds in embedding gradients), so that
    the same protocol gives the same artifact bytes on CPU; restores the previous setting afterwards."""
    import torch

    before, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn)


@dataclasses.dataclass(frozen=True)
class Step:
    """How to build one artifact: its files, the artifacts it reads, and a builder.

    ``build(store, out_dir)`` writes every name in ``files`` into ``out_dir`` (a private temporary
    folder); the store hashes them and moves the folder into place atomically.
    """

    name: str
    files: tuple[str, ...]
    deps: tuple[str, ...]
    build: Callable[["ArtifactStore", Path], None]
    description: str = ""
    optional: bool = False  # built only when asked for (e.g. by `aipbench reproduce figure5`), not by default


class ArtifactStore:
    """The cache of one protocol under ``$AIPBENCH_HOME/<name>-<hash12>/``."""

    def __init__(self, protocol: "Protocol", steps: dict[str, Step], home: Path | None = None, *,
                 device: str = "cpu") -> None:
        self.protocol = protocol
        self.steps = steps
        self.device = device  # where builders train and infer (recorded with each artifact)
        self.inputs: dict = {}  # what the caller hands the builders of one prepare (e.g. a data file)
        self._used: dict[str, str] = {}  # outside files the running build read: name -> SHA-256
        self.root = (home or aipbench_home()) / f"{protocol.name}-{protocol.hash12}"
        self.manifest_path = self.root / "manifest.json"
        # path -> (file identity, SHA-256): a file is hashed again only when its size, mtime or inode change
        self._digests: dict[Path, tuple[tuple[int, int, int], str]] = {}

    # -- manifest -------------------------------------------------------------------------------------

    def manifest(self) -> dict:
        try:
            data = json.loads(self.manifest_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return self._empty_manifest()
        if data.get("protocol", {}).get("sha256") != self.protocol.sha256 or data.get("schema") != MANIFEST_SCHEMA:
            return self._empty_manifest()
        return data

    def _empty_manifest(self) -> dict:
        p = self.protocol
        return {
            "schema": MANIFEST_SCHEMA,
            "protocol": {"name": p.name, "version": p.version, "sha256": p.sha256},
            "artifacts": {},
        }

    def _write_manifest(self, manifest: dict) -> None:
        tmp = self.manifest_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.manifest_path)

    @staticmethod
    def record_digest(record: dict) -> str:
        """The identity of a built artifact: the hash of its files' hashes."""
        return hashlib.sha256(json.dumps(record["files"], sort_keys=True).encode()).hexdigest()

    # -- state ----------------------------------------------------------------------------------------

    def _digest(self, path: Path) -> str:
        identity = _identity(path)
        cached = self._digests.get(path)
        if cached is None or cached[0] != identity:
            cached = (identity, sha256_file(path))
            self._digests[path] = cached
        return cached[1]

    def dir(self, name: str) -> Path:
        return self.root / name

    def state(self, name: str, manifest: dict | None = None) -> str:
        """'ok', 'missing', 'corrupt' (a file's hash differs from the manifest) or 'stale' (built from
        a dependency that has since changed). Every file is checked against its hash (once per change)."""
        manifest = manifest or self.manifest()
        step = self.steps[name]
        record = manifest["artifacts"].get(name)
        if record is None or set(record["files"]) != set(step.files):
            return "missing"
        for fname, digest in record["files"].items():
            path = self.dir(name) / fname
            if not path.is_file():
                return "missing"
            if self._digest(path) != digest:
                return "corrupt"
        for dep in step.deps:
            dep_record = manifest["artifacts"].get(dep)
            if dep_record is None or record["deps"].get(dep) != self.record_digest(dep_record):
                return "stale"
        return "ok"

    def order(self, targets: list[str] | None = None) -> list[str]:
        """The steps needed for ``targets`` (default: all), dependencies first."""
        seen: list[str] = []

        def visit(n: str) -> None:
            if n not in self.steps:
                raise ArtifactError(f"unknown artifact '{n}' (known: {', '.join(self.steps)})")
            for d in self.steps[n].deps:
                visit(d)
            if n not in seen:
                seen.append(n)

        for t in targets or [n for n, s in self.steps.items() if not s.optional]:
            visit(t)
        return seen

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the cache folder's lock (one builder at a time, across processes). A folder left holding nothing
        but its lock — a refused import, a first build that failed — is removed on the way out; whoever waited
        on that lock finds its file gone and takes the lock of a fresh folder."""
        path = self.root / ".lock"
        while True:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a")
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                if os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino:
                    break  # the lock of the folder as it is now
            except FileNotFoundError:
                pass
            fh.close()  # the folder was removed while we waited: lock the new one
        try:
            yield
        finally:
            try:
                if [p.name for p in self.root.iterdir()] == [".lock"]:
                    path.unlink()
                    self.root.rmdir()
            except OSError:
                pass
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    # -- building -------------------------------------------------------------------------------------

    def prepare(self, targets: list[str] | None = None, *, log: Callable[[str], None] = print,
                inputs: dict | None = None) -> list[str]:
        """Build whatever is missing, corrupt or stale; return the names built (empty: nothing to do).
        ``inputs`` are handed to the builders (``store.inputs``), e.g. the data file `aipbench data import`
        names."""
        built: list[str] = []
        with self.lock():
            self._remove_stale_builds()
            self.inputs = dict(inputs or {})
            try:
                for name in self.order(targets):
                    manifest = self.manifest()
                    state = self.state(name, manifest)
                    if state == "ok":
                        continue
                    log(f"{name}: {state}, building ({self.steps[name].description or name})")
                    self._build(name, manifest)
                    built.append(name)
            finally:
                self.inputs = {}
        return built

    def record_input(self, name: str, sha256: str) -> None:
        """A builder says it read the outside file ``name`` (by content, ``sha256``): kept in the manifest."""
        self._used[name] = sha256

    def _remove_stale_builds(self) -> None:
        """A build's temporary folder left by a process that was killed (only one process builds at a
        time: this one holds the lock)."""
        for stale in self.root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

    def _build(self, name: str, manifest: dict) -> None:
        step = self.steps[name]
        tmp = self.root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        started = time.perf_counter()
        self._used = {}
        try:
            from aipbench.rankers.precision import apply_precision

            apply_precision(self.protocol.compute.precision if self.protocol.compute else None)
            with deterministic_torch():
                step.build(self, tmp)
            missing = [f for f in step.files if not (tmp / f).is_file()]
            if missing:
                raise ArtifactError(f"building '{name}' did not write {', '.join(missing)}")
            files = {f: sha256_file(tmp / f) for f in step.files}
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        final = self.dir(name)
        manifest["artifacts"].pop(name, None)
        self._write_manifest(manifest)  # never leave a record pointing at files being replaced
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for f, digest in files.items():  # just hashed: no need to read them again
            self._digests[final / f] = (_identity(final / f), digest)
        manifest["artifacts"][name] = {
            "files": files,
            "deps": {d: self.record_digest(manifest["artifacts"][d]) for d in step.deps},
            "seconds": round(time.perf_counter() - started, 3),
            "device": self.device,
        }
        if self._used:
            manifest["artifacts"][name]["inputs"] = dict(sorted(self._used.items()))
        self._write_manifest(manifest)

    def install(self, folders: dict[str, Path], records: dict[str, dict], *, build: dict) -> None:
        """Put artifacts made elsewhere into place (an imported build; the caller holds the lock): ``folders``
        (step → a folder under the store's root holding its files, already checked against ``records``'
        SHA-256s), dependencies first. Their old records go first, the folders are moved in, then the new
        records — with ``build``, what the cache now holds — are written: never a record pointing at files
        being replaced."""
        manifest = self.manifest()
        for step in folders:
            manifest["artifacts"].pop(step, None)
        self._write_manifest(manifest)
        for step, folder in folders.items():
            shutil.rmtree(self.dir(step), ignore_errors=True)
            os.replace(folder, self.dir(step))
            record = records[step]
            manifest["artifacts"][step] = {
                "files": dict(record["files"]), "seconds": 0.0, "device": "imported",
                "deps": {d: self.record_digest(manifest["artifacts"][d]) for d in self.steps[step].deps},
                **({"inputs": dict(record["inputs"])} if record.get("inputs") else {})}
        manifest["build"] = build
        self._write_manifest(manifest)

    # -- reading --------------------------------------------------------------------------------------

    def path(self, name: str, fname: str) -> Path:
        """The path of a built file, after checking the artifact against the manifest."""
        state = self.state(name)
        if state != "ok":
            raise ArtifactError(
                f"{self.dir(name) / fname}: artifact '{name}' is {state}; run `aipbench prepare --protocol {self.protocol.name}`"
            )
        return self.dir(name) / fname

    def read_verified(self, name: str, fname: str) -> bytes:
        """A built file's bytes, checked against the manifest's SHA-256 and against staleness: the bytes the
        caller deserializes are the bytes that were checked (no window between check and use in which a
        file could be swapped, whatever its size, mtime or inode say)."""
        manifest = self.manifest()
        record = manifest["artifacts"].get(name)
        path = self.dir(name) / fname
        if record is None or fname not in record["files"] or not path.is_file():
            raise ArtifactError(f"{path}: artifact '{name}' is missing; run `aipbench prepare --protocol {self.protocol.name}`")
        for dep in self.steps[name].deps:
            dep_record = manifest["artifacts"].get(dep)
            if dep_record is None or record["deps"].get(dep) != self.record_digest(dep_record):
                raise ArtifactError(f"{path}: artifact '{name}' is stale; run `aipbench prepare --protocol {self.protocol.name}`")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != record["files"][fname]:
            raise ArtifactError(f"{path}: content differs from the manifest's SHA-256 (artifact '{name}' is corrupt); "
                                f"run `aipbench prepare --protocol {self.protocol.name}`")
        return data

    def hashes(self) -> dict[str, dict[str, str]]:
        """Every built artifact's file hashes, as recorded in the manifest (for results documents), with the
        outside files it was built from (``INPUT_PREFIX`` + name)."""
        return {k: {**v["files"], **{INPUT_PREFIX + n: h for n, h in v.get("inputs", {}).items()}}
                for k, v in sorted(self.manifest()["artifacts"].items())}

    def input_hash(self, artifact: str, name: str) -> str | None:
        """The SHA-256 of the outside file ``name`` that ``artifact`` was built from, if it was."""
        return self.manifest()["artifacts"].get(artifact, {}).get("inputs", {}).get(name)
