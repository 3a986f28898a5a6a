"""Defense code in a worker process (``worker.Worker``) held to the rules of attack code: images and scores
cross through the harness's sealed memory files; a trained ranker comes back as a tensors-only checkpoint,
size-checked before it is read, that aipbench's own code rebuilds. Nothing the worker returns is unpickled by
the harness: the fitted state a detector or transform hands to adaptive attacks travels as opaque bytes,
unpickled only inside those attacks' own sandboxes."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from aipbench.errors import InputError
from aipbench.harness.isolation.trust import check_in_process
from aipbench.harness.isolation.worker import Worker, close_all
from aipbench.progress import LiveBar

__all__ = ["SandboxedDefense", "close_all", "open_defense"]


@contextlib.contextmanager
def _bar(what: str):
    """A live bar for one long call (``fit``, ``train``), fed by the code's ``context.progress``."""
    bar = LiveBar(what)
    try:
        yield bar
    finally:
        bar.close()

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
        self._worker = Worker("defense", path, sandboxed=sandboxed, limit=lambda: _LIMIT["seconds"], dataset=dataset)
        try:
            self._worker.request({"op": "init", "file": str(path), "class": class_name, "params": params,
                                  "threads": torch.get_num_threads(), "precision": precision},
                                 what=f"importing {class_name}")
        except BaseException:  # a defense that cannot even start leaves no process or folder behind
            self._worker.close()
            raise

    # -- what the harness calls --------------------------------------------------------------------------------

    def transform(self, images):
        """The worker's ``checked_transform`` of a uint8 tensor (checked again by the caller)."""
        import torch

        array = self._images(images)
        return torch.from_numpy(self._worker.exchange({"op": "transform"}, array, out_dtype="uint8",
                                                      out_shape=array.shape, what=self._what("transform")))

    def score(self, images):
        """The worker's detector scores of a uint8 tensor, float64."""
        import torch

        array = self._images(images)
        return torch.from_numpy(self._worker.exchange({"op": "score", "device": str(images.device)}, array,
                                                      out_dtype="float64", out_shape=(len(array),),
                                                      what=self._what("score")))

    def fit(self, context) -> None:
        """Fit the detector on ``context``'s fields (the harness has checked them: no cold item among them)."""
        with _bar(self._what("fit")) as bar:
            self._worker.request({"op": "fit"}, payload=self._worker.pickled(context._fields), what=self._what("fit"),
                                 progress=bar)

    def state_sha256(self) -> str | None:
        """The fitted detector's state digest (``hashing.state_sha256``), if it is a torch module."""
        digest = self._worker.request({"op": "digest"}, what=self._what("state"))["sha256"]
        if digest is not None and not (isinstance(digest, str) and len(digest) == 64
                                       and all(c in "0123456789abcdef" for c in digest)):
            raise InputError(f"{self._aipbench_source[0]}: the defense's process sent a malformed state digest")
        return digest

    def train(self, context) -> dict:
        """Run the training defense; its ranker comes back as ``{"family", "state", "catalog"}`` (tensors only),
        refused before it is read if it is larger than a ranker of this protocol can be."""
        from aipbench.harness.isolation.returns import checkpoint_cap, read_checkpoint

        cap = checkpoint_cap(context.undefended)
        with _bar(self._what("train")) as bar:
            _, data = self._worker.request({"op": "train"}, payload=self._worker.pickled(context._fields),
                                           what=self._what("train"), receive=cap, progress=bar)
        file, cls = self._aipbench_source[:2]
        return read_checkpoint(data, source=f"{file}: the ranker {cls}.train returned", cap=cap)

    def __getattr__(self, name: str) -> Any:
        """A plain attribute of the defense (a number, a string), e.g. a detector's ``training_items``."""
        if name.startswith("_") or name in ("transform", "score", "fit", "train"):
            raise AttributeError(name)
        found = self._worker.request({"op": "attr", "name": name}, what=self._what(f"reading {name}"))
        if not found.get("found"):
            raise AttributeError(name)
        return found.get("value")

    def __deepcopy__(self, memo):  # one worker holds the defense: copies of a wrapped ranker share it
        return self

    def __reduce__(self):  # into an attack's context: the class from its file, with the worker's state
        from aipbench.defenses.transforms import restore_state

        _, data = self._worker.request({"op": "state"}, what=self._what("state"), receive=_MAX_STATE)
        return restore_state, (self._aipbench_source, data)

    def close(self) -> None:
        """Stop the worker and its whole process group."""
        self._worker.close()

    def _what(self, call: str) -> str:
        return f"{self._aipbench_source[1]}.{call}" if not call.startswith("reading") else call

    def _images(self, images):
        array = images.detach().cpu().numpy()
        if array.dtype.name != "uint8":
            raise InputError(f"{self._aipbench_source[0]}: images for the defense must be uint8, not {array.dtype}")
        return array
