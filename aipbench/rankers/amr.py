"""AMR (Eq. 10–11): a VBPR trained with adversarial perturbations of its embeddings; the same model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from aipbench.protocol.rankers import AMRConfig
from aipbench.rankers.checkpoint import own_state, save_state, write_history
from aipbench.rankers.replicas import replica_artifact
from aipbench.rankers.spec import BuildInputs, RankerSpec, register_ranker
from aipbench.rankers.vbpr import VBPR, fit_vbpr

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset

__all__ = ["AMR", "train_amr"]


class AMR(VBPR):
    """VBPR's parameters and score; trained by ``train_amr`` (``rankers.amr``)."""

    name = "amr"


def train_amr(dataset: "Dataset", extractor, features: torch.Tensor, cfg: "AMRConfig", *,
              vbpr_state: dict | None = None, device: str = "cpu", progress: bool = False):
    """AMR: VBPR trained with adversarial perturbations of the embeddings (Eq. 10–11); starts from the
    trained VBPR when the protocol says ``init = "vbpr"``."""
    gen = torch.Generator().manual_seed(cfg.train.seed)
    model = AMR.from_config(cfg, extractor=extractor, catalog_features=features, n_users=dataset.n_users, generator=gen)
    if cfg.init == "vbpr":
        if vbpr_state is None:
            raise ValueError("AMR with init = 'vbpr' needs the trained VBPR's state")
        model.load_state_dict(vbpr_state)
    history = fit_vbpr(model.to(device), dataset, train=cfg.train, name="AMR", adversarial=cfg, device=device, progress=progress)
    return model.eval(), history


def _build(inputs: BuildInputs, section: AMRConfig, out: Path) -> None:
    extractor, vbpr_state = inputs.extractor(), None
    if section.init == "vbpr":  # the VBPR of the same replica
        vbpr = inputs.state(replica_artifact("vbpr", inputs.replica), "vbpr.pt")
        vbpr_state = {**vbpr, **{f"extractor.{k}": v for k, v in extractor.state_dict().items()}}
    model, history = train_amr(inputs.dataset(), extractor, inputs.features(), section, vbpr_state=vbpr_state,
                               device=inputs.device, progress=inputs.progress)
    save_state(own_state(model), out / "amr.pt")
    write_history(history, out)


SPEC = register_ranker(RankerSpec(
    name="amr", ranker=AMR, section=AMRConfig, build=_build, files=("amr.pt", "history.json"),
    needs=("dataset", "features", "vbpr"), description="AMR (Eq. 10-11)", replicated=True, order=4))
