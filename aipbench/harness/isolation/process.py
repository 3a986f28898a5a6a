"""A child process of the harness — one of aipbench's own child modules, in the sandbox or, unsandboxed, as a
plain process — with its channel, its output (kept up to a cap, drained as it comes), its exit and its end:
the whole process group killed, its scratch folder removed."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from aipbench.harness.isolation.bwrap import (CHILD_HOME, args_file, bwrap_args, bwrap_binary, gpu_device_nodes,
                                              runs_as_root)
from aipbench.harness.isolation.channel import Channel
from aipbench.harness.isolation.environment import child_environment
from aipbench.harness.isolation.limits import Limits
from aipbench.harness.isolation.scratch import Binds

__all__ = ["MAX_OUTPUT", "Child", "kill_group", "sandbox_uid"]

MAX_OUTPUT = 1 << 16  # bytes of a child's stdout and of its stderr that are kept
_COUNTER = itertools.count()


def sandbox_uid() -> int:
    """A user of the child's own when the harness is root (kept apart from every other child's, running now,
    as systemd's DynamicUser does): 2^30 + this harness's pid × 256 + a counter."""
    return (1 << 30) + (os.getpid() % (1 << 22)) * 256 + next(_COUNTER) % 256


def _die_with_harness() -> None:  # in the child before exec (Linux): SIGKILL when the harness dies
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a child's whole process group (whatever it started dies with it) and reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class _Drain(threading.Thread):
    """Reads a pipe until it closes, keeping the first ``MAX_OUTPUT`` bytes: a child that writes without
    end neither blocks nor fills the harness's memory or disk."""

    def __init__(self, pipe) -> None:
        super().__init__(daemon=True)
        self.pipe, self.kept, self.dropped = pipe, bytearray(), 0

    def run(self) -> None:
        try:
            while chunk := self.pipe.read1(1 << 16):
                room = MAX_OUTPUT - len(self.kept)
                self.kept += chunk[:room]
                self.dropped += max(0, len(chunk) - room)
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        more = f"\n[{self.dropped} more bytes not kept]\n" if self.dropped else ""
        return self.kept.decode("utf-8", errors="replace") + more


class Child:
    """``python -m <module> <channel fd> <setup> *args`` as a child of the harness: in the bubblewrap sandbox
    (``sandboxed``; ``binds``: what it reads of ours, ``workdir``: its working directory as it sees it), or a
    plain process."""

    def __init__(self, module: str, args: list[str], *, binds: Binds, workdir: str, limits: Limits) -> None:
        sandboxed, scratch = binds.sandboxed, binds.scratch
        mine, theirs = socket.socketpair()
        setup = {"sandboxed": sandboxed, "uid": sandbox_uid() if sandboxed and runs_as_root() else None,
                 "limits": limits.describe(gpu=bool(gpu_device_nodes()))}
        argv = [sys.executable, "-P", "-s", "-m", module, str(theirs.fileno()), json.dumps(setup), *args]
        home = CHILD_HOME if sandboxed else str(scratch / "home")
        env, fds = child_environment(home=home), [theirs.fileno()]
        if sandboxed:
            fds.append(args_file(bwrap_args(binds=binds.paths, workdir=workdir, env=env, limits=limits)))
            argv, env = [bwrap_binary(), "--args", str(fds[-1]), *argv], {"PATH": "/usr/bin:/bin"}
        else:
            Path(home).mkdir(exist_ok=True)
        try:
            self.proc = subprocess.Popen(argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_harness,
                                         pass_fds=tuple(fds))
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
            if sandboxed:
                os.close(fds[-1])
        mine.setblocking(False)
        self.channel, self.scratch = Channel(mine), scratch
        self._drains = [_Drain(self.proc.stdout), _Drain(self.proc.stderr)]
        for drain in self._drains:
            drain.start()

    def output(self) -> tuple[str, str]:
        """Its stdout and stderr so far (capped)."""
        return self._drains[0].text(), self._drains[1].text()

    def exit_status(self, timeout: float = 5.0) -> int | None:
        """Its exit status, waiting up to ``timeout`` seconds (None: still running)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """Kill its whole process group, close the channel, collect its output, remove the scratch folder."""
        kill_group(self.proc)
        self.channel.close()
        for drain in self._drains:
            drain.join(timeout=2)
        shutil.rmtree(self.scratch, ignore_errors=True)
