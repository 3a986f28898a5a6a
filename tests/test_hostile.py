"""Hostile and broken submissions through the command line, each refused with one ``Error:`` line, exit 1, no
traceback, no results file, and the artifact cache intact (its manifest and every artifact file unchanged):
the sandbox around attack code, defense code held to the same rules, integrity by content."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import attack_folder, cache_snapshot, defense_folder, evaluate_refused, sandbox_marker
from PIL import Image

from aipbench.cli import main

REPO = Path(__file__).resolve().parents[1]
needs_sandbox = sandbox_marker()


@pytest.fixture
def home(private_home):
    """A private copy of the tiny cache (the tests below try to damage it)."""
    return private_home


def _attack(tmp_path: Path, body: str, *, knowledge="expert", epsilon=8, name="hostile") -> Path:
    return attack_folder(tmp_path / name, body, name=name, knowledge=knowledge, epsilon=epsilon)


def _defense(tmp_path: Path, code: str, *, kind="transform", extra="", cls="D") -> Path:
    return defense_folder(tmp_path / "defense", code, kind=kind, extra=extra, cls=cls)


# -- attack code in the sandbox ------------------------------------------------------------------------------


@needs_sandbox
def test_an_expert_attack_can_read_nothing_of_the_cache_and_write_nothing_outside_its_scratch(home, tmp_path):
    before = cache_snapshot(home)
    (root,) = [p for p in home.iterdir() if p.name.startswith("tiny-")]
    secrets = [str(root / "manifest.json"), str(root / "vbpr" / "vbpr.pt"), str(root / "dataset" / "interactions.npz")]
    targets = [str(root / "manifest.json"), str(root / "evil.txt"), str(REPO / "evil.txt"), str(tmp_path / "evil.txt"),
               os.path.expanduser("~/../evil.txt")]
    body = f"""
    import glob
    got = []
    for path in {secrets!r}:
        try:
            got.append(open(path, "rb").read(16))
        except OSError:
            pass
    listed = glob.glob({str(root)!r} + "/**", recursive=True)
    for path in {targets!r}:
        try:
            open(path, "w").write("x")
        except OSError:
            pass
    open(os.environ["HOME"] + "/mine.txt", "w").write("scratch is writable")
    if got or len(listed) > 1 or "AIPBENCH_HOME" in os.environ:
        raise RuntimeError(f"escaped: read {{len(got)}} secrets, listed {{len(listed)}} files")
    return ctx.cold_images
    """
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(_attack(tmp_path, body)), "--protocol", "tiny", "--rankers", "vbpr",
                                       "--items", "10", "--out", str(out)], env={"AIPBENCH_HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["sandbox"]["isolation"] == "sandbox"
    assert cache_snapshot(home) == before and not (REPO / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not (root / "evil.txt").exists()


@needs_sandbox
def test_an_attack_that_overwrites_the_catalog_cannot_move_its_budget(home, tmp_path):
    """The budget is checked against the parent's own verified copy; the catalog is read-only anyway."""
    (root,) = [p for p in home.iterdir() if p.name.startswith("tiny-")]
    body = f"""
    try:
        np.save({str(root / 'dataset' / 'images.npy')!r}, np.zeros((640, 3, 64, 64), np.uint8))
    except OSError:
        pass
    catalog = np.asarray(ctx.catalog_images)
    return np.repeat(catalog[ctx.hook_item][None], len(ctx.cold_images), 0)  # the hook photo, far over budget
    """
    before = cache_snapshot(home)
    evaluate_refused(home, _attack(tmp_path, body), tmp_path / "r.json", "exceeds the budget epsilon = 8", before=before)


@needs_sandbox
@pytest.mark.parametrize(("body", "rule"), [
    ("class Weird(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\nraise Weird()",
     "Weird: <the exception's message could not be shown>"),
    # its scratch is a mount point in the sandbox: emptied, then refused (one line either way)
    ("import shutil\nshutil.rmtree(os.environ['HOME'])\nreturn ctx.cold_images", "hostile/attack.py: "),
    ("sys.stdout.write('x' * (8 << 20))\nreturn ctx.cold_images[:1]", "returned 1 images for 10 cold items"),
    ("raise ValueError('y' * (4 << 20))", "ValueError: yyyy"),
])
def test_a_misbehaving_child_is_one_short_line(home, tmp_path, body, rule):
    before = cache_snapshot(home)
    line = evaluate_refused(home, _attack(tmp_path, body), tmp_path / "r.json", rule, before=before)
    assert len(line) < 700


