"""Where aipbench finds its files: the artifact cache, and the project's data folders (protocols, the
paper's reference numbers, reference submissions, committed results) in a checkout or an installation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aipbench.errors import InputError

__all__ = ["aipbench_home", "leaderboard_results_dir", "project_dir", "protocols_dir", "references_dir",
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
