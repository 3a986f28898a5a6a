"""Where aipbench finds its files: the artifact cache, and the project's data folders (protocols, the
paper's reference numbers, reference submissions, committed results) in a checkout or an installation; and
how a file from outside is read (a regular file, never through a link, of a bounded size)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aipbench.errors import InputError

__all__ = ["aipbench_home", "leaderboard_results_dir", "project_dir", "protocols_dir", "read_regular", "references_dir",
           "submissions_dir"]

# A checkout holds these folders beside the package; a wheel installs the first three under
# <prefix>/share/aipbench/ (pyproject's data-files). Committed results exist in a checkout only.
_CHECKOUT = Path(__file__).resolve().parent.parent
_INSTALLED = Path(sys.prefix) / "share" / "aipbench"


def aipbench_home() -> Path:
    """The artifact cache: ``$AIPBENCH_HOME``, default ``~/.cache/aipbench``."""
    return Path(os.environ.get("AIPBENCH_HOME", Path.home() / ".cache" / "aipbench")).expanduser()


def project_dir(name: str) -> Path:
    """The project's folder ``name`` (protocols, submissions, leaderboard): the checkout's, else the
    installed copy; a one-line error says what is missing where."""
    for base in (_CHECKOUT, _INSTALLED):
        if (base / name).is_dir():
            return base / name
    raise InputError(f"{_CHECKOUT / name}: not found (nor {_INSTALLED / name}); "
                     f"'{name}/' comes with a checkout of aipbench or its wheel")


def protocols_dir() -> Path:
    return project_dir("protocols")


def references_dir() -> Path:
    """The paper's reported numbers (Tables 3-8), kept apart from measured ones."""
    return protocols_dir() / "references"


def submissions_dir() -> Path:
    """The reference attacks and defenses (a defense is scored against the reference attacks)."""
    return project_dir("submissions")


def leaderboard_results_dir() -> Path:
    """The committed results the leaderboard is built from (a checkout's ``leaderboard/results``)."""
    return project_dir("leaderboard") / "results"


def read_regular(path: str | Path, *, max_bytes: int) -> bytes:
    """A file's bytes, if it is a regular file at ``path`` itself — never through a link (which could lead to
    any file of the reader's) — of at most ``max_bytes``; one-line errors naming it."""
    import stat

    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        rule = "a symbolic link; links are not followed" if os.path.islink(path) else err.strerror
        raise InputError(f"{path}: {rule}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file")
        if info.st_size > max_bytes:
            raise InputError(f"{path}: {info.st_size} bytes, more than the {max_bytes} such a file may have")
        return fh.read(max_bytes + 1)[:max_bytes]
