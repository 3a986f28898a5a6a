"""Protocol files: where they are found, and loading one strictly (one-line errors naming file and key)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from aipbench.errors import ConfigError
from aipbench.paths import protocols_dir
from aipbench.protocol.config import build, read_toml
from aipbench.protocol.schema import Protocol
from aipbench.registry import Registry, suggestion

__all__ = ["DEFAULT_PROTOCOL", "find_protocol", "list_protocols", "load_protocol", "protocol_dirs", "protocols"]

# The protocol every command and API uses when none is named: the embedded synthetic one. synthetic-v2
# since it met the rankers' quality and INSA targets that synthetic-v1 misses (README, "Why synthetic-v2").
DEFAULT_PROTOCOL = "synthetic-v2"


def protocol_dirs() -> list[Path]:
    """Folders searched for ``NAME.toml``: ``$AIPBENCH_PROTOCOLS`` (os.pathsep-separated), then the
    project's own ``protocols/``."""
    dirs = [Path(p) for p in os.environ.get("AIPBENCH_PROTOCOLS", "").split(os.pathsep) if p]
    dirs.append(protocols_dir())
    return dirs


def protocols() -> Registry[Path]:
    """Every protocol file found, by name (a name in an earlier folder hides the same name later)."""
    found: Registry[Path] = Registry("protocol")
    for d in protocol_dirs():
        for p in sorted(d.glob("*.toml")):
            if p.stem not in found:
                found.register(p.stem)(p)
    return found


def list_protocols() -> list[Path]:
    found = protocols()
    return [found.get(name) for name in sorted(found)]


def find_protocol(name_or_path: str | Path) -> Path:
    """A protocol name (looked up in ``protocol_dirs()``) or a path to a ``.toml`` file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(path, "", "no such protocol file")
        return path
    name, found = str(name_or_path), protocols()
    if name not in found:
        raise ConfigError(name, "", f"unknown protocol{suggestion(name, found)}")
    return found.get(name)


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Load, validate and return a protocol; any violation raises ``ProtocolError`` (one line)."""
    path = find_protocol(name_or_path)
    raw = read_toml(path)
    proto = dataclasses.replace(build(Protocol, raw, path), source=str(path))
    if proto.name != path.stem:
        raise ConfigError(path, "protocol.name", f"must equal the file name '{path.stem}', got {proto.name!r}")
    if proto.data.source != "synthetic" and proto.rankers.extractor.kind == "alexnet-style":
        raise ConfigError(path, "rankers.extractor.kind", "'alexnet-style' is pre-trained on the synthetic "
                          "generator's images, which a real-data protocol has not; use 'torchvision-alexnet' "
                          "(ImageNet weights, handed over with `aipbench data weights`)")
    return proto
