"""A per-user visual model's reach inside the base sets: θ_u refit by L2-BPR on synthetic-v1's frozen Φ."""

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aipbench.pipeline.loaders import load_base_sets, load_dataset, load_extractor
from aipbench.pipeline.steps import open_store
from aipbench.protocol import load_protocol
from aipbench.scoring.metrics import BaseSetSummary

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("protocol")
parser.add_argument("home", type=Path)
parser.add_argument("--phi-home", type=Path, required=True, help="a cache holding synthetic-v1's extractor")
parser.add_argument("--l2", type=float, default=1e-4)
args = parser.parse_args()
torch.set_num_threads(2)
store = open_store(load_protocol(args.protocol), home=args.home)
phi = load_extractor(open_store(load_protocol("synthetic-v1"), home=args.phi_home))
ds, base = load_dataset(store), torch.as_tensor(load_base_sets(store)).long()
with torch.no_grad():
    E = torch.cat([phi(torch.as_tensor(np.array(ds.images[s:s + 512])).float() / 255) for s in range(0, ds.n_items, 512)])
indptr = np.asarray(ds.train_indptr)
n_users = len(indptr) - 1
users = torch.as_tensor(np.repeat(np.arange(n_users), np.diff(indptr)))
positives = torch.as_tensor(np.asarray(ds.train_items)).long()
catalog = torch.as_tensor(np.setdiff1d(np.arange(ds.n_items), ds.cold_items)).long()
theta = torch.zeros(n_users, E.shape[1], requires_grad=True)
opt, gen = torch.optim.Adam([theta], lr=0.05), torch.Generator().manual_seed(0)
for _ in range(300):  # full batch: every training pair against 20 sampled catalog negatives
    negatives = catalog[torch.randint(len(catalog), (len(users), 20), generator=gen)]
    pos = (theta[users] * E[positives]).sum(1, keepdim=True)
    neg = torch.einsum("nk,nmk->nm", theta[users], E[negatives])
    loss = -F.logsigmoid(pos - neg).mean() + args.l2 * theta.pow(2).sum(1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
theta = theta.detach()
summary = BaseSetSummary(torch.cat([(theta[s:s + 512, None, :] * E[base[s:s + 512]]).sum(-1)
                                    for s in range(0, len(base), 512)]), (5,))
print(f"{len(ds.train_items) / n_users:.2f} training items per user; per-user visual θ on Φ: base-set AUC "
      f"{float(summary.test_auc.mean()):.4f} HR@5 {summary.test_hit_rate(5):.4f}")
