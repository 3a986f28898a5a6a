"""What the harness hands a defense's own code: exactly the fields named, nothing else."""

from __future__ import annotations

from typing import Any

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

    def missing(self, name: str) -> Exception:
        return AttributeError(f"a {type(self).__name__} has no {name!r}; it offers {sorted(self._fields)}")
