"""A ranker submission behind its worker (``worker.Worker``): trained there once per protocol and submission
hash (the checkpoint kept in the cache, tensors only, checked by SHA-256), rebuilt there from that checkpoint
for every evaluation, and stood for in the harness by ``SandboxedRanker`` — every user's and catalog item's
side held as tensors, new images' representations and sides asked of the worker, every score one matrix
product here. The harness never imports the submission; pickled into an attack's context, the stand-in
becomes the submission's own class rebuilt inside that attack's sandbox."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from aipbench.errors import InputError
from aipbench.harness.isolation.returns import read_checkpoint
from aipbench.harness.isolation.worker import Worker
from aipbench.rankers.base import Ranker, Side

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.pipeline.prepared import Prepared

__all__ = ["MAX_RANKER_BYTES", "SandboxedRanker", "returned_ranker", "submitted_ranker"]

MAX_RANKER_BYTES = 2 << 30  # a submitted ranker's checkpoint, and the sides of its users and items


class _ImageModel:
    """A submitted ranker's own image model as an attack's context holds it: rebuilt in the attack's sandbox."""

    def __init__(self, ranker: "SandboxedRanker") -> None:
        self.ranker = ranker

    def __reduce__(self):
        return _image_model_of, (self.ranker,)


def _image_model_of(ranker) -> nn.Module:
    return ranker.image_model


class SandboxedRanker(Ranker):
    """Stands for a submitted ranker in the harness (see the module's docstring)."""

    def __init__(self, worker: Worker, source: tuple[str, str, str, str], checkpoint: bytes, catalog: torch.Tensor,
                 users: np.ndarray, items: np.ndarray, image_model_name: str, reader: tuple) -> None:
        super().__init__(catalog)
        object.__setattr__(self, "_worker", worker)
        self._source, self._checkpoint, self._reader = source, checkpoint, reader
        self.name, self.variant, self.image_model_name = source[2], source[3], image_model_name
        self.code_folders = (Path(source[0]).parent,)  # what an attack's sandbox must read to rebuild it
        self._users = Side(torch.from_numpy(users[:, :-1]), torch.from_numpy(users[:, -1]))
        self._items = Side(torch.from_numpy(items[:, :-1]), torch.from_numpy(items[:, -1]))

    @property
    def n_users(self) -> int:
        return int(self._users.vec.shape[0])

    @property
    def checkpoint_sha256(self) -> str:
        return hashlib.sha256(self._checkpoint).hexdigest()

    @classmethod
    def load(cls, artifacts, *, length=None, replica=None):  # pragma: no cover - built by submitted_ranker
        raise TypeError("a submitted ranker is loaded by aipbench.harness.isolation.ranker_worker.submitted_ranker")

    @property
    def image_model(self):
        """Φ (the protocol's, the harness's own) where the ranker scores Φ's features; else its own network,
        which only an attack's sandbox rebuilds."""
        return self._reader[0] if self.image_model_name == "extractor" else _ImageModel(self)

    def user_side(self, users: torch.Tensor) -> Side:
        users = users.cpu()
        return Side(self._users.vec[users], self._users.bias[users])

    def catalog_side(self, items: torch.Tensor | None = None) -> Side:
        if items is None:
            return self._items
        return Side(self._items.vec[items.cpu()], self._items.bias[items.cpu()])

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The worker's representation of uint8 images (float images are differentiated only in a sandbox)."""
        x = images.detach().cpu().numpy()
        if x.dtype != np.uint8:
            raise InputError(f"{self._source[0]}: the harness scores a submitted ranker on uint8 images only")
        out = self._worker.exchange({"op": "encode"}, x, out_dtype="float32", out_shape=(len(x), self.catalog.shape[1]),
                                    what=f"{self._source[1]}.encode")
        return self._finite(torch.from_numpy(out), "encode")

    def gradient_norms(self, images: np.ndarray) -> np.ndarray:
        """``harness.checks.gradient_norms`` of uint8 ``images``, computed in the worker through the ranker's own
        class (its gradients exist only there)."""
        x = np.ascontiguousarray(images)
        if x.dtype != np.uint8:
            raise InputError(f"{self._source[0]}: the harness scores a submitted ranker on uint8 images only")
        return self._worker.exchange({"op": "gradient_norms"}, x, out_dtype="float64", out_shape=(len(x),),
                                     what=f"{self._source[1]}'s gradients")

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        if items is not None:
            return self.catalog_side(items)
        x = features.detach().cpu().float().numpy()
        out = self._worker.exchange({"op": "item_side"}, x, out_dtype="float32",
                                    out_shape=(len(x), self._items.vec.shape[1] + 1), what=f"{self._source[1]}.item_side")
        side = torch.from_numpy(out)
        self._finite(side, "item_side")
        return Side(side[:, :-1], side[:, -1])

    def _finite(self, values: torch.Tensor, what: str) -> torch.Tensor:
        if not bool(torch.isfinite(values).all()):
            raise InputError(f"{self._source[0]}: {self._source[1]}.{what} gave values that are not all finite "
                             "(NaN or infinity): its scores would be too")
        return values

    def __deepcopy__(self, memo):  # one worker holds the ranker
        return self

    def __reduce__(self):  # into an attack's context: the submission's own class, rebuilt in that sandbox
        from aipbench.harness.ranker_submission import restore_ranker

        return restore_ranker, (self._source, self._checkpoint, self._reader)

    def close(self) -> None:
        self._worker.close()


