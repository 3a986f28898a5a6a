"""The procedural catalog: item attributes, rendered photos, users with visual taste and popularity bias."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from aipbench.data import render as _render
from aipbench.data.dataset import Dataset
from aipbench.data.splits import build_dataset, leave_two_out, to_csr

if TYPE_CHECKING:
    from aipbench.protocol.schema import Protocol, SyntheticConfig

__all__ = [
    "CLASS_COUNTS", "N_NUISANCE", "attribute_class", "catalog_interactions", "generate", "interaction_counts", "item_attributes", "nuisance_labels", "pretraining_set",
    "sample_interactions",
]

# The three visual attributes a taste (and the extractor's pre-training task) is defined over.
CLASS_COUNTS = {
    "category": len(_render.CATEGORIES),
    "colour": len(_render.COLOURS),
    "pattern": len(_render.PATTERNS),
}
# A user's taste: one Gaussian preference per attribute value, scaled per attribute (shape matters most).
_TASTE_SCALE = {"category": 2.0, "colour": 1.5, "pattern": 1.0}
N_NUISANCE = _render.N_NUISANCE  # values per image that nuisance_labels bins
_MAX_INTERACTIONS_PER_USER = 200
_USER_CHUNK = 512


def _streams(seed: int) -> dict[str, int]:
    """Independent sub-seeds for each random stream, derived from the protocol's data seed."""
    names = ("attributes", "render", "popularity", "users", "interactions", "holdout")
    states = np.random.SeedSequence(seed).spawn(len(names))
    return {n: int(s.generate_state(1, np.uint64)[0] >> np.uint64(1)) for n, s in zip(names, states)}


def attribute_class(attributes: dict[str, torch.Tensor | np.ndarray]) -> torch.Tensor:
    """The joint class ``(category × colour) × pattern`` of each item, in ``[0, 320)``."""
    cat, col, pat = (torch.as_tensor(attributes[k]).long() for k in ("category", "colour", "pattern"))
    return (cat * CLASS_COUNTS["colour"] + col) * CLASS_COUNTS["pattern"] + pat


def item_attributes(protocol: "Protocol") -> dict[str, torch.Tensor]:
    """Category, colour and pattern of every item of the protocol's catalog (cold items included)."""
    syn = _synthetic(protocol)
    n_items = syn.n_catalog_items + protocol.data.n_cold_items
    gen = torch.Generator().manual_seed(_streams(protocol.data.seed)["attributes"])
    return _render.sample_attributes(n_items, gen)


def _synthetic(protocol: "Protocol") -> "SyntheticConfig":
    if protocol.data.synthetic is None:
        raise ValueError(f"protocol {protocol.name!r} is not a synthetic protocol")
    return protocol.data.synthetic


