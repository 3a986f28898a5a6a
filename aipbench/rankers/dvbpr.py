"""DVBPR (Eq. 5): p(u, i) = θ_u · Φ_e(x_i), Φ_e a CNN-F trained end to end; dropout only in training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aipbench.firststage.triples import BestEpoch, TripleSampler
from aipbench.protocol.rankers import DVBPRConfig
from aipbench.rankers.base import Ranker, Side
from aipbench.rankers.checkpoint import own_state, save_state, write_history
from aipbench.rankers.fitting import catalog_auc, user_learning_rate
from aipbench.rankers.lengths import with_length
from aipbench.rankers.nets.cnnf import CNNF
from aipbench.rankers.precision import autocast
from aipbench.rankers.replicas import replica_artifact
from aipbench.rankers.spec import BuildInputs, RankerSpec, register_ranker

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset

__all__ = ["DVBPR", "train_dvbpr"]


class DVBPR(Ranker):
    """``catalog`` holds Φ_e of every catalog image (recomputed after training, in eval mode)."""

    name = "dvbpr"
    _image_attr = "cnn"
    image_model_name = "dvbpr"

    def __init__(
        self,
        cnn: CNNF,
        n_users: int,
        catalog_embeddings: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        init_std: float = 0.01,
    ) -> None:
        super().__init__(catalog_embeddings)
        self.cnn = cnn
        gen = generator or torch.Generator().manual_seed(0)
        self.theta_user = nn.Parameter(torch.randn(n_users, catalog_embeddings.shape[1], generator=gen) * init_std)

    @classmethod
    def load(cls, artifacts, *, length: int | None = None, replica: int | None = None) -> "DVBPR":
        cfg = with_length(artifacts.protocol.rankers.dvbpr, length)
        step = replica_artifact("dvbpr" if length is None else f"dvbpr-k{length}", replica)
        state = artifacts.state(step, "dvbpr.pt")
        cnn = CNNF(cfg.conv_widths, cfg.fc_widths, out_dim=cfg.embedding_length, dropout=cfg.dropout,
                   lrn=cfg.local_response_norm)
        model = cls(cnn, state["theta_user"].shape[0], torch.from_numpy(artifacts.array(step, "item_embeddings.npy")))
        model.load_state_dict(state)
        if step != "dvbpr":
            model.variant = step
        return model

    @property
    def n_users(self) -> int:
        return self.theta_user.shape[0]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn(images)

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        return Side(features, features.new_zeros(features.shape[0]))

    def user_side(self, users: torch.Tensor) -> Side:
        t = self.theta_user[users]
        return Side(t, t.new_zeros(t.shape[0]))

    @torch.no_grad()
    def embed_catalog(self, images, *, batch_size: int = 512) -> torch.Tensor:
        """Φ_e of uint8 images (N×3×H×W: a tensor, an array, or packed images decoded batch by batch) in
        eval mode, batched, on the model's device."""
        was = self.cnn.training
        self.cnn.eval()
        device = self.theta_user.device

        def batch(s: int) -> torch.Tensor:
            part = images[s : s + batch_size]
            return (part if isinstance(part, torch.Tensor) else torch.from_numpy(np.array(part))).to(device)

        out = torch.cat([self.cnn(batch(s)) for s in range(0, len(images), batch_size)])
        self.cnn.train(was)
        return out


# -- training (end to end on images) ----------------------------------------------------------------------


def _pixels(images, i: torch.Tensor, j: torch.Tensor, pin: bool) -> torch.Tensor:
    """The uint8 images of items [i; j], read in item order (one sorted read of a memory map, or one
    parallel decode of packed JPEGs), then put back in batch order."""
    items = torch.cat([i, j]).numpy()
    order = np.argsort(items, kind="stable")
    pixels = torch.empty((items.size, *images.shape[1:]), dtype=torch.uint8, pin_memory=pin)
    pixels[torch.as_tensor(order)] = torch.from_numpy(np.asarray(images[items[order]]))
    return pixels


def _image_table(images, device: str) -> torch.Tensor | None:
    """Every item image as one uint8 tensor on a CUDA device where it takes at most half of the free memory
    (Amazon Men at 224 px: 16.7 GB): decoded once per training, not once per batch and epoch. None on the
    CPU or where it does not fit (batches are then read as they come)."""
    if not str(device).startswith("cuda"):
        return None
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    if int(np.prod(images.shape)) > free // 2:
        return None
    table = torch.empty(tuple(images.shape), dtype=torch.uint8, device=device)
    for s in range(0, len(images), 4096):
        table[s : s + 4096] = torch.from_numpy(np.asarray(images[s : s + 4096])).to(device)
    return table


