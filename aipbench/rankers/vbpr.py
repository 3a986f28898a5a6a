"""VBPR (Eq. 2): α + β_u + β_i + γ_u·γ_i + θ_u·(E Φ(x_i)) + β'·Φ(x_i); AMR (Eq. 10–11) shares the model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from aipbench.errors import ArtifactError
from aipbench.firststage.triples import BestEpoch, TripleSampler
from aipbench.protocol.rankers import VBPRConfig
from aipbench.rankers.base import Ranker, Side
from aipbench.rankers.checkpoint import own_state, save_state, write_history
from aipbench.rankers.fitting import catalog_auc, user_learning_rate
from aipbench.rankers.lengths import with_length
from aipbench.rankers.replicas import replica_artifact
from aipbench.rankers.spec import BuildInputs, RankerSpec, register_ranker

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset

__all__ = ["VBPR", "fit_vbpr", "train_vbpr"]


class VBPR(Ranker):
    """Parameters: γ_u, θ_u (users), γ_i, β_i (items), E (embedding_length × feature_dim), β' (feature_dim).

    α and β_u are not identifiable under the BPR loss (they cancel in x_ui − x_uj) and are fixed at 0.
    A new item known only by its image (a cold item's upload) has no learned γ_i, β_i: its score uses the
    visual terms only (γ_i = 0, β_i = 0) — this is the protocol's reading of "cold item" in Eq. 2.
    """

    name = "vbpr"

    def __init__(
        self,
        extractor: nn.Module,
        catalog_features: torch.Tensor,
        n_users: int,
        *,
        factors: int,
        embedding_length: int,
        visual_bias: bool,
        generator: torch.Generator | None = None,
        init_std: float = 0.01,
    ) -> None:
        super().__init__(catalog_features)
        self.extractor = extractor.eval().requires_grad_(False)
        n_items, dim = catalog_features.shape
        gen = generator or torch.Generator().manual_seed(0)

        def param(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=gen) * init_std)

        self.gamma_user, self.theta_user = param(n_users, factors), param(n_users, embedding_length)
        self.gamma_item, self.beta_item = param(n_items, factors), nn.Parameter(torch.zeros(n_items))
        self.E = param(embedding_length, dim)
        self.beta_visual = nn.Parameter(torch.zeros(dim), requires_grad=visual_bias)
        self.visual_bias = visual_bias

    @classmethod
    def from_config(cls, cfg, *, extractor: nn.Module, catalog_features: torch.Tensor, n_users: int,
                    generator: torch.Generator | None = None) -> "VBPR":
        """A model shaped as the protocol's section for it says (``VBPRConfig``; AMR: ``AMRConfig``)."""
        return cls(extractor, catalog_features, n_users, factors=cfg.factors, embedding_length=cfg.embedding_length,
                   visual_bias=cfg.visual_bias, generator=generator)

    @classmethod
    def load(cls, artifacts, *, length: int | None = None, replica: int | None = None) -> "VBPR":
        """From the checkpoint of the protocol's section of the same name (``rankers.vbpr`` / ``rankers.amr``);
        Φ comes from its own artifact."""
        cfg = with_length(getattr(artifacts.protocol.rankers, cls.name), length)
        step = replica_artifact(cls.name if length is None else f"{cls.name}-k{length}", replica)
        state = artifacts.state(step, f"{cls.name}.pt")
        model = cls.from_config(cfg, extractor=artifacts.extractor(), catalog_features=artifacts.features(),
                                n_users=state["gamma_user"].shape[0])
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("extractor.") for k in missing):
            raise ArtifactError(f"{artifacts.path(step, f'{cls.name}.pt')}: checkpoint does not match the protocol's {step}")
        if step != cls.name:
            model.variant = step  # a VBPR all the same (same attack objective), but its own attack target
        return model

    def summed_preference(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Eq. 6 writes VBPR's sum over users with the θ term alone: ⟨Σ_u θ_u, E Φ(x)⟩."""
        theta = self.theta_user.detach().sum(0)
        return lambda features: self.visual_embedding(features) @ theta

    @property
    def n_users(self) -> int:
        return self.gamma_user.shape[0]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)

    def visual_embedding(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.E.T

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None, *, delta: dict | None = None) -> Side:
        visual = self.visual_embedding(features)
        if delta and "visual" in delta:
            visual = visual + delta["visual"]
        vbias = features @ self.beta_visual if self.visual_bias else features.new_zeros(features.shape[0])
        if items is None:
            gamma = features.new_zeros(features.shape[0], self.gamma_item.shape[1])
            bias = features.new_zeros(features.shape[0])
        else:
            gamma, bias = self.gamma_item[items], self.beta_item[items]
            if delta and "item" in delta:
                gamma = gamma + delta["item"]
        return Side(torch.cat([gamma, visual, vbias[:, None]], 1), bias)

    def user_side(self, users: torch.Tensor, *, delta: dict | None = None) -> Side:
        g, t = self.gamma_user[users], self.theta_user[users]
        if delta and "user_gamma" in delta:
            g = g + delta["user_gamma"]
        if delta and "user_theta" in delta:
            t = t + delta["user_theta"]
        return Side(torch.cat([g, t, torch.ones_like(g[:, :1])], 1), g.new_zeros(g.shape[0]))


# -- training (on the cached features) -------------------------------------------------------------------


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


def fit_vbpr(model: VBPR, dataset: "Dataset", *, train, name: str, adversarial=None, device: str = "cpu",
             progress: bool = False) -> dict:
    """Adam on the BPR loss of Eq. 4 with λ-weighted L2 (and, for ``adversarial`` — an ``AMRConfig`` — Eq. 11's
    adversarial term), keeping the best validation epoch; returns the history."""
    gen = torch.Generator().manual_seed(train.seed)
    sampler = TripleSampler(dataset, train.batch_size, gen)
    users = [model.gamma_user, model.theta_user]
    shared = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in users)]
    opt = torch.optim.Adam([{"params": shared}, {"params": users, "lr": user_learning_rate(train)}], lr=train.learning_rate)
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
    history = fit_vbpr(model.to(device), dataset, train=cfg.train, name="VBPR", device=device, progress=progress)
    return model.eval(), history


def _build(inputs: BuildInputs, section: VBPRConfig, out: Path) -> None:
    model, history = train_vbpr(inputs.dataset(), inputs.extractor(), inputs.features(), section,
                                device=inputs.device, progress=inputs.progress)
    save_state(own_state(model), out / "vbpr.pt")
    write_history(history, out)


SPEC = register_ranker(RankerSpec(
    name="vbpr", ranker=VBPR, section=VBPRConfig, build=_build, files=("vbpr.pt", "history.json"),
    needs=("dataset", "features"), description="VBPR (Eq. 2, BPR loss of Eq. 4)", replicated=True,
    lengths=(20, 50, 100), order=2))
