"""Φ: torchvision AlexNet parity, pinned local weights, the synthetic pre-training."""

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


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    reference = torchvision.models.alexnet(weights=None).eval()  # no download: random ImageNet-shaped weights
    path = tmp_path_factory.mktemp("weights") / "alexnet.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


def _cfg(path, sha):
    extractor = load_protocol("amazon-men-v1").rankers.extractor
    return dataclasses.replace(extractor, weights_file=str(path), weights_sha256=sha)


def test_local_weights_pinned_by_sha256_give_torchvision_fc7(weights):
    reference, path = weights
    model = build_extractor(_cfg(path, sha256_file(path)), 1000)
    x = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    h = torch.flatten(reference.avgpool(reference.features(normalize(x))), 1)
    expected = reference.classifier[:6](h)  # fc7 after ReLU (dropout inactive in eval)
    assert model.feature_dim == 4096
    assert torch.allclose(model(x), expected, atol=1e-5)
    assert torch.allclose(model.logits(x), reference(normalize(x)), atol=1e-4)


def test_wrong_sha256_is_a_one_line_error_naming_the_file(weights):
    _, path = weights
    with pytest.raises(InputError, match=r"alexnet\.pth: SHA-256 [0-9a-f]{64} does not match"):
        build_extractor(_cfg(path, "0" * 64), 1000)


def test_missing_weights_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match="weights file not found"):
        build_extractor(_cfg(tmp_path / "nope.pth", "0" * 64), 1000)


def test_torchvision_weights_metadata_is_what_the_protocols_rely_on():
    """The download path (no network here) uses torchvision's ImageNet weights: check their metadata."""
    from torchvision.models import AlexNet_Weights

    w = AlexNet_Weights.IMAGENET1K_V1
    assert len(w.meta["categories"]) == 1000
    assert w.url.endswith(".pth") and "alexnet-owt-7be5be79" in w.url  # torchvision's hash-prefixed file


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
