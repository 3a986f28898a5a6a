"""Defense code in a worker process held to the rules of attack code: the sandbox (or, with ``--unsandboxed``,
a plain child), killed with the harness and past the time limit of each call. The harness talks to it over
its channel — one-line JSON requests and replies, each read under that limit — and hands images over in
memory files it creates and seals (the worker can write into them but never shrink them under the harness's
mapping), described by shape and dtype in the JSON; a trained ranker comes back as a tensors-only checkpoint,
size-checked before it is read, that aipbench's own code rebuilds. Nothing the worker returns is unpickled
by the harness: the fitted state a detector or transform hands to adaptive attacks travels as opaque bytes,
unpickled only inside those attacks' own sandboxes."""

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
from pathlib import Path
from typing import Any

import numpy as np

from aipbench.errors import MAX_MESSAGE, InputError, write_report
from aipbench.harness.isolation.channel import ChannelClosed, ChannelTimeout, ChannelTooLarge
from aipbench.harness.isolation.limits import current_limits, limit_hit
from aipbench.harness.isolation.process import Child
from aipbench.harness.isolation.scratch import Binds, make_scratch
from aipbench.harness.isolation.trust import check_in_process, require_sandbox

__all__ = ["SandboxedDefense", "close_all", "open_defense"]

_LIVE: set["SandboxedDefense"] = set()
_MAX_REPLY = 1 << 16  # bytes of one JSON reply
_MAX_STATE = 1 << 30  # bytes of a defense's state handed to adaptive attacks


def open_defense(entry_file, class_name: str, params: dict | None = None, *, isolation: str = "sandbox",
                 dataset=None, precision: str | None = None):
    """The defense class of a submission, instantiated with its level ``params``: in this process for
    ``isolation="none"`` (a reference submission only), else behind a worker process (``SandboxedDefense``).
    ``dataset``: a training defense's data set, whose image files the worker may read."""
    from aipbench.defenses.transforms import load_defense

    if isolation == "none":
        check_in_process(Path(entry_file).resolve().parent)
        return load_defense(entry_file, class_name, **(params or {}))
    return SandboxedDefense(entry_file, class_name, params or {}, sandboxed=isolation == "sandbox", dataset=dataset,
                            precision=precision)


def close_all() -> None:
    """Stop every worker this process started (an evaluation's end; also at exit)."""
    for worker in list(_LIVE):
        worker.close()


atexit.register(close_all)


