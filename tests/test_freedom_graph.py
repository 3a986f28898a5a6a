"""The graph multimodal recommender (submissions/freedom-graph): a cold image enters through its visual
neighbours — moving the image moves the neighbours and its embedding — and its score is differentiable in the
pixels; trained in its sandbox and judged on tiny (-m slow)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli, sandbox_marker

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "submissions" / "freedom-graph"


def _module():
    spec = importlib.util.spec_from_file_location("freedom_graph_under_test", FOLDER / "ranker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # our own reference file, read by the test as an outside author's would be
    return module


@pytest.fixture
def model():
    """A FreedomGraph over 30 catalog images of 3×4×4 pixels, Φ their flattened pixels: the neighbours of an
    image are the catalog images most like it; item 29 is cold (never a neighbour)."""
    module = _module()
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(30, 3, 4, 4, generator=gen)
    extractor = torch.nn.Flatten()
    ranker = module.FreedomGraph(extractor, extractor(images), n_users=5, dim=8, neighbour_ids=torch.arange(29))
    with torch.no_grad():
        ranker.user_final.normal_(generator=gen)
        ranker.item_final.normal_(generator=gen)
        ranker.W.normal_(0, 0.1, generator=gen)
    return ranker.eval(), images


def test_a_cold_image_is_its_visual_neighbours(model):
    ranker, images = model
    near_3, near_17 = images[3:4], images[17:18]
    weights, ids = ranker.neighbours(ranker.encode(near_3))
    assert ids[0, 0] == 3 and weights[0, 0] == weights[0].max()  # itself, most similar, weighs most
    moved_weights, moved = ranker.neighbours(ranker.encode(near_17))
    assert moved[0, 0] == 17 and set(moved[0].tolist()) != set(ids[0].tolist())  # moving the image moves them
    side = ranker.item_side(ranker.encode(torch.cat([near_3, near_17])))
    assert not torch.allclose(side.vec[0], side.vec[1])
    expected = (weights[0].unsqueeze(1) * ranker.item_final[ids[0]]).sum(0) + ranker.encode(near_3)[0] @ ranker.W.T
    assert torch.allclose(side.vec[0], expected, atol=1e-5)
    _, cold = ranker.neighbours(ranker.encode(images[29:30]))
    assert 29 not in cold[0].tolist()  # a cold item is never anyone's neighbour


def test_a_cold_image_s_score_is_differentiable_in_its_pixels(model):
    ranker, images = model
    x = images[5:6].clone().requires_grad_(True)
    item, users = ranker.item_side(ranker.encode(x)), ranker.user_side(torch.arange(5))
    (users.vec @ item.vec.T).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.slow
@sandbox_marker()
def test_it_trains_in_its_sandbox_and_is_judged_on_tiny(tiny_rankers, tmp_path):
    out = tmp_path / "freedom-graph.json"
    result = run_cli(["evaluate", str(FOLDER), "--protocol", "tiny", "--attacks", "insa,expa", "--eps", "32",
                      "--items", "10", "--out", str(out)], tiny_rankers.root.parent)
    assert result.exit_code == 0, result.output[-2000:]
    assert "freedom-graph (ranker) on tiny" in result.output and out.exists()
    doc = json.loads(out.read_text())  # pinned: the numbers submissions/freedom-graph/README.md quotes
    assert doc["clean"]["test_auc"] == pytest.approx(0.6498, abs=1e-4)
    assert doc["clean"]["test_hr"]["5"] == pytest.approx(0.1867, abs=1e-4)
    (insa,), (expa,) = doc["attacks"]["insa"]["results"], doc["attacks"]["expa"]["results"]
    assert insa["cooperative"]["hr"]["5"] == pytest.approx(0.0037, abs=1e-4)
    assert insa["adversarial"]["hr"]["5"] == pytest.approx(0.0340, abs=1e-4)
    assert expa["adversarial"]["hr"]["5"] == pytest.approx(0.0723, abs=1e-4)
