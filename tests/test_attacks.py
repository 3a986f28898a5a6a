"""The reference attacks' mechanics on the tiny protocol: budgets, quantization, determinism, what each
one optimizes, the ε sweep, and the knowledge level each submission runs under."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from aipbench.attacks.expa import expa, expa_objective
from aipbench.attacks.grants import Classifier, popular_class
from aipbench.attacks.perturb import quantize
from aipbench.attacks.sema import composite, hook_copy
from aipbench.attacks.taamr import taamr
from aipbench.cli import main
from aipbench.harness.image_checks import check_adversarial
from aipbench.pipeline.loaders import load_dataset, load_extractor, load_ranker
from aipbench.results.document import load_results

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tiny_rankers):
    dataset = load_dataset(tiny_rankers)
    items = dataset.cold_items[:8]
    return dataset, items, np.array(dataset.images[items]), np.array(dataset.images[dataset.hook_item])


def test_quantize_rounds_and_keeps_the_budget():
    orig = torch.tensor([[0.0, 10.0, 250.0]]) / 255
    x = torch.tensor([[-0.2, 42.6, 255.4]]) / 255
    assert quantize(x, orig, 32).tolist() == [[0, 42, 255]]


@pytest.mark.parametrize("model_of", ["vbpr", "dvbpr"])
def test_expa_pulls_toward_the_hook_within_budget(tiny_rankers, data, model_of):
    _, items, images, hook = data
    ranker = load_ranker(tiny_rankers, model_of)
    model = ranker.cnn if model_of == "dvbpr" else ranker.extractor
    run = lambda bs: expa(model, images, hook, epsilon=16, steps=40, learning_rate=0.01, schedule="cosine",  # noqa: E731
                          batch_size=bs)
    a, b = run(3), run(8)
    assert np.array_equal(a, run(3))  # deterministic
    # images are optimized independently: another batch size differs only by float rounding in the kernels
    assert (a != b).mean() < 0.01
    check_adversarial(a, images, cold_items=items, returned_items=items, epsilon=16, source="expa")
    before, after = expa_objective(model, images, hook), expa_objective(model, a, hook)
    assert (after < before).all()


def test_noise_control_is_zero_mean_within_budget_and_never_clipped():
    import runpy
    from types import SimpleNamespace

    from aipbench.attacks.context import AttackContext

    UniformNoise = runpy.run_path(str(REPO / "submissions" / "noise" / "attack.py"))["UniformNoise"]
    flat = np.array([0, 3, 128, 240, 255], dtype=np.uint8)  # the dark and light ends narrow the noise
    images = np.broadcast_to(flat[None, :, None, None], (200, 5, 40, 40)).copy()
    items = np.arange(1000, 1200)

    def context(sel):
        return SimpleNamespace(seed=7, epsilon=32, cold_images=images[sel], cold_items=items[sel],
                               item_rng=lambda item: AttackContext.item_rng(SimpleNamespace(seed=7), item))

    out = UniformNoise().run(context(slice(None)))
    diff = out.astype(int) - images
    assert out.dtype == np.uint8 and np.abs(diff).max() == 32
    room = np.minimum(np.minimum(images.astype(int), 255 - images.astype(int)), 32)
    assert (np.abs(diff) <= room).all()  # never past 0 or 255, so never clipped; 0 and 255 stay put
    for channel, value in enumerate(flat):  # zero-mean per level (clipped noise darkens 240 by ~1.8)
        assert abs(diff[:, channel].mean()) < 0.1, value
    assert np.array_equal(out, UniformNoise().run(context(slice(None))))
    # each item's noise is its own: the same whatever other items it is drawn with (any split of the items)
    assert np.array_equal(out[50:70], UniformNoise().run(context(slice(50, 70))))


def test_c_sema_composite(data):
    _, _, images, hook = data
    out = composite(images, hook)
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert np.array_equal(out, composite(images, hook))  # deterministic
    size = images.shape[-1]
    # the left half above the text strip is the cold item's own photo, untouched
    assert np.array_equal(out[:, :, : size // 2, : size // 4], images[:, :, : size // 2, : size // 4])
    # the inset is the same for every item (the resized hook), and it is not the cold image
    inset = out[:, :, size // 2 - 2 : size // 2 + 2, size - size // 4 :]
    assert (inset == inset[:1]).all() and not np.array_equal(inset, images[:, :, size // 2 - 2 : size // 2 + 2, size - size // 4 :])
    strip = out[:, :, -3:, :]
    assert (strip == 255).mean() > 0.5 and (strip < 100).any()  # white strip with dark text
    assert np.array_equal(hook_copy(images, hook), np.broadcast_to(hook, images.shape))


def test_taamr_pushes_toward_the_popular_class(tiny_rankers, data):
    dataset, items, images, _ = data
    classifier = Classifier(load_extractor(tiny_rankers), joint=True)
    target = popular_class(tiny_rankers, dataset)
    fgsm = taamr(classifier, images, target, epsilon=16, steps=1)
    pgd = taamr(classifier, images, target, epsilon=16, steps=20)
    for adv in (fgsm, pgd):
        check_adversarial(adv, images, cold_items=items, returned_items=items, epsilon=16, source="taamr")
    assert np.array_equal(pgd, taamr(classifier, images, target, epsilon=16, steps=20, batch_size=3))
    moved = np.abs(fgsm.astype(int) - images.astype(int))
    # FGSM: one full-size step, except where the gradient is 0 (pixels no stride-4 filter reads) or clipped
    assert ((moved == 16) | (moved == 0) | (fgsm == 0) | (fgsm == 255)).all() and (moved == 16).mean() > 0.5
    with torch.no_grad():
        logp = [classifier(torch.from_numpy(x))[:, target].mean().item() for x in (images, fgsm, pgd)]
    assert logp[0] < logp[1] < logp[2]  # PGD-20 reaches the target class better than FGSM


def evaluate_cli(home, folder, out, *extra):
    return CliRunner().invoke(main, ["evaluate", str(folder), "--protocol", "tiny", "--out", str(out), *extra],
                              env={"AIPBENCH_HOME": str(home)})


@pytest.mark.parametrize(
    ("name", "rankers", "targets"),
    [
        ("c-sema", "dvbpr", ["any"]),
        ("hook-copy", "alexrank", ["any"]),
        ("taamr-fgsm", "vbpr", ["any"]),
    ],
)
def test_reference_submissions_run_under_their_level(tiny_rankers, tmp_path, in_process, name, rankers, targets):
    out = tmp_path / f"{name}.json"
    result = evaluate_cli(tiny_rankers.root.parent, REPO / "submissions" / name, out, "--rankers", rankers)
    assert result.exit_code == 0, result.output
    doc = load_results(out)
    assert [r["attack_target"] for r in doc["results"]] == targets
    assert doc["submission"]["knowledge"] == {"taamr-fgsm": "classifier"}.get(name, "semantic")
    # EXPA (expert: one run per image model) is checked on the regression pipeline's own document
    if name == "hook-copy":
        assert doc["results"][0]["image_quality"]["max_linf"] > 32  # unbounded


def test_epsilon_sweep(tiny_rankers, tmp_path, in_process):
    out = tmp_path / "sweep.json"
    result = evaluate_cli(tiny_rankers.root.parent, REPO / "submissions" / "insa", out,
                          "--rankers", "dvbpr", "--eps", "16,4")
    assert result.exit_code == 0, result.output
    rows = load_results(out)["results"]
    assert [(r["ranker"], r["epsilon"]) for r in rows] == [("dvbpr", 4), ("dvbpr", 16)]
    assert [r["image_quality"]["max_linf"] for r in rows] == [4, 16]
    assert rows[0]["adversarial"]["hr"]["5"] < rows[1]["adversarial"]["hr"]["5"]  # a larger budget is stronger


@pytest.mark.parametrize(
    ("submission", "eps", "rule"),
    [
        ("c-sema", "8", "an epsilon sweep needs a code submission with norm = \"linf\""),
        ("insa", "0,8", "epsilon 0 is out of range 1..255"),
        ("insa", "8,x", "is not a comma-separated list of integers"),
    ],
)
def test_bad_sweeps_are_one_line(tiny_rankers, tmp_path, submission, eps, rule):
    out = tmp_path / "r.json"
    result = evaluate_cli(tiny_rankers.root.parent, REPO / "submissions" / submission, out, "--eps", eps)
    assert result.exit_code != 0 and rule in result.output, result.output
    assert not out.exists()


def test_n_sema_example_makes_a_valid_image_submission(tiny_rankers, data, tmp_path):
    import importlib.util
    import shutil

    example = REPO / "submissions" / "examples" / "n-sema-images"
    spec = importlib.util.spec_from_file_location("make_images", example / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dataset, items, images, hook = data
    made = module.place(hook, images[0])
    assert made.shape == (64, 64, 3) and made.dtype == np.uint8
    assert not np.array_equal(made, hook.transpose(1, 2, 0))  # the product was placed in the hook photo
    assert np.array_equal(made[:8], hook.transpose(1, 2, 0)[:8])  # and the top of the hook photo is untouched
    # the folder submission, filled for the tiny protocol, evaluates like any image submission
    folder = tmp_path / "n-sema"
    shutil.copy(example / "submission.toml", folder.mkdir() or folder / "submission.toml")
    (folder / "images").mkdir()
    from PIL import Image

    for item in dataset.cold_items:
        Image.fromarray(module.place(hook, np.asarray(dataset.images[item]))).save(folder / "images" / f"{item}.png")
    result = evaluate_cli(tiny_rankers.root.parent, folder, tmp_path / "n.json", "--rankers", "dvbpr")
    assert result.exit_code == 0, result.output
    assert load_results(tmp_path / "n.json")["submission"]["source"] == "images"
