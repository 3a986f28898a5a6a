"""SHA-256 of everything aipbench pins: files, canonical JSON, folders, model states."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["MAX_FOLDER_BYTES", "MAX_FOLDER_FILES", "canonical_json", "canonical_sha256", "folder_files", "folder_sha256",
           "sha256_file", "state_sha256"]

_CHUNK = 1 << 22
MAX_FOLDER_BYTES = 2 << 30  # a submission folder's files, in all
MAX_FOLDER_FILES = 20_000


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


def folder_files(folder: str | Path, *, max_bytes: int = MAX_FOLDER_BYTES, max_files: int = MAX_FOLDER_FILES) -> list[Path]:
    """A submission folder's files in sorted order, byte-code caches excluded: what ``folder_sha256`` hashes,
    ``submission package`` packs and a sandboxed child sees. It holds regular files and folders only — a
    link (which could lead anywhere) or a device, pipe or socket is a one-line error — and at most
    ``max_files`` files of ``max_bytes`` in all (sizes as the files say, so a sparse file is refused unread)."""
    import os
    import stat

    from aipbench.errors import InputError

    folder, found, total = Path(folder), [], 0
    pending = [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.name == "__pycache__":
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    pending.append(path)
                elif stat.S_ISREG(mode):
                    found.append(path)
                    total += entry.stat(follow_symlinks=False).st_size
                else:
                    kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                    raise InputError(f"{path}: {kind}; a submission folder holds regular files and folders only")
                if len(found) > max_files or total > max_bytes:
                    raise InputError(f"{folder}: a submission folder holds at most {max_files} files of "
                                     f"{max_bytes >> 20} MiB in all")
    return sorted(found)


def folder_sha256(folder: str | Path) -> str:
    """SHA-256 over a folder: every file's relative name and content (streamed), in sorted order (byte-code
    caches excluded), so that any edit gives a new hash."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in folder_files(folder):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(bytes.fromhex(sha256_file(path)))
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
