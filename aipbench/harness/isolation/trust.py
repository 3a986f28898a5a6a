"""Where submitted code may run: in the sandbox (the default), in a plain child process (``--unsandboxed``,
the user's own choice), or in the harness's own process — the last only for the repository's own reference
submissions, recognised by their folders' hashes, never by a name or a flag."""

from __future__ import annotations

import functools
from pathlib import Path

from aipbench.errors import InputError

__all__ = ["ISOLATIONS", "check_in_process", "is_reference", "require_sandbox", "sandbox_record"]

ISOLATIONS = ("sandbox", "process", "none")


@functools.cache
def _reference_hashes() -> frozenset[str]:
    from aipbench.hashing import folder_sha256
    from aipbench.paths import submissions_dir

    return frozenset(folder_sha256(toml.parent) for toml in submissions_dir().glob("*/submission.toml"))


def is_reference(folder: str | Path) -> bool:
    """Whether ``folder`` holds exactly one of the reference submissions shipped with aipbench (by content)."""
    from aipbench.hashing import folder_sha256

    try:
        return folder_sha256(folder) in _reference_hashes()
    except (OSError, InputError):
        return False


def check_in_process(*folders: str | Path) -> None:
    """Refuse to run code from ``folders`` in this process unless each is a reference submission."""
    for folder in folders:
        if not is_reference(folder):
            raise InputError(f"{folder}: only aipbench's own reference submissions run in the harness's process "
                             "(isolation 'none'); this folder is not one of them by its content — it runs in the "
                             "sandbox, or with --unsandboxed in a child process")


def require_sandbox(entry_file: str | Path) -> None:
    """Refuse to run code where no sandbox can run (the caller may choose an unsandboxed child instead)."""
    from aipbench.harness.isolation.bwrap import sandbox_problem

    problem = sandbox_problem()
    if problem:
        raise InputError(f"{entry_file}: code submissions run in a bubblewrap sandbox, which cannot run here "
                         f"({problem}); install bubblewrap, or pass --unsandboxed to run it without one")


def sandbox_record(isolation: str, *, code: bool, time_limit: float | None = None) -> dict:
    """What a results document records of where the submission's code ran, and under which limits (an attack
    run's CPU time follows from its ``time_limit``)."""
    from aipbench.harness.isolation.bwrap import gpu_device_nodes, runs_as_root, sandbox_description
    from aipbench.harness.isolation.limits import current_limits

    if not code:
        return {"isolation": "no code", "tool": None}
    if isolation == "none":
        return {"isolation": "in-process (trusted reference)", "tool": None}
    limits = current_limits()
    limits = (limits if time_limit is None else limits.with_cpu(time_limit)).describe(gpu=bool(gpu_device_nodes()))
    if isolation == "sandbox":
        user = "a user of its own (run as root)" if runs_as_root() else "a user namespace of its own"
        return {"isolation": "sandbox", "tool": sandbox_description(), "user": user, "limits": limits}
    return {"isolation": "unsandboxed child process", "tool": None, "limits": limits}
