"""Shared fixtures: the tiny protocol prepared once per test session in a private cache.

The suite computes with one thread per process (and runs two processes, pytest-xdist): torch's
convolution gradients and scikit-learn's t-SNE sum in another order with another thread count, so the
pinned numbers would otherwise depend on the machine's number of cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # before torch (and attack child processes) read it

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from aipbench.pipeline.steps import open_store
from aipbench.protocol import load_protocol


@pytest.fixture(scope="session")
def tiny():
    return load_protocol("tiny")


def shared_dir(tmp_path_factory, name: str) -> Path:
    """A folder every pytest-xdist worker of this run shares (the artifact store and the attack run cache
    lock what they build, so the workers build each thing once); without xdist, this process's own."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / name
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory):
    return shared_dir(tmp_path_factory, "aipbench-home")


@pytest.fixture(scope="session")
def tiny_store(tiny, tiny_home):
    """The tiny protocol with data, BPR and candidate sets built (shared, treat as read-only)."""
    store = open_store(tiny, home=tiny_home)
    store.prepare(["candidates"])
    return store


@pytest.fixture(scope="session")
def tiny_rankers(tiny_store):
    """The tiny store with the extractor, features and all four rankers built too."""
    tiny_store.prepare(["alexrank", "vbpr", "dvbpr", "amr"])
    return tiny_store


@pytest.fixture(scope="session")
def tiny_prepared(tiny_rankers):
    """``Prepared`` over the tiny store (its rankers loaded once for the session; treat as read-only)."""
    from aipbench.pipeline.prepared import Prepared

    return Prepared("tiny", home=tiny_rankers.root.parent, log=lambda m: None)


@pytest.fixture
def in_process(monkeypatch):
    """Attack code runs in the test's own process (``isolation="none"``), for tests of what the harness
    checks and reports, not of the child process (a handful of tests keep that: test_evaluate). The test's
    own submissions are trusted as the reference submissions are (the test suite is trusted code)."""
    import aipbench.harness.evaluate

    monkeypatch.setattr(aipbench.harness.evaluate, "DEFAULT_ISOLATION", "none")
    with trusting_test_code():
        yield


@contextlib.contextmanager
def trusting_test_code():
    """Inside, ``isolation="none"`` accepts any submission folder, not only the reference submissions: the
    test suite's own submissions (probes, modified copies of references) are trusted code."""
    import aipbench.harness.isolation.trust

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aipbench.harness.isolation.trust, "is_reference", lambda folder: True)
        yield


@pytest.fixture
def trusted_test_code():
    """``trusting_test_code`` for one test."""
    with trusting_test_code():
        yield


@pytest.fixture(scope="module")
def pipeline(tiny_rankers, tmp_path_factory):
    """The tiny regression pipeline (tests/tiny_pipeline.py): one results folder and run cache for every
    regression test, shared by pytest-xdist workers too (what one worker's experiment makes, another's reuses)."""
    from tiny_pipeline import TinyReproduction

    return TinyReproduction(shared_dir(tmp_path_factory, "tiny-results"), tiny_rankers.root.parent)


@pytest.fixture
def private_home(tiny_rankers, tmp_path):
    """A private copy of the whole tiny cache, for tests that try to damage it (its ``AIPBENCH_HOME``)."""
    copy_artifacts(tiny_rankers, list(json.loads(tiny_rankers.manifest_path.read_text())["artifacts"]), tmp_path / "home")
    return tmp_path / "home"


def sandbox_marker():
    """``@needs_sandbox``: skip, saying why, where the bubblewrap sandbox cannot run."""
    from aipbench.harness.isolation.bwrap import sandbox_problem

    return pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox here: {sandbox_problem()}")


def copy_artifacts(store, names, home: Path):
    """A store under ``home`` holding only ``names`` of ``store`` (folders and manifest records copied,
    nothing re-trained)."""
    from aipbench.pipeline.steps import open_store

    copy = open_store(store.protocol, home=home)
    copy.root.mkdir(parents=True)
    manifest = json.loads(store.manifest_path.read_text())
    manifest["artifacts"] = {n: manifest["artifacts"][n] for n in names}
    for n in names:
        shutil.copytree(store.dir(n), copy.dir(n))
    copy.manifest_path.write_text(json.dumps(manifest))
    return copy


