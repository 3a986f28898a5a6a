"""Evaluations under torchrun (gloo, 2 processes on this CPU, the tiny protocol): the same bytes as one
process, a rank killed mid-run named in one line and resumed from the finished shards, ranks that differ
refused at start-up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _torchrun(logs: Path) -> list[str]:
    """torchrun with its per-run log folders under ``logs`` (by default it leaves one in /tmp per run)."""
    return [*TORCHRUN, "--log-dir", str(logs)]
SHARD = "16"  # tiny's 40 cold items in shards 0-16, 16-32, 32-40: rank 0 makes two, rank 1 one


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "AIPBENCH_HOME": str(home), "AIPBENCH_PROGRESS": "0", "AIPBENCH_SHARD_ITEMS": SHARD,
            "OMP_NUM_THREADS": "1", **extra}


def _own(submission: str, tmp_path: Path) -> Path:
    """A copy of a reference submission with its own hash, so its runs start from an empty run cache."""
    folder = tmp_path / submission
    shutil.copytree(REPO / "submissions" / submission, folder)
    (folder / "NOTE.txt").write_text(f"copy for {tmp_path.name}\n")
    return folder


def _evaluate(args: list[str], home: Path, out: Path, *, ranks: int, **env: str) -> subprocess.CompletedProcess:
    cli = ["-m", "aipbench", "evaluate", "--skip-determinism-check", *args, "--protocol", "tiny", "--out", str(out)]
    cmd = [sys.executable, *cli] if ranks == 1 else [*_torchrun(out.parent / "torchrun"), "--nproc-per-node", str(ranks), *cli]
    return subprocess.run(cmd, env=_env(home, **env), capture_output=True, text=True, timeout=900)


def _numbers(out: Path) -> dict:
    doc = json.loads(out.read_text())
    doc.pop("sha256")
    assert doc.pop("timing")["ranks"] >= 1
    for row in doc["results"]:
        row.pop("timing", None)  # attack rows
        row.pop("seconds", None)  # defense rows: how long the row took
    return doc


def _same_documents(one: Path, two: Path) -> None:
    assert _numbers(one) == _numbers(two)
    for suffix in (".items.csv", ".examples.png"):
        if one.with_suffix(suffix).exists():
            assert one.with_suffix(suffix).read_bytes() == two.with_suffix(suffix).read_bytes()


@pytest.fixture
def home(tiny_rankers, tmp_path):
    from conftest import copy_artifacts

    copy_artifacts(tiny_rankers, list(json.loads(tiny_rankers.manifest_path.read_text())["artifacts"]), tmp_path / "home")
    return tmp_path / "home"


@pytest.mark.slow
def test_insa_on_two_ranks_gives_the_bytes_of_one_process(home, tmp_path):
    sub = _own("insa", tmp_path)
    one = _evaluate([str(sub), "--rankers", "alexrank,dvbpr"], home, tmp_path / "one.json", ranks=1)
    assert one.returncode == 0, one.stderr[-3000:]
    shutil.rmtree(next(home.glob("tiny-*")) / "runs")  # the two ranks attack again, from nothing
    two = _evaluate([str(sub), "--rankers", "alexrank,dvbpr"], home, tmp_path / "two.json", ranks=2)
    assert two.returncode == 0, two.stderr[-3000:]
    _same_documents(tmp_path / "one.json", tmp_path / "two.json")
    assert json.loads((tmp_path / "two.json").read_text())["timing"]["ranks"] == 2
    assert two.stdout.count("wrote ") == 1  # rank 0 reports, once


@pytest.mark.slow
@pytest.mark.parametrize("args", [["expa", "--rankers", "alexrank,dvbpr"], ["jpeg", "--rankers", "vbpr", "--levels", "75",
                                                                            "--items", "40"]])
def test_expa_and_a_defense_on_two_ranks_give_the_bytes_of_one_process(home, tmp_path, args):
    sub = _own(args[0], tmp_path)
    one = _evaluate([str(sub), *args[1:]], home, tmp_path / "one.json", ranks=1)
    assert one.returncode == 0, one.stderr[-3000:]
    shutil.rmtree(next(home.glob("tiny-*")) / "runs")
    two = _evaluate([str(sub), *args[1:]], home, tmp_path / "two.json", ranks=2)
    assert two.returncode == 0, two.stderr[-3000:]
    _same_documents(tmp_path / "one.json", tmp_path / "two.json")


SLOW_ATTACK = """
import time
import numpy as np


class Attack:
    def run(self, ctx):
        if len(ctx.cold_items) > 10:  # a shard, not the determinism check's 10 items
            time.sleep(2)  # long enough to be killed in the middle of the run
        return np.clip(ctx.cold_images.astype(np.int16) + 2, 0, 255).astype(np.uint8)