def _with_pixels(sampler: TripleSampler, images, device: str, table: torch.Tensor | None = None):
    """Each epoch batch's users and pixels on ``device``: from ``table`` where the images are on the device,
    else read (decoded) for the next batch in a background thread while the device computes this one, so
    decoding overlaps training. The batches and their pixels are exactly those of a plain loop."""
    from concurrent.futures import ThreadPoolExecutor

    if table is not None:
        for u, i, j in sampler.epoch(device):
            yield u, table[torch.cat([i, j])]
        return

    pin = str(device).startswith("cuda")
    with ThreadPoolExecutor(1) as reader:
        pending = None
        for u, i, j in sampler.epoch():
            ahead = (u, reader.submit(_pixels, images, i, j, pin))
            if pending is not None:
                yield pending[0].to(device), pending[1].result().to(device, non_blocking=True)
            pending = ahead
        if pending is not None:
            yield pending[0].to(device), pending[1].result().to(device, non_blocking=True)


def train_dvbpr(dataset: "Dataset", cfg: "DVBPRConfig", *, device: str = "cpu", progress: bool = False,
                precision: str | None = None):
    """DVBPR: θ_u and the CNN-F trained jointly with the BPR loss on the items' images (dropout on in
    training, off for validation and scoring); the catalog embeddings of the best epoch are kept. The
    CNN's training forward pass runs under the protocol's ``precision`` (bf16 autocast on CUDA only)."""
    train = cfg.train
    torch.manual_seed(train.seed)  # dropout masks
    gen = torch.Generator().manual_seed(train.seed)
    cnn = CNNF(cfg.conv_widths, cfg.fc_widths, out_dim=cfg.embedding_length, dropout=cfg.dropout,
               lrn=cfg.local_response_norm)
    model = DVBPR(cnn, dataset.n_users, torch.zeros(dataset.n_items, cfg.embedding_length), generator=gen).to(device)
    sampler = TripleSampler(dataset, train.batch_size, gen)
    opt = torch.optim.Adam([{"params": cnn.parameters(), "weight_decay": train.weight_decay},
                            {"params": [model.theta_user], "lr": user_learning_rate(train)}], lr=train.learning_rate)
    table = _image_table(dataset.images, device)
    images = dataset.images if table is None else table
    best = BestEpoch("DVBPR", train.epochs, progress=progress)
    for epoch in best.epochs:
        cnn.train()
        total = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device: no sync per step
        for u, pixels in _with_pixels(sampler, dataset.images, device, table):
            with autocast(precision, device):
                emb = cnn(pixels).float()
            theta = model.theta_user[u]
            x = (theta * (emb[: u.numel()] - emb[u.numel() :])).sum(1)
            bpr = F.softplus(-x).mean()
            loss = bpr + train.weight_decay * 0.5 * theta.pow(2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += bpr.detach().double() * u.numel()
        model.catalog = model.embed_catalog(images)
        best.update(model, epoch, loss=float(total) / sampler.n_pairs,
                    auc=catalog_auc(model, dataset, dataset.validation_items))
    history = best.restore(model, "lower its learning rate")
    model.catalog = model.embed_catalog(images)
    return model.eval(), history


def _build(inputs: BuildInputs, section: DVBPRConfig, out: Path) -> None:
    precision = inputs.protocol.compute.precision if inputs.protocol.compute else None
    model, history = train_dvbpr(inputs.dataset(), section, device=inputs.device, progress=inputs.progress,
                                 precision=precision)
    save_state(own_state(model), out / "dvbpr.pt")
    with open(out / "item_embeddings.npy", "wb") as fh:
        np.save(fh, model.catalog.cpu().numpy().astype(np.float32))
    write_history(history, out)


SPEC = register_ranker(RankerSpec(
    name="dvbpr", ranker=DVBPR, section=DVBPRConfig, build=_build, files=("dvbpr.pt", "item_embeddings.npy", "history.json"),
    needs=("dataset",), description="DVBPR (Eq. 5), CNN-F end to end", replicated=True, lengths=(10, 30, 50, 100),
    order=3))
