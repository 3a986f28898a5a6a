"""SHA-256 of everything aipbench pins: files, canonical JSON, folders, model states."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["canonical_json", "canonical_sha256", "folder_files", "folder_sha256", "sha256_file", "state_sha256"]

_CHUNK = 1 << 22


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), streamed in 4 MiB blocks (multi-GB files included)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def canonical_json(obj: Any) -> str:
    """Sorted keys, no white space, ASCII, no NaN: the same data always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def canonical_sha256(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def folder_files(folder: str | Path) -> list[Path]:
    """A folder's files in sorted order, byte-code caches excluded: what ``folder_sha256`` hashes."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def folder_sha256(folder: str | Path) -> str:
    """SHA-256 over a folder: every file's relative name and content, in sorted order (byte-code caches
    excluded), so that any edit gives a new hash."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in folder_files(folder):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def state_sha256(model: "torch.nn.Module") -> str:
    """SHA-256 over a model's state: every entry's name, dtype, shape and bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()
