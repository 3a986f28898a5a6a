"""Every `aipbench ...` command the README and docs/ name exists, with the options named beside it, and
every link between the pages resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from aipbench.cli import main

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"aipbench((?: [a-z][a-z-]*)+)((?: +(?:\[?--[a-z][a-z-]*|[^\s`|]+))*)")


def _commands(text: str) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(command words, options named after them) for every `aipbench ...` in code spans and blocks (not in a
    block that shows a file — TOML, Python, JSON — where "aipbench" is a word of its text)."""
    blocks = [b for b in re.findall(r"```.*?```", text, re.S) if not re.match(r"```(toml|python|json)\b", b)]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    code = "\n".join(blocks + [span.replace("\n", " ") for span in re.findall(r"`[^`]+`", prose)])
    found = set()
    for words, rest in COMMAND.findall(code):
        options = tuple(sorted(set(re.findall(r"(--[a-z][a-z-]*)", rest))))
        found.add((tuple(words.split()), options))
    return found


def _resolve(words: tuple[str, ...]) -> list[str]:
    """The longest prefix of ``words`` that is a command or group of `aipbench`."""
    path, group = [], main
    for word in words:
        sub = group.get_command(None, word) if hasattr(group, "get_command") else None
        if sub is None:
            break
        path.append(word)
        group = sub
    return path


CASES = [(page.name, words, options) for page in PAGES for words, options in sorted(_commands(page.read_text()))]


def test_the_pages_name_commands():
    assert len({words[0] for _, words, _ in CASES}) >= 7  # evaluate, prepare, reproduce, leaderboard, ...


@pytest.mark.parametrize(("page", "words", "options"), CASES, ids=[f"{p}:{' '.join(w)}" for p, w, _ in CASES])
def test_a_named_command_exists_with_its_options(page, words, options):
    path = _resolve(words)
    assert path, f"{page}: `aipbench {' '.join(words)}` is no command"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    if len(words) > len(path) and result.output.lstrip().startswith("Usage") and "Commands:" in result.output:
        pytest.fail(f"{page}: `aipbench {' '.join(words)}`: {words[len(path)]!r} is not a subcommand of {path}")
    missing = [o for o in options if o not in result.output and o not in ("--help",)]
    assert not missing, f"{page}: `aipbench {' '.join(path)}` has no {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_between_pages_resolve(page):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
        if not target.startswith(("http://", "https://")):
            assert (page.parent / target).exists(), f"{page.name}: link to {target} does not resolve"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_modules_and_files_exist(page):
    import importlib

    text = page.read_text()
    for path in re.findall(r"`(aipbench/[\w/.-]+\.(?:py|json))`", text):
        assert (REPO / path).is_file(), f"{page.name}: {path} does not exist"
    for dotted in re.findall(r"`(aipbench(?:\.[a-z_]+)+)", text):
        module, attr = dotted, None
        while module:
            try:
                obj = importlib.import_module(module)
                break
            except ModuleNotFoundError:
                module, _, attr = module.rpartition(".")
        assert module and (attr is None or hasattr(obj, attr)), f"{page.name}: {dotted} does not exist"
