"""A build: a prepared protocol's artifacts by content — every file's SHA-256 per step, with the outside files a
step was built from — and its **build id**, the SHA-256 of that content's canonical form over the protocol's
core (non-optional) steps; what made it is recorded beside it, not hashed into it, so two machines that make
the same bytes make the same build. A protocol's reference build is pinned in ``protocols/builds/
<protocol>.toml``: its id, the artifacts' hashes, the archive's SHA-256 and size, what made it, and where the
archive is published."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from aipbench.errors import InputError
from aipbench.hashing import canonical_sha256

if TYPE_CHECKING:
    from aipbench.pipeline.store import ArtifactStore
    from aipbench.protocol.schema import Protocol

__all__ = ["BuildPin", "build_content", "build_id", "core_steps", "load_pin", "pin_path", "store_build"]


def core_steps(protocol: "Protocol") -> list[str]:
    """The steps every build of ``protocol`` has (``aipbench prepare``'s default), in build order."""
    from aipbench.pipeline.steps import steps_for

    return [name for name, step in steps_for(protocol).items() if not step.optional]


def build_content(protocol: "Protocol", artifacts: dict[str, dict[str, str]]) -> dict:
    """What a build id hashes: the protocol's hash and, per core step present in ``artifacts`` (as results
    documents and ``ArtifactStore.hashes()`` give them: file → SHA-256, outside files as ``input:<name>``),
    its files' hashes."""
    return {"protocol": protocol.sha256,
            "artifacts": {step: dict(sorted(artifacts[step].items())) for step in core_steps(protocol) if step in artifacts}}


def build_id(protocol: "Protocol", artifacts: dict[str, dict[str, str]]) -> str:
    """The build id of ``artifacts`` (see ``build_content``)."""
    return canonical_sha256(build_content(protocol, artifacts))


def store_build(store: "ArtifactStore") -> dict:
    """The cache's build, as a results document records it: its id over the core steps it holds, and whether it
    holds them all (an evaluation prepares only the rankers it scores)."""
    hashes = store.hashes()
    core = core_steps(store.protocol)
    return {"id": build_id(store.protocol, hashes), "complete": all(step in hashes for step in core)}


@dataclasses.dataclass(frozen=True)
class BuildPin:
    """A protocol's reference build, as ``protocols/builds/<protocol>.toml`` pins it."""

    protocol: str
    id: str
    archive_sha256: str
    archive_bytes: int
    urls: tuple[str, ...]
    made_by: dict
    artifacts: dict[str, dict[str, str]]

    def differs(self, artifacts: dict[str, dict[str, str]]) -> str | None:
        """The first core step whose files ``artifacts`` has otherwise than this build (None: all it has agree)."""
        for step, files in sorted(self.artifacts.items()):
            if step in artifacts and {k: v for k, v in artifacts[step].items()} != files:
                return step
        return None

    def how_to_import(self) -> str:
        where = self.urls[0] if self.urls else "<the archive's file or URL>"
        return f"aipbench build import {where} --sha256 {self.archive_sha256}"


def pin_path(protocol: "Protocol") -> Path:
    from aipbench.paths import protocols_dir

    return protocols_dir() / "builds" / f"{protocol.name}.toml"


def load_pin(protocol: "Protocol") -> BuildPin | None:
    """The protocol's pinned reference build, or None; a pin that is not of this protocol's hash, or whose id
    is not its artifacts', is a one-line error."""
    import tomllib

    path = pin_path(protocol)
    if not path.is_file():
        return None
    try:
        raw = tomllib.loads(path.read_text())
        build, artifacts = raw["build"], raw["artifacts"]
        pin = BuildPin(protocol=str(raw["protocol"]["name"]), id=str(build["id"]),
                       archive_sha256=str(build["archive_sha256"]), archive_bytes=int(build["archive_bytes"]),
                       urls=tuple(str(u) for u in build.get("urls", [])), made_by=dict(raw.get("made_by", {})),
                       artifacts={str(s): {str(f): str(h) for f, h in files.items()} for s, files in artifacts.items()})
        sha = str(raw["protocol"]["sha256"])
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{path}: not a build pin ({type(err).__name__}: {err})") from None
    if sha != protocol.sha256 or pin.protocol != protocol.name:
        raise InputError(f"{path}: pins a build of protocol hash {sha[:12]}, not {protocol.name}'s {protocol.hash12}")
    if build_id(protocol, pin.artifacts) != pin.id:
        raise InputError(f"{path}: id {pin.id[:12]} is not the build id of the artifacts it lists")
    return pin
