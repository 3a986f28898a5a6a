"""What each step costs at the paper's scale, on this CPU: synthetic-v2 against synthetic-paper-v1 (Amazon
Men's sizes, 224 px, AlexNet-sized Φ, CNN-F), one table with the ratio per step.

Steps a CPU does in minutes are measured whole (interaction sampling, BPR candidate sets); the networks'
steps are measured on a sample and scaled by the protocol's counts (per-image cost × images, which is how
they grow: the batches stay the same size). Run (about 8 minutes on 2 cores):

    .venv/bin/python benchmarks/bench_paper_scale.py [--skip-sampling]

Prints a Markdown table (docs/paper-scale.md keeps the one measured here).
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image

from aipbench.data import render as _render
from aipbench.data.splits import to_csr
from aipbench.data.synthetic import catalog_interactions, interaction_counts
from aipbench.firststage.candidates import candidate_sets
from aipbench.protocol import load_protocol
from aipbench.rankers.extractor import make_extractor
from aipbench.rankers.nets.cnnf import CNNF
from aipbench.scoring.metrics import BaseSetSummary, cold_item_metrics

SAMPLE = 128  # images per network measurement


def _clock(fn, repeat: int = 1) -> float:
    fn()  # warm-up (allocations, oneDNN primitive creation)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def _sizes(p) -> dict:
    syn = p.data.synthetic
    n_items = syn.n_catalog_items + p.data.n_cold_items
    return {"users": syn.n_users, "items": n_items, "pretrain": p.rankers.extractor.pretrain.n_images,
            "pairs": int(interaction_counts(p).sum()) - 2 * syn.n_users, "size": p.data.image_size}


def _render_rate(p, n: int = 64) -> tuple[float, float]:
    """Seconds per photo rendered (one process), and JPEG bytes per photo where the protocol packs them."""
    attrs = _render.sample_attributes(n, torch.Generator().manual_seed(0))
    params = _render.photo_params(attrs, jitter=p.data.synthetic.jitter, generator=torch.Generator().manual_seed(1))
    size, quality = p.data.image_size, p.data.jpeg_quality
    out: dict = {}

    def run():
        images = _render.render_range(params, 0, n, image_size=size, noise_std=p.data.synthetic.noise_std)
        if quality:
            blobs = []
            for img in images:
                buf = io.BytesIO()
                Image.fromarray(img.transpose(1, 2, 0)).save(buf, format="JPEG", quality=quality, subsampling=0)
                blobs.append(len(buf.getvalue()))
            out["bytes"] = float(np.mean(blobs))
        else:
            out["bytes"] = float(images[0].nbytes)

    return _clock(run) / n, out["bytes"]


def _candidates(p) -> float:
    s = _sizes(p)
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    users = torch.randn(s["users"], p.bpr.factors, generator=gen) * 0.3
    items = torch.randn(s["items"], p.bpr.factors, generator=gen) * 0.3
    cold = np.sort(rng.choice(s["items"], p.data.n_cold_items, replace=False))
    warm = np.setdiff1d(np.arange(s["items"]), cold)
    train_u = np.repeat(np.arange(s["users"]), 5)
    indptr, train = to_csr(train_u, rng.choice(warm, train_u.size), s["users"])
    start = time.perf_counter()
    candidate_sets(users, items, torch.randn(s["items"], generator=gen), train_indptr=indptr, train_items=train,
                   test_items=rng.choice(warm, s["users"]), cold_items=cold, n_candidates=p.bpr.n_candidates,
                   exclude_seen=p.bpr.candidate_rule != "all-items")
    return time.perf_counter() - start


def _extractor_costs(p) -> tuple[float, float]:
    """Seconds per image: Φ forward (features, scoring) and Φ forward+backward to the pixels (INSA's step)."""
    torch.manual_seed(0)
    phi = make_extractor(p).eval().requires_grad_(False)
    x = torch.randint(0, 256, (SAMPLE, 3, p.data.image_size, p.data.image_size), dtype=torch.uint8)
    with torch.no_grad():
        fwd = _clock(lambda: phi(x))

    def fwd_bwd():
        d = torch.zeros(x.shape, requires_grad=True)
        phi(x.float() / 255 + d).sum().backward()

    return fwd / SAMPLE, _clock(fwd_bwd) / SAMPLE


def _cnnf_train_cost(p) -> float:
    """Seconds per image of a DVBPR training step (CNN-F forward + backward + Adam, batch of pairs)."""
    d = p.rankers.dvbpr
    torch.manual_seed(0)
    cnn = CNNF(d.conv_widths, d.fc_widths, out_dim=d.embedding_length, dropout=d.dropout, lrn=d.local_response_norm)
    opt = torch.optim.Adam(cnn.parameters(), lr=1e-4)
    n = 2 * min(d.train.batch_size, SAMPLE // 2)
    x = torch.randint(0, 256, (n, 3, p.data.image_size, p.data.image_size), dtype=torch.uint8)

    def step():
        opt.zero_grad()
        cnn(x).pow(2).mean().backward()
        opt.step()

    return _clock(step) / n


def _scoring(p) -> float:
    """One ranker's scoring of 1,000 cold items' features against every user's base set (VBPR's form: θ_u·EΦ)."""
    s, k, n_base = _sizes(p), p.rankers.vbpr.embedding_length, p.bpr.n_candidates + 1
    gen = torch.Generator().manual_seed(0)
    theta, emb = torch.randn(s["users"], k, generator=gen), torch.randn(p.data.n_cold_items, k, generator=gen)
    summary = BaseSetSummary(torch.randn(s["users"], n_base, generator=gen), tuple(p.metrics.hit_ranks))
    return _clock(lambda: cold_item_metrics(theta @ emb.T, summary), repeat=3)


def measure(name: str, skip_sampling: bool) -> dict:
    p = load_protocol(name)
    s = _sizes(p)
    row: dict = {"sizes": s}
    per_photo, row["photo_bytes"] = _render_rate(p)
    row["render_s"] = per_photo * (s["items"] + s["pretrain"])
    if not skip_sampling:
        start = time.perf_counter()
        catalog_interactions(p)
        row["sampling_s"] = time.perf_counter() - start
    row["candidates_s"] = _candidates(p)
    fwd, fwd_bwd = _extractor_costs(p)
    row["features_s"] = fwd * s["items"]
    row["insa_s"] = fwd_bwd * p.data.n_cold_items * 50  # INSA: 50 steps, each a forward+backward of 1,000 images
    row["dvbpr_epoch_s"] = _cnnf_train_cost(p) * 2 * s["pairs"] + fwd * s["items"]  # + the catalog embedding
    row["scoring_s"] = _scoring(p)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-sampling", action="store_true", help="skip the full interaction draw (~3 min)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    small, large = (measure(n, args.skip_sampling) for n in ("synthetic-v2", "synthetic-paper-v1"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| step | synthetic-v2 | synthetic-paper-v1 | ratio |")
    print("|---|---:|---:|---:|")
    labels = {"render_s": "render catalog + pre-training photos (1 core)",
              "sampling_s": "draw interactions", "candidates_s": "BPR candidate sets (top 1,000)",
              "features_s": "Φ features of the catalog", "insa_s": "INSA on AlexRank (1,000 items × 50 steps)",
              "dvbpr_epoch_s": "one DVBPR epoch (CNN-F)", "scoring_s": "scoring one ranker (1,000 items × all users)"}
    for key, label in labels.items():
        if key in small:
            a, b = small[key], large[key]
            print(f"| {label} | {_fmt(a)} | {_fmt(b)} | {b / a:,.0f}× |")
    a, b = small["photo_bytes"], large["photo_bytes"]
    print(f"| bytes per stored photo | {a:,.0f} (raw) | {b:,.0f} (JPEG q{load_protocol('synthetic-paper-v1').data.jpeg_quality}) "
          f"| {b / a:.1f}× |")
    print(f"catalog photos stored: synthetic-v2 {a * small['sizes']['items'] / 1e9:.2f} GB, "
          f"synthetic-paper-v1 {b * large['sizes']['items'] / 1e9:.2f} GB")


def _fmt(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


if __name__ == "__main__":
    main()