def _user_taste(n_users: int, syn: "SyntheticConfig", gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Each user's preference for every value of every attribute: the user's taste segment's prototype
    plus individual variation (segments make tastes shared, so collaborative filtering has signal too)."""
    segment = torch.randint(syn.taste_segments, (n_users,), generator=gen)
    taste = {}
    for k, n in CLASS_COUNTS.items():
        prototypes = torch.randn(syn.taste_segments, n, generator=gen)
        own = torch.randn(n_users, n, generator=gen)
        taste[k] = (prototypes[segment] + syn.taste_spread * own) * _TASTE_SCALE[k]
    return taste


def _popularity_and_counts(syn: "SyntheticConfig", streams: dict[str, int], m: int) -> tuple[np.ndarray, np.ndarray]:
    """The Zipf rank of each of the ``m`` eligible items (a seeded random ranking) and how many items each
    user takes: min + a geometric tail whose mean makes the protocol's average."""
    rng = np.random.default_rng(streams["popularity"])
    rank = rng.permutation(m) + 1
    p = 1.0 / (syn.mean_interactions_per_user - syn.min_interactions_per_user + 1.0)
    counts = syn.min_interactions_per_user - 1 + rng.geometric(p, size=syn.n_users)
    return rank, np.minimum(counts, min(_MAX_INTERACTIONS_PER_USER, m))


def interaction_counts(protocol: "Protocol") -> np.ndarray:
    """How many items each user of the protocol's synthetic catalog interacts with (what
    ``catalog_interactions`` draws, without drawing the items)."""
    syn = _synthetic(protocol)
    return _popularity_and_counts(syn, _streams(protocol.data.seed), syn.n_catalog_items)[1]


def sample_interactions(
    attributes: dict[str, torch.Tensor],
    eligible: np.ndarray,
    *,
    syn: "SyntheticConfig",
    streams: dict[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Sample each user's distinct items: logits = popularity_weight · log Zipf popularity + taste_weight ·
    taste(item's attributes), drawn without replacement by Gumbel-top-k, vectorized over a chunk of users.

    Returns the (user, item) pairs; only ``eligible`` items can be drawn."""
    n_users = syn.n_users
    eligible_t = torch.as_tensor(eligible, dtype=torch.long)
    m = eligible_t.numel()
    rank, counts = _popularity_and_counts(syn, streams, m)
    log_pop = torch.as_tensor(-syn.popularity_exponent * np.log(rank), dtype=torch.float32)
    # Taste: per user, a Gaussian preference over every value of every attribute.
    taste = _user_taste(n_users, syn, torch.Generator().manual_seed(streams["users"]))
    item_attr = {k: torch.as_tensor(v).long()[eligible_t] for k, v in attributes.items()}
    k_max = int(counts.max())
    g = torch.Generator().manual_seed(streams["interactions"])
    users_out, items_out = [], []
    for s in range(0, n_users, _USER_CHUNK):
        e = min(s + _USER_CHUNK, n_users)
        logits = syn.popularity_weight * log_pop.expand(e - s, m).clone()
        for k in CLASS_COUNTS:
            logits += syn.taste_weight * taste[k][s:e][:, item_attr[k]]
        gumbel = -torch.log(-torch.log(torch.rand(e - s, m, generator=g).clamp_(min=1e-20)))
        top = torch.topk(logits + gumbel, k_max, dim=1).indices  # sorted: the first n_u are the draw
        take = torch.arange(k_max)[None, :] < torch.as_tensor(counts[s:e])[:, None]
        rows = torch.arange(s, e)[:, None].expand(-1, k_max)
        users_out.append(rows[take])
        items_out.append(eligible_t[top[take]])
    return torch.cat(users_out).numpy(), torch.cat(items_out).numpy()


def _photos(attributes: dict[str, torch.Tensor], protocol: "Protocol", seed: int, batch_size: int = 1024) -> np.ndarray:
    syn = _synthetic(protocol)
    gen = torch.Generator().manual_seed(seed)
    return _render.render(attributes, protocol.data.image_size, jitter=syn.jitter, noise_std=syn.noise_std,
                          generator=gen, batch_size=batch_size)


def generate(protocol: "Protocol", *, batch_size: int = 1024, out=None) -> Dataset:
    """The protocol's synthetic data set: images, leave-two-out splits, cold items and hook.

    ``n_catalog_items + n_cold_items`` items are rendered; a seeded set of ``n_cold_items`` of them is
    held out of the sampling (so enough items are uninteracted), then the protocol's cold rule picks the
    cold items uniformly among all items nobody interacted with. A ``packed-jpeg`` protocol renders its
    photos in worker processes and packs them as JPEGs into the folder ``out`` (``images.bin`` and
    ``image_offsets.npy``)."""
    syn = _synthetic(protocol)
    streams = _streams(protocol.data.seed)
    attributes = item_attributes(protocol)
    if protocol.data.image_store == "packed-jpeg":
        images = _packed_photos(attributes, protocol, streams["render"], out)
    else:
        images = _photos(attributes, protocol, streams["render"], batch_size)
    users, items = catalog_interactions(protocol, attributes)
    indptr, flat = to_csr(users, items, syn.n_users)
    train_indptr, train_items, val, test = leave_two_out(indptr, flat, protocol.split.seed)
    return build_dataset(images, train_indptr=train_indptr, train_items=train_items, validation_items=val, test_items=test,
                         n_cold=protocol.data.n_cold_items, seed=protocol.split.seed)


def catalog_interactions(protocol: "Protocol", attributes: dict[str, torch.Tensor] | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """The (user, item) pairs of the protocol's synthetic catalog (no photos needed): a seeded set of
    ``n_cold_items`` items is held out of the sampling, so enough items stay uninteracted for the cold rule."""
    streams = _streams(protocol.data.seed)
    attributes = item_attributes(protocol) if attributes is None else attributes
    n_items = int(attributes["category"].shape[0])
    held_out = np.random.default_rng(streams["holdout"]).choice(n_items, protocol.data.n_cold_items, replace=False)
    eligible = np.setdiff1d(np.arange(n_items), held_out)
    return sample_interactions(attributes, eligible, syn=_synthetic(protocol), streams=streams)


def _packed_photos(attributes: dict[str, torch.Tensor], protocol: "Protocol", seed: int, out):
    from pathlib import Path

    from aipbench.data.packed import PackedImages, pack_images
    from aipbench.data.photos import photo_ranges

    if out is None:
        raise ValueError("a packed-jpeg catalog is written into a folder (out)")
    syn, out = _synthetic(protocol), Path(out)
    params = _render.photo_params(attributes, jitter=syn.jitter, generator=torch.Generator().manual_seed(seed))
    jpegs = (data for part in photo_ranges(params, protocol.data.image_size, noise_std=syn.noise_std,
                                           jpeg_quality=protocol.data.jpeg_quality) for data in part)
    pack_images(jpegs, out / "images.bin", out / "image_offsets.npy")
    return PackedImages(out / "images.bin", out / "image_offsets.npy", protocol.data.image_size)


def nuisance_labels(n_images: int, seed: int, bins: int) -> torch.Tensor:
    """The bin (of ``bins`` equal ranges) of each of the ``N_NUISANCE`` nuisance draws that rendered the
    pre-training images of ``pretraining_set(protocol, n_images, seed)``: an int64 ``n_images × N_NUISANCE``
    tensor, replayed from the renderer's own stream (``render.photo_draws``)."""
    draws = _render.photo_draws(n_images, torch.Generator().manual_seed(_streams(seed)["render"]))
    columns = torch.cat([draws[k].reshape(n_images, -1) for k in _render.NUISANCE], 1)
    return (columns * bins).long().clamp(max=bins - 1)


def pretraining_set(protocol: "Protocol", n_images: int, seed: int) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """A fresh image set, disjoint from the catalog (own seed), with its attribute labels: the synthetic
    protocols' stand-in for ImageNet when pre-training the feature extractor."""
    streams = _streams(seed)
    attributes = _render.sample_attributes(n_images, torch.Generator().manual_seed(streams["attributes"]))
    if protocol.data.image_store == "packed-jpeg":  # a large set: rendered in worker processes, the same pixels
        from aipbench.data.photos import render_parallel

        params = _render.photo_params(attributes, jitter=_synthetic(protocol).jitter,
                                      generator=torch.Generator().manual_seed(streams["render"]))
        return render_parallel(params, protocol.data.image_size, noise_std=_synthetic(protocol).noise_std), attributes
    return _photos(attributes, protocol, streams["render"]), attributes
