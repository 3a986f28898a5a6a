"""ImageNet AlexNet weights handed over offline: torchvision's hash rule, no download, the full SHA-256 in
the manifest and results. The tests make their own weights file and name it by their own hash prefix."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from click.testing import CliRunner

from aipbench.cli import main
from aipbench.hashing import sha256_file
from aipbench.pipeline.loaders import load_extractor
from aipbench.pipeline.steps import open_store
from aipbench.protocol import load_protocol
from aipbench.rankers.nets import weights
from aipbench.rankers.nets.alexnet import normalize
from dvbpr_files import make_raw, uninteracted, write_protocol


@pytest.fixture
def env(tmp_path, monkeypatch, test_weights):
    """A cache and a real-data protocol of the test's own; the published weights are the test's file."""
    monkeypatch.setenv("AIPBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIPBENCH_PROGRESS", "0")
    raw = make_raw()
    (tmp_path / "protocols").mkdir()
    protocol = load_protocol(write_protocol(tmp_path / "protocols", "dvbpr-w", raw, cold=uninteracted(raw)[:5]))
    return test_weights, protocol, tmp_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_published_file_is_torchvisions():
    from torchvision.models import AlexNet_Weights

    url = AlexNet_Weights.IMAGENET1K_V1.url
    assert weights.IMAGENET_ALEXNET.url == url and url.endswith("/" + weights.IMAGENET_ALEXNET.name)
    assert weights.IMAGENET_ALEXNET.sha256_prefix == "7be5be79"


def test_handed_over_weights_give_torchvisions_fc7_and_are_recorded(env, alexnet_file):
    spec, protocol, tmp = env
    reference, path, digest = alexnet_file
    result = run("data", "weights", path)
    assert result.exit_code == 0, result.output
    assert digest in result.output and (tmp / "home" / "weights" / spec.name).is_file()
    store = open_store(protocol)
    store.prepare(["extractor"], log=lambda m: None)
    model = load_extractor(store)
    x = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    with torch.no_grad():
        expected = reference.classifier[:6](torch.flatten(reference.avgpool(reference.features(normalize(x))), 1))
        assert torch.allclose(model(x), expected, atol=1e-5)
    assert store.hashes()["extractor"][f"input:{spec.name}"] == digest
    assert json.loads(store.path("extractor", "history.json").read_text())["sha256"] == digest
    path.rename(path.with_name("moved.pth"))  # where the file came from is no part of the protocol or the cache
    try:
        assert store.state("extractor") == "ok" and load_protocol(protocol.source).sha256 == protocol.sha256
    finally:
        path.with_name("moved.pth").rename(path)


def _one_error_line(result) -> str:
    """The one ``Error:`` line (progress lines may precede it), no traceback, exit status 1."""
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and result.output.strip().endswith(errors[0]), result.output
    return errors[0]


def test_a_file_failing_the_hash_rule_is_refused(env, tmp_path):
    spec, _, _ = env
    other = tmp_path / spec.name  # the right name, other bytes (e.g. random weights)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), other)
    line = _one_error_line(run("data", "weights", other))
    assert str(other) in line and f"does not begin with {spec.sha256_prefix}" in line
    assert not (tmp_path / "home" / "weights").exists()


def test_a_file_that_is_no_alexnet_state_is_refused(env, monkeypatch, tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    own = weights.WeightsFile(name=f"alexnet-x-{sha256_file(path)[:8]}.pth", url="https://example.invalid/x", label="x")
    monkeypatch.setattr(weights, "IMAGENET_ALEXNET", own)  # its hash passes: the content check must catch it
    line = _one_error_line(run("data", "weights", path))
    assert "not a state dict of torchvision's AlexNet" in line


def test_missing_weights_say_where_to_put_them_without_downloading(env):
    spec, protocol, _ = env
    line = _one_error_line(run("prepare", "--protocol", protocol.source, "--only", "extractor"))
    assert "no download is attempted" in line and spec.url in line and f"aipbench data weights {spec.name}" in line


def test_torch_hub_cache_is_used_only_when_it_passes_the_rule(env, alexnet_file, tmp_path):
    spec, protocol, _ = env
    _, path, digest = alexnet_file
    cached = tmp_path / "hub" / "checkpoints" / spec.name
    cached.parent.mkdir(parents=True)
    torch.save({"weight": torch.zeros(3)}, cached)  # a file of the right name, unchecked until now
    line = _one_error_line(run("prepare", "--protocol", protocol.source, "--only", "extractor"))
    assert str(cached) in line and "does not begin with" in line
    cached.write_bytes(path.read_bytes())
    assert run("prepare", "--protocol", protocol.source, "--only", "extractor").exit_code == 0
    assert open_store(protocol).hashes()["extractor"][f"input:{spec.name}"] == digest
