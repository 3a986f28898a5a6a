"""EXPA (Eq. 7): 1,000 cold images against the default synthetic protocol's feature extractor, and our batched,
cosine-annealed Adam against the authors' recipe (5,000 constant-rate Adam steps per image).

Run: ``.venv/bin/python -m pytest benchmarks/bench_expa.py --benchmark-enable``. The objective comparison
needs the default protocol prepared in ``$AIPBENCH_HOME`` (it is skipped otherwise).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from aipbench.attacks.expa import expa, expa_objective
from aipbench.protocol import DEFAULT_PROTOCOL, load_protocol
from aipbench.rankers.extractor import make_extractor

REPO = Path(__file__).resolve().parents[1]


def _submission():
    spec = importlib.util.spec_from_file_location("expa_submission", REPO / "submissions" / "expa" / "attack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EXPA


def test_expa_1000_items(benchmark):
    """The reference submission's EXPA on 1,000 images (Φ of the default protocol's architecture, random weights:
    the cost does not depend on the values)."""
    torch.manual_seed(0)
    extractor = make_extractor(load_protocol(DEFAULT_PROTOCOL)).eval().requires_grad_(False)
    images = np.random.default_rng(0).integers(0, 256, (1000, 3, 64, 64), dtype=np.uint8)
    attack = _submission()
    run = lambda: expa(extractor, images, images[0], epsilon=32, steps=attack.steps["extractor"],  # noqa: E731
                       learning_rate=attack.learning_rate, schedule="cosine", batch_size=attack.batch_size)
    out = benchmark.pedantic(run, rounds=1, iterations=1)
    assert out.shape == images.shape


@pytest.fixture(scope="module")
def prepared():
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store

    store = open_store(load_protocol(DEFAULT_PROTOCOL))
    if any(store.state(n) != "ok" for n in ("dataset", "vbpr", "dvbpr")):
        pytest.skip(f"{DEFAULT_PROTOCOL} is not prepared in $AIPBENCH_HOME")
    return store, load_dataset(store)


@pytest.mark.parametrize("model_name", ["extractor", "dvbpr"])
def test_expa_reaches_the_reference_objective_in_fewer_steps(benchmark, prepared, model_name):
    from aipbench.pipeline.loaders import load_ranker

    store, dataset = prepared
    ranker = load_ranker(store, "dvbpr" if model_name == "dvbpr" else "vbpr")
    model = ranker.cnn if model_name == "dvbpr" else ranker.extractor
    images = np.array(dataset.images[dataset.cold_items[:4]])
    hook = np.array(dataset.images[dataset.hook_item])
    attack = _submission()
    ours = benchmark.pedantic(
        lambda: expa(model, images, hook, epsilon=32, steps=attack.steps[model_name], learning_rate=attack.learning_rate,
                     schedule="cosine"), rounds=1, iterations=1)
    reference = expa(model, images, hook, epsilon=32, steps=5000, learning_rate=0.01)  # the authors' recipe
    ours_value, ref_value = expa_objective(model, ours, hook).mean(), expa_objective(model, reference, hook).mean()
    benchmark.extra_info.update(steps=attack.steps[model_name], objective=ours_value, reference_objective=ref_value,
                                clean_objective=expa_objective(model, images, hook).mean())
    assert ours_value <= ref_value
