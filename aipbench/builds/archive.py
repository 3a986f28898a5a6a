"""One archive per build: ``MANIFEST.json`` (the build id, every file's SHA-256 per step, the steps' dependencies,
the protocol, what made it) and then every artifact file as ``<step>/<file>``, in a deterministic tar (sorted,
no owners, no times). Exported from a verified cache; imported by streaming it through every check — each
member a regular file the manifest lists, of its size and SHA-256, for a protocol known here — into a private
folder, then installed into the cache under its lock, the manifest written last: all or nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aipbench.errors import InputError
from aipbench.pipeline.builds import build_id
from aipbench.pipeline.store import INPUT_PREFIX

if TYPE_CHECKING:
    from aipbench.pipeline.store import ArtifactStore

__all__ = ["ARCHIVE_SCHEMA", "MANIFEST", "export_build", "install_build", "made_by", "read_manifest"]

ARCHIVE_SCHEMA = 1
MANIFEST = "MANIFEST.json"
_CHUNK = 1 << 22


def made_by(device: str) -> dict:
    """What made a build (recorded with it, outside its id)."""
    import torch

    from aipbench import __version__
    from aipbench.results.provenance import cpu_environment, git_commit

    return {"aipbench": __version__, "git_commit": git_commit(), "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.machine(), "device": device,
            "cpu_kernel_caps": cpu_environment().get("kernel_caps", {})}


def _manifest(store: "ArtifactStore", steps: list[str], excluded: list[str]) -> dict:
    recorded = store.manifest()["artifacts"]
    artifacts = {s: {"files": dict(sorted(recorded[s]["files"].items())), "deps": list(store.steps[s].deps),
                     **({"inputs": dict(sorted(recorded[s]["inputs"].items()))} if recorded[s].get("inputs") else {})}
                 for s in store.order(steps)}
    hashes = {s: {**r["files"], **{INPUT_PREFIX + n: h for n, h in r.get("inputs", {}).items()}} for s, r in artifacts.items()}
    devices = sorted({recorded[s].get("device", "cpu") for s in artifacts})
    return {"schema": ARCHIVE_SCHEMA, "protocol": store.manifest()["protocol"],
            "build_id": build_id(store.protocol, hashes), "artifacts": artifacts, "excluded": excluded,
            "made_by": made_by(",".join(devices))}


def export_build(store: "ArtifactStore", out: Path, *, steps: list[str] | None = None, include_data: bool = False,
                 log: Callable[[str], None] = print) -> dict:
    """Write the archive of ``store``'s build to ``out`` (``steps`` and what they need; default every step that
    is built: the core steps, and replicas and Figure 5 lengths when present). On a real-data protocol the
    data set's files are left out unless ``include_data`` (the data file is not ours to redistribute): the
    manifest names it by its SHA-256. Returns the manifest."""
    manifest = store.manifest()
    wanted = store.order(steps) if steps else [s for s in store.order() + [n for n, st in store.steps.items()
                                                                              if st.optional and n in manifest["artifacts"]]]
    wanted = list(dict.fromkeys(wanted))
    for name in wanted:
        state = store.state(name)
        if state != "ok":
            raise InputError(f"{store.dir(name)}: artifact '{name}' is {state}; run `aipbench prepare "
                             f"{store.protocol.name}` before exporting its build")
    real_data = bool(manifest["artifacts"].get("dataset", {}).get("inputs"))
    excluded = ["dataset"] if real_data and not include_data and "dataset" in wanted else []
    doc = _manifest(store, wanted, excluded)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, MANIFEST, io.BytesIO(json.dumps(doc, indent=1, sort_keys=True).encode()), None)
            for step in (s for s in doc["artifacts"] if s not in excluded):
                for fname, digest in doc["artifacts"][step]["files"].items():
                    with open(store.dir(step) / fname, "rb") as fh:
                        _add(tar, f"{step}/{fname}", fh, digest)
                log(f"{step}: {len(doc['artifacts'][step]['files'])} files")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return doc


class _Hashing(io.RawIOBase):
    """A file read through, hashed as it goes."""

    def __init__(self, fh) -> None:
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.fh.read(len(buffer))
        buffer[: len(data)] = data
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def _add(tar: tarfile.TarFile, name: str, fh, digest: str | None) -> None:
    """One member, deterministic (no owner, no time), its bytes checked against ``digest`` as they are written."""
    size = os.fstat(fh.fileno()).st_size if hasattr(fh, "fileno") and not isinstance(fh, io.BytesIO) else len(fh.getvalue())
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    reader = _Hashing(fh)
    tar.addfile(info, io.BufferedReader(reader, _CHUNK))
    if digest is not None and (reader.sha.hexdigest() != digest or reader.size != size):
        raise InputError(f"{name}: changed while it was exported (its SHA-256 is no longer the manifest's)")


def read_manifest(tar: tarfile.TarFile, source: str) -> tuple[dict, tarfile.TarFile]:
    """The archive's first member, its manifest, read strictly."""
    from aipbench.results.document import parse_json

    member = tar.next()
    if member is None or member.name != MANIFEST or not member.isreg() or member.size > 16 << 20:
        raise InputError(f"{source}: not a build archive (its first member must be {MANIFEST})")
    manifest = parse_json(tar.extractfile(member).read(), f"{source}:{MANIFEST}")
    if not isinstance(manifest, dict) or manifest.get("schema") != ARCHIVE_SCHEMA or not isinstance(manifest.get("artifacts"), dict):
        raise InputError(f"{source}: {MANIFEST} is not a build manifest of schema {ARCHIVE_SCHEMA}")
    return manifest, tar


