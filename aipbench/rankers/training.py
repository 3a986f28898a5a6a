"""Training of VBPR, AMR and DVBPR with the BPR loss of Eq. 4 (Adam), selecting the best validation epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from aipbench.firststage.heldout import heldout_auc
from aipbench.firststage.triples import BestEpoch, TripleSampler
from aipbench.rankers.amr import AMR
from aipbench.rankers.base import Ranker
from aipbench.rankers.dvbpr import DVBPR
from aipbench.rankers.vbpr import VBPR

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset
    from aipbench.protocol.rankers import AMRConfig, DVBPRConfig, VBPRConfig

__all__ = ["catalog_auc", "train_amr", "train_dvbpr", "train_vbpr"]


@torch.no_grad()
def catalog_auc(ranker: Ranker, dataset: "Dataset", heldout: np.ndarray) -> float:
    """Mean per-user AUC of ``heldout[u]`` (the validation or the test items) against every catalog item
    the user has not trained on, scored with the catalog images."""
    user, item = ranker.user_side(ranker.all_users()), ranker.catalog_side()
    auc = heldout_auc(user.vec, item.vec, item.bias, train_indptr=dataset.train_indptr, train_items=dataset.train_items,
                      heldout_items=heldout, excluded_items=dataset.cold_items, device=item.vec.device)
    return float(np.nanmean(auc))


def _user_lr(train) -> float:
    """Per-user parameters see only a handful of updates per epoch; the protocol may give them their own rate."""
    return train.learning_rate if train.user_learning_rate is None else train.user_learning_rate


# -- VBPR and AMR (on cached features) ----------------------------------------------------------------------


def _vbpr_difference(model: VBPR, u, i, j, delta: dict | None = None) -> torch.Tensor:
    """x_uij = x_ui − x_uj for a batch; ``delta`` perturbs the embeddings (AMR): keys "user_gamma",
    "user_theta" (Δγ_u, Δθ_u), "item" (Δγ for [i; j]) and "visual" (Δ of E·Φ for [i; j])."""
    items = torch.cat([i, j])
    user = model.user_side(u, delta=delta)
    item = model.item_side(model.catalog[items], items, delta=delta)
    s = (user.vec.repeat(2, 1) * item.vec).sum(1) + item.bias
    return s[: u.numel()] - s[u.numel() :]


def _vbpr_l2(model: VBPR, u, i, j, share: float) -> torch.Tensor:
    """λ/2-weighted squared norms: the batch's rows, averaged per triple, and the shared E and β'
    (weighted by the batch's share of an epoch, so an epoch pays them once)."""
    rows = (model.gamma_user[u].pow(2).sum(1) + model.theta_user[u].pow(2).sum(1)
            + model.gamma_item[i].pow(2).sum(1) + model.gamma_item[j].pow(2).sum(1)
            + model.beta_item[i].pow(2) + model.beta_item[j].pow(2))
    return 0.5 * (rows.mean() + share * (model.E.pow(2).sum() + model.beta_visual.pow(2).sum()))


# Which perturbed embedding each protocol "perturb" name covers ("user" is γ_u and θ_u).
_PERTURBED = {"user_gamma": ("user", "user_gamma"), "user_theta": ("user",), "item": ("item",), "visual": ("visual",)}


def _adversarial_delta(model: VBPR, u, i, j, perturb: tuple[str, ...], epsilon: float, norm: str = "row") -> dict:
    """AMR's fast-gradient perturbation: Δ = ε · g/‖g‖, g the gradient of the BPR loss with respect to
    each perturbed embedding, evaluated at Δ = 0; ‖g‖ per row (``norm="row"``) or the Frobenius norm of
    the batch's whole gradient of that embedding (``"batch"``, the AIP reference code)."""
    b, f, e = u.numel(), model.gamma_user.shape[1], model.theta_user.shape[1]
    shapes = {"user_gamma": (b, f), "user_theta": (b, e), "item": (2 * b, f), "visual": (2 * b, e)}
    zeros = {k: torch.zeros(shape, device=u.device, requires_grad=True) for k, shape in shapes.items()
             if any(p in perturb for p in _PERTURBED[k])}
    loss = F.softplus(-_vbpr_difference(model, u, i, j, zeros)).sum()
    grads = torch.autograd.grad(loss, list(zeros.values()))
    if norm == "batch":
        return {k: epsilon * g / g.norm().clamp_min(1e-12) for k, g in zip(zeros, grads)}
    return {k: epsilon * F.normalize(g, dim=1) for k, g in zip(zeros, grads)}


def _fit_vbpr(model: VBPR, dataset: "Dataset", train, name: str, *, adversarial=None, device: str = "cpu",
              progress: bool = False) -> dict:
    gen = torch.Generator().manual_seed(train.seed)
    sampler = TripleSampler(dataset, train.batch_size, gen)
    users = [model.gamma_user, model.theta_user]
    shared = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in users)]
    opt = torch.optim.Adam([{"params": shared}, {"params": users, "lr": _user_lr(train)}], lr=train.learning_rate)
    share = train.batch_size / sampler.n_pairs
    best = BestEpoch(name, train.epochs, progress=progress)
    for epoch in best.epochs:
        total = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device: no sync per step
        for u, i, j in sampler.epoch(device):
            bpr = F.softplus(-_vbpr_difference(model, u, i, j)).mean()
            loss = bpr + train.weight_decay * _vbpr_l2(model, u, i, j, share)
            if adversarial is not None:  # Eq. 11: L_BPR(Θ) + λ_adv · L_BPR(Θ + Δ_adv)
                delta = _adversarial_delta(model, u, i, j, adversarial.perturb, adversarial.adv_epsilon,
                                           adversarial.adv_norm or "row")
                loss = loss + adversarial.adv_weight * F.softplus(-_vbpr_difference(model, u, i, j, delta)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += bpr.detach().double() * u.numel()
        best.update(model, epoch, loss=float(total) / sampler.n_pairs,
                    auc=catalog_auc(model, dataset, dataset.validation_items))
    return best.restore(model, "lower its learning rate")


# train_vbpr / train_amr keep four positional parameters: the committed reference submission submissions/amr
# calls train_amr so, and editing it would change its hash and orphan every result made with it.
def train_vbpr(dataset: "Dataset", extractor, features: torch.Tensor, cfg: "VBPRConfig", *, device: str = "cpu",
               progress: bool = False):
    """VBPR on the frozen extractor's catalog features, trained on ``device``; returns the model (best
    validation epoch) and history."""
    gen = torch.Generator().manual_seed(cfg.train.seed)
    model = VBPR.from_config(cfg, extractor=extractor, catalog_features=features, n_users=dataset.n_users, generator=gen)
    history = _fit_vbpr(model.to(device), dataset, cfg.train, "VBPR", device=device, progress=progress)
    return model.eval(), history


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
    history = _fit_vbpr(model.to(device), dataset, cfg.train, "AMR", adversarial=cfg, device=device, progress=progress)
    return model.eval(), history


# -- DVBPR (end to end on images) ------------------------------------------------------------------------------


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
    from aipbench.rankers.precision import autocast
    from aipbench.rankers.nets.cnnf import CNNF

    train = cfg.train
    torch.manual_seed(train.seed)  # dropout masks
    gen = torch.Generator().manual_seed(train.seed)
    cnn = CNNF(cfg.conv_widths, cfg.fc_widths, out_dim=cfg.embedding_length, dropout=cfg.dropout,
               lrn=cfg.local_response_norm)
    model = DVBPR(cnn, dataset.n_users, torch.zeros(dataset.n_items, cfg.embedding_length), generator=gen).to(device)
    sampler = TripleSampler(dataset, train.batch_size, gen)
    opt = torch.optim.Adam([{"params": cnn.parameters(), "weight_decay": train.weight_decay},
                            {"params": [model.theta_user], "lr": _user_lr(train)}], lr=train.learning_rate)
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
