"""Φ pre-trained with other settings on a prepared protocol's data; AlexRank refit on it; INSA and a noise control."""

import argparse
import dataclasses
import json
import runpy
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from aipbench.attacks.insa import insa
from aipbench.pipeline.loaders import load_base_sets, load_dataset
from aipbench.pipeline.steps import open_store
from aipbench.protocol import load_protocol
from aipbench.rankers.alexrank import AlexRank
from aipbench.rankers.extractor import extract_features, pretrain_extractor
from aipbench.scoring.metrics import cold_hit_rates, summarize_base_sets
from aipbench.scoring.significance import paired_t_test

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("protocol")
parser.add_argument("home", type=Path)
parser.add_argument("--pretrain", default="{}", metavar="JSON",
                    help='settings of [rankers.extractor.pretrain] to change, e.g. \'{"nuisance_weight": 3.0, "epochs": 20}\'')
parser.add_argument("--items", type=int, default=200, help="the first N cold items")
args = parser.parse_args()
torch.set_num_threads(2)
began = time.time()
proto = load_protocol(args.protocol)
store = open_store(proto, home=args.home)  # data and base sets come from here; Φ is re-trained
ds, base = load_dataset(store), load_base_sets(store)
extractor = proto.rankers.extractor
pretrain = dataclasses.replace(extractor.pretrain, **json.loads(args.pretrain))
trial = dataclasses.replace(proto, rankers=dataclasses.replace(
    proto.rankers, extractor=dataclasses.replace(extractor, pretrain=pretrain)))
phi, history = pretrain_extractor(trial)
ranker = AlexRank.fit(phi, extract_features(phi, ds.images), train_indptr=ds.train_indptr, train_items=ds.train_items)
summary = summarize_base_sets(ranker, base)
all_users, tau = ranker.all_users(), summary.thresholds[5]


def hits(images=None, feats=None):
    with torch.no_grad():
        scores = (ranker.score_features(all_users, feats) if images is None
                  else ranker.score_images(all_users, torch.as_tensor(images)))
        return cold_hit_rates(scores, tau).numpy()


cold = np.asarray(ds.images[ds.cold_items[:args.items]])
# the noise control exactly as the reference submission makes it (zero-mean, never clipped)
noise_control = runpy.run_path(str(Path(__file__).resolve().parents[2] / "submissions" / "noise" / "attack.py"))["UniformNoise"]
noisy = noise_control().run(SimpleNamespace(seed=0, epsilon=32, cold_images=cold))
coop, noise = hits(cold), hits(noisy)
adv = hits(insa(ranker, cold, epsilon=32, steps=50, learning_rate=0.01, objective="linear"))
centre = hits(feats=ranker.mean.mean(0, keepdim=True)).mean()  # Eq. 6's linear optimum for AlexRank
accuracy = history["holdout_accuracy"][-1]
nuisance = [v for k, v in accuracy.items() if k.startswith("nuisance")]
print(f"{args.pretrain}: hold-out accuracy category {accuracy['category']:.2f} colour {accuracy['colour']:.2f} "
      f"pattern {accuracy['pattern']:.2f} nuisance {np.mean(nuisance) if nuisance else float('nan'):.2f}; AlexRank "
      f"test AUC {float(summary.test_auc.mean()):.3f} HR@5 {summary.test_hit_rate(5):.4f}; centre HR@5 {centre:.4f}; "
      f"cooperative {coop.mean():.5f}, INSA {adv.mean():.5f}, lift {adv.mean() / max(coop.mean(), 1e-9):.1f}x; "
      f"noise p {paired_t_test(noise, coop)[1]:.3f}; {time.time() - began:.0f} s")