@pytest.fixture(scope="session")
def alexnet_file(tmp_path_factory):
    """torchvision's AlexNet with seeded random weights saved as a weights file (what `aipbench data weights`
    takes), its reference model, and the file's SHA-256."""
    import torchvision

    from aipbench.hashing import sha256_file

    torch.manual_seed(0)
    reference = torchvision.models.alexnet(weights=None).eval()
    path = tmp_path_factory.mktemp("weights") / "downloaded.pth"
    torch.save(reference.state_dict(), path)
    return reference, path, sha256_file(path)


@pytest.fixture
def test_weights(alexnet_file, monkeypatch, tmp_path):
    """The published ImageNet weights, as the pipeline knows them, become the test's own file (named after
    its own hash prefix, as torchvision names its files); torch.hub's cache is a folder of the test's, and
    any download attempt fails the test."""
    import urllib.request

    from aipbench.rankers.nets import weights

    digest = alexnet_file[2]
    spec = weights.WeightsFile(name=f"alexnet-test-{digest[:8]}.pth", url="https://example.invalid/alexnet-test.pth",
                               label="test AlexNet weights")
    monkeypatch.setattr(weights, "IMAGENET_ALEXNET", spec)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    return spec


def attack_folder(folder: Path, body: str, *, name: str = "hostile", knowledge: str = "expert", epsilon: int = 8,
                  imports: str = "import os, sys, numpy as np") -> Path:
    """A code submission in ``folder`` whose ``Attack.run(self, ctx)`` is ``body`` (dedented), after ``imports``."""
    import textwrap

    folder.mkdir()
    (folder / "submission.toml").write_text(
        f'entry = "attack.py:Attack"\n[submission]\nname = "{name}"\nkind = "attack"\nknowledge = "{knowledge}"\n'
        f'authors = ["T"]\ndescription = "t"\nlink = ""\n[threat]\nnorm = "linf"\nepsilon = {epsilon}\n')
    (folder / "attack.py").write_text(f"{imports}\n\n\nclass Attack:\n    def run(self, ctx):\n"
                                      + textwrap.indent(textwrap.dedent(body), "        "))
    return folder


def defense_folder(folder: Path, code: str, *, name: str = "hostile", kind: str = "transform", cls: str = "D",
                   extra: str = "") -> Path:
    """A defense submission in ``folder``: ``code`` as defense.py, entry class ``cls``, ``extra`` TOML lines."""
    folder.mkdir()
    (folder / "submission.toml").write_text(
        f'entry = "defense.py:{cls}"\n[submission]\nname = "{name}"\nkind = "defense"\nauthors = ["T"]\n'
        f'description = "t"\nlink = ""\n[defense]\ntype = "{kind}"\n{extra}')
    (folder / "defense.py").write_text(code)
    return folder


def cache_snapshot(home: Path) -> dict[str, bytes]:
    """Every artifact file of the tiny cache under ``home`` (the run folders and submitted rankers' trainings
    aside), to compare before and after."""
    (root,) = [p for p in home.iterdir() if p.name.startswith("tiny-")]
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not {"runs", "submitted"} & set(p.parts) and not p.name.startswith(".")}


def evaluate_refused(home: Path, folder: Path, out: Path, rule: str, *extra: str, before=None,
                     rankers: str | None = "vbpr") -> str:
    """``aipbench evaluate FOLDER`` on tiny (``rankers``, 10 cold items) fails with exactly one short ``Error:``
    line holding ``rule``, no traceback, no results file, and (given ``before``) the cache unchanged; the line."""
    from click.testing import CliRunner

    from aipbench.cli import main

    chosen = ["--rankers", rankers] if rankers else []
    result = CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(folder), "--protocol", "tiny",
                                       *chosen, "--items", "10", "--out", str(out), *extra],
                                env={"AIPBENCH_HOME": str(home)})
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and rule in errors[0] and len(errors[0]) < 700, result.output[-2000:]
    assert "Traceback" not in result.output and len(result.output) < 20_000
    assert not out.exists() and not out.with_suffix(".items.csv").exists()
    assert not leftovers()  # no scratch folder of this process's children
    if before is not None:
        assert cache_snapshot(home) == before  # the cache is intact
    return errors[0]


