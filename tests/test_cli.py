"""The command line end to end on the tiny protocol: list, show, prepare (idempotent, self-healing), preview."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import run_cli

from aipbench.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AIPBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIPBENCH_PROGRESS", "0")
    return tmp_path / "home"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_is_instant_and_lists_commands():
    # a subprocess proves `aipbench --help` does not import torch
    code = "import sys; from aipbench.cli import main; sys.argv=['aipbench','--help']\n" \
           "try: main()\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "prepare" in out and "protocols" in out and out.strip().endswith("False")


def test_protocols_list_shows_shipped_protocols():
    result = run("protocols", "list")
    assert result.exit_code == 0
    for name in ("synthetic-v1", "synthetic-v2", "tiny", "amazon-men-v1", "tradesy-v1"):
        assert name in result.output


def test_unknown_protocol_is_one_line_with_a_suggestion(home):
    result = CliRunner().invoke(main, ["protocols", "show", "synthetic-v9"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "unknown protocol" in lines[0] and "did you mean 'synthetic-v" in lines[0], lines


def test_unknown_command_suggests_the_closest():
    result = CliRunner().invoke(main, ["prepar"])
    assert result.exit_code == 2 and "did you mean 'prepare'" in result.output


def test_prepare_show_rerun_and_heal(home, tiny_rankers):
    """A second build from scratch gives the session's artifacts to the byte (training is deterministic);
    a re-run does nothing; a damaged artifact is detected and rebuilt to the same bytes."""
    first = run("prepare", "--protocol", "tiny")
    assert first.exit_code == 0, first.output
    assert "built dataset, bpr, candidates, extractor, features, alexrank, vbpr, dvbpr, amr" in first.output
    (root,) = home.iterdir()
    from aipbench.protocol import load_protocol

    assert root.name == f"tiny-{load_protocol('tiny').hash12}"
    manifest = json.loads((root / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"dataset", "bpr", "candidates", "extractor", "features", "alexrank",
                                          "vbpr", "dvbpr", "amr"}
    assert all(len(d) == 64 for a in manifest["artifacts"].values() for d in a["files"].values())
    theirs = tiny_rankers.hashes()
    assert {k: v["files"] for k, v in manifest["artifacts"].items()} == {k: theirs[k] for k in manifest["artifacts"]}

    again = run("prepare", "--protocol", "tiny")
    assert again.exit_code == 0 and again.output.startswith("nothing to do: 9 artifacts up to date")

    # show reports measured Table-2 statistics once prepared
    shown = json.loads(run("protocols", "show", "tiny", "--json").output)
    assert shown["statistics"]["measured"] is True
    assert shown["statistics"]["users"] == 300 and shown["statistics"]["cold_items"] == 40
    assert shown["sha256"] == load_protocol("tiny").sha256
    text = run("protocols", "show", "tiny").output
    assert "Table 2" in text and shown["sha256"] in text

    # a hand-edited artifact is detected by its hash and rebuilt, dependents kept when identical
    candidates = root / "candidates" / "candidates.npy"
    good = candidates.read_bytes()
    candidates.write_bytes(good[:-4] + b"\x00\x00\x00\x00")
    healed = run("prepare", "--protocol", "tiny")
    assert "candidates: corrupt, building" in healed.output
    assert "built candidates" in healed.output
    assert candidates.read_bytes() == good  # deterministic rebuild

    # a deleted file is rebuilt and what depends on it is rebuilt if it changed (here it does not)
    (root / "bpr" / "bpr.pt").unlink()
    rebuilt = run("prepare", "--protocol", "tiny")
    assert "bpr: missing, building" in rebuilt.output
    assert run("prepare", "--protocol", "tiny").output.startswith("nothing to do")


def test_prepare_only_builds_what_is_asked(home):
    result = run("prepare", "--protocol", "tiny", "--only", "dataset")
    assert result.exit_code == 0 and "built dataset in" in result.output
    bad = CliRunner().invoke(main, ["prepare", "--protocol", "tiny", "--only", "rankrs"])
    assert bad.exit_code == 1 and "unknown artifact 'rankrs'" in bad.output


def test_data_preview_writes_a_png(home, tmp_path):
    out = tmp_path / "sheet.png"
    result = run("data", "preview", "--protocol", "tiny", "--out", str(out))
    assert result.exit_code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_import_refuses_a_synthetic_protocol(home, tmp_path):
    f = tmp_path / "x.npy"
    f.write_bytes(b"x")
    result = CliRunner().invoke(main, ["data", "import", "tiny", str(f)])
    assert result.exit_code == 1 and "nothing to import" in result.output


@pytest.mark.parametrize(("device", "rule"), [("cuda", "sees no CUDA GPU here"), ("cuda:x", "expected auto, cpu"),
                                              ("tpu", "expected auto, cpu")])
def test_a_device_this_machine_lacks_is_one_line_before_any_work(home, device, rule, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for args in (["prepare", "--protocol", "tiny", "--device", device], ["evaluate", "submissions/insa", "--protocol", "tiny",
                                                           "--device", device]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and result.output.count("\n") == 1 and rule in result.output, result.output
    assert not home.exists()  # nothing was built


def test_auto_is_the_cpu_without_a_gpu(monkeypatch):
    import torch

    from aipbench.pipeline.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == resolve_device("CPU") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"


def test_the_protocol_is_one_option_everywhere_and_the_old_spellings_warn(tiny_rankers):
    home = tiny_rankers.root.parent
    old = run_cli(["prepare", "tiny", "--only", "dataset"], home)  # the positional of earlier releases
    assert old.exit_code == 0 and "Warning: the positional PROTOCOL is deprecated; use `aipbench prepare " \
        "--protocol tiny`" in old.output
    both = run_cli(["prepare", "tiny", "--protocol", "synthetic-v2"], home)
    assert both.exit_code == 2 and "two protocols given" in both.output
    assert "Missing option '--protocol'" in run_cli(["data", "preview", "--out", "x.png"], home).output
    for command in (["prepare"], ["rankers", "report"], ["data", "preview"], ["data", "export-cold"], ["data", "import"],
                    ["build", "export"], ["evaluate"], ["reproduce"], ["submission", "check"]):
        assert "--protocol NAME|FILE" in run_cli([*command, "--help"]).output or \
            "--protocol TEXT" in run_cli([*command, "--help"]).output, command
    # one name for the protocol's subset of N cold items (--items), another for a random draw (verify --draw)
    renamed = run_cli(["reproduce", "table3", "--subset", "5", "--protocol", "no-such-protocol"], home)
    assert "Warning: --subset is deprecated; use --items" in renamed.output and renamed.exit_code == 1
    assert "--draw" in run_cli(["verify", "--help"]).output and "--items" not in run_cli(["verify", "--help"]).output
