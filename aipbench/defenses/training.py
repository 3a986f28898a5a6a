"""Training defenses: a trainer that produces a defended ranker in place of an undefended one (AMR,
paper §7.1, is the reference: VBPR trained with adversarial perturbations of its embeddings)."""

from __future__ import annotations

from typing import Any

from aipbench.defenses.handover import Handover

__all__ = ["TrainingContext", "checked_ranker", "rebuild_ranker", "train_defended", "trained_ranker"]


class TrainingContext(Handover):
    """The hand-over to ``defense.train``: the platform's own data (``dataset`` — its training
    interactions, catalog images), Φ and its cached ``features``, the ``protocol`` (its ranker settings),
    the ``undefended`` ranker being replaced, the protocol's seed and the device."""

    FIELDS = ("dataset", "feature_extractor", "features", "protocol", "undefended", "seed", "device")


def _source(defense) -> str:
    return getattr(defense, "_aipbench_source", ("the training defense",))[0]


def trained_ranker(defense, returned: Any):
    """What ``train`` returned, as a ranker: an aipbench ``Ranker`` (or a tuple starting with one)."""
    from aipbench.errors import InputError
    from aipbench.rankers.base import Ranker

    ranker = returned[0] if isinstance(returned, tuple) and returned else returned  # trainers may add a history
    if not isinstance(ranker, Ranker):
        raise InputError(f"{_source(defense)}: train() must return an aipbench Ranker, got {type(ranker).__name__}")
    return ranker


class _Returned:
    """The store's artifacts, but the ranker's checkpoint and catalog are the ones a worker returned."""

    def __init__(self, artifacts, state: dict, catalog) -> None:
        self._artifacts, self._state, self._catalog = artifacts, state, catalog
        self.protocol = artifacts.protocol

    def state(self, artifact: str, file: str) -> dict:
        return self._state

    def array(self, artifact: str, file: str):
        return self._catalog.numpy()

    def path(self, artifact: str, file: str) -> str:  # what a loader's error names: the returned checkpoint
        return "the returned checkpoint"

    def __getattr__(self, name: str):
        return getattr(self._artifacts, name)


def rebuild_ranker(defense, store, payload: dict, *, n_items: int, own_family=None):
    """A ranker trained in a worker process, rebuilt here by aipbench's own code for its family from the
    tensors the worker returned (never an object of the submission's making): one of aipbench's rankers,
    shaped as the protocol's section for that family says; or a family of the defense's own, which
    ``own_family(payload)`` serves from a sandboxed worker (as a ranker submission is served)."""
    import torch

    from aipbench.errors import InputError, one_line
    from aipbench.pipeline.loaders import StoreArtifacts
    from aipbench.rankers.registry import ranker_class, ranker_names

    family, state, catalog = payload["family"], payload["state"], payload["catalog"]
    if "class" in payload and own_family is not None:
        return own_family(payload)
    if family not in ranker_names() or not isinstance(state, dict) or not isinstance(catalog, torch.Tensor):
        raise InputError(f"{_source(defense)}: train() must return a ranker of one of aipbench's families "
                         f"({', '.join(ranker_names())}), got {str(family)[:40]!r}")
    if catalog.ndim != 2 or catalog.shape[0] != n_items:
        raise InputError(f"{_source(defense)}: train() returned a {family} ranker whose catalog has shape "
                         f"{tuple(catalog.shape)}; the protocol's data set has {n_items} items")
    try:
        ranker = ranker_class(family).load(_Returned(StoreArtifacts(store), state, catalog))
        ranker.catalog = catalog.float()
    except Exception as err:  # noqa: BLE001 — a checkpoint of the wrong shape, a missing tensor
        raise InputError(f"{_source(defense)}: train() returned a {family} ranker that does not fit the protocol's "
                         f"[rankers.{family}] ({one_line(err)})") from None
    return ranker


def checked_ranker(defense, ranker, *, n_users: int, n_items: int):
    """A trained ranker, if it scores the protocol's users and catalog items with finite weights."""
    import torch

    from aipbench.errors import InputError

    if ranker.n_users != n_users or ranker.catalog.shape[0] != n_items:
        raise InputError(f"{_source(defense)}: train() returned a ranker of {ranker.n_users} users and "
                         f"{ranker.catalog.shape[0]} items; the protocol's data set has {n_users} and {n_items}")
    for name, t in [*ranker.state_dict().items(), ("catalog", ranker.catalog)]:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InputError(f"{_source(defense)}: train() returned a ranker whose weights are not all finite "
                             f"(NaN or infinity in {name!r})")
    return ranker


def train_defended(defense, *, store, dataset, undefended, device: str = "cpu", own_family=None):
    """Run ``defense.train`` (with torch's deterministic kernels, as ``aipbench prepare`` trains) and
    return its ranker frozen on ``device``; it must be an aipbench ``Ranker``. A defense in a worker
    process (``harness.isolation.defense_worker``) trains there and its ranker is rebuilt here (a family of
    its own by ``own_family``, see ``rebuild_ranker``)."""
    from aipbench.defenses.guard import call_defense
    from aipbench.pipeline.loaders import load_extractor, load_features
    from aipbench.defenses.transforms import in_worker
    from aipbench.pipeline.store import deterministic_torch

    context = TrainingContext(dataset=dataset, feature_extractor=load_extractor(store), features=load_features(store),
                              protocol=store.protocol, undefended=undefended, seed=store.protocol.data.seed,
                              device=device)
    if in_worker(defense):  # its ranker comes back as tensors
        ranker = rebuild_ranker(defense, store, call_defense(defense, "train", context), n_items=dataset.n_items,
                                own_family=own_family)
    else:
        with deterministic_torch():
            ranker = trained_ranker(defense, call_defense(defense, "train", context))
    checked_ranker(defense, ranker, n_users=dataset.n_users, n_items=dataset.n_items)
    if hasattr(ranker, "close"):  # served by its worker: scored where it lives, on the CPU
        return ranker
    return ranker.to(device).eval().requires_grad_(False)