class SandboxedDefense:
    """Stands for a defense object: ``transform``, ``score``, ``fit`` and ``train`` are requests to the
    worker (with the same error lines, time limit and output checks as in-process defense code). Copies of
    it (``copy.deepcopy``) are itself; pickled (into an attack's context), it becomes the submission's class
    re-imported from its file with the worker's state."""

    _aipbench_in_worker = True  # ``transforms.in_worker``: ``portable`` leaves it as it is (it pickles itself)

    def __init__(self, entry_file, class_name: str, params: dict, *, sandboxed: bool, dataset=None,
                 precision: str | None = None) -> None:
        import torch

        from aipbench.defenses.guard import _LIMIT

        path = Path(entry_file).resolve()
        self._aipbench_source = (str(path), class_name, dict(params))
        self._child, self._buffers, self._closed, self._limit = None, {}, False, lambda: _LIMIT["seconds"]
        if sandboxed:
            require_sandbox(path)
        binds = Binds(sandboxed, make_scratch("defense"))
        try:
            self._persistent = _dataset_files(dataset, binds)
            self._limits = current_limits()
            self._child = Child("aipbench.harness.isolation.defense_child", [], binds=binds,
                                workdir=binds.folder(path.parent), limits=self._limits)
            _LIVE.add(self)
            self._request({"op": "init", "file": str(path), "class": class_name, "params": params,
                           "threads": torch.get_num_threads(), "precision": precision},
                          what=f"importing {class_name}", timeout_what=f"importing {class_name}")
        except BaseException:  # a defense that cannot even start leaves no process or folder behind
            self.close()
            if self._child is None:
                shutil.rmtree(binds.scratch, ignore_errors=True)
            raise

    # -- what the harness calls --------------------------------------------------------------------------------

    def transform(self, images):
        """The worker's ``checked_transform`` of a uint8 tensor (checked again by the caller)."""
        import torch

        array = images.detach().cpu().numpy()
        return torch.from_numpy(self._exchange({"op": "transform"}, array, "uint8", array.shape, what="transform"))

    def score(self, images):
        """The worker's detector scores of a uint8 tensor, float64."""
        import torch

        array = images.detach().cpu().numpy()
        return torch.from_numpy(self._exchange({"op": "score", "device": str(images.device)}, array, "float64",
                                               (len(array),), what="score"))

    def fit(self, context) -> None:
        """Fit the detector on ``context``'s fields (the harness has checked them: no cold item among them)."""
        self._request({"op": "fit"}, payload=self._pickled(context._fields), what="fit")

    def state_sha256(self) -> str | None:
        """The fitted detector's state digest (``hashing.state_sha256``), if it is a torch module."""
        digest = self._request({"op": "digest"}, what="state")["sha256"]
        if digest is not None and not (isinstance(digest, str) and len(digest) == 64
                                       and all(c in "0123456789abcdef" for c in digest)):
            raise InputError(f"{self._aipbench_source[0]}: the defense's process sent a malformed state digest")
        return digest

    def train(self, context) -> dict:
        """Run the training defense; its ranker comes back as ``{"family", "state", "catalog"}`` (tensors only),
        refused before it is read if it is larger than a ranker of this protocol can be."""
        from aipbench.harness.isolation.returns import checkpoint_cap, read_checkpoint

        cap = checkpoint_cap(context.undefended)
        _, data = self._request({"op": "train"}, payload=self._pickled(context._fields), what="train", receive=cap)
        file, cls = self._aipbench_source[:2]
        return read_checkpoint(data, source=f"{file}: the ranker {cls}.train returned", cap=cap)

    def __getattr__(self, name: str) -> Any:
        """A plain attribute of the defense (a number, a string), e.g. a detector's ``training_items``."""
        if name.startswith("_") or name in ("transform", "score", "fit", "train"):
            raise AttributeError(name)
        found = self._request({"op": "attr", "name": name}, what=f"reading {name}")
        if not found.get("found"):
            raise AttributeError(name)
        return found.get("value")

    def __deepcopy__(self, memo):  # one worker holds the defense: copies of a wrapped ranker share it
        return self

    def __reduce__(self):  # into an attack's context: the class from its file, with the worker's state
        from aipbench.defenses.transforms import restore_state

        _, data = self._request({"op": "state"}, what="state", receive=_MAX_STATE)
        return restore_state, (self._aipbench_source, data)

    def close(self) -> None:
        """Stop the worker and its whole process group; remove its scratch folder; release the buffers."""
        _LIVE.discard(self)
        self._closed = True
        for held in self._buffers.values():
            _release(*held)
        self._buffers = {}
        if self._child is not None:
            self._child.close()

    # -- the conversation -----------------------------------------------------------------------------------------

    def _buffer(self, name: str, nbytes: int, fresh: list) -> mmap.mmap:
        """A memory file of the harness's, mapped here and in the worker, kept from call to call (a new one when
        too small, its descriptor sent with the request): sealed, so the worker cannot shrink it under us."""
        held = self._buffers.get(name)
        if held is None or len(held[1]) < nbytes:
            fd = os.memfd_create(f"aipbench-{name}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(fd, max(nbytes, 1))
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            if held is not None:
                _release(*held)
            held = self._buffers[name] = (fd, mmap.mmap(fd, max(nbytes, 1)))
            fresh.append((name, fd))
        return held[1]

    def _exchange(self, message: dict, array: np.ndarray, out_dtype: str, out_shape: tuple, *, what: str) -> np.ndarray:
        """Send ``array`` through the input buffer, run the request, and copy out the answer the worker left
        in the output buffer: exactly ``out_shape`` of ``out_dtype`` (anything else is refused)."""
        array = np.ascontiguousarray(array)
        if array.dtype != np.uint8:
            raise InputError(f"{self._aipbench_source[0]}: images for the defense must be uint8, not {array.dtype}")
        nbytes, fresh = int(np.prod(out_shape)) * np.dtype(out_dtype).itemsize, []
        source, target = self._buffer("in", array.nbytes, fresh), self._buffer("out", nbytes, fresh)
        np.frombuffer(source, np.uint8, count=array.nbytes)[:] = array.reshape(-1)
        reply = self._request({**message, "in": list(array.shape), "out": {"dtype": out_dtype, "shape": list(out_shape)},
                               "new": [n for n, _ in fresh]}, what=what, fds=tuple(fd for _, fd in fresh))
        if reply.get("shape") != list(out_shape):
            self.close()
            raise InputError(f"{self._aipbench_source[0]}: the defense's process answered {what} with a malformed reply")
        return np.frombuffer(target, np.uint8, count=nbytes).view(out_dtype).reshape(out_shape).copy()

    def _pickled(self, fields: dict) -> bytes:
        """The harness's own objects (a context's fields) for the worker to unpickle; the data set's image
        files go by the paths the worker sees them at, not as copies."""
        persistent = self._persistent

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                return persistent.get(id(obj))

        buffer = io.BytesIO()
        Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(fields)
        return buffer.getvalue()

    def _request(self, message: dict, *, what: str, timeout_what: str | None = None, payload: bytes | None = None,
                 fds: tuple[int, ...] = (), receive: int | None = None):
        """Send a request (and its ``payload``), read the JSON reply (and, with ``receive``, the bytes after it,
        at most that many), all before the call's time limit. Any failure of the conversation closes the worker."""
        file, cls = self._aipbench_source[:2]
        label = timeout_what or f"{cls}.{what}"
        if self._child is None or self._closed:
            raise InputError(f"{file}: the defense's process is gone (an earlier call failed)")
        channel, deadline = self._child.channel, time.monotonic() + self._limit()
        try:
            channel.send(json.dumps({**message, "payload": payload is not None}).encode(), deadline=deadline, fds=fds)
            if payload is not None:
                channel.send(payload, deadline=deadline)
            reply = json.loads(channel.recv(max_bytes=_MAX_REPLY, deadline=deadline), parse_constant=_no_constant)
            if not isinstance(reply, dict):
                raise ValueError("not a JSON object")
            data = channel.recv(max_bytes=receive, deadline=deadline) if receive and "error" not in reply else None
        except ChannelTimeout:
            self.close()
            raise InputError(f"{file}: {label} ran past its time limit of {self._limit():g} s") from None
        except ChannelTooLarge as err:
            self.close()
            raise InputError(f"{file}: the defense's process sent {err} during {label}") from None
        except (ChannelClosed, OSError):
            status = self._child.exit_status(timeout=2)
            self.close()
            hit = limit_hit(self._limits, status=status)
            raise InputError(f"{file}: the defense's process " + (f"ran into {hit}" if hit else
                             f"ended during {label} (exit status {status})")) from None
        except ValueError:
            self.close()
            raise InputError(f"{file}: the defense's process sent an unreadable reply during {label}") from None
        except BaseException:  # the harness itself is stopped
            self.close()
            raise
        if "error" in reply:
            raise InputError(self._error_line(reply))
        return reply if receive is None else (reply, data)

    def _error_line(self, reply: dict) -> str:
        """The worker's error as one line, its traceback copied to a report file of ours, named in the line."""
        message = str(reply["error"])[:MAX_MESSAGE]
        hit = limit_hit(self._limits, error=message)
        if hit:
            message = f"{message} — it ran into {hit}"
        trace = reply.get("traceback")
        if isinstance(trace, str) and trace:
            path = write_report(trace[-20000:], name=f"aipbench-defense-traceback-{Path(self._aipbench_source[0]).parent.name}.txt")
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