@needs_sandbox
def test_the_time_limit_kills_the_attacks_whole_process_group(home, tmp_path):
    marker = f"aipbench-orphan-{os.getpid()}"
    body = f"""
    import subprocess, time
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])
    time.sleep(600)
    """
    evaluate_refused(home, _attack(tmp_path, body), tmp_path / "r.json", "ran past its time limit of 6 s", "--time-limit", "6")
    time.sleep(1)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1  # nothing left running


@needs_sandbox
# SIGKILL (nothing of the harness runs: the child's parent-death signal alone) by default; SIGTERM with -m slow
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGTERM, marks=pytest.mark.slow), signal.SIGKILL],
                         ids=["SIGTERM", "SIGKILL"])
def test_killing_the_harness_kills_the_attack(home, tmp_path, sig):
    marker = f"aipbench-child-{os.getpid()}-{int(sig)}"
    body = f"""
    import subprocess
    subprocess.run([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])
    """
    folder = _attack(tmp_path, body)
    proc = subprocess.Popen([sys.executable, "-m", "aipbench", "evaluate", "--skip-determinism-check", str(folder), "--protocol", "tiny", "--rankers",
                             "vbpr", "--items", "10", "--out", str(tmp_path / "r.json")],
                            env={**os.environ, "AIPBENCH_HOME": str(home)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    time.sleep(2)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1
    assert not (tmp_path / "r.json").exists()
    left = list(Path(tempfile.gettempdir()).glob(f"aipbench-attack-{proc.pid}-*"))
    # SIGTERM cleans up; SIGKILL cannot (at most one is left: a run in another test process may already
    # have removed it, as the next run does)
    assert len(left) <= (1 if sig == signal.SIGKILL else 0)
    if left:  # the next run removes what a killed harness left
        assert CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(folder), "--protocol", "tiny",
                                         "--items", "10", "--rankers", "vbpr", "--time-limit", "3"],
                                  env={"AIPBENCH_HOME": str(home)}).exit_code == 1  # the sleeping attack
        assert not left[0].exists()


def test_without_a_sandbox_code_is_refused_unless_unsandboxed(home, tmp_path, monkeypatch):
    monkeypatch.setattr("aipbench.harness.isolation.bwrap.sandbox_problem", lambda: "no bwrap executable (test)")
    folder = _attack(tmp_path, "return ctx.cold_images")
    evaluate_refused(home, folder, tmp_path / "r.json", "--unsandboxed")
    out = tmp_path / "ok.json"
    result = CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(folder), "--protocol", "tiny", "--rankers", "vbpr", "--items", "10",
                                       "--unsandboxed", "--out", str(out)], env={"AIPBENCH_HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["sandbox"]["isolation"] == "unsandboxed child process"


# -- integrity by content --------------------------------------------------------------------------------------


def test_a_checkpoint_edited_in_place_with_its_mtime_restored_is_refused(home, tmp_path):
    (root,) = [p for p in home.iterdir() if p.name.startswith("tiny-")]
    path = root / "dvbpr" / "dvbpr.pt"
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(REPO / "submissions" / "hook-copy"), "--protocol", "tiny",
                                       "--rankers", "dvbpr", "--items", "10", "--out", str(tmp_path / "r.json")],
                                env={"AIPBENCH_HOME": str(home)})
    # the store finds it corrupt by its content and rebuilds it, so the score comes from the real DVBPR
    assert result.exit_code == 0 and "dvbpr: corrupt, building" in result.output, result.output
    assert (root / "dvbpr" / "dvbpr.pt").read_bytes() != bytes(data)


def test_artifact_bytes_are_checked_as_they_are_loaded(home):
    """Verified once, then swapped in place with the same size and mtime: the bytes a loader reads are the
    bytes it checks, so the swap is caught (no window between the check and the use)."""
    from aipbench.errors import ArtifactError
    from aipbench.pipeline.loaders import load_ranker
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    store = open_store(load_protocol("tiny"), home=home)
    assert store.state("vbpr") == "ok"  # hashed and remembered by identity
    path = store.dir("vbpr") / "vbpr.pt"
    stat, data = path.stat(), bytearray(path.read_bytes())
    data[-50] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(ArtifactError, match="content differs from the manifest's SHA-256"):
        load_ranker(store, "vbpr")


