"""Numbers the README and docs/*.md quote come from the committed documents. A page lists what it quotes in a
`<!-- quotes ... -->` block — one line each: the number as the page writes it, the committed JSON document
(repository path) and where in it (a dotted path; `[key=value,...]` picks the element of a list) — and a
`<!-- generated: aipbench.module.function(args) -->` block holds what that function returns. The test reads
every quoted number from its document and finds it in the page's text; it fails when they differ."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
QUOTES = re.compile(r"<!-- quotes\n(.*?)-->", re.S)
GENERATED = re.compile(r"<!-- generated: (aipbench[\w.]*)\((.*?)\)[;\s][^>]*-->\n(.*?)<!-- end generated -->", re.S)


def select(document, path: str):
    """``document`` at ``path``: dotted keys, ``name[key=value,...]`` the element of a list with those fields."""
    value = document
    for token in re.findall(r"[^.\[\]]+(?:\[[^\]]*\])?", path):
        name, _, where = token.partition("[")
        value = value[name]
        if where:
            wanted = dict(pair.split("=", 1) for pair in where.rstrip("]").split(","))
            (value,) = [v for v in value if all(str(v.get(k)) == w for k, w in wanted.items())]
    return value


def agrees(written: str, value: float) -> bool:
    """The number as written equals ``value`` to the digits written (rounding the last one)."""
    mantissa, _, exponent = written.lower().partition("e")
    digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
    unit = 10.0 ** (int(exponent or 0) - digits)  # one unit of the last digit written
    return abs(float(written) - value) <= 0.5 * unit * (1 + 1e-9)


def quotes(page: Path) -> list[tuple[str, str, str]]:
    return [tuple(line.split(None, 2)) for block in QUOTES.findall(page.read_text())
            for line in block.strip().splitlines() if line.strip()]


@pytest.mark.parametrize("page", [p for p in PAGES if quotes(p)], ids=lambda p: p.name)
def test_every_quoted_number_is_the_committed_documents(page):
    text = QUOTES.sub("", page.read_text())
    cache, wrong = {}, []
    for written, file, path in quotes(page):
        document = cache.setdefault(file, json.loads((REPO / file).read_text()))
        value = float(select(document, path))
        if not agrees(written, value):
            wrong.append(f"{written} is {value!r} in {file} {path}")
        elif not re.search(rf"(?<![\d.]){re.escape(written)}(?![\d])", text):
            wrong.append(f"{written} ({file} {path}) is listed but not on the page")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("page", [p for p in PAGES if GENERATED.search(p.read_text())], ids=lambda p: p.name)
def test_every_generated_block_is_what_its_function_makes(page):
    for dotted, args, block in GENERATED.findall(page.read_text()):
        module, _, name = dotted.rpartition(".")
        call = ast.parse(f"f({args})", mode="eval").body
        values = [ast.literal_eval(a) for a in call.args]
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        assert block == getattr(importlib.import_module(module), name)(*values, **keywords), f"{page.name}: {dotted}"


def test_the_checker_catches_a_number_that_differs():
    document = {"results": [{"ranker": "vbpr", "epsilon": 32, "hr": {"5": 0.03902}}]}
    assert select(document, "results[ranker=vbpr,epsilon=32].hr.5") == 0.03902
    assert agrees("0.0390", 0.03902) and agrees("0.03902", 0.039024) and not agrees("0.0391", 0.03902)
    assert agrees("2.167e-168", 2.1668e-168) and not agrees("2.2e-168", 2.1e-168)
