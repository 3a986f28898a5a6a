"""A worker process's side of the conversation (``worker.Worker``): enter the sandbox's user and limits, then
answer the harness's requests with a role's handler — the memory files it hands over mapped, a request's
payload read, each reply one JSON line (and, for a checkpoint or a state, the bytes after it) — until the
harness closes the channel. Errors are replies, with their tracebacks; nothing is ever sent as a pickle."""

from __future__ import annotations

import io
import json
import mmap
import os
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from aipbench.errors import MAX_MESSAGE, InputError, one_line
from aipbench.progress import Throttle, reporting

__all__ = ["load_object", "serve"]

Handler = Callable[[dict, dict, "bytes | None"], "tuple[dict, bytes | None]"]


def load_object(data: bytes) -> Any:
    """Unpickle the harness's context fields, opening the data set's image files where they are handed over."""
    from aipbench.data.packed import PackedImages

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):  # ("memmap", path) or ("packed", blob, offsets, size): worker.py
            return np.load(pid[1], mmap_mode="r") if pid[0] == "memmap" else PackedImages(*pid[1:])

    return Unpickler(io.BytesIO(data)).load()


def _receive_buffers(message: dict, fds: list[int], buffers: dict, held: dict) -> None:
    """Map the memory files whose descriptors came with ``message`` (``new`` names them, in order)."""
    for name, fd in zip(message.get("new", []), fds):
        if name in buffers:
            buffers.pop(name).close()
            os.close(held.pop(name))
        buffers[name], held[name] = mmap.mmap(fd, os.fstat(fd).st_size), fd


def serve(fd: str, setup: str, handler: Handler, *, source: Callable[[], str]) -> int:
    """Answer requests with ``handler(message, buffers, payload) -> (reply, bytes or None)``; ``source()`` names
    the submission's file in an error line."""
    from aipbench.harness.isolation.channel import ChannelClosed, child_channel
    from aipbench.harness.isolation.entry import enter

    enter(setup)  # the sandbox's user and limits, before anything submitted is imported
    channel, buffers, held = child_channel(fd), {}, {}
    while True:
        try:
            raw, fds = channel.recv_with_fds(max_bytes=1 << 20)
            message = json.loads(raw)
            payload = channel.recv(max_bytes=1 << 40) if message.get("payload") else None
        except (ChannelClosed, OSError, ValueError):
            return 0
        data = None
        try:
            _receive_buffers(message, fds, buffers, held)
            with reporting(Throttle(lambda done, total: channel.send(json.dumps({"progress": [done, total]}).encode()))):
                reply, data = handler(message, buffers, payload)
        except InputError as err:
            reply = {"error": str(err)[:MAX_MESSAGE], "traceback": getattr(err, "traceback_text", None),
                     "report": getattr(err, "report_path", None)}
        except BaseException as err:  # noqa: BLE001 — a fault of the submission's that escaped its guard
            reply = {"error": f"{source()}: {message.get('op')} failed: {one_line(err)}",
                     "traceback": traceback.format_exc()[-20000:]}
        try:
            channel.send(json.dumps(reply, allow_nan=False).encode())
            if data is not None and "error" not in reply:
                channel.send(data)
        except (OSError, ValueError):
            return 1
