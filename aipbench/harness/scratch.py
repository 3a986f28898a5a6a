"""Where sandboxed children's scratch folders go, what limits a child starts with, and the clean-up of the
folders a killed harness left behind."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

__all__ = ["MAX_OUTPUT_FILE", "child_limits", "remove_orphaned_scratch", "scratch_root"]

MAX_OUTPUT_FILE = 1 << 31  # bytes any file a child writes may reach (RLIMIT_FSIZE)


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
