"""What the harness hands a defense's own code: exactly the fields named, nothing else."""

from __future__ import annotations

from typing import Any

from aipbench.progress import report, require

__all__ = ["Handover"]


class Handover:
    """Read-only fields given as keywords; ``FIELDS`` names all of them, and asking for anything else
    goes to ``missing`` (an error that says what is offered)."""

    FIELDS: tuple[str, ...] = ()

    def __init__(self, **fields: Any) -> None:
        if set(fields) != set(self.FIELDS):
            raise ValueError(f"{type(self).__name__} takes exactly {self.FIELDS}")
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._fields:
            return self._fields[name]
        raise self.missing(name)

    def progress(self, done: float, total: float) -> None:
        """Report how far the work is — ``done`` of ``total`` in any unit — as often as it likes: the harness
        shows a live bar with an estimate of the time left (``AIPBENCH_PROGRESS=0`` hides it)."""
        report(*require(done, total))

    def missing(self, name: str) -> Exception:
        """What asking for a field not handed over raises (an error that says what is offered)."""
        return AttributeError(f"a {type(self).__name__} has no {name!r}; it offers {sorted(self._fields)}")
