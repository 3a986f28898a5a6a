"""What every child does first, before anything submitted is imported: become the sandbox's own user (when
the harness runs as root, whose process limit the kernel never enforces) with every capability gone —
bounding, inheritable and ambient sets included — check that none is left, and set its resource limits."""

from __future__ import annotations

import ctypes
import json
import os

from aipbench.harness.isolation.limits import apply_limits

__all__ = ["enter"]

_CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def _capabilities() -> dict[str, int]:
    with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
        return {k: int(v.strip() or "0", 16) for k, _, v in (line.partition(":") for line in fh) if k in _CAP_SETS}


def _drop_everything(uid: int) -> None:
    """Empty the bounding and ambient sets (while CAP_SETPCAP is still held), become ``uid`` (which takes the
    permitted and effective sets), then empty the inheritable set."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    libc.capset(header, (ctypes.c_uint32 * 6)())  # effective, permitted, inheritable: nothing


def enter(setup: str) -> None:
    """Apply ``setup`` (JSON from the harness: ``sandboxed``, ``uid`` — the user to become, or null — and
    ``limits``); a sandboxed child that still holds a capability stops here."""
    config = json.loads(setup)
    if config.get("uid") is not None:
        _drop_everything(int(config["uid"]))
    if config.get("sandboxed") and any(_capabilities().values()):
        raise SystemExit(f"aipbench: the sandboxed child still holds capabilities ({_capabilities()}); "
                         "refusing to run submitted code")
    apply_limits(config["limits"])
