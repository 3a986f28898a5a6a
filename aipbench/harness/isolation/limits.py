"""The resource limits a sandboxed child runs under: set by the child's own first lines (before any
submitted code is imported, so nothing it runs can raise them), recorded in every results document, and
the one line naming the limit a child ran into."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator

__all__ = ["GiB", "Limits", "apply_limits", "current_limits", "default_limits", "limit_hit", "using_limits"]

GiB = 1 << 30
ADDRESS_HEADROOM = 8 * GiB  # address space beyond the memory limit: code, mapped catalog files, thread stacks


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per child: ``memory`` bytes of private writable memory (RLIMIT_DATA; on a machine without a GPU also
    an address space of ``memory`` + 8 GiB, RLIMIT_AS, which counts shared mappings too — CUDA reserves
    more address space than any such cap allows); ``processes`` processes and threads (RLIMIT_NPROC, counted
    for the sandbox's own user); ``open_files`` descriptors (RLIMIT_NOFILE); ``cpu_seconds`` of CPU time per
    process (RLIMIT_CPU; an attack run only: a defense worker lives for a whole evaluation, each of its calls
    under the time limit); ``file_bytes`` per file written (RLIMIT_FSIZE); ``scratch_bytes`` and
    ``shm_bytes``, the sizes of the only writable places, the tmpfs at ``/tmp`` (its HOME and TMPDIR) and
    at ``/dev/shm``."""

    memory: int
    processes: int = 512
    open_files: int = 4096
    cpu_seconds: int | None = None
    file_bytes: int = 1 * GiB
    scratch_bytes: int = 1 * GiB
    shm_bytes: int = 1 * GiB

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"limit {field.name} must be a positive whole number, got {value!r}")

    def with_cpu(self, seconds: float) -> "Limits":
        """These limits with a CPU-time cap for one run of ``seconds`` wall-clock on every core, plus a margin."""
        return dataclasses.replace(self, cpu_seconds=int(seconds * (os.cpu_count() or 1)) + 60)

    def describe(self, *, gpu: bool) -> dict:
        """What a results document records (``sandbox.limits``)."""
        return {"memory_bytes": self.memory, "address_space_bytes": None if gpu else self.memory + ADDRESS_HEADROOM,
                "processes": self.processes, "open_files": self.open_files, "cpu_seconds": self.cpu_seconds,
                "file_bytes": self.file_bytes, "scratch_bytes": self.scratch_bytes, "shm_bytes": self.shm_bytes}


def default_limits() -> Limits:
    """Half of this machine's memory per child; the other limits as ``Limits`` sets them."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        total = 16 * GiB
    return Limits(memory=max(GiB, total // 2))


_CURRENT: list[Limits] = []


def current_limits() -> Limits:
    """The limits of the evaluation under way (``using_limits``), else the defaults."""
    return _CURRENT[-1] if _CURRENT else default_limits()


@contextlib.contextmanager
def using_limits(limits: Limits | None) -> Iterator[Limits]:
    """Every child started inside runs under ``limits`` (None: those already in effect, else the defaults)."""
    _CURRENT.append(limits or current_limits())
    try:
        yield _CURRENT[-1]
    finally:
        _CURRENT.pop()


def apply_limits(described: dict) -> None:
    """In the child, before anything submitted is imported: set soft and hard limits (never to be raised
    again: the child holds no capability that could)."""
    import resource

    def cap(which: int, value, *, grace: int = 0) -> None:
        if value is not None:
            resource.setrlimit(which, (int(value), int(value) + grace))

    cap(resource.RLIMIT_DATA, described["memory_bytes"])
    cap(resource.RLIMIT_AS, described["address_space_bytes"])
    cap(resource.RLIMIT_NPROC, described["processes"])
    cap(resource.RLIMIT_NOFILE, described["open_files"])
    cap(resource.RLIMIT_CPU, described["cpu_seconds"], grace=5)  # SIGXCPU (which ends it), SIGKILL 5 s later
    cap(resource.RLIMIT_FSIZE, described["file_bytes"])
    cap(resource.RLIMIT_CORE, 0)


def _size(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / (1 << 20):g} MiB"


# What a child's failure says, and the limit that explains it (the child's report is its own text: a
# child that lies about it only mislabels its own failure).
_SIGNS = [
    (re.compile(r"MemoryError|[Cc]annot allocate memory|can't allocate memory|bad_alloc|ENOMEM|Errno 12\]"), "memory"),
    (re.compile(r"can't start new thread|Resource temporarily unavailable|Errno 11\]|EAGAIN"), "processes"),
    (re.compile(r"Too many open files|Errno 24\]"), "open_files"),
    (re.compile(r"No space left on device|Errno 28\]"), "scratch"),
    (re.compile(r"File too large|Errno 27\]"), "file_bytes"),
]


def limit_hit(limits: Limits, *, error: str | None = None, status: int | None = None, gpu: bool = False) -> str | None:
    """The limit a child's failure points at, as the end of an error line (None: no limit explains it):
    from its reported error (``Type: message``) or its exit status (a signal: RLIMIT_CPU's SIGXCPU/SIGKILL)."""
    import signal

    d = limits.describe(gpu=gpu)
    lines = {
        "memory": f"its memory limit of {_size(limits.memory)} (RLIMIT_DATA"
                  + ("" if gpu else f"; address space {_size(d['address_space_bytes'])}, RLIMIT_AS") + ")",
        "processes": f"its limit of {limits.processes} processes and threads (RLIMIT_NPROC)",
        "open_files": f"its limit of {limits.open_files} open files (RLIMIT_NOFILE)",
        "scratch": f"its scratch space ({_size(limits.scratch_bytes)} at /tmp, {_size(limits.shm_bytes)} at /dev/shm)",
        "file_bytes": f"its limit of {_size(limits.file_bytes)} per file written (RLIMIT_FSIZE)",
        "cpu": f"its CPU-time limit of {limits.cpu_seconds} s (RLIMIT_CPU)",
    }
    if error:
        for pattern, name in _SIGNS:
            if pattern.search(error):
                return lines[name]
    if status is not None:
        sig = -status if status < 0 else status - 128 if status > 128 else None
        if sig == signal.SIGXCPU:
            return lines["cpu"]
    return None
