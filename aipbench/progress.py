"""Progress of long work — an attack, a defense's fit or training, a ranker's training — reported as (done,
total) by whoever does it and shown by the harness as one live bar per run (``AIPBENCH_PROGRESS=0``: none)."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator

__all__ = ["ENABLED", "LiveBar", "Throttle", "forward", "parse", "report", "reporting", "require"]

# Bars on the terminal unless AIPBENCH_PROGRESS=0 (CI, tests, logs).
ENABLED = os.environ.get("AIPBENCH_PROGRESS", "1") != "0"

Reporter = Callable[[float, float], None]
_reporter: Reporter | None = None


def report(done: float, total: float) -> bool:
    """Pass (done, total) to the reporter the harness installed; False when none is (a library call)."""
    if _reporter is None:
        return False
    _reporter(done, total)
    return True


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Within the block, ``report`` goes to ``reporter`` (the attack child's channel, a worker's, a live bar)."""
    global _reporter
    previous, _reporter = _reporter, reporter
    try:
        yield
    finally:
        _reporter = previous


def parse(done, total) -> tuple[float, float] | None:
    """(done, total) as the harness accepts them from submitted code — finite, 0 ≤ done, total > 0 — else None."""
    try:
        done, total = float(done), float(total)
    except (TypeError, ValueError, OverflowError):
        return None
    if not (math.isfinite(done) and math.isfinite(total) and done >= 0 and total > 0):
        return None
    return min(done, total), total


def require(done, total) -> tuple[float, float]:
    """(done, total) checked as ``parse`` does, for the code that reports them: a ValueError saying the rule."""
    checked = parse(done, total)
    if checked is None:
        raise ValueError(f"progress(done, total) takes two finite numbers, 0 <= done and total > 0; got {done!r}, "
                         f"{total!r}")
    return checked


def forward(progress: Reporter | None, value) -> None:
    """A [done, total] report from a child to ``progress`` (the live bar); anything else is dropped (a display)."""
    checked = parse(*value) if isinstance(value, list) and len(value) == 2 else None
    if progress is not None and checked is not None:
        progress(*checked)


class Throttle:
    """``send`` at most every ``interval`` seconds, and always when the work is done: a loop may report every
    step without flooding a channel."""

    def __init__(self, send: Reporter, interval: float = 0.2) -> None:
        self.send, self.interval, self.last = send, interval, -math.inf

    def __call__(self, done: float, total: float) -> None:
        checked = require(done, total)
        now = time.monotonic()
        if checked[0] >= checked[1] or now - self.last >= self.interval:
            self.last = now
            self.send(*checked)


class LiveBar:
    """One tqdm bar on stderr, made on the first report (so a run that reports nothing shows nothing), with a
    count, a rate and an estimate of the time left; a no-op when ``AIPBENCH_PROGRESS=0``."""

    def __init__(self, desc: str, *, enabled: bool | None = None) -> None:
        self.desc, self.enabled, self.bar = desc, ENABLED if enabled is None else enabled, None

    def __call__(self, done: float, total: float) -> None:
        checked = parse(done, total)
        if checked is None or not self.enabled:
            return
        done, total = (int(v) if v.is_integer() else v for v in checked)  # "80/80", not "80.0/80.0"
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.desc, dynamic_ncols=True, leave=True)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
