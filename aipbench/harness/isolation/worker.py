"""A long-lived worker process running submitted code (a defense, a ranker) for the harness: the sandbox (or,
with ``--unsandboxed``, a plain child), killed with the harness and past the time limit of each call. The
harness talks to it over its channel — one-line JSON requests and replies, each read before the call's
deadline, a reply at most 64 KiB and NaN refused — and hands arrays over in memory files it creates and seals
(the worker can write into them but never shrink them under the harness's mapping), described by shape and
dtype in the JSON. Bytes that come back (a checkpoint, a state) are capped by the caller and never unpickled
here."""

from __future__ import annotations

import atexit
import fcntl
import io
import json
import mmap
import os
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aipbench.errors import MAX_MESSAGE, InputError, write_report
from aipbench.harness.isolation.channel import ChannelClosed, ChannelTimeout, ChannelTooLarge
from aipbench.harness.isolation.limits import current_limits, limit_hit
from aipbench.harness.isolation.process import Child
from aipbench.harness.isolation.scratch import Binds, make_scratch
from aipbench.harness.isolation.trust import require_sandbox
from aipbench.progress import forward

__all__ = ["MAX_REPLY", "Worker", "close_all"]

MAX_REPLY = 1 << 16  # bytes of one JSON reply
_LIVE: set["Worker"] = set()


def close_all() -> None:
    """Stop every worker this process started (an evaluation's end; also at exit)."""
    for worker in list(_LIVE):
        worker.close()


atexit.register(close_all)