def _cached(folder, log: Callable[[str], None]) -> bytes | None:
    """The checkpoint an earlier evaluation trained, if its file still has the SHA-256 recorded beside it."""
    from aipbench.paths import read_regular

    path, meta = folder / "ranker.pt", folder / "ranker.json"
    if not path.is_file() or not meta.is_file():
        return None
    try:
        data = read_regular(path, max_bytes=MAX_RANKER_BYTES)
        if hashlib.sha256(data).hexdigest() != json.loads(meta.read_text())["sha256"]:
            raise ValueError("its SHA-256 differs from the one recorded when it was trained")
        return data
    except (OSError, ValueError, KeyError, InputError) as err:
        log(f"{path}: not reused ({str(err)[:120]}); training again")
        return None


def submitted_ranker(sub: "Submission", sub_hash: str, prepared: "Prepared", *, sandboxed: bool, time_limit: float,
                     log: Callable[[str], None] = print) -> tuple[SandboxedRanker, dict]:
    """The submission's ranker in its worker — trained there (and kept in the cache) unless an earlier
    evaluation did — with what its training recorded ({"sha256", "trained_s", "reused"})."""
    from aipbench.pipeline.loaders import load_extractor, load_features

    file, cls, name = str(sub.entry_file.resolve()), sub.entry_class, sub.submission.name
    instance = f"{name}-{sub_hash[:12]}"  # its own attack target: another version of it is another ranker
    dataset, protocol = prepared.dataset, prepared.protocol
    folder = prepared.store.root / "submitted" / instance
    worker = Worker("ranker", sub.entry_file, sandboxed=sandboxed, limit=lambda: time_limit, dataset=dataset)
    try:
        worker.request({"op": "init", "file": file, "class": cls, "name": name, "threads": torch.get_num_threads(),
                        "precision": prepared.precision}, what=f"importing {cls}")
        extractor, features = load_extractor(prepared.store), load_features(prepared.store)
        data, trained_s = _cached(folder, log), 0.0
        reused = data is not None
        if data is None:
            log(f"{name}: training {cls} (its train(context), in its sandbox)")
            start = time.perf_counter()
            fields = {"dataset": dataset, "feature_extractor": extractor, "features": features, "protocol": protocol,
                      "seed": protocol.data.seed, "device": "cpu"}
            from aipbench.progress import LiveBar

            bar = LiveBar(f"{name}: training")  # from the code's context.progress
            try:
                _, data = worker.request({"op": "train"}, payload=worker.pickled(fields),
                                         what=f"{cls}.train (training)", receive=MAX_RANKER_BYTES, progress=bar)
            finally:
                bar.close()
            trained_s = time.perf_counter() - start
        ranker = _served(worker, (file, cls, name, instance), data, f"{file}: the ranker {cls} trained",
                         dataset=dataset, inputs=(extractor, features, protocol))
        if not reused:  # kept only once it loads and scores as a ranker must
            _keep(folder, data, trained_s)
    except BaseException:
        worker.close()
        raise
    return ranker, {"sha256": hashlib.sha256(data).hexdigest(), "trained_s": trained_s, "reused": reused}


