"""The documentation site: `mkdocs build --strict` (no warning) from docs/ and mkdocs.yml, and every public
function and method on the API page has a docstring."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
API = REPO / "docs" / "api.md"


def documented() -> list[str]:
    return re.findall(r"^::: ([\w.]+)$", API.read_text(), flags=re.M)


def resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError:
        return importlib.import_module(dotted)


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocstrings")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert all(f'id="{name}"' in api for name in documented())  # every object made it onto the page
    pages = {p.stem for p in (REPO / "docs").glob("*.md")}
    assert pages <= {p.parent.name for p in (tmp_path / "site").glob("*/index.html")} | {"index"}


def public_callables(obj):
    yield obj.__qualname__, obj
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            if name.startswith("_"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                member = member.fget
            if inspect.isfunction(member):
                yield f"{obj.__qualname__}.{name}", member


@pytest.mark.parametrize("dotted", documented())
def test_every_public_function_on_the_api_page_has_a_docstring(dotted):
    missing = [name for name, fn in public_callables(resolve(dotted)) if not (fn.__doc__ or "").strip()]
    assert not missing, f"no docstring: {missing}"
