"""The exception types that mean "bad input", which the CLI reports as one line and exit status 1."""

from __future__ import annotations

from aipbench.artifacts import ArtifactError
from aipbench.config import ConfigError

__all__ = ["USER_ERRORS", "InputError"]


class InputError(ValueError):
    """Bad user input (a file, a submission, an argument): the message is one line naming it and the rule."""


USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, ArtifactError, InputError)
