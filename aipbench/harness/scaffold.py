"""A new submission folder (``aipbench submission init``): a commented ``submission.toml`` and a runnable stub of
the kind and level asked for — the attack stub a whole small attack using exactly what its level grants."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from aipbench.attacks.context import KNOWLEDGE_LEVELS
from aipbench.errors import InputError
from aipbench.registry import suggestion

__all__ = ["DEFENSE_TYPES", "KINDS", "make_name", "scaffold", "stub_source", "template"]

KINDS = ("attack", "defense", "ranker")
DEFENSE_TYPES = ("transform", "detector", "training")

# (code file, class) per kind and level or type; the stub's source is aipbench/stubs/<stub>.py
_ENTRIES = {"attack": ("attack.py", "Attack"), "defense": ("defense.py", "Defense"), "ranker": ("ranker.py", "MyRanker")}

_LEVELS = """# What the attack may see (the harness grants exactly this, nothing more; `aipbench submission context LEVEL`):
#   insider    — the trained ranker, its user embeddings, the catalog
#   expert     — the ranker's image model (Φ or Φ_e) and the catalog, no user data
#   semantic   — the catalog images only, no model
#   classifier — a public pre-trained image classifier only
#   blackbox   — no model: the ranks a query image reaches for the merchant's own probe accounts (an oracle)"""

_DEFENSE = {
    "transform": 'type = "transform"             # every image the ranker sees goes through transform(images)\n'
                 'parameter = "kernel"           # an attribute of the class the harness sets per level (a family)\n'
                 "levels = [3, 5]                # one evaluation per level\n",
    "detector": 'type = "detector"              # fit(context) on catalog items, score(images) at the upload gate\n',
    "training": 'type = "training"              # train(context) returns the ranker that replaces `defends`\n'
                'defends = "vbpr"               # a ranker of the protocol (`aipbench rankers list`)\n',
}


def make_name(text: str) -> str:
    """A valid submission name made of any text ("My Def v2!" → "my-def-v2"); '' when nothing is left."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63]


def template(name: str, *, kind: str = "attack", knowledge: str = "insider", defense_type: str = "transform") -> str:
    """A commented ``submission.toml`` for ``kind`` (and its level or defense type) to start from."""
    file, cls = _ENTRIES[kind]
    head = f'''# aipbench submission — validated by `aipbench submission check`; every key below is required unless marked.

# Exactly one of the two (top-level keys come before the first [table]):
entry = "{file}:{cls}"{" " * max(1, 20 - len(file) - len(cls))}# code: a class in a file of this folder (reviewed before it is run)
# images = "images/"           # pre-made images instead: <cold_item_id>.png for every cold item (`aipbench data export-cold`)

[submission]
name = "{name}"                # lowercase letters, digits, dashes; the leaderboard key
kind = "{kind}"
'''
    if kind != "attack":
        head = head.replace('# images = "images/"           # pre-made images instead: <cold_item_id>.png for every cold '
                            'item (`aipbench data export-cold`)\n', "")
    about = '''authors = ["Your Name"]
description = "One paragraph: what it does."
link = ""                      # a paper or repository URL (http/https), or empty
'''
    if kind == "attack":
        return head + _LEVELS + f'\nknowledge = "{knowledge}"\n' + about + '''
[threat]
norm = "linf"                  # "linf" (pixel budget) or "unbounded" (semantic edits, no epsilon)
epsilon = 32                   # 8-bit units: every pixel moves at most 32/255
'''
    if kind == "defense":
        return head + about + "\n[defense]\n" + _DEFENSE[defense_type]
    return head + about


def stub_source(kind: str, *, knowledge: str = "insider", defense_type: str = "transform") -> str:
    """The runnable stub's code for ``kind`` and its level or defense type."""
    stub = {"attack": f"attack_{knowledge}", "defense": f"defense_{defense_type}", "ranker": "ranker"}[kind]
    return resources.files("aipbench").joinpath("stubs", f"{stub}.py").read_text()


def _checked(value: str | None, allowed: tuple[str, ...], what: str, default: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}{suggestion(value, allowed)}; one of {', '.join(allowed)}")
    return value


def scaffold(folder: str | Path, *, kind: str = "attack", knowledge: str | None = None, defense_type: str | None = None,
             name: str | None = None) -> tuple[str, list[Path]]:
    """Write ``submission.toml`` and the stub into ``folder`` (created; nothing is overwritten): (its name, the
    files written)."""
    folder = Path(folder)
    kind = _checked(kind, KINDS, "kind", "attack")
    if knowledge is not None and kind != "attack":
        raise InputError(f"--knowledge is an attack's; a {kind} has none (a defense takes --type)")
    if defense_type is not None and kind != "defense":
        raise InputError(f"--type is a defense's (transform, detector, training); a {kind} has none")
    knowledge = _checked(knowledge, KNOWLEDGE_LEVELS, "knowledge level", "insider")
    defense_type = _checked(defense_type, DEFENSE_TYPES, "defense type", "transform")
    toml, code = folder / "submission.toml", folder / _ENTRIES[kind][0]
    for target in (toml, code):
        if target.exists():
            raise InputError(f"{target}: already exists; not overwriting")
    slug = make_name(name or folder.resolve().name)
    if not slug:
        raise InputError(f"{toml}: no submission name can be made of {name or folder.resolve().name!r}; "
                         "pass --name with letters or digits")
    folder.mkdir(parents=True, exist_ok=True)
    toml.write_text(template(slug, kind=kind, knowledge=knowledge, defense_type=defense_type))
    code.write_text(stub_source(kind, knowledge=knowledge, defense_type=defense_type))
    return slug, [toml, code]
