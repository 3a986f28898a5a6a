"""Submission folders: the template validates, each violation is one line naming the file and the rule, and
`submission check` imports the code in its sandbox and names a mistake in it in one line."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import leftovers, one_error, run_cli, sandbox_marker

from aipbench.cli import main
from aipbench.errors import ConfigError
from aipbench.harness.scaffold import template
from aipbench.harness.submission import load_submission

GOOD = template("my-attack")
REPO = Path(__file__).resolve().parents[1]


def make(tmp_path, text=GOOD, *, attack=True, images=False):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "submission.toml").write_text(text)
    if attack:
        (folder / "attack.py").write_text("class Attack: ...\n")
    if images:
        (folder / "images").mkdir()
    return folder


def test_template_is_valid(tmp_path):
    sub = load_submission(make(tmp_path))
    assert sub.submission.name == "my-attack" and sub.submission.knowledge == "insider"
    assert sub.threat.norm == "linf" and sub.threat.epsilon == 32
    assert sub.entry_class == "Attack" and sub.entry_file.name == "attack.py"


def test_image_submission(tmp_path):
    text = GOOD.replace('entry = "attack.py:Attack"', '# entry').replace('# images = "images/"', 'images = "images/"')
    text = text.replace('norm = "linf"', 'norm = "unbounded"').replace("epsilon = 32 ", "# epsilon ")
    sub = load_submission(make(tmp_path, text, attack=False, images=True))
    assert sub.images_dir.name == "images" and sub.threat.epsilon is None


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ('kind = "attack"', 'kind = "poison"', "key 'submission.kind': expected one of"),
        ('knowledge = "insider"', 'knowledge = "oracle"', "key 'submission.knowledge': expected one of"),
        ('name = "my-attack"', 'name = "My Attack!"', "must be 1-63 lowercase"),
        ('authors = ["Your Name"]', "authors = []", "at least one"),
        ('link = ""', 'link = "javascript:alert(1)"', "must be an http(s) URL"),
        ("epsilon = 32 ", "epsilon = 300 ", "key 'threat.epsilon': value 300 is out of range"),
        ("epsilon = 32 ", "# epsilon ", "norm 'linf' needs epsilon"),
        ('norm = "linf"', 'norm = "unbounded"', "'unbounded' takes no epsilon"),
        ('entry = "attack.py:Attack"', 'entry = "attack.py"', "must look like"),
        ('entry = "attack.py:Attack"', 'entry = "../x.py:Attack"', "must look like"),
        ('entry = "attack.py:Attack"', 'entry = "other.py:Attack"', "other.py not found"),
        ('entry = "attack.py:Attack"', "# none", "give exactly one of"),
        ('# images = "images/"', 'images = "images/"', "give exactly one of"),
        ('link = ""', 'link = ""\ncolour = "red"', "key 'submission.colour': unknown key"),
        ("[threat]", "[threat", "not valid TOML"),
    ],
)
def test_each_violation_is_one_line(tmp_path, old, new, rule):
    assert old in GOOD, old
    folder = make(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_submission(folder)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(folder / "submission.toml"))
    assert rule in message, message


def test_a_linked_images_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    text = GOOD.replace('entry = "attack.py:Attack"', "# entry").replace('# images = "images/"', 'images = "images"')
    folder = make(tmp_path, text, attack=False)
    os.symlink(outside, folder / "images")
    with pytest.raises(ConfigError, match="key 'images': images is a symbolic link"):
        load_submission(folder)


def test_a_linked_entry_file_is_refused(tmp_path):
    (tmp_path / "evil.py").write_text("")
    folder = make(tmp_path, attack=False)
    os.symlink(tmp_path / "evil.py", folder / "attack.py")
    with pytest.raises(ConfigError, match="key 'entry': attack.py is a symbolic link"):
        load_submission(folder)


def test_an_images_path_leaving_the_folder_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    text = GOOD.replace('entry = "attack.py:Attack"', "# entry").replace('# images = "images/"', 'images = "../elsewhere"')
    with pytest.raises(ConfigError, match="leaves the submission folder"):
        load_submission(make(tmp_path, text, attack=False))


def test_missing_file_and_cli(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["submission", "check", str(empty)])
    assert result.exit_code == 1 and "missing" in result.output and str(empty) in result.output
    target = tmp_path / "new-attack"
    result = CliRunner().invoke(main, ["submission", "init", str(target)])
    assert result.exit_code == 0 and (target / "submission.toml").read_text() == template("new-attack")
    again = CliRunner().invoke(main, ["submission", "init", str(target)])
    assert again.exit_code == 1 and "already exists" in again.output
    (target / "attack.py").write_text("class Attack:\n    def run(self, context):\n"
                                      "        return context.cold_images\n")
    ok = CliRunner().invoke(main, ["submission", "check", str(target), "--unsandboxed"])  # the code is imported
    assert ok.exit_code == 0 and ok.output.startswith("ok: new-attack")


def test_init_makes_a_valid_name_of_any_folder_or_name(tmp_path):
    made = CliRunner().invoke(main, ["submission", "init", str(tmp_path / "x"), "--name", "My Def v2!"])
    assert made.exit_code == 0 and "(name my-def-v2)" in made.output
    (tmp_path / "x" / "attack.py").write_text("")
    assert load_submission(tmp_path / "x").submission.name == "my-def-v2"
    none = CliRunner().invoke(main, ["submission", "init", str(tmp_path / "y"), "--name", "!!!"])
    assert none.exit_code == 1 and none.output.count("\n") == 1 and "pass --name" in none.output
    assert not (tmp_path / "y").exists()  # nothing left behind


def test_a_training_defense_names_a_ranker_that_exists(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "defense.py").write_text("")
    (folder / "submission.toml").write_text('entry = "defense.py:D"\n[submission]\nname = "d"\nkind = "defense"\n'
                                            'authors = ["a"]\ndescription = ""\nlink = ""\n'
                                            '[defense]\ntype = "training"\ndefends = "vbrp"\n')
    result = CliRunner().invoke(main, ["submission", "check", str(folder)])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "defends: unknown ranker 'vbrp'; did you mean 'vbpr'?" in result.output
    assert "submission.toml" in result.output


CODE_CASES = {  # a planted mistake in a copy of a reference submission → its one line
    "a class misspelled": ("insa", "attack.py", "class INSA:", "class INSa:",
                           "defines no INSA; did you mean 'INSa'?"),
    "a syntax error": ("insa", "attack.py", "class INSA:", "class INSA(:", "importing it failed: SyntaxError"),
    "an import that fails": ("noise", "attack.py", "import", "import no_such_module\nimport",
                             "importing it failed: ModuleNotFoundError: No module named 'no_such_module'"),
    "no run()": ("noise", "attack.py", "def run(", "def go(",
                 "UniformNoise has no method run (the harness calls run())"),
    "a ranker without train()": ("examples/visual-mf", "ranker.py", "\ndef train(", "\ndef fit(",
                                 "defines no train(context) -> VisualMF"),
}


@sandbox_marker()
@pytest.mark.parametrize("case", sorted(CODE_CASES))
def test_check_imports_the_code_in_its_sandbox_and_names_the_mistake(tmp_path, case):
    name, file, old, new, rule = CODE_CASES[case]
    folder = tmp_path / "sub"
    shutil.copytree(REPO / "submissions" / name, folder)
    ok = run_cli(["submission", "check", str(folder)])
    assert ok.exit_code == 0 and "() found)" in ok.output, ok.output
    text = (folder / file).read_text()
    assert old in text
    (folder / file).write_text(text.replace(old, new, 1))
    one_error(run_cli(["submission", "check", str(folder)]), f"{folder.resolve() / file}: {rule}")
    assert not leftovers()


def test_what_a_level_grants_is_printed_and_documented_from_grants():
    """`submission context LEVEL` and docs/attacks.md's table come from GRANTS (and every context's own fields),
    so neither can drift from what the harness hands an attack."""
    from aipbench.attacks.context import GRANTS, PUBLIC, PUBLIC_DOCS, context_table

    docs = (REPO / "docs" / "attacks.md").read_text()
    block = docs.split("<!-- generated: aipbench.attacks.context.context_table();")[1]
    block = block.split("<!-- end generated -->")[0]
    assert block.split("\n", 1)[1] == context_table()
    assert set(PUBLIC) <= set(PUBLIC_DOCS)
    for level, granted in GRANTS.items():
        out = run_cli(["submission", "context", level])
        assert out.exit_code == 0
        listed = [line.split()[0] for line in out.output.split("and, as every context:")[0].splitlines()[1:]]
        assert sorted(listed) == sorted(granted)
    one_error(run_cli(["submission", "context", "blackbx"]),
              "unknown knowledge level 'blackbx'; did you mean 'blackbox'?")