def _served(worker: Worker, source: tuple[str, str, str, str], data: bytes, what: str, *, dataset,
            inputs: tuple) -> SandboxedRanker:
    """The ranker of checkpoint ``data`` rebuilt in ``worker`` by its own class (``source``: file, class, family,
    instance), its catalog and every side checked, stood for here."""
    file, cls, name, instance = source
    payload = read_checkpoint(data, source=what, cap=MAX_RANKER_BYTES)
    catalog = payload["catalog"].float()
    if catalog.ndim != 2 or catalog.shape[0] != dataset.n_items:
        raise InputError(f"{what}: its catalog representation has shape {tuple(catalog.shape)}; one row per "
                         f"catalog item ({dataset.n_items}) of one vector each")
    extractor, features, protocol = inputs
    reply = worker.request({"op": "load", "instance": instance}, what=f"{cls}.load",
                           payload=worker.pickled({"checkpoint": data, "extractor": extractor, "features": features,
                                                   "protocol": protocol}))
    users, items = _sides(worker, source=what, cls=cls, n_users=dataset.n_users, n_items=dataset.n_items)
    image_model_name = "extractor" if reply.get("image_model_name") == "extractor" else "own"
    return SandboxedRanker(worker, source, data, catalog, users, items, image_model_name, inputs)


def returned_ranker(sub: "Submission", payload: dict, prepared: "Prepared", *, sandboxed: bool, time_limit: float,
                    log: Callable[[str], None] = print) -> SandboxedRanker:
    """A training defense's ranker of its own family (a class of its folder, ``payload``: what its worker
    returned) served by a ranker worker of its own, as a ranker submission is: never imported here."""
    from aipbench.pipeline.loaders import load_extractor, load_features
    from aipbench.results.document import IDENTIFIER

    folder, family, cls = Path(sub.folder).resolve(), payload.get("family"), payload.get("class")
    file = Path(str(payload.get("file", ""))).resolve()
    if not (isinstance(family, str) and IDENTIFIER.match(family) and isinstance(cls, str) and cls.isidentifier()):
        raise InputError(f"{sub.entry_file}: train() returned a ranker whose name or class is not a plain name")
    if not file.is_relative_to(folder) or not file.is_file():
        raise InputError(f"{sub.entry_file}: train() returned a ranker whose class is not defined in the defense's "
                         "own folder")
    buffer = io.BytesIO()
    torch.save({"family": family, "state": payload["state"], "catalog": payload["catalog"]}, buffer)
    data = buffer.getvalue()
    instance = f"{family}-{hashlib.sha256(data).hexdigest()[:12]}"
    log(f"{sub.submission.name}: serving its {cls} ({family}, a family of its own) from its sandboxed worker")
    worker = Worker("ranker", file, sandboxed=sandboxed, limit=lambda: time_limit, dataset=prepared.dataset)
    try:
        worker.request({"op": "init", "file": str(file), "class": cls, "name": family, "train": False,
                        "threads": torch.get_num_threads(), "precision": prepared.precision}, what=f"importing {cls}")
        return _served(worker, (str(file), cls, family, instance), data, f"{file}: the ranker {cls} trained",
                       dataset=prepared.dataset, inputs=(load_extractor(prepared.store), load_features(prepared.store),
                                                         prepared.protocol))
    except BaseException:
        worker.close()
        raise


def _sides(worker: Worker, *, source: str, cls: str, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Every user's and catalog item's side, checked: one row each, one vector length, finite."""
    _, data = worker.request({"op": "sides"}, what=f"{cls}.user_side and catalog_side", receive=MAX_RANKER_BYTES)
    try:
        sides = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        users, items = sides["users"].numpy(), sides["items"].numpy()
    except Exception as err:  # noqa: BLE001 — whatever the worker sent
        raise InputError(f"{source}: its sides came back unreadable ({type(err).__name__})") from None
    if users.ndim != 2 or items.ndim != 2 or users.shape != (n_users, users.shape[1]) \
            or items.shape != (n_items, users.shape[1]) or users.dtype != np.float32 or items.dtype != np.float32:
        raise InputError(f"{source}: its user side {users.shape} and catalog side {items.shape} are not one row per user "
                         f"({n_users}) and per catalog item ({n_items}) of one vector length (and a bias): not a "
                         "bilinear ranker aipbench can score")
    if not (np.isfinite(users).all() and np.isfinite(items).all()):
        raise InputError(f"{source}: its user or item sides are not all finite (NaN or infinity): its scores would be too")
    return users, items


def _keep(folder, data: bytes, seconds: float) -> None:
    """The trained checkpoint in the cache, with its SHA-256 (atomically: a file then its record)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".ranker.pt.tmp{os.getpid()}"
    tmp.write_bytes(data)
    tmp.replace(folder / "ranker.pt")
    (folder / "ranker.json").write_text(json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "trained_s": seconds}))
