"""DVBPR with a ResNet-18 backbone (submissions/resnet-dvbpr): its image model takes pixels as the interface says
and is differentiable in them; trained in its sandbox and judged on tiny, its numbers pinned (-m slow)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli, sandbox_marker

FOLDER = Path(__file__).resolve().parents[1] / "submissions" / "resnet-dvbpr"
PINS = {"test_auc": 0.6718, "test_hr5": 0.1200, "cooperative": 0.0157, "insa": 0.1253, "expa": 0.0107}


def test_its_image_model_takes_pixels_and_passes_gradients():
    spec = importlib.util.spec_from_file_location("resnet_dvbpr_under_test", FOLDER / "ranker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # our own reference file, read as an outside author's would be
    torch.manual_seed(0)
    ranker = module.ResNetDVBPR(module.make_cnn(8), 3, torch.zeros(5, 8)).eval()
    with torch.no_grad():
        ranker.theta_user.normal_()  # trained users (zeros before training would give no gradient)
    pixels = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(ranker.image_model(pixels), ranker.image_model(pixels.float() / 255))  # uint8 or [0, 1]
    x = (pixels.float() / 255).requires_grad_(True)
    (ranker.user_side(torch.arange(3)).vec @ ranker.item_side(ranker.encode(x)).vec.T).sum().backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.slow
@sandbox_marker()
def test_it_trains_in_its_sandbox_and_is_judged_on_tiny(tiny_rankers, tmp_path):
    out = tmp_path / "resnet-dvbpr.json"
    result = run_cli(["evaluate", str(FOLDER), "--protocol", "tiny", "--attacks", "insa,expa", "--eps", "32",
                      "--items", "10", "--out", str(out)], tiny_rankers.root.parent)
    assert result.exit_code == 0, result.output[-2000:]
    doc = json.loads(out.read_text())  # pinned (one torch thread, as the suite runs): the numbers its README quotes
    (insa,), (expa,) = doc["attacks"]["insa"]["results"], doc["attacks"]["expa"]["results"]
    measured = {"test_auc": doc["clean"]["test_auc"], "test_hr5": doc["clean"]["test_hr"]["5"],
                "cooperative": insa["cooperative"]["hr"]["5"], "insa": insa["adversarial"]["hr"]["5"],
                "expa": expa["adversarial"]["hr"]["5"]}
    assert measured == pytest.approx(PINS, abs=1e-4), measured
