"""Defense code held to the rules of attack code: every call into a submission's defense (import, transform,
train, fit, score) gives one error line naming its file (the traceback goes to a file), runs under the
evaluation's time limit, and has its output checked."""

from __future__ import annotations

import contextlib
import signal
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aipbench.errors import InputError, one_line, write_report

__all__ = ["call_defense", "checked_transform", "defense_time_limit", "load_guarded"]

_LIMIT = {"seconds": 3600.0}  # per call; evaluations set their own (--time-limit) with defense_time_limit


class _TimeLimit(BaseException):
    """Raised by the alarm inside defense code (a BaseException, so that the code cannot catch it)."""


@contextlib.contextmanager
def defense_time_limit(seconds: float) -> Iterator[None]:
    """Every defense call inside runs under ``seconds``."""
    before = _LIMIT["seconds"]
    _LIMIT["seconds"] = float(seconds)
    try:
        yield
    finally:
        _LIMIT["seconds"] = before


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def ring(signum, frame):
        raise _TimeLimit()

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _where(defense: Any) -> tuple[str, str]:
    source = getattr(defense, "_aipbench_source", None)
    return (source[0], source[1]) if source else ("the defense", type(defense).__name__)


def _failed(file: str, what: str, err: BaseException) -> InputError:
    """The one line for defense code's failure, its traceback written to a report named in it (and kept on the
    error, for a worker process to send to the harness)."""
    text = traceback.format_exc()[-20000:]
    try:
        report = write_report(text, name=f"aipbench-defense-traceback-{Path(file).parent.name}.txt")
    except OSError:
        report = "(not written)"
    error = InputError(f"{file}: {what} failed: {one_line(err)} (traceback: {report})")
    error.traceback_text, error.report_path = text, report
    return error


def call_defense(defense: Any, method: str, *args: Any) -> Any:
    """``defense.<method>(*args)`` under the time limit; any failure becomes one InputError line."""
    file, cls = _where(defense)
    try:
        with _alarm(_LIMIT["seconds"]):
            return getattr(defense, method)(*args)
    except _TimeLimit:
        raise InputError(f"{file}: {cls}.{method} ran past its time limit of {_LIMIT['seconds']:g} s") from None
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 — everything defense code does wrong is reported
        raise _failed(file, f"{cls}.{method}", err) from None


def checked_transform(defense: Any, images):
    """``defense.transform`` of a uint8 N×3×H×W tensor, its output checked: a uint8 tensor of the same shape."""
    import torch

    out = call_defense(defense, "transform", images)
    if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8 or tuple(out.shape) != tuple(images.shape):
        file, cls = _where(defense)
        what = f"{type(out).__name__}" + (f" {out.dtype} {tuple(out.shape)}" if isinstance(out, torch.Tensor) else "")
        raise InputError(f"{file}: {cls}.transform must return a uint8 tensor of shape {tuple(images.shape)}, got {what}")
    return out


def load_guarded(loader, path: Path, class_name: str) -> Any:
    """Import and instantiate a defense class with one-line errors (a broken file, a raising constructor)."""
    try:
        with _alarm(_LIMIT["seconds"]):
            return loader()
    except _TimeLimit:
        raise InputError(f"{path}: importing {class_name} ran past its time limit of {_LIMIT['seconds']:g} s") from None
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001
        raise _failed(str(path), f"importing {class_name}", err) from None