def install_build(store: "ArtifactStore", tar: tarfile.TarFile, manifest: dict, *, source: str) -> list[str]:
    """Stream the archive's members (after its manifest) into a private folder, each checked, then install every
    step into ``store`` under its lock, the manifest last. Returns the steps installed."""
    steps = list(manifest["artifacts"])
    unknown = [s for s in steps if s not in store.steps]
    if unknown:
        raise InputError(f"{source}: step {unknown[0]!r} is none of protocol {store.protocol.name}'s")
    expected: dict[str, str] = {}
    for step in steps:
        record = manifest["artifacts"][step]
        if set(record["files"]) != set(store.steps[step].files):
            raise InputError(f"{source}: step {step!r} lists other files than the protocol's build makes")
        if step not in manifest.get("excluded", []):
            expected.update({f"{step}/{f}": h for f, h in record["files"].items()})
    with store.lock():
        tmp = store.root / f".tmp-import-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            _extract(tar, tmp, expected, source)
            _check_present(store, manifest, source)
            installed = [s for s in store.order(steps) if s not in manifest.get("excluded", [])]  # dependencies first
            store.install({s: tmp / s for s in installed}, manifest["artifacts"],
                          build={"id": manifest["build_id"], "source": source, "made_by": manifest.get("made_by", {})})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return installed


def _extract(tar: tarfile.TarFile, into: Path, expected: dict[str, str], source: str) -> None:
    """Every member a regular file the manifest lists, once, of its SHA-256; all of them there."""
    seen = {MANIFEST}
    for member in tar:
        name = member.name
        if name == MANIFEST and member.offset == 0:  # the manifest, read already (iteration starts over with it)
            continue
        if name not in expected or name in seen or not member.isreg():
            raise InputError(f"{source}: member {name[:100]!r} is not a file the manifest lists (or comes twice)")
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        sha, fh = hashlib.sha256(), tar.extractfile(member)
        with open(target, "wb") as out:
            while block := fh.read(_CHUNK):
                sha.update(block)
                out.write(block)
        if sha.hexdigest() != expected[name]:
            raise InputError(f"{source}: {name}: its SHA-256 is not the manifest's (the archive is corrupt)")
        seen.add(name)
    missing = sorted(set(expected) - seen)
    if missing:
        raise InputError(f"{source}: {len(missing)} files the manifest lists are missing (first: {missing[0]}); "
                         "the archive is truncated")


def _check_present(store: "ArtifactStore", manifest: dict, source: str) -> None:
    """A step left out of the archive (a real data set) must be in the cache already, the same by content."""
    for step in manifest.get("excluded", []):
        record = manifest["artifacts"][step]
        mine = store.manifest()["artifacts"].get(step)
        if store.state(step) != "ok" or mine is None or mine["files"] != record["files"] \
                or mine.get("inputs", {}) != record.get("inputs", {}):
            named = ", ".join(f"{n} (SHA-256 {h[:12]})" for n, h in record.get("inputs", {}).items()) or "its data"
            raise InputError(f"{source}: this build leaves out {step!r}, made from {named}: import that file first "
                             f"(`aipbench data import --protocol {store.protocol.name} FILE`), then the build")
    for step, record in manifest["artifacts"].items():
        for dep in record.get("deps", []):
            if dep not in manifest["artifacts"]:
                raise InputError(f"{source}: step {step!r} needs {dep!r}, which the archive does not hold")

