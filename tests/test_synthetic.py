"""The procedural catalog: deterministic from the seed, structured images, sparse long-tailed interactions."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from aipbench.data import render
from aipbench.data.preview import contact_sheet, sheet_items
from aipbench.data.synthetic import (
    N_NUISANCE,
    attribute_class,
    generate,
    item_attributes,
    nuisance_labels,
    pretraining_set,
)


def _digest(dataset) -> str:
    h = hashlib.sha256()
    for name in ("images", "train_indptr", "train_items", "validation_items", "test_items", "cold_items"):
        h.update(np.ascontiguousarray(getattr(dataset, name)).tobytes())
    h.update(str(dataset.hook_item).encode())
    return h.hexdigest()


def _with_seed(protocol, seed):
    return dataclasses.replace(protocol, data=dataclasses.replace(protocol.data, seed=seed))


@pytest.fixture(scope="module")
def tiny_dataset(tiny):
    return generate(tiny)


def test_same_seed_gives_identical_bytes(tiny, tiny_dataset):
    assert _digest(generate(tiny)) == _digest(tiny_dataset)


def test_other_seed_gives_other_data(tiny, tiny_dataset):
    other = generate(_with_seed(tiny, tiny.data.seed + 1))
    assert not np.array_equal(other.images, tiny_dataset.images)
    assert _digest(other) != _digest(tiny_dataset)


def test_render_does_not_depend_on_batch_size(tiny):
    attrs = item_attributes(tiny)
    a = render.render(attrs, 64, jitter=0.5, noise_std=4.0, generator=torch.Generator().manual_seed(7), batch_size=256)
    b = render.render(attrs, 64, jitter=0.5, noise_std=4.0, generator=torch.Generator().manual_seed(7), batch_size=4096)
    assert np.array_equal(a, b)


def test_shape_and_sizes_follow_the_protocol(tiny, tiny_dataset):
    syn = tiny.data.synthetic
    assert tiny_dataset.images.shape == (syn.n_catalog_items + tiny.data.n_cold_items, 3, 64, 64)
    assert tiny_dataset.images.dtype == np.uint8
    assert tiny_dataset.n_users == syn.n_users
    assert len(tiny_dataset.cold_items) == tiny.data.n_cold_items


def test_interactions_are_sparse_like_amazon_men(tiny, tiny_dataset):
    stats = tiny_dataset.statistics()
    # the protocol asks for a mean of 7.4; a geometric tail on 300 users lands within ±1
    assert abs(stats.mean_interactions_per_user - tiny.data.synthetic.mean_interactions_per_user) < 1.0
    per_user = np.diff(tiny_dataset.train_indptr) + 2
    assert per_user.min() >= tiny.data.synthetic.min_interactions_per_user


def test_popularity_is_long_tailed(tiny_dataset):
    counts = np.sort(tiny_dataset.item_train_counts())[::-1]
    # the top 10% of items take far more than 10% of the interactions
    top = counts[: len(counts) // 10].sum() / counts.sum()
    assert top > 0.3
    assert tiny_dataset.statistics().hook_train_interactions == counts[0]


def test_images_carry_the_attributes(tiny, tiny_dataset):
    """Images differ by attribute: items of the same colour are closer in mean RGB than random pairs."""
    attrs = item_attributes(tiny)
    colour = attrs["colour"].numpy()
    mean_rgb = tiny_dataset.images.reshape(len(colour), 3, -1).astype(np.float64)
    # the garment is darker than the light background; average only the garment pixels
    mask = mean_rgb.mean(1) < 200
    rgb = np.stack([(mean_rgb[:, c] * mask).sum(1) / mask.sum(1) for c in range(3)], 1)
    within = np.mean([rgb[colour == c].std(0).mean() for c in np.unique(colour)])
    assert within < 0.6 * rgb.std(0).mean()


def test_users_prefer_visually_coherent_items(tiny, tiny_dataset):
    """Taste exists: a user's training items share a category more often than random items do."""
    cat = item_attributes(tiny)["category"].numpy()
    users = tiny_dataset.train_users
    same = cat[tiny_dataset.train_items][:, None] == cat[tiny_dataset.test_items[users]][:, None]
    base = np.mean([np.mean(cat == c) ** 2 for c in range(len(render.CATEGORIES))]) * len(render.CATEGORIES)
    assert same.mean() > 1.5 * base


def test_pretraining_set_is_disjoint_and_labelled(tiny, tiny_dataset):
    images, labels = pretraining_set(tiny, 32, seed=3)
    assert images.shape == (32, 3, 64, 64)
    assert set(labels) == {"category", "colour", "pattern"}
    cls = attribute_class(labels)
    assert int(cls.min()) >= 0 and int(cls.max()) < 320
    flat = {hashlib.sha256(x.tobytes()).digest() for x in tiny_dataset.images}
    assert not any(hashlib.sha256(x.tobytes()).digest() in flat for x in images)


def test_nuisance_labels_replay_the_draws_that_rendered_the_pretraining_set(tiny, monkeypatch):
    seen = []
    real = render.photo_draws
    monkeypatch.setattr(render, "photo_draws", lambda n, g: seen.append(real(n, g)) or seen[-1])
    images, _ = pretraining_set(tiny, 400, seed=3)
    monkeypatch.undo()
    labels = nuisance_labels(400, 3, bins=4)
    assert labels.shape == (400, N_NUISANCE) and labels.dtype == torch.int64
    drawn = torch.cat([seen[0][k].reshape(400, -1) for k in render.NUISANCE], 1)
    assert torch.equal(labels, (drawn * 4).long())  # bin k holds the draws in [k/4, (k+1)/4)
    counts = torch.stack([torch.bincount(c, minlength=4) for c in labels.T])
    assert int(counts.min()) > 60  # ~100 per bin: uniform draws
    # and they are the photos' draws: the top-left (background) pixel is brighter in bg_level's top bin
    corner = images[:, :, 0, 0].astype(float).mean(1)
    bg_level = labels[:, N_NUISANCE - 1].numpy()
    assert corner[bg_level == 3].mean() > corner[bg_level == 0].mean() + 6
    assert not torch.equal(nuisance_labels(400, 4, bins=4), labels)  # another seed, other draws


def test_contact_sheet_marks_hook_and_cold_items(tiny_dataset, tmp_path):
    from PIL import Image

    roles = sheet_items(tiny_dataset)
    assert roles[0] == (tiny_dataset.hook_item, "hook")
    assert {i for i, r in roles if r == "cold"} <= set(tiny_dataset.cold_items.tolist())
    out = contact_sheet(tiny_dataset, tmp_path / "sheet.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width > 64 * 8
        pixels = np.asarray(img.convert("RGB"))
    assert (pixels == (220, 30, 30)).all(-1).sum() > 100  # the hook's red frame
    assert (pixels == (30, 90, 220)).all(-1).sum() > 100  # cold items' blue frames


def test_contact_sheet_resizes_photos_and_writes_jpeg_by_name(tiny_dataset, tmp_path):
    from PIL import Image

    with Image.open(contact_sheet(tiny_dataset, tmp_path / "plain.png")) as plain:
        width = plain.width
    with Image.open(contact_sheet(tiny_dataset, tmp_path / "small.jpg", size=16)) as img:
        assert img.format == "JPEG"
        side = tiny_dataset.images.shape[-1]
        # 16 columns of (photo + 2 × 3 px frame + 2 px padding) + the last 2 px padding
        assert img.width == 16 * (16 + 8) + 2 and width == 16 * (side + 8) + 2
    assert not list(tmp_path.glob("*.partial"))
