"""`aipbench submission check`'s worker side (``python -m aipbench.harness.isolation.check_child``, served by
``worker_child.serve``): import the submission's file in its sandbox, resolve its class and say whether it has
what its kind calls — nothing of it is run beyond the import."""

from __future__ import annotations

import sys
from pathlib import Path

from aipbench.errors import InputError, one_line

__all__ = ["METHODS", "main"]

# What the harness calls, per kind (and defense type): every name must be a method of the class.
METHODS = {"attack": ("run",), "transform": ("transform",), "detector": ("fit", "score"), "training": ("train",)}


class _Check:
    """Answers one request, ``check``: the file imported, the class found, its methods there."""

    def __init__(self) -> None:
        self.source = "the submission"

    def __call__(self, message: dict, buffers: dict, payload: bytes | None) -> tuple[dict, bytes | None]:
        if message["op"] != "check":
            raise ValueError(f"no such request {message['op']!r}")
        file, name, kind = message["file"], message["class"], message["kind"]
        self.source = file
        if kind == "ranker":
            from aipbench.harness.ranker_submission import import_ranker

            try:
                import_ranker(file, name)
            except InputError:
                raise
            except Exception as err:  # noqa: BLE001 — as below
                raise InputError(f"{file}: importing it failed: {one_line(err)}") from None
            return {"methods": ["train"]}, None
        from aipbench.registry import import_from_file

        try:
            cls = import_from_file(file, name, module=f"aipbench_check_{Path(file).stem}")
        except InputError:  # no such name: the closest class it defines
            raise
        except Exception as err:  # noqa: BLE001 — a syntax error, an import that fails: the line says which
            raise InputError(f"{file}: importing it failed: {one_line(err)}") from None
        if not isinstance(cls, type):
            raise InputError(f"{file}: {name} is not a class")
        wanted = METHODS[kind]
        missing = [m for m in wanted if not callable(getattr(cls, m, None))]
        if missing:
            raise InputError(f"{file}: {name} has no method {', '.join(missing)} (the harness calls "
                             f"{', '.join(f'{m}()' for m in wanted)})")
        return {"methods": list(wanted)}, None


def main(fd: str, setup: str) -> int:
    """Answer the harness's request, then stop when it closes the channel."""
    from aipbench.harness.isolation.worker_child import serve

    handler = _Check()
    return serve(fd, setup, handler, source=lambda: handler.source)


if __name__ == "__main__":
    from aipbench.harness.isolation import check_child

    sys.exit(check_child.main(*sys.argv[1:3]))