"""


def _slow_attack(tmp_path: Path) -> Path:
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "submission.toml").write_text(
        'entry = "attack.py:Attack"\n[submission]\nname = "slow"\nkind = "attack"\nknowledge = "semantic"\n'
        'authors = ["T"]\ndescription = "t"\nlink = ""\n[threat]\nnorm = "linf"\nepsilon = 8\n')
    (folder / "attack.py").write_text(SLOW_ATTACK)
    return folder


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the worker of ``launcher`` (a torchrun process) whose environment says RANK=rank."""
    for child in Path("/proc").glob("[0-9]*"):
        try:
            if int((child / "stat").read_text().rsplit(")", 1)[1].split()[1]) != launcher:
                continue
            if f"RANK={rank}".encode() in (child / "environ").read_bytes().split(b"\0"):
                return int(child.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


@pytest.mark.slow  # two torchrun launches with a kill between (35 s); the same-bytes tests above run by default
def test_a_killed_rank_is_named_in_one_line_and_the_rerun_resumes_to_the_bytes_of_one_process(home, tmp_path):
    """A rank killed mid-run: one line naming it; the same command again reuses every finished shard, makes
    only the others, and writes the document one process writes from them (the same bytes at any scale
    from nothing: INSA, EXPA and the JPEG defense, ``-m slow``)."""
    sub, out = _slow_attack(tmp_path), tmp_path / "slow.json"
    cli = ["-m", "aipbench", "evaluate", "--skip-determinism-check", str(sub), "--protocol", "tiny", "--rankers", "vbpr", "--out", str(out)]
    run = subprocess.Popen([*_torchrun(tmp_path / "torchrun"), "--nproc-per-node", "2", *cli], env=_env(home), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    first_shard = None
    deadline = time.monotonic() + 300
    while first_shard is None and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
        first_shard = next(home.rglob("runs/slow-*/eps-8/any.items-0-16.npy"), None)  # rank 0 finished one
    victim = _rank_pid(run.pid, 1)
    assert first_shard is not None and victim is not None, run.communicate()[0][-3000:]
    os.kill(victim, signal.SIGKILL)
    output = run.communicate(timeout=300)[0]
    assert run.returncode != 0 and not out.exists()
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"rank 1 (pid {victim}) ended" in errors[0] and "resumes" in errors[0], output[-3000:]

    finished = sorted(p.name for p in first_shard.parent.glob("any.items-*.npy"))
    again = _evaluate([str(sub), "--rankers", "vbpr"], home, out, ranks=2)
    assert again.returncode == 0, again.stderr[-3000:]
    reused = [line for line in again.stderr.splitlines() if "reusing the finished attack images" in line
              and "determinism" not in line]
    ran = [line for line in again.stderr.splitlines() if "running attack.py:Attack" in line and "cold items 0..9" not in line]
    assert sorted(line.rsplit("/", 1)[1] for line in reused) == finished  # every finished shard, none made twice
    assert len(ran) == 3 - len(finished) and json.loads(out.read_text())["results"][0]["n_items"] == 40
    # one process from the same finished shards (images made at any world size are the same bytes: the
    # slow INSA/EXPA tests re-make them from nothing) writes the same document: gathering and scoring
    one = _evaluate([str(sub), "--rankers", "vbpr"], home, tmp_path / "one.json", ranks=1)
    assert one.returncode == 0 and "running attack.py" not in one.stderr, one.stderr[-3000:]
    _same_documents(tmp_path / "one.json", out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_that_differ_are_refused_at_start_up(home, tmp_path):
    """Two "nodes" (one process each) whose settings differ: a different shard size on node 1 (another
    checkout or environment would differ the same way) stops both before any work, in one line."""
    port, sub = _free_port(), str(REPO / "submissions" / "noise")
    cli = ["-m", "aipbench", "evaluate", "--skip-determinism-check", sub, "--protocol", "tiny", "--rankers", "vbpr", "--out",
           str(tmp_path / "x.json")]
    nodes = [subprocess.Popen([*_torchrun(tmp_path / f"torchrun-{n}"), "--nnodes", "2", "--node-rank", str(n), "--nproc-per-node", "1",
                               "--master-addr", "127.0.0.1", "--master-port", str(port), *cli],
                              env=_env(home, AIPBENCH_SHARD_ITEMS="8" if n else SHARD), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for n in (0, 1)]
    outputs = [p.communicate(timeout=300)[0] for p in nodes]
    assert all(p.returncode != 0 for p in nodes) and not (tmp_path / "x.json").exists()
    errors = [line for line in outputs[0].splitlines() if line.startswith("Error:")]
    assert errors == ["Error: rank 1 differs from rank 0 in shard_items: 8 against 16; every rank must run the same "
                      "aipbench, protocol, submission and arguments"], outputs[0][-3000:]
    assert not any(line.startswith("Error:") for line in outputs[1].splitlines())
    assert not list(home.rglob("runs/noise-*"))  # no attack ran
