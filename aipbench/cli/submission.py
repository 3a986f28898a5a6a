"""`aipbench submission`: start a submission from a template and check one."""

from __future__ import annotations

import re
from pathlib import Path

import click

__all__ = ["submission"]


@click.group()
def submission() -> None:
    """Create and check submissions."""


@submission.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default=None, help="Submission name (default: the folder's name).")
def init_cmd(folder: Path, name: str | None) -> None:
    """Write a commented submission.toml template into FOLDER (never overwrites)."""
    from aipbench.errors import InputError
    from aipbench.harness.submission import SUBMISSION_FILE, template

    target = folder / SUBMISSION_FILE
    if target.exists():
        raise InputError(f"{target}: already exists; not overwriting")
    name = name or folder.resolve().name
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63]  # "My Def" -> "my-def": the rule a name obeys
    if not slug:
        raise InputError(f"{target}: no submission name can be made of {name!r}; pass --name with letters or digits")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(template(slug))
    click.echo(f"wrote {target} (name {slug}); edit it, add attack.py (or images/), then `aipbench evaluate {folder}`")


@submission.command("check")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--unsandboxed", is_flag=True,
              help="Import the code in a plain child process where no bubblewrap sandbox can run.")
def check_cmd(folder: Path, unsandboxed: bool) -> None:
    """Validate FOLDER's submission.toml, import its code in its sandbox and check its class has the methods
    its kind needs (nothing is prepared or run); print the resolved submission."""
    from aipbench.harness.code_check import check_code
    from aipbench.harness.submission import load_submission

    sub = load_submission(folder)
    info = sub.submission
    methods = check_code(sub, sandboxed=not unsandboxed)
    found = ", ".join(f"{m}()" for m in methods)
    source = f"code {sub.entry}, {found} found" if sub.entry else f"images in {sub.images}"
    if sub.defense is not None:
        d = sub.defense
        levels = f", {d.parameter} in {list(d.levels)}" if d.parameter else ""
        click.echo(f"ok: {info.name} ({info.kind}, {d.type}{levels}; {source})")
        return
    if info.kind == "ranker":
        click.echo(f"ok: {info.name} (ranker; {source})")
        return
    threat = "unbounded" if sub.threat.norm == "unbounded" else f"linf, epsilon {sub.threat.epsilon}/255"
    click.echo(f"ok: {info.name} ({info.kind}, {info.knowledge} knowledge, {threat}; {source})")


@submission.command("context")
@click.argument("level")
def context_cmd(level: str) -> None:
    """What an attack of knowledge LEVEL finds in its context (insider, expert, semantic, classifier, blackbox):
    the names its level grants and the fields every context has."""
    from aipbench.attacks.context import PUBLIC_DOCS, level_grants

    grants = level_grants(level)
    width = max(len(name) for name in [*dict(grants), *PUBLIC_DOCS])
    click.echo(f"{'an' if level[0] in 'aeiou' else 'a'} {level} attack's context grants:")
    for name, doc in grants:
        click.echo(f"  {name:<{width}}  {doc}")
    click.echo("and, as every context:")
    for name, doc in PUBLIC_DOCS.items():
        click.echo(f"  {name:<{width}}  {doc}")


@submission.command("package")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--results", "results_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The results document `aipbench evaluate FOLDER --out` wrote (its .items.csv and .examples.png beside it).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The archive to write (default: <name>-<protocol>.tar.gz here).")
def package_cmd(folder: Path, results_file: Path, out: Path | None) -> None:
    """Make the archive a maintainer needs to file and verify an entry: FOLDER as it ran (its hash must be
    the one the results record), the results with their files, the environment, a manifest of SHA-256s."""
    import json

    from aipbench.leaderboard.package import package_submission

    if out is None:
        try:
            doc = json.loads(Path(results_file).read_text())
            out = Path(f"{doc['submission']['name']}-{doc['protocol']['name']}.tar.gz")
        except (OSError, ValueError, KeyError, TypeError):  # package_submission says what is wrong with it
            out = Path(f"{folder.resolve().name}.tar.gz")
    manifest = package_submission(folder, results_file, out)
    click.echo(f"wrote {out}: {len(manifest['files'])} files; attach it to a 'New attack' or 'New defense' issue")
