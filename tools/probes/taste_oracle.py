"""Base-set AUC / HR@5 of the test item ranked by the generator's taste, popularity and full logit."""

import argparse
from pathlib import Path

import numpy as np
import torch

from aipbench.data.synthetic import CLASS_COUNTS, _streams, _user_taste, item_attributes
from aipbench.pipeline.loaders import load_base_sets
from aipbench.pipeline.steps import open_store
from aipbench.protocol import load_protocol
from aipbench.scoring.metrics import BaseSetSummary

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("protocol")
parser.add_argument("home", type=Path)
args = parser.parse_args()
proto = load_protocol(args.protocol)
base = torch.as_tensor(load_base_sets(open_store(proto, home=args.home))).long()
syn, streams = proto.data.synthetic, _streams(proto.data.seed)
attrs = item_attributes(proto)
n_items = int(attrs["category"].shape[0])
taste = _user_taste(syn.n_users, syn, torch.Generator().manual_seed(streams["users"]))
# the same popularity draw as sample_interactions: a Zipf law over the eligible (not held-out) items
held = np.random.default_rng(streams["holdout"]).choice(n_items, proto.data.n_cold_items, replace=False)
eligible = np.setdiff1d(np.arange(n_items), held)
rank = np.random.default_rng(streams["popularity"]).permutation(len(eligible)) + 1
log_pop = torch.full((n_items,), -1e3)
log_pop[torch.as_tensor(eligible)] = torch.as_tensor(-syn.popularity_exponent * np.log(rank), dtype=torch.float32)


def taste_of(users, items):
    return sum(taste[k][users[:, None], attrs[k][items]] for k in CLASS_COUNTS)


scorers = {"taste": lambda u, b: syn.taste_weight * taste_of(u, b), "popularity": lambda u, b: log_pop[b],
           "full logit": lambda u, b: syn.popularity_weight * log_pop[b] + syn.taste_weight * taste_of(u, b)}
for name, score in scorers.items():
    chunks = [score(torch.arange(s, min(s + 512, len(base))), base[s:s + 512]) for s in range(0, len(base), 512)]
    summary = BaseSetSummary(torch.cat(chunks), (5,))
    print(f"{name}: base-set AUC {float(summary.test_auc.mean()):.3f} HR@5 {summary.test_hit_rate(5):.4f}")
