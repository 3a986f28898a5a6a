"""Defense code in its own sandboxed worker process: it sees none of the cache, writes nothing outside its
sandbox, dies with the harness, and gives the same numbers as the same code in-process (its buffers' seals:
test_sandbox.py)."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import defense_folder, sandbox_marker

from aipbench.cli import main

REPO = Path(__file__).resolve().parents[1]
needs_sandbox = sandbox_marker()


@pytest.fixture
def home(private_home):
    """A private copy of the tiny cache (the tests below try to damage it)."""
    return private_home


def _prober(home: Path, tmp_path: Path, kind: str, *, sandboxed: bool = True) -> Path:
    """A defense whose constructor reports how much of the cache it could read and where it could write."""
    (root,) = [p for p in home.iterdir() if p.name.startswith("tiny-")]
    secrets = [str(root / "manifest.json"), str(root / "dataset" / "interactions.npz"), str(root / "vbpr" / "vbpr.pt")]
    targets = [str(root / "evil.txt"), str(REPO / "evil.txt"), str(tmp_path / "evil.txt")] if sandboxed \
        else [str(tmp_path / "evil.txt")]
    code = f"""
import os


class D:
    def __init__(self):
        read = 0
        for path in {secrets!r}:
            try:
                read += len(open(path, "rb").read(16)) > 0
            except OSError:
                pass
        wrote = 0
        for path in {targets!r}:
            try:
                open(path, "w").write("x")
                wrote += 1
            except OSError:
                pass
        seen = os.path.exists({str(root)!r})
        raise RuntimeError(f"read {{read}} seen {{seen}} wrote {{wrote}} home {{'AIPBENCH_HOME' in os.environ}}")

    def transform(self, x):
        return x

    def score(self, x):
        return x.float().mean((1, 2, 3))

    def fit(self, context):
        pass

    def train(self, context):
        return context.undefended
