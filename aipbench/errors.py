"""The exception types that mean "bad input", which the CLI reports as one line and exit status 1."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MAX_MESSAGE", "USER_ERRORS", "ArtifactError", "ConfigError", "InputError", "one_line", "write_report"]


class InputError(ValueError):
    """Bad user input (a file, a submission, an argument): the message is one line naming it and the rule."""


class ConfigError(InputError):
    """A configuration file breaks a rule; ``str(err)`` is one line naming the file and the key."""

    def __init__(self, source: str | Path, key: str, rule: str) -> None:
        self.source, self.key, self.rule = str(source), key, rule
        where = f"key '{key}'" if key else "top level"
        super().__init__(f"{source}: {where}: {rule}")


class ArtifactError(RuntimeError):
    """An artifact is missing, corrupt or cannot be built; the message is one line."""


USER_ERRORS: tuple[type[BaseException], ...] = (InputError, ArtifactError)


MAX_MESSAGE = 300  # characters of an error raised by submitted code that reach the user


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an error raised by submitted code, at most ``MAX_MESSAGE``
    characters — also for an exception whose ``str()`` itself raises."""
    try:
        first = (str(err).strip().splitlines() or [""])[0]
    except Exception:  # noqa: BLE001 — a hostile __str__
        first = "<the exception's message could not be shown>"
    try:
        name = type(err).__name__
    except Exception:  # noqa: BLE001
        name = "Exception"
    return f"{name}: {first}".rstrip(": ")[:MAX_MESSAGE]


def write_report(text: str, *, name: str) -> str:
    """Write a report (the traceback of submitted code) as ``name`` in the temporary folder and return its
    path: written to a fresh private file, then renamed over the name (a link someone planted there is
    replaced, never followed); where the name is someone else's, the fresh file keeps its own name."""
    import os
    import tempfile

    fd, path = tempfile.mkstemp(prefix=".aipbench-report-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(text)
    target = os.path.join(tempfile.gettempdir(), name)
    try:
        os.replace(path, target)
        return target
    except OSError:
        return path
