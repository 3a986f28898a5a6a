"""Where sandboxed children's scratch folders go, what limits a child starts with, and the clean-up of the
folders a killed harness left behind."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

__all__ = ["CATALOG_IN_SANDBOX", "MAX_OUTPUT_FILE", "bind_image_file", "child_limits", "kill_group", "open_child_file",
           "remove_orphaned_scratch", "scratch_root", "write_child_file"]

MAX_OUTPUT_FILE = 1 << 31  # bytes any file a child writes may reach (RLIMIT_FSIZE)
CATALOG_IN_SANDBOX = "/run/aipbench/catalog"  # where a sandboxed child sees the catalog's image files


def bind_image_file(binds: dict[str, str], path, *, sandboxed: bool) -> str:
    """Record in ``binds`` (real path → path in the child) where a child reads an image file — read-only under
    ``CATALOG_IN_SANDBOX`` in the sandbox (the cache it lies in is hidden), where it is otherwise — and
    return that path."""
    real = str(Path(path).resolve())
    binds[real] = f"{CATALOG_IN_SANDBOX}/{Path(real).name}" if sandboxed else real
    return binds[real]


def kill_group(proc) -> None:
    """Kill a child's whole process group (whatever it started dies with it) and reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def open_child_file(path: Path):
    """A file a child left in its scratch folder, opened for reading only if it is a regular file there —
    never through a symbolic link (a child could point one at any file the harness may read). Raises
    OSError otherwise."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")


def write_child_file(path: Path, data: bytes = b"", *, size: int | None = None) -> None:
    """Write a file into a child's scratch folder afresh: whatever the child put at that name (a symbolic
    link to one of the harness's files, above all) is removed first, and the file is created exclusively.
    ``size``: make it that many bytes long (sparse) instead of writing ``data``."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        if size is not None:
            fh.truncate(size)
        else:
            fh.write(data)


def scratch_root() -> Path:
    """Where workers' scratch folders go: shared memory (/dev/shm) where there is one — images cross
    through files there at memory speed, a disk-backed /tmp is several times slower — else the temp folder."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else Path(tempfile.gettempdir())


def remove_orphaned_scratch() -> None:
    """Remove the scratch folders of harnesses that died without cleaning up (SIGKILL cannot be caught):
    ``aipbench-attack-<pid>-*`` (and a defense worker's ``aipbench-defense-<pid>-*``) of a pid that no longer runs."""
    tmp = Path(tempfile.gettempdir())
    workers = [f for root in {tmp, scratch_root()} for f in root.glob("aipbench-defense-*-*")]
    for folder in [*tmp.glob("aipbench-attack-*-*"), *workers]:
        if not folder.is_dir():  # e.g. a defense's copied traceback file
            continue
        pid = folder.name.split("-")[2]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # that harness is gone: its scratch is garbage
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            pass


def child_limits() -> None:
    """In the child before exec: die with the harness (Linux), and cap the size of any file it writes."""
    import resource

    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_OUTPUT_FILE, MAX_OUTPUT_FILE))
