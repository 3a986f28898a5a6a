"""Defense code in a worker process held to the rules of attack code: the bubblewrap sandbox (or, with
``--unsandboxed``, a plain child), the artifact cache hidden, nothing writable but a private scratch folder,
killed with the harness and at the time limit. The harness talks to it in one-line JSON requests; images
and scores cross through two files in the worker's scratch folder (in shared memory where there is one),
mapped by both sides and reused from call to call, described by shape and dtype in the JSON; a trained
ranker as a tensors-only checkpoint (``weights_only=True``) that the harness rebuilds with its own ranker
code. Nothing the worker returns is ever unpickled by the harness: the fitted state a detector or transform
hands to adaptive attacks travels as opaque bytes, unpickled only inside those attacks' own sandboxes."""

from __future__ import annotations

import atexit
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from aipbench.errors import MAX_MESSAGE, InputError, one_line
from aipbench.harness.scratch import bind_image_file, kill_group, open_child_file, write_child_file

__all__ = ["SandboxedDefense", "close_all", "open_defense"]

_LIVE: set["SandboxedDefense"] = set()
_MAX_REPLY = 1 << 16  # bytes of one JSON reply


def open_defense(entry_file, class_name: str, params: dict | None = None, *, isolation: str = "sandbox",
                 dataset=None, precision: str | None = None):
    """The defense class of a submission, instantiated with its level ``params``: in this process for
    ``isolation="none"`` (trusted reference code), else behind a worker process (``SandboxedDefense``).
    ``dataset``: a training defense's data set, whose image files the worker may read."""
    from aipbench.defenses.transforms import load_defense

    if isolation == "none":
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

        from multiprocessing.connection import Connection

        from aipbench.defenses.guard import _LIMIT
        from aipbench.harness.bwrap import bwrap_args, sandbox_problem
        from aipbench.harness.scratch import child_limits, remove_orphaned_scratch, scratch_root
        from aipbench.paths import aipbench_home

        path = Path(entry_file).resolve()
        self._aipbench_source = (str(path), class_name, dict(params))
        self._proc, self._conn, self._buffers, self._scratch = None, None, {}, None
        if sandboxed and (problem := sandbox_problem()):
            raise InputError(f"{path}: code submissions run in a bubblewrap sandbox, which cannot run here "
                             f"({problem}); install bubblewrap, or pass --unsandboxed to run it without one")
        remove_orphaned_scratch()
        self._scratch = Path(tempfile.mkdtemp(prefix=f"aipbench-defense-{os.getpid()}-", dir=scratch_root()))
        self._limit = lambda: _LIMIT["seconds"]
        try:
            self._persistent, binds = _dataset_files(dataset, sandboxed)
            mine, theirs = socket.socketpair()
            child = [sys.executable, "-m", "aipbench.harness.defense_child", str(self._scratch), str(theirs.fileno())]
            env = {k: v for k, v in os.environ.items() if k != "AIPBENCH_HOME"}
            env.update({"PYTHONHASHSEED": "0", "HOME": str(self._scratch), "TMPDIR": str(self._scratch)})
            if sandboxed:
                child = bwrap_args(scratch=self._scratch, workdir=path.parent, hidden=[aipbench_home()], binds=binds,
                                   env=env) + child
            with open(self._scratch / "stdout.txt", "wb") as out, open(self._scratch / "stderr.txt", "wb") as err:
                self._proc = subprocess.Popen(child, env=env, cwd=path.parent, stdin=subprocess.DEVNULL, stdout=out,
                                              stderr=err, start_new_session=True, preexec_fn=child_limits,
                                              pass_fds=(theirs.fileno(),))
            theirs.close()
            self._conn = Connection(mine.detach())
            _LIVE.add(self)
            self._request({"op": "init", "file": str(path), "class": class_name, "params": params,
                           "threads": torch.get_num_threads(), "precision": precision},
                          what=f"importing {class_name}", timeout_what=f"importing {class_name}")
        except BaseException:  # a defense that cannot even start leaves no process or folder behind
            self.close()
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
        self._request({"op": "fit", "context": self._put_object(context._fields)}, what="fit")

    def state_sha256(self) -> str | None:
        """The fitted detector's state digest (``hashing.state_sha256``), if it is a torch module."""
        return self._request({"op": "digest"}, what="state")["sha256"]

    def train(self, context) -> dict:
        """Run the training defense; its ranker comes back as ``{"family", "state", "catalog"}`` (tensors only)."""
        import torch

        self._request({"op": "train", "context": self._put_object(context._fields)}, what="train")
        try:
            with open_child_file(self._scratch / "ranker.pt") as fh:
                payload = torch.load(io.BytesIO(fh.read()), map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 — whatever the worker left there
            raise InputError(f"{self._aipbench_source[0]}: the trained ranker could not be read ({one_line(err)})") from None
        finally:
            (self._scratch / "ranker.pt").unlink(missing_ok=True)
        if not isinstance(payload, dict) or set(payload) != {"family", "state", "catalog"}:
            raise InputError(f"{self._aipbench_source[0]}: the trained ranker came back malformed")
        return payload

    def __getattr__(self, name: str) -> Any:
        """A plain attribute of the defense (a number, a string), e.g. a detector's ``training_items``."""
        if name.startswith("_") or name in ("transform", "score", "fit", "train"):
            raise AttributeError(name)
        found = self._request({"op": "attr", "name": name}, what=f"reading {name}")
        if not found["found"]:
            raise AttributeError(name)
        return found["value"]

    def __deepcopy__(self, memo):  # one worker holds the defense: copies of a wrapped ranker share it
        return self

    def __reduce__(self):  # into an attack's context: the class from its file, with the worker's state
        from aipbench.defenses.transforms import restore_state

        self._request({"op": "state"}, what="state")
        try:
            with open_child_file(self._scratch / "state.pkl") as fh:
                data = fh.read()
        except OSError as err:
            raise InputError(f"{self._aipbench_source[0]}: the defense's state could not be read ({one_line(err)})") from None
        finally:
            (self._scratch / "state.pkl").unlink(missing_ok=True)
        return restore_state, (self._aipbench_source, data)

    def close(self) -> None:
        """Stop the worker and its whole process group; remove its scratch folder."""
        _LIVE.discard(self)
        self._buffers = {}
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            kill_group(self._proc)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    # -- the conversation -----------------------------------------------------------------------------------------

    def _buffer(self, name: str, nbytes: int) -> np.memmap:
        """A file in the scratch folder mapped here, kept from call to call (grown when too small): images
        cross through it without fresh pages — or a pickle — each time."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < nbytes:
            write_child_file(self._scratch / name, size=max(nbytes, 1))  # never through a link the worker made
            buffer = self._buffers[name] = np.memmap(self._scratch / name, dtype=np.uint8, mode="r+",
                                                     shape=(max(nbytes, 1),))
        return buffer

    def _exchange(self, message: dict, array: np.ndarray, out_dtype: str, out_shape: tuple, *, what: str) -> np.ndarray:
        """Send ``array`` through the input buffer, run the request, and copy out the answer the worker left
        in the output buffer: exactly ``out_shape`` of ``out_dtype`` (anything else is refused)."""
        array = np.ascontiguousarray(array)
        if array.dtype != np.uint8:
            raise InputError(f"{self._aipbench_source[0]}: images for the defense must be uint8, not {array.dtype}")
        nbytes = int(np.prod(out_shape)) * np.dtype(out_dtype).itemsize
        source = self._buffer("in.buf", array.nbytes)
        source[: array.nbytes] = array.reshape(-1)
        self._buffer("out.buf", nbytes)
        reply = self._request({**message, "in": {"file": "in.buf", "shape": list(array.shape)},
                               "out": {"file": "out.buf", "dtype": out_dtype, "shape": list(out_shape)}}, what=what)
        if reply.get("shape") != list(out_shape):
            self.close()
            raise InputError(f"{self._aipbench_source[0]}: the defense's process answered {what} with a malformed reply")
        return np.array(self._buffers["out.buf"][:nbytes].view(out_dtype).reshape(out_shape))

    def _put_object(self, fields: dict) -> str:
        """The harness's own objects (a context's fields) for the worker to unpickle; the data set's image
        files go by the paths the worker sees them at, not as copies."""
        persistent = self._persistent

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                return persistent.get(id(obj))

        buffer = io.BytesIO()
        Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(fields)
        write_child_file(self._scratch / "context.pkl", buffer.getvalue())
        return "context.pkl"

    def _request(self, message: dict, *, what: str, timeout_what: str | None = None) -> dict:
        file, cls = self._aipbench_source[0], self._aipbench_source[1]
        label = timeout_what or f"{cls}.{what}"
        if self._conn is None:
            raise InputError(f"{file}: the defense's process is gone (an earlier call failed)")
        try:
            self._conn.send_bytes(json.dumps(message).encode())
            if not self._conn.poll(self._limit()):
                self.close()
                raise InputError(f"{file}: {label} ran past its time limit of {self._limit():g} s")
            reply = json.loads(self._conn.recv_bytes(_MAX_REPLY))
        except InputError:
            raise
        except BaseException as err:  # the worker died, said what no reply is, or the harness is stopped
            try:
                status = self._proc.wait(timeout=2) if isinstance(err, Exception) else None
            except subprocess.TimeoutExpired:
                status = None
            self.close()
            if not isinstance(err, Exception):
                raise
            raise InputError(f"{file}: the defense's process ended during {label} (exit status {status})") from None
        if not isinstance(reply, dict):
            self.close()
            raise InputError(f"{file}: the defense's process sent an unreadable reply during {label}")
        if "error" in reply:
            message = str(reply["error"])[:MAX_MESSAGE]
            copied = Path(tempfile.gettempdir()) / f"aipbench-defense-traceback-{Path(file).parent.name}.txt"
            if str(self._scratch) in message:  # the traceback is in the worker's scratch: keep a copy
                try:
                    with open_child_file(self._scratch / copied.name) as fh:
                        write_child_file(copied, fh.read(1 << 20))
                except OSError:
                    pass
                message = message.replace(str(self._scratch / copied.name), str(copied))
            raise InputError(message)
        return reply


def _dataset_files(dataset, sandboxed: bool) -> tuple[dict[int, tuple], dict[str, str]]:
    """For a data set's file-backed images: id(array) → how the worker opens them (its pickle's persistent
    id), and the files to bind into its sandbox (real path → path in the worker)."""
    from aipbench.data.packed import PackedImages

    binds: dict[str, str] = {}
    images = None if dataset is None else dataset.images
    if isinstance(images, np.memmap) and images.filename:
        return {id(images): ("memmap", bind_image_file(binds, images.filename, sandboxed=sandboxed))}, binds
    if isinstance(images, PackedImages):
        return {id(images): ("packed", bind_image_file(binds, images.blob, sandboxed=sandboxed),
                             bind_image_file(binds, images.offsets_path, sandboxed=sandboxed), images.size)}, binds
    return {}, binds