def test_finished_attack_images_are_checked_before_reuse(home, tmp_path):
    folder = _attack(tmp_path, "return np.clip(ctx.cold_images.astype(int) + 3, 0, 255).astype(np.uint8)")
    args = ["evaluate", "--skip-determinism-check", str(folder), "--protocol", "tiny", "--rankers", "vbpr", "--items", "10"]
    first = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a.json")], env={"AIPBENCH_HOME": str(home)})
    assert first.exit_code == 0, first.output
    (done,) = [p for p in home.rglob("extractor.items-*.npy") if "hostile" in str(p) and "determinism" not in str(p)]
    np.save(done, np.zeros((10, 3, 64, 64), np.uint8))  # swapped for other images: a mismatch
    again = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b.json")], env={"AIPBENCH_HOME": str(home)})
    assert again.exit_code == 0 and "not reused" in again.output and "attacking again" in again.output
    a, b = (json.loads((tmp_path / n).read_text())["results"][0]["adversarial"] for n in ("a.json", "b.json"))
    assert a == b
    done.write_bytes(done.read_bytes()[:100])  # truncated
    third = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "c.json")], env={"AIPBENCH_HOME": str(home)})
    assert third.exit_code == 0 and "not reused" in third.output


# -- defense code under the same rules ---------------------------------------------------------------------------

DEFENSES = [
    ("import torch\nclass D:\n    def transform(self, x)\n        return x\n", "importing D failed: SyntaxError"),
    ("class D:\n    def __init__(self):\n        raise RuntimeError('no')\n", "importing D failed: RuntimeError: no"),
    ("class D:\n    def transform(self, x):\n        raise KeyError('boom')\n", "D.transform failed: KeyError"),
    ("class D:\n    def transform(self, x):\n        return x.float()\n", "must return a uint8 tensor"),
    ("class D:\n    def transform(self, x):\n        return x.numpy()\n", "got ndarray"),
    ("class D:\n    def transform(self, x):\n        return x[:1]\n", "must return a uint8 tensor of shape"),
    ("import time\nclass D:\n    def transform(self, x):\n        time.sleep(600)\n        return x\n",
     "D.transform ran past its time limit of 5 s"),
    ("import os\nclass D:\n    def transform(self, x):\n        os._exit(3)\n",
     "the defense's process ended during D.transform (exit status 3)"),
    ("import time\nclass D:\n    def __init__(self):\n        time.sleep(600)\n    def transform(self, x):\n        return x\n",
     "importing D ran past its time limit of 5 s"),
]


@pytest.mark.parametrize(("code", "rule"), DEFENSES)
def test_broken_defense_code_is_one_line(home, tmp_path, code, rule):
    before = cache_snapshot(home)
    evaluate_refused(home, _defense(tmp_path, code), tmp_path / "r.json", rule, "--time-limit", "5", before=before)


def test_a_training_defense_that_raises_is_one_line(home, tmp_path):
    code = "class D:\n    def train(self, context):\n        raise ZeroDivisionError('nope')\n"
    evaluate_refused(home, _defense(tmp_path, code, kind="training", extra='defends = "vbpr"\n'), tmp_path / "r.json",
             "D.train failed: ZeroDivisionError: nope")


def test_a_sixteen_bit_png_is_refused(home, tmp_path):
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    dataset = load_dataset(open_store(load_protocol("tiny"), home=home))
    folder = tmp_path / "imgs"
    (folder / "images").mkdir(parents=True)
    (folder / "submission.toml").write_text('images = "images/"\n[submission]\nname = "p"\nkind = "attack"\n'
                                            'knowledge = "semantic"\nauthors = ["T"]\ndescription = "t"\nlink = ""\n'
                                            '[threat]\nnorm = "linf"\nepsilon = 8\n')
    for item in dataset.cold_items:
        Image.fromarray(np.asarray(dataset.images[item]).transpose(1, 2, 0)).save(folder / "images" / f"{item}.png")
    img = np.asarray(dataset.images[dataset.cold_items[0]]).transpose(1, 2, 0).astype(">u2") * 257
    with open(folder / "images" / f"{dataset.cold_items[0]}.png", "wb") as fh:  # a 16-bit RGB PNG, written by hand
        _write_png16(fh, img)
    evaluate_refused(home, folder, tmp_path / "r.json", "16 bits per channel")


