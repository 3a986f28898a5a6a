"""Φ: the synthetic pre-training (torchvision AlexNet and its ImageNet weights: test_weights.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torchvision

from aipbench.errors import InputError
from aipbench.hashing import sha256_file
from aipbench.pipeline.loaders import load_extractor
from aipbench.protocol import load_protocol
from aipbench.rankers.nets.alexnet import build_extractor, normalize


def test_tiny_extractor_is_pretrained_and_frozen(tiny_rankers):
    import json

    history = json.loads(tiny_rankers.path("extractor", "history.json").read_text())
    assert len(history["loss"]) == tiny_rankers.protocol.rankers.extractor.pretrain.epochs
    assert history["loss"][-1] < history["loss"][0]
    model = load_extractor(tiny_rankers)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_nuisance_pretraining_adds_head_groups_that_class_scores_ignore(tiny):
    from aipbench.data.synthetic import N_NUISANCE
    from aipbench.rankers.extractor import GROUPS, class_log_probs, make_extractor, pretrain_extractor

    ext = tiny.rankers.extractor
    pretrain = dataclasses.replace(ext.pretrain, nuisance_weight=1.0, nuisance_bins=3)
    proto = dataclasses.replace(tiny, rankers=dataclasses.replace(
        tiny.rankers, extractor=dataclasses.replace(ext, pretrain=pretrain)))
    assert proto.sha256 != tiny.sha256
    assert make_extractor(proto).classifier[6].out_features == sum(GROUPS) + 3 * N_NUISANCE
    model, history = pretrain_extractor(proto)
    accuracy = history["holdout_accuracy"][-1]
    assert set(accuracy) == {"category", "colour", "pattern", *(f"nuisance{k}" for k in range(N_NUISANCE))}
    logits = model.logits(torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8))
    joint = class_log_probs(logits)
    assert joint.shape == (4, 320)
    assert torch.equal(joint, class_log_probs(logits[:, : sum(GROUPS)]))
    assert torch.allclose(joint.exp().sum(1), torch.ones(4), atol=1e-5)
    # without the setting the head and the training are synthetic-v1's: three class groups only
    assert make_extractor(tiny).classifier[6].out_features == sum(GROUPS)
