"""A code submission's file imported where it would run — in its sandbox — and its class checked for what its
kind calls, in seconds and before any protocol is prepared (``aipbench submission check``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.protocol.schema import Protocol

__all__ = ["IMPORT_TIME_LIMIT", "check_code", "check_fields"]

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


def check_fields(sub: "Submission", proto: "Protocol") -> None:
    """The fields that depend on a protocol: an attack's budget within the protocol's, a training defense's
    ``defends`` among the protocol's rankers (a one-line InputError naming the file, the key and the rule)."""
    from aipbench.errors import InputError
    from aipbench.rankers.registry import ranker_names, ranker_spec

    source = sub.folder / "submission.toml"
    if sub.submission.kind == "attack" and sub.threat.norm != "unbounded" and sub.threat.epsilon > proto.threat.epsilon:
        raise InputError(f"{source}: key 'threat.epsilon': {sub.threat.epsilon} is above protocol {proto.name}'s "
                         f"budget of {proto.threat.epsilon}")
    defends = sub.defense.defends if sub.defense is not None else None
    if defends is not None and not ranker_spec(defends).in_protocol(proto):
        raise InputError(f"{source}: key 'defense.defends': protocol {proto.name} has no ranker {defends!r} (its "
                         f"rankers: {', '.join(ranker_names(proto))})")
