"""The harness's scratch folder for one child: the files it hands over (read-only to the child), the staged
copies of the submission folders it may read, and the clean-up of folders a killed harness left behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["Binds", "make_scratch", "remove_orphaned_scratch", "stage_folder"]

HANDED_OVER = "/run/aipbench"  # where a sandboxed child sees the files handed to it (context, catalog)


def make_scratch(kind: str) -> Path:
    """A fresh private folder ``aipbench-<kind>-<pid>-*`` in the temporary folder (the pid lets the next run
    remove it if this harness is killed before it can)."""
    remove_orphaned_scratch()
    return Path(tempfile.mkdtemp(prefix=f"aipbench-{kind}-{os.getpid()}-"))


def remove_orphaned_scratch() -> None:
    """Remove the scratch folders of harnesses that died without cleaning up (SIGKILL cannot be caught):
    ``aipbench-attack-<pid>-*`` and ``aipbench-defense-<pid>-*`` of a pid that no longer runs."""
    tmp = Path(tempfile.gettempdir())
    for folder in [*tmp.glob("aipbench-attack-*-*"), *tmp.glob("aipbench-defense-*-*")]:
        pid = folder.name.split("-")[2]
        if not folder.is_dir() or folder.is_symlink() or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # that harness is gone: its scratch is garbage
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass


def stage_folder(folder: Path, scratch: Path) -> Path:
    """A copy of a submission folder's files (exactly those its hash covers: regular files, no links) under
    ``scratch``, world-readable, for the child to see read-only at the folder's own path: it runs what was
    hashed, whatever happens to the folder meanwhile, and a child running as a user of its own can read it
    wherever the folder lies."""
    from aipbench.hashing import folder_files

    folder = Path(folder).resolve()
    target = Path(tempfile.mkdtemp(prefix="stage-", dir=scratch))
    for path in folder_files(folder):
        copy = target / path.relative_to(folder)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy, follow_symlinks=False)
        os.chmod(copy, 0o755 if os.access(path, os.X_OK) else 0o644)
    for sub in [target, *(p for p in target.rglob("*") if p.is_dir())]:
        os.chmod(sub, 0o755)
    return target


class Binds:
    """What a child reads of the harness's files: real path → the path the child sees it at (read-only in the
    sandbox; itself for a plain child process)."""

    def __init__(self, sandboxed: bool, scratch: Path) -> None:
        self.sandboxed, self.scratch, self.paths = sandboxed, scratch, {}

    def file(self, path, name: str | None = None) -> str:
        """A file handed over (the context, a catalog file): under ``HANDED_OVER`` in the sandbox."""
        real = str(Path(path).resolve())
        if self.sandboxed:
            self.paths[real] = f"{HANDED_OVER}/{name or Path(real).name}"
            return self.paths[real]
        return real

    def folder(self, path) -> str:
        """A submission folder: its staged copy, seen at the folder's own path in the sandbox."""
        real = str(Path(path).resolve())
        if self.sandboxed and real not in self.paths.values():
            self.paths[str(stage_folder(Path(real), self.scratch))] = real
        return real
