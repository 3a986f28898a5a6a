"""synthetic-paper-v1 (Amazon Men's sizes at 224 px), photos rendered in parallel and packed as JPEGs,
and a protocol's compute precision."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aipbench.cli import main
from aipbench.data import render as _render
from aipbench.data.photos import RANGE, photo_ranges
from aipbench.data.synthetic import catalog_interactions, interaction_counts, item_attributes
from aipbench.protocol import load_protocol

AMAZON_MEN = {"users": 34244, "items": 110636, "interactions": 254870}  # paper Table 2


@pytest.fixture(scope="module")
def paper():
    return load_protocol("synthetic-paper-v1")


def test_synthetic_paper_v1_has_amazon_mens_sizes(paper):
    syn = paper.data.synthetic
    assert syn.n_users == AMAZON_MEN["users"]
    assert syn.n_catalog_items + paper.data.n_cold_items == AMAZON_MEN["items"] == len(item_attributes(paper)["category"])
    counts = interaction_counts(paper)  # what the sampler draws per user
    assert counts.shape == (AMAZON_MEN["users"],) and counts.min() >= 3
    assert abs(counts.sum() / AMAZON_MEN["interactions"] - 1) < 0.01  # 256,108 drawn: +0.5 %
    assert (paper.data.image_size, paper.data.image_store) == (224, "packed-jpeg")
    assert (paper.bpr.factors, paper.rankers.vbpr.factors, paper.rankers.dvbpr.embedding_length) == (64, 100, 100)
    # released: every result pins this hash, and no value that affects a score may change under it
    assert paper.sha256 == "4dd2f3ca446d5764a1797dbab685f7423d308a2a7d43ca00351bfdb89d2ffe3b"


def test_synthetic_paper_v1_networks_have_the_papers_shapes(paper):
    """Φ has AlexNet's layers (torchvision's, layer for layer) and a 4,096-d fc7 at 224 px; DVBPR's CNN-F its
    published widths, LRN included."""
    from torchvision.models import alexnet

    from aipbench.rankers.extractor import make_extractor
    from aipbench.rankers.nets.cnnf import CNNF

    ours = make_extractor(paper)
    ref = alexnet(weights=None)
    shapes = [tuple(p.shape) for p in ours.features.parameters()]
    assert shapes == [tuple(p.shape) for p in ref.features.parameters()]
    with torch.no_grad():
        assert ours(torch.zeros(2, 3, 224, 224, dtype=torch.uint8)).shape == (2, 4096)
    d = paper.rankers.dvbpr
    cnn = CNNF(d.conv_widths, d.fc_widths, out_dim=d.embedding_length, dropout=d.dropout, lrn=d.local_response_norm)
    convs = [m for m in cnn.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size[0]) for m in convs] == [(64, 11), (256, 5), (256, 3), (256, 3), (256, 3)]
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in cnn.modules()) == 2
    with torch.no_grad():
        assert cnn.eval()(torch.zeros(2, 3, 224, 224, dtype=torch.uint8)).shape == (2, 100)


@pytest.mark.slow
def test_synthetic_paper_v1_draws_its_counts(paper):
    """The full draw (about 3 minutes on 2 cores): every user, the drawn counts, no cold-set item."""
    users, items = catalog_interactions(paper)
    assert len(users) == interaction_counts(paper).sum() and len(np.unique(users)) == AMAZON_MEN["users"]
    assert items.max() < AMAZON_MEN["items"]


def test_parallel_rendering_gives_the_same_pixels_and_jpeg_bytes():
    """Ranges rendered by two worker processes are the pixels of one serial ``render`` call (so the number of
    cores never changes a data set), and their JPEGs the same bytes."""
    n = RANGE + 37  # two ranges, the second partial
    attrs = _render.sample_attributes(n, torch.Generator().manual_seed(7))
    serial = _render.render(attrs, 64, jitter=0.5, noise_std=4.0, generator=torch.Generator().manual_seed(8))
    params = _render.photo_params(attrs, jitter=0.5, generator=torch.Generator().manual_seed(8))
    parallel = np.concatenate(list(photo_ranges(params, 64, noise_std=4.0, workers=2)))
    np.testing.assert_array_equal(parallel, serial)
    one = [b for part in photo_ranges(params, 64, noise_std=4.0, jpeg_quality=95, workers=1) for b in part]
    two = [b for part in photo_ranges(params, 64, noise_std=4.0, jpeg_quality=95, workers=2) for b in part]
    assert one == two and len(one) == n and all(b[:2] == b"\xff\xd8" for b in one)


def _packed_tiny(tmp_path, monkeypatch):
    from aipbench.paths import protocols_dir

    text = (protocols_dir() / "tiny.toml").read_text()
    text = text.replace('name = "tiny"', 'name = "tiny-packed"').replace(
        "seed = 20210419", 'seed = 20210419\nimage_store = "packed-jpeg"\njpeg_quality = 95', 1)
    path = tmp_path / "tiny-packed.toml"
    path.write_text(text)
    monkeypatch.setenv("AIPBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIPBENCH_PROGRESS", "0")
    return path


def test_a_packed_jpeg_catalog_runs_end_to_end(tmp_path, monkeypatch, tiny_store):
    """A synthetic protocol that keeps its photos as JPEGs: the same catalog as raw within JPEG error,
    stored in a fraction of the bytes, and an attack evaluates on it through the CLI."""
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store

    path = _packed_tiny(tmp_path, monkeypatch)
    store = open_store(load_protocol(str(path)), home=tmp_path / "home")
    store.prepare(["dataset"])
    packed, raw = load_dataset(store), load_dataset(tiny_store)
    np.testing.assert_array_equal(packed.train_items, raw.train_items)  # interactions do not depend on pixels
    assert packed.hook_item == raw.hook_item and (packed.cold_items == raw.cold_items).all()
    diff = np.abs(packed.images[:64].astype(np.int16) - np.asarray(raw.images[:64]).astype(np.int16))
    assert diff.mean() < 4.0 and diff.max() < 64  # 2.8 at quality 95: mostly the renderer's pixel noise (std 4)
    blob = store.path("dataset", "images.bin").stat().st_size
    assert blob < 0.5 * np.asarray(raw.images).nbytes
    out = tmp_path / "noise.json"
    result = CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", "submissions/noise", "--protocol", str(path), "--rankers", "alexrank",
                                       "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["protocol"]["name"] == "tiny-packed" and doc["results"]


def test_compute_precision_sets_tf32_only_where_asked():
    from aipbench.rankers.precision import apply_precision, autocast

    apply_precision("tf32")
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    apply_precision(None)
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.deterministic
    with autocast("bf16", "cpu"):  # the CPU always computes in float32
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_cublas_workspace_is_fixed_at_import_unless_the_user_set_one():
    """Deterministic cuBLAS needs a fixed workspace before CUDA starts: importing aipbench sets one."""
    import os
    import subprocess
    import sys

    code = "import aipbench, os; print(os.environ['CUBLAS_WORKSPACE_CONFIG'])"
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == ":4096:8"
    env["CUBLAS_WORKSPACE_CONFIG"] = ":16:8"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == ":16:8"