def leftovers() -> list[Path]:
    """Scratch folders this process's children left in the temporary folder, and anything of aipbench's in
    /dev/shm (a child's /dev/shm is a tmpfs of its own: nothing should ever appear there)."""
    import tempfile

    mine = list(Path(tempfile.gettempdir()).glob(f"aipbench-*-{os.getpid()}-*"))
    shm = Path("/dev/shm")
    return mine + (list(shm.glob("aipbench*")) if shm.is_dir() else [])


@pytest.fixture(scope="session")
def tiny_documents(tiny_rankers, tmp_path_factory):
    """Results documents of the reference INSA and noise on tiny (VBPR and DVBPR, all 40 cold items), with the
    files beside them, as someone else's `aipbench evaluate` would write them: {name: path}. Made once per test
    run (shared by the pytest-xdist workers; treat as read-only, copy to change)."""
    import fcntl

    from aipbench import evaluate

    folder = shared_dir(tmp_path_factory, "tiny-documents")
    repo = Path(__file__).resolve().parents[1]
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in ("insa", "noise"):
            if not (folder / f"{name}.json").is_file():
                evaluate(repo / "submissions" / name, protocol="tiny", rankers=["vbpr", "dvbpr"],
                         home=tiny_rankers.root.parent, check_determinism=False, isolation="none",
                         out=folder / f"{name}.json", log=lambda m: None)
    return {name: folder / f"{name}.json" for name in ("insa", "noise")}


def copy_document(path: Path, folder: Path, name: str | None = None) -> Path:
    """A copy of a results document and the files beside it in ``folder`` (as ``name``.*), its path."""
    folder.mkdir(parents=True, exist_ok=True)
    name = name or path.stem
    for suffix in (".json", ".items.csv", ".examples.png"):
        if path.with_suffix(suffix).is_file():
            shutil.copyfile(path.with_suffix(suffix), folder / f"{name}{suffix}")
    return folder / f"{name}.json"


def rederived(doc: dict, items) -> dict:
    """``doc`` with every number its per-item CSV ``items`` determines made what the items give, re-sealed: a
    forger's consistent edit (``aipbench.leaderboard.rederive`` finds nothing; only a re-run can)."""
    from aipbench.leaderboard.rederive import _derived, _intervals, row_items
    from aipbench.results.document import seal

    doc = json.loads(json.dumps(doc))
    for row in doc["results"]:
        mine = row_items(items, row)
        row["n_items"] = len(mine)
        values = _derived(doc, row, mine)
        values.pop("hr_test.p")
        for key, value in values.items():
            node, *path = row, *key.split(".")
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = int(value) if key.endswith(("max_linf", "unchanged_images")) else value
        for key, interval in _intervals(doc, row, mine).items():
            if key == "prediction_shift":
                row["intervals"]["prediction_shift"] = interval
            else:
                side, metric, n = key.split(".")
                row["intervals"][side][metric][n] = interval
    return seal(doc)


def run_cli(args: list[str], home: Path | None = None):
    """``aipbench ARGS`` in this process (its ``AIPBENCH_HOME`` ``home`` where given)."""
    from click.testing import CliRunner

    from aipbench.cli import main

    return CliRunner().invoke(main, args, env={"AIPBENCH_HOME": str(home)} if home else None)


def one_error(result, rule: str) -> str:
    """The command failed with exit status 1 and exactly one ``Error:`` line holding ``rule``, no traceback."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and rule in errors[0] and "Traceback" not in result.output, result.output[-1500:]
    return errors[0]
