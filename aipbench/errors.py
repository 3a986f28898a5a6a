"""The exception types that mean "bad input", which the CLI reports as one line and exit status 1."""

from __future__ import annotations

from pathlib import Path

__all__ = ["USER_ERRORS", "ArtifactError", "ConfigError", "InputError"]


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
