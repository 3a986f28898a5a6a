"""A code submission's file imported where it would run — in its sandbox — and its class checked for what its
kind calls, in seconds and before any protocol is prepared (``aipbench submission check``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission

__all__ = ["IMPORT_TIME_LIMIT", "check_code"]

IMPORT_TIME_LIMIT = 60.0  # seconds for importing the file (torch alone takes a few)


def check_code(sub: "Submission", *, sandboxed: bool = True, time_limit: float = IMPORT_TIME_LIMIT) -> list[str]:
    """The methods of ``sub``'s class the harness will call, once its file imports in a worker process (in a
    bubblewrap sandbox unless ``sandboxed`` is False) and the class has them; a one-line InputError otherwise.
    An image-folder submission has no code: ``[]``."""
    from aipbench.harness.isolation.worker import Worker

    if sub.entry_file is None:
        return []
    kind = sub.submission.kind if sub.defense is None else sub.defense.type
    worker = Worker("check", sub.entry_file, sandboxed=sandboxed, limit=lambda: time_limit)
    try:
        reply = worker.request({"op": "check", "file": worker.file, "class": sub.entry_class, "kind": kind},
                               what=f"importing {sub.entry_class}")
    finally:
        worker.close()
    return [str(m) for m in reply.get("methods", [])]
