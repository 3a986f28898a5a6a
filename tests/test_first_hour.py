"""A submitter's first hour, through the CLI: `submission init` for each kind and level writes a stub that
`submission check` imports in its sandbox and `--dry-run` runs on `tiny` in seconds; a planted typo, syntax error
or bad field is one `Error:` line."""

from __future__ import annotations

import time

import pytest
from conftest import one_error, run_cli, sandbox_marker

from aipbench.attacks.context import KNOWLEDGE_LEVELS
from aipbench.harness.scaffold import DEFENSE_TYPES

needs_sandbox = sandbox_marker()
STUBS = [("attack", "--knowledge", level) for level in KNOWLEDGE_LEVELS] + \
        [("defense", "--type", t) for t in DEFENSE_TYPES] + [("ranker", None, None)]
DRY_RUN_LIMIT = 60.0  # seconds a stub's dry run may take on this 2-core CPU (the first-hour bound)


def init(tmp_path, kind, flag, value):
    folder = tmp_path / f"{kind}-{value or 'mine'}"
    args = ["submission", "init", str(folder), "--kind", kind] + ([flag, value] if flag else [])
    result = run_cli(args)
    assert result.exit_code == 0, result.output
    assert f"aipbench submission check {folder} --dry-run" in result.output  # it says what to run next
    return folder


@needs_sandbox
@pytest.mark.parametrize("kind,flag,value", [STUBS[0], pytest.param(*STUBS[5], marks=pytest.mark.slow),
                                             pytest.param(*STUBS[8], marks=pytest.mark.slow)])
def test_each_kind_s_stub_imports_in_its_sandbox(tmp_path, kind, flag, value):
    folder = init(tmp_path, kind, flag, value)
    result = run_cli(["submission", "check", str(folder)])
    assert result.exit_code == 0 and result.output.startswith(f"ok: {folder.name} ({kind}"), result.output


@pytest.mark.slow  # every stub's dry run is below, also -m slow; this one is the quickest to run alone
@needs_sandbox
def test_a_stub_s_dry_run_on_tiny(tmp_path, tiny_rankers):
    folder = init(tmp_path, "attack", "--knowledge", "semantic")
    start = time.perf_counter()
    result = run_cli(["submission", "check", str(folder), "--dry-run"], home=tiny_rankers.root.parent)
    assert result.exit_code == 0, result.output[-2000:]
    assert time.perf_counter() - start < DRY_RUN_LIMIT
    assert "ok: dry run on tiny, 8 cold items" in result.output and "| vbpr" in result.output
    # the semantic stub moves every pixel by at most ε towards the hook: the table shows it at ε = 32
    assert all(f"| {r}" in result.output for r in ("alexrank", "vbpr", "dvbpr", "amr"))
    assert not list(tmp_path.glob("**/*.json"))  # a dry run writes no results


@needs_sandbox
@pytest.mark.parametrize("plant,rule", [
    (lambda f: f.write_text(f.read_text().replace("class Attack:", "class Atack:")), "did you mean 'Atack'"),
    (lambda f: f.write_text(f.read_text().replace("class Attack:", "class Attack(:")), "importing it failed"),
])  # an import that fails and a missing run(): tests/test_submission.py, on copies of the reference attacks
def test_a_planted_mistake_in_the_code_is_one_line(tmp_path, plant, rule):
    folder = init(tmp_path, "attack", "--knowledge", "insider")
    plant(folder / "attack.py")
    one_error(run_cli(["submission", "check", str(folder)]), rule)


@pytest.mark.parametrize("edit,rule", [
    (('knowledge = "insider"', 'knowledge = "insidr"'), "did you mean 'insider'"),
    (("epsilon = 32", "epsilon = 64"), "threat.epsilon': 64 is above protocol synthetic-v2's budget of 32"),
    (('entry = "attack.py:Attack"', 'entry = "atack.py:Attack"'), "atack.py"),
    (('kind = "attack"', 'kind = "atack"'), "submission.kind"),
])
def test_a_planted_bad_field_is_one_line(tmp_path, edit, rule):
    folder = init(tmp_path, "attack", "--knowledge", "insider")
    toml = folder / "submission.toml"
    toml.write_text(toml.read_text().replace(*edit))
    one_error(run_cli(["submission", "check", str(folder)]), rule)


def test_a_training_defense_s_ranker_is_checked_against_the_protocol(tmp_path):
    folder = init(tmp_path, "defense", "--type", "training")
    toml = folder / "submission.toml"
    toml.write_text(toml.read_text().replace('defends = "vbpr"', 'defends = "vbrp"'))
    one_error(run_cli(["submission", "check", str(folder)]), "did you mean 'vbpr'")


def test_init_refuses_what_a_kind_does_not_take(tmp_path):
    one_error(run_cli(["submission", "init", str(tmp_path / "a"), "--knowledge", "insidr"]), "did you mean 'insider'")
    one_error(run_cli(["submission", "init", str(tmp_path / "b"), "--kind", "defense", "--knowledge", "expert"]),
              "a defense takes --type")
    one_error(run_cli(["submission", "init", str(tmp_path / "c"), "--kind", "rankr"]), "did you mean 'ranker'")
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
@needs_sandbox
@pytest.mark.parametrize("kind,flag,value", STUBS)
def test_every_stub_passes_its_dry_run_within_a_minute(tmp_path, tiny_rankers, kind, flag, value):
    folder = init(tmp_path, kind, flag, value)
    start = time.perf_counter()
    result = run_cli(["submission", "check", str(folder), "--dry-run"], home=tiny_rankers.root.parent)
    seconds = time.perf_counter() - start
    assert result.exit_code == 0 and "ok: dry run on tiny" in result.output, result.output[-2000:]
    assert seconds < DRY_RUN_LIMIT, f"{kind} {value}: {seconds:.0f} s"


def test_a_live_bar_shows_counts_and_an_estimate(capsys):
    from aipbench.progress import LiveBar

    bar = LiveBar("my-attack → vbpr", enabled=True)
    for done in range(1, 6):
        bar(done, 5)
    bar("nonsense", None)  # what submitted code sends is only a display: a bad report is dropped
    bar.close()
    err = capsys.readouterr().err
    assert "my-attack → vbpr: 100%" in err and "5/5" in err
    quiet = LiveBar("hidden", enabled=False)
    quiet(1, 2)
    assert quiet.bar is None and "hidden" not in capsys.readouterr().err


@pytest.mark.slow
@needs_sandbox
def test_a_progress_report_that_is_not_two_numbers_is_one_line(tmp_path, tiny_rankers):
    folder = init(tmp_path, "attack", "--knowledge", "semantic")
    code = folder / "attack.py"
    code.write_text(code.read_text().replace("context.progress(context.n_items, context.n_items)",
                                             "context.progress(float('nan'), context.n_items)"))
    result = run_cli(["evaluate", str(folder), "--protocol", "tiny", "--rankers", "vbpr", "--items", "5",
                      "--skip-determinism-check", "--out", str(tmp_path / "r.json")], home=tiny_rankers.root.parent)
    one_error(result, "progress(done, total) takes two finite numbers")
    assert not (tmp_path / "r.json").exists()
