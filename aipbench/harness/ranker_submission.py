"""The contract of a ranker submission (``kind = "ranker"``): a module of the submission's folder defining a
``Ranker`` subclass (the ``entry``: ``encode``, ``item_side``, ``user_side``, ``n_users``, ``load``) and
``train(context) -> Ranker``. What ``train`` gets (``RankerTrainingContext``), how its trained state comes back
(a tensors-only checkpoint read by its own class's ``load`` through a ``CheckpointReader``), and how it is
rebuilt from that checkpoint — only ever inside a sandbox (its worker, or an attack's child)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from aipbench.defenses.handover import Handover
from aipbench.errors import InputError

__all__ = ["CHECKPOINT_FILE", "CheckpointReader", "RankerTrainingContext", "checkpoint_bytes", "import_ranker",
           "restore_ranker"]

CHECKPOINT_FILE = "ranker.pt"  # what ``artifacts.state(name, CHECKPOINT_FILE)`` reads in a submission's ``load``


class RankerTrainingContext(Handover):
    """The hand-over to a ranker submission's ``train``: the platform's ``dataset`` (its training interactions
    and catalog images; no cold item among the training data), the protocol's pre-trained image model Φ
    (``feature_extractor``) and its ``features`` of every catalog image, the ``protocol``, the ``seed`` and the
    ``device``, and ``progress(done, total)`` to report how far training is."""

    FIELDS = ("dataset", "feature_extractor", "features", "protocol", "seed", "device")


class CheckpointReader:
    """The ``ArtifactReader`` a submitted ranker's ``load`` reads: its trained ``state`` (whatever artifact and
    file it asks for), its catalog representation as an ``array``, the protocol, Φ and Φ's features."""

    def __init__(self, protocol, state: dict, catalog, extractor, features) -> None:
        self.protocol, self._state, self._catalog = protocol, state, catalog
        self._extractor, self._features = extractor, features

    def state(self, artifact: str, file: str) -> dict:
        return self._state

    def array(self, artifact: str, file: str):
        return self._catalog.numpy()

    def path(self, artifact: str, file: str) -> str:  # what a loader's error names
        return "the submitted ranker's checkpoint"

    def extractor(self):
        return self._extractor

    def features(self):
        return self._features


def import_ranker(file: str, class_name: str, *, needs_train: bool = True) -> tuple[type, Any]:
    """The submission's ranker class and its module's ``train`` (inside a sandbox only; a training defense's
    ranker of its own family, or a ranker rebuilt from its checkpoint, needs no ``train``)."""
    from aipbench.rankers.base import Ranker
    from aipbench.registry import import_module_from_file

    path = Path(file)
    module = import_module_from_file(path, module=f"aipbench_ranker_{path.parent.name.replace('-', '_')}")
    cls, train = getattr(module, class_name, None), getattr(module, "train", None)
    if not (isinstance(cls, type) and issubclass(cls, Ranker)):
        raise InputError(f"{file}: {class_name} must be a subclass of aipbench.rankers.base.Ranker (encode, "
                         "item_side, user_side, n_users, load: every score one matrix product)")
    if needs_train and not callable(train):
        raise InputError(f"{file}: defines no train(context) -> {class_name}")
    return cls, train


def checkpoint_bytes(ranker) -> bytes:
    """A trained ranker as tensors only: ``{"family", "state", "catalog"}`` (``torch.save``)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"family": ranker.name, "state": ranker.state_dict(), "catalog": ranker.catalog.detach().cpu()}, buffer)
    return buffer.getvalue()


def restore_ranker(source: tuple[str, str, str, str], checkpoint: bytes, inputs: tuple):
    """The submitted ranker rebuilt from its checkpoint by its own class (``source``: its file, class, family
    name and instance name; ``inputs``: Φ, Φ's features and the protocol its ``load`` reads) — in a sandbox: an
    attack's child unpickling its context, or the ranker's worker."""
    import torch

    file, class_name, name, instance = source
    extractor, features, protocol = inputs
    cls, _ = import_ranker(file, class_name, needs_train=False)
    payload = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)
    ranker = cls.load(CheckpointReader(protocol, payload["state"], payload["catalog"], extractor, features))
    ranker.catalog = payload["catalog"].float()
    ranker.name, ranker.variant = name, instance
    return ranker.eval().requires_grad_(False)