def _write_png16(fh, rgb: np.ndarray) -> None:
    import struct
    import zlib

    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("out", ["folder", "file-parent/r.json", "r.txt"])
def test_a_bad_out_is_refused_before_any_work(tmp_path, out):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file-parent").write_text("x")
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(REPO / "submissions" / "insa"), "--protocol", "tiny",
                                       "--out", str(tmp_path / out)], env={"AIPBENCH_HOME": str(home)})
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "--out" in result.output
    assert not home.exists()


@needs_sandbox
def test_a_python_or_checkout_under_tmp_stays_visible_in_the_sandbox(monkeypatch, tmp_path):
    """The sandbox's /tmp is a fresh tmpfs: a virtual environment or checkout there (a CI clone) is bound over
    it, read-only, outermost folders only, and seen by the child."""
    import aipbench.harness.isolation.bwrap as bwrap
    from aipbench.harness.isolation.limits import default_limits

    venv = tmp_path / "venv"
    (venv / "lib").mkdir(parents=True)
    (venv / "lib" / "marker.txt").write_text("the venv")
    monkeypatch.setattr(sys, "prefix", str(venv))
    assert str(venv.resolve()) in bwrap.runtime_folders()
    assert not any(p.startswith(str(venv.resolve()) + "/") for p in bwrap.runtime_folders())
    args = bwrap.bwrap_args(binds={}, workdir="/", env={"PATH": "/usr/bin:/bin"}, limits=default_limits())
    seen = subprocess.run([bwrap.bwrap_binary(), *args, "cat", str(venv / "lib" / "marker.txt")], capture_output=True,
                          text=True, timeout=60)
    assert seen.returncode == 0 and seen.stdout == "the venv", seen.stderr
    assert subprocess.run([bwrap.bwrap_binary(), *args, "touch", str(venv / "x")], capture_output=True,
                          timeout=60).returncode != 0  # read-only


@needs_sandbox
def test_the_gpus_device_nodes_are_bound_into_the_sandbox(monkeypatch, tmp_path):
    """The sandbox's fresh /dev has no GPU nodes; where the machine has them (/dev/nvidia*), each is bound
    in, or CUDA could not start in a sandboxed child. A file under /tmp stands in for a node here: /tmp is
    hidden in the sandbox, so the child reads it only through that bind."""
    import aipbench.harness.isolation.bwrap as bwrap
    from aipbench.harness.isolation.limits import default_limits

    node = tmp_path / "nvidia0"
    node.write_text("the device")
    run = dict(binds={}, workdir="/", env={"PATH": "/usr/bin:/bin"}, limits=default_limits())
    monkeypatch.setattr(bwrap, "gpu_device_nodes", lambda: [str(node)])
    seen = subprocess.run([bwrap.bwrap_binary(), *bwrap.bwrap_args(**run), "cat", str(node)], capture_output=True,
                          text=True, timeout=60)
    assert seen.returncode == 0 and seen.stdout == "the device", seen.stderr
    monkeypatch.setattr(bwrap, "gpu_device_nodes", lambda: [])
    assert subprocess.run([bwrap.bwrap_binary(), *bwrap.bwrap_args(**run), "cat", str(node)], capture_output=True,
                          timeout=60).returncode != 0


@needs_sandbox
def test_an_attack_cannot_make_the_harness_copy_a_file_through_a_link(home, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the harness's own file")
    body = f"""
    for name in ("stdout.txt", "stderr.txt", "traceback.txt"):
        path = os.path.join(os.environ["HOME"], name)
        if os.path.exists(path) or os.path.islink(path):
            os.unlink(path)
        os.symlink({str(secret)!r}, path)
    return ctx.cold_images
    """
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(_attack(tmp_path, body)), "--protocol",
                                       "tiny", "--rankers", "vbpr", "--items", "10", "--out", str(out)],
                                env={"AIPBENCH_HOME": str(home)})
    assert result.exit_code == 0, result.output
    kept = [p for p in home.rglob("*.txt") if p.name in ("stdout.txt", "stderr.txt", "traceback.txt")]
    assert kept and not any("the harness's own file" in p.read_text() for p in kept)