"""
    extra = 'defends = "vbpr"\n' if kind == "training" else ""
    return defense_folder(tmp_path / f"prober-{kind}", code, kind=kind, extra=extra)


def _evaluate(home: Path, folder: Path, *extra: str):
    return CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(folder), "--protocol", "tiny", "--rankers",
                                     "vbpr", "--items", "10", *extra], env={"AIPBENCH_HOME": str(home)})


@needs_sandbox
@pytest.mark.parametrize("kind", ["transform", "detector", "training"])
def test_defense_code_can_read_nothing_of_the_cache_and_write_nothing_outside_its_scratch(home, tmp_path, kind):
    (root,) = [p for p in home.iterdir() if p.name.startswith("tiny-")]
    result = _evaluate(home, _prober(home, tmp_path, kind))
    assert result.exit_code == 1
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    # the cache is not in the sandbox's filesystem at all: nothing to read, list or write
    assert "read 0 seen False wrote 0 home False" in error, error
    assert not (root / "evil.txt").exists() and not (REPO / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_unsandboxed_defense_code_can_read_the_cache(home, tmp_path):
    """The control: without the sandbox the same code reads the cache (so the test above can fail)."""
    result = _evaluate(home, _prober(home, tmp_path, "transform", sandboxed=False), "--unsandboxed")
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "read 3" in error and "wrote 1" in error, error
    assert "Traceback" not in result.output


def _worker(folder: Path, cls: str, **options):
    from aipbench.harness.isolation.defense_worker import open_defense

    return open_defense(folder / "defense.py", cls, options.pop("params", {}), **options)


@needs_sandbox
def test_a_transform_in_the_sandbox_gives_the_images_it_gives_in_process(tiny_prepared):
    from aipbench.defenses.guard import checked_transform
    from aipbench.defenses.transforms import Transformed, apply_transform

    images = np.asarray(tiny_prepared.dataset.images[:300])
    here = _worker(REPO / "submissions" / "jpeg", "JPEGDefense", params={"quality": 30}, isolation="none")
    there = _worker(REPO / "submissions" / "jpeg", "JPEGDefense", params={"quality": 30})
    try:
        assert np.array_equal(apply_transform(there, images, batch_size=128), apply_transform(here, images))
        wrapped = Transformed(torch.nn.Identity(), there)
        copied = pickle.loads(pickle.dumps(wrapped))  # what an adaptive attack's child gets: the class, re-imported
        assert type(copied.defense).__name__ == "JPEGDefense" and copied.defense.quality == 30
        x = torch.from_numpy(images[:4].copy())
        assert torch.equal(checked_transform(copied.defense, x), checked_transform(there, x))
    finally:
        there.close()


@needs_sandbox
def test_a_detector_fitted_in_the_sandbox_scores_as_in_process_and_travels_as_its_state(tiny_prepared):
    from aipbench.defenses.detector import DetectorContext, detector_scores
    from aipbench.defenses.guard import call_defense
    from aipbench.defenses.variants import Gate, Variant
    from aipbench.harness.checks import gradient_norms, gradient_ranker
    from aipbench.pipeline.loaders import load_extractor

    dataset, rng = tiny_prepared.dataset, np.random.default_rng(0)
    train = np.setdiff1d(np.arange(60), dataset.cold_items)[:40]
    clean = np.asarray(dataset.images[train]).copy()
    noisy = np.clip(clean.astype(int) + rng.integers(-16, 17, clean.shape), 0, 255).astype(np.uint8)
    fields = dict(train_items=train, train_images=clean, adversarial={"noise": noisy},
                  feature_extractor=load_extractor(tiny_prepared.store), seed=0, device="cpu")
    scores, digests, norms = [], [], []
    for isolation in ("none", "sandbox"):
        detector = _worker(REPO / "submissions" / "detector", "Detector", isolation=isolation)
        call_defense(detector, "fit", DetectorContext(cold_items=dataset.cold_items, **fields))
        scores.append(detector_scores(detector, np.array(dataset.images[100:160])))
        # the evaluation's masked-gradient check on the detector's variant: through the ranker behind the gate
        # (the harness cannot differentiate a worker's detector; it once stopped every sandboxed detector run)
        gate = Gate(detector, threshold=float(np.median(scores[0])), margin=0.1, false_alarms=0.01, info={},
                    device="cpu")
        vbpr = tiny_prepared.ranker("vbpr")
        variant = Variant(None, "t", vbpr, vbpr.with_image_model(gate.wrap), wrap=gate.wrap, gate=gate)
        norms.append(gradient_norms(gradient_ranker(variant), np.array(dataset.images[dataset.cold_items[:8]])))
        if isolation == "sandbox":
            digests.append(detector.state_sha256())
            restored = pickle.loads(pickle.dumps(detector))  # an adaptive attack's copy, fitted as in the worker
            scores.append(detector_scores(restored, np.array(dataset.images[100:160])))
            detector.close()
    np.testing.assert_array_equal(scores[0], scores[1])
    np.testing.assert_array_equal(scores[0], scores[2])
    assert len(digests[0]) == 64
    np.testing.assert_array_equal(norms[0], norms[1])
    assert np.isfinite(norms[1]).all() and (norms[1] > 0).all()


@needs_sandbox
def test_a_ranker_trained_in_the_sandbox_is_rebuilt_with_the_same_state(tiny_prepared):
    from aipbench.defenses.training import train_defended
    from aipbench.hashing import state_sha256

    trained = []
    for isolation in ("none", "sandbox"):
        trainer = _worker(REPO / "submissions" / "amr", "AMRDefense", isolation=isolation, dataset=tiny_prepared.dataset)
        trained.append(train_defended(trainer, store=tiny_prepared.store, dataset=tiny_prepared.dataset,
                                      undefended=tiny_prepared.ranker("vbpr")))
        if isolation == "sandbox":
            trainer.close()
    assert type(trained[1]).__name__ == "AMR"
    assert state_sha256(trained[0]) == state_sha256(trained[1])
    assert torch.equal(trained[0].catalog, trained[1].catalog)


@needs_sandbox
def test_a_trained_ranker_of_no_known_family_or_shape_is_one_line(home, tmp_path):
    code = """
import torch
from aipbench.rankers.vbpr import VBPR


class D:
    def train(self, context):
        ranker = context.undefended
        ranker.gamma_user = torch.nn.Parameter(torch.zeros(3, 2))  # not the protocol's shape
        return ranker
"""
    folder = defense_folder(tmp_path / "misshapen", code, kind="training", extra='defends = "vbpr"\n')
    result = _evaluate(home, folder)
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "returned a vbpr ranker that does not fit the protocol's [rankers.vbpr]" in error, error
    assert "Traceback" not in result.output


@needs_sandbox
def test_killing_the_harness_kills_the_defense_worker(tmp_path):
    marker = f"aipbench-defense-probe-{os.getpid()}"
    folder = defense_folder(tmp_path / "sleepy", f"""
import subprocess, sys
class D:
    def transform(self, x):
        subprocess.run([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])
        return x
""")
    script = (f"from aipbench.harness.isolation.defense_worker import open_defense\nimport torch\n"
              f"d = open_defense({str(folder / 'defense.py')!r}, 'D')\n"
              f"d.transform(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 120
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    time.sleep(2)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1
    # SIGKILL cannot be caught: its scratch folder stays until the next worker starts (here, or in a test
    # running beside this one) and removes it
    scratch = Path(tempfile.gettempdir())
    assert len(list(scratch.glob(f"aipbench-defense-{proc.pid}-*"))) <= 1
    _worker(folder, "D").close()
    assert not list(scratch.glob(f"aipbench-defense-{proc.pid}-*"))
