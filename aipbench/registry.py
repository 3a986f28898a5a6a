"""One small name → object registry with a "did you mean" error, for everything that has a name (rankers,
reference submissions, experiments, protocols, commands), and the loader of objects named in files."""

from __future__ import annotations

import difflib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from aipbench.errors import InputError

__all__ = ["Registry", "import_from_file", "import_module_from_file", "suggestion"]

T = TypeVar("T")


def suggestion(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, else ``"; known: a, b, c"``."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(sorted(known))}"


class Registry(Generic[T]):
    """``reg.register("name")(obj)`` adds; ``reg.get("name")`` finds or raises a one-line InputError.
    Names keep their registration order (for rankers: the paper's)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise InputError(f"unknown {self.kind} '{name}'{suggestion(name, self._items)}") from None

    def remove(self, name: str) -> T:
        """Take ``name`` out again (an extension a test or a session added for a while)."""
        return self._items.pop(name)

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)


def import_module_from_file(path: str | Path, *, module: str) -> Any:
    """The Python file ``path`` imported as module ``module``; the file's folder becomes importable (a
    submission may import its own helpers, also later, from its methods)."""
    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(module, path)
    loaded = importlib.util.module_from_spec(spec)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec.loader.exec_module(loaded)
    return loaded


def import_from_file(path: str | Path, name: str, *, module: str) -> Any:
    """The object ``name`` defined in the Python file ``path`` (a submission's ``file.py:Name``), imported
    as module ``module`` (``import_module_from_file``). A file that defines no such object is a one-line
    InputError naming the closest class it does define."""
    loaded = import_module_from_file(path, module=module)
    if not hasattr(loaded, name):
        classes = [n for n, v in vars(loaded).items() if isinstance(v, type) and v.__module__ == module]
        raise InputError(f"{Path(path).resolve()}: defines no {name}"
                         + (suggestion(name, classes) if classes else " (it defines no class at all)"))
    return getattr(loaded, name)
