"""Φ pre-trained with extra nuisance-attribute groups; AlexRank refit on it; INSA and a noise control."""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from aipbench.attacks.insa import insa
from aipbench.data.synthetic import CLASS_COUNTS, _streams, pretraining_set
from aipbench.models.alexnet import build_extractor
from aipbench.pipeline import load_base_sets, load_dataset, open_store
from aipbench.protocol import load_protocol
from aipbench.rankers.alexrank import AlexRank
from aipbench.rankers.extractor import GROUPS
from aipbench.scoring import cold_hit_rates, summarize_base_sets

N_AUX, BINS = 10, 4

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("protocol")
parser.add_argument("home", type=Path)
parser.add_argument("--aux-weight", type=float, default=0.3, help="0: synthetic-v1's extractor, re-trained")
parser.add_argument("--items", type=int, default=100)
args = parser.parse_args()
torch.set_num_threads(2)
proto = load_protocol(args.protocol)
store = open_store(proto, home=args.home)
ds, base = load_dataset(store), load_base_sets(store)


def nuisance_labels(n: int, seed: int) -> torch.Tensor:
    """Quartile bins of the renderer's per-item draws, replayed in its order (render.render)."""
    g = torch.Generator().manual_seed(_streams(seed)["render"])
    u = lambda *shape: torch.rand(*shape, generator=g) * 2 - 1  # noqa: E731
    angle, scale, shift, tone, tint = u(n), u(n), u(n, 2), u(n), u(n, 3)
    phase, bg_level = torch.rand(n, generator=g) * 2 - 1, u(n)
    columns = [angle, scale, shift[:, 0], shift[:, 1], tone, tint[:, 0], tint[:, 1], tint[:, 2], phase, bg_level]
    return torch.stack([((c + 1) / 2 * BINS).long().clamp(0, BINS - 1) for c in columns], 1)


began = time.time()
cfg = proto.rankers.extractor.pretrain
torch.manual_seed(cfg.seed)
gen = torch.Generator().manual_seed(cfg.seed)
aux = args.aux_weight > 0
model = build_extractor(proto.rankers.extractor, sum(GROUPS) + (BINS * N_AUX if aux else 0))
images, attrs = pretraining_set(proto, cfg.n_images, cfg.seed)
labels, groups = torch.stack([attrs[k] for k in CLASS_COUNTS], 1), list(GROUPS)
if aux:
    labels, groups = torch.cat([labels, nuisance_labels(cfg.n_images, cfg.seed)], 1), groups + [BINS] * N_AUX
x, n_train = torch.from_numpy(images), cfg.n_images - cfg.n_images // 10
opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
for _ in range(cfg.epochs):
    model.train()
    order = torch.randperm(n_train, generator=gen)
    for s in range(0, n_train, cfg.batch_size):
        b = order[s:s + cfg.batch_size]
        heads = torch.split(model.classifier[6](model(x[b])), groups, 1)
        loss = sum((1.0 if k < len(GROUPS) else args.aux_weight) * F.cross_entropy(h, labels[b, k])
                   for k, h in enumerate(heads))
        opt.zero_grad()
        loss.backward()
        opt.step()
phi = model.eval().requires_grad_(False)
with torch.no_grad():
    holdout = torch.cat([phi.logits(x[s:s + 512]) for s in range(n_train, cfg.n_images, 512)])
    accuracy = [float((h.argmax(1) == labels[n_train:, k]).float().mean()) for k, h in enumerate(torch.split(holdout, groups, 1))]
    features = torch.cat([phi(torch.as_tensor(np.array(ds.images[s:s + 512])).float() / 255) for s in range(0, ds.n_items, 512)])
ranker = AlexRank.fit(phi, features, ds.train_indptr, ds.train_items)
summary = summarize_base_sets(ranker, base)
users, tau = ranker.user_side(ranker.all_users()), summary.thresholds[5]
centre = ranker.mean.mean(0, keepdim=True)  # Eq. 6's linear optimum for AlexRank: the mean of the users' means


def hits(images=None, feats=None):
    with torch.no_grad():
        feats = ranker.encode(torch.as_tensor(images).float() / 255) if feats is None else feats
        scores = users.vec @ ranker.item_side(feats).vec.T + users.bias[:, None]
        return cold_hit_rates(scores, tau).numpy(), float((feats - centre).norm(dim=1).mean())


cold = np.asarray(ds.images[ds.cold_items[:args.items]])
coop, d_coop = hits(cold)
adv, d_adv = hits(insa(ranker, cold, epsilon=32, steps=50, learning_rate=0.01, objective="linear"))
noisy = np.clip(cold.astype(int) + np.random.default_rng(0).integers(-32, 33, cold.shape), 0, 255).astype(np.uint8)
noise, _ = hits(noisy)
print(f"aux weight {args.aux_weight}: holdout accuracy {' '.join(f'{a:.2f}' for a in accuracy)}; AlexRank test AUC "
      f"{float(summary.test_auc.mean()):.3f} HR@5 {summary.test_hit_rate(5):.4f}; centre HR@5 {hits(feats=centre)[0].mean():.4f}; "
      f"cooperative {coop.mean():.4f} (distance to centre {d_coop:.1f}), INSA {adv.mean():.4f} ({d_adv:.1f}), "
      f"lift {adv.mean() / max(coop.mean(), 1e-9):.1f}x; noise {noise.mean():.4f}, p {stats.ttest_rel(noise, coop).pvalue:.3g}; "
      f"{time.time() - began:.0f} s")