class Worker:
    """The process that runs ``entry_file``'s code for the harness (``role``: "defense" or "ranker", the worker
    module ``aipbench.harness.isolation.<role>_child``); ``dataset``: a data set whose image files it may read
    (handed over read-only); ``limit``: the seconds each call may take."""

    def __init__(self, role: str, entry_file: Path, *, sandboxed: bool, limit: Callable[[], float],
                 dataset=None) -> None:
        self.role, self.file, self.limit = role, str(Path(entry_file).resolve()), limit
        self.child, self.buffers, self.closed = None, {}, False
        if sandboxed:
            require_sandbox(self.file)
        binds = Binds(sandboxed, make_scratch(role))
        try:
            self.persistent = _dataset_files(dataset, binds)
            self.limits = current_limits()
            self.child = Child(f"aipbench.harness.isolation.{role}_child", [], binds=binds,
                               workdir=binds.folder(Path(self.file).parent), limits=self.limits)
            _LIVE.add(self)
        except BaseException:
            self.close()
            if self.child is None:
                shutil.rmtree(binds.scratch, ignore_errors=True)
            raise

    def close(self) -> None:
        """Stop the worker and its whole process group; remove its scratch folder; release the buffers."""
        _LIVE.discard(self)
        self.closed = True
        for held in self.buffers.values():
            _release(*held)
        self.buffers = {}
        if self.child is not None:
            self.child.close()

    # -- the conversation -------------------------------------------------------------------------------------

    def request(self, message: dict, *, what: str, payload: bytes | None = None, fds: tuple[int, ...] = (),
                receive: int | None = None, progress: Callable[[float, float], None] | None = None):
        """Send a request (and its ``payload``), read the JSON reply (and, with ``receive``, the bytes after it,
        at most that many), all before the call's time limit; the progress the code reports on the way goes to
        ``progress``. Any failure of the conversation closes the worker."""
        if self.child is None or self.closed:
            raise InputError(f"{self.file}: the {self.role}'s process is gone (an earlier call failed)")
        channel, deadline = self.child.channel, time.monotonic() + self.limit()
        try:
            channel.send(json.dumps({**message, "payload": payload is not None}).encode(), deadline=deadline, fds=fds)
            if payload is not None:
                channel.send(payload, deadline=deadline)
            reply = json.loads(channel.recv(max_bytes=MAX_REPLY, deadline=deadline), parse_constant=_no_constant)
            while isinstance(reply, dict) and list(reply) == ["progress"]:  # the code's progress(done, total)
                forward(progress, reply["progress"])
                reply = json.loads(channel.recv(max_bytes=MAX_REPLY, deadline=deadline), parse_constant=_no_constant)
            if not isinstance(reply, dict):
                raise ValueError("not a JSON object")
            data = channel.recv(max_bytes=receive, deadline=deadline) if receive and "error" not in reply else None
        except ChannelTimeout:
            self.close()
            raise InputError(f"{self.file}: {what} ran past its time limit of {self.limit():g} s") from None
        except ChannelTooLarge as err:
            self.close()
            raise InputError(f"{self.file}: the {self.role}'s process sent {err} during {what}") from None
        except (ChannelClosed, OSError):
            status = self.child.exit_status(timeout=2)
            self.close()
            hit = limit_hit(self.limits, status=status)
            raise InputError(f"{self.file}: the {self.role}'s process " + (f"ran into {hit}" if hit else
                             f"ended during {what} (exit status {status})")) from None
        except ValueError:
            self.close()
            raise InputError(f"{self.file}: the {self.role}'s process sent an unreadable reply during {what}") from None
        except BaseException:  # the harness itself is stopped
            self.close()
            raise
        if "error" in reply:
            raise InputError(self._error_line(reply))
        return reply if receive is None else (reply, data)

    def exchange(self, message: dict, array: np.ndarray, *, out_dtype: str, out_shape: tuple, what: str) -> np.ndarray:
        """Send ``array`` through the input buffer, run the request, and copy out the answer the worker left in
        the output buffer: exactly ``out_shape`` of ``out_dtype`` (anything else is refused)."""
        array = np.ascontiguousarray(array)
        nbytes, fresh = int(np.prod(out_shape)) * np.dtype(out_dtype).itemsize, []
        source, target = self._buffer("in", array.nbytes, fresh), self._buffer("out", nbytes, fresh)
        np.frombuffer(source, np.uint8, count=array.nbytes)[:] = array.reshape(-1).view(np.uint8)
        reply = self.request({**message, "in": {"shape": list(array.shape), "dtype": str(array.dtype)},
                              "out": {"dtype": out_dtype, "shape": list(out_shape)}, "new": [n for n, _ in fresh]},
                             what=what, fds=tuple(fd for _, fd in fresh))
        if reply.get("shape") != list(out_shape):
            self.close()
            raise InputError(f"{self.file}: the {self.role}'s process answered {what} with a malformed reply")
        return np.frombuffer(target, np.uint8, count=nbytes).view(out_dtype).reshape(out_shape).copy()

    def pickled(self, fields: dict) -> bytes:
        """The harness's own objects (a context's fields) for the worker to unpickle; the data set's image
        files go by the paths the worker sees them at, not as copies."""
        persistent = self.persistent

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                return persistent.get(id(obj))

        buffer = io.BytesIO()
        Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(fields)
        return buffer.getvalue()

    def _buffer(self, name: str, nbytes: int, fresh: list) -> mmap.mmap:
        """A memory file of the harness's, mapped here and in the worker, kept from call to call (a new one when
        too small, its descriptor sent with the request): sealed, so the worker cannot shrink it under us."""
        held = self.buffers.get(name)
        if held is None or len(held[1]) < nbytes:
            fd = os.memfd_create(f"aipbench-{name}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(fd, max(nbytes, 1))
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            if held is not None:
                _release(*held)
            held = self.buffers[name] = (fd, mmap.mmap(fd, max(nbytes, 1)))
            fresh.append((name, fd))
        return held[1]

    def _error_line(self, reply: dict) -> str:
        """The worker's error as one line, its traceback copied to a report file of ours, named in the line."""
        message = str(reply["error"])[:MAX_MESSAGE]
        hit = limit_hit(self.limits, error=message)
        if hit:
            message = f"{message} — it ran into {hit}"
        trace = reply.get("traceback")
        if isinstance(trace, str) and trace:
            path = write_report(trace[-20000:], name=f"aipbench-{self.role}-traceback-{Path(self.file).parent.name}.txt")
            inside = reply.get("report")
            message = message.replace(inside, path) if isinstance(inside, str) and inside and inside in message \
                else f"{message} (traceback: {path})"
        return message


def _release(fd: int, mapping: mmap.mmap) -> None:
    """Unmap a buffer and close its memory file (a view of it still alive: unmapped when that goes)."""
    try:
        mapping.close()
    except BufferError:
        pass
    os.close(fd)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _dataset_files(dataset, binds: Binds) -> dict[int, tuple]:
    """For a data set's file-backed images: id(array) → how the worker opens them (its pickle's persistent
    id), the files handed over read-only."""
    from aipbench.data.packed import PackedImages

    images = None if dataset is None else dataset.images
    if isinstance(images, np.memmap) and images.filename:
        return {id(images): ("memmap", binds.file(images.filename, f"catalog/{Path(images.filename).name}"))}
    if isinstance(images, PackedImages):
        return {id(images): ("packed", binds.file(images.blob, f"catalog/{Path(images.blob).name}"),
                             binds.file(images.offsets_path, f"catalog/{Path(images.offsets_path).name}"), images.size)}
    return {}
