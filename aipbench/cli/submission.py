"""`aipbench submission`: start a submission from a template and check one."""

from __future__ import annotations

from pathlib import Path

import click

from aipbench.protocol import DEFAULT_PROTOCOL

__all__ = ["submission"]


@click.group()
def submission() -> None:
    """Create and check submissions."""


@submission.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--kind", default="attack", show_default=True, metavar="attack|defense|ranker",
              help="What the submission is.")
@click.option("--knowledge", default=None, metavar="LEVEL",
              help="An attack's knowledge level: insider (default), expert, semantic, classifier or blackbox.")
@click.option("--type", "defense_type", default=None, metavar="TYPE",
              help="A defense's type: transform (default), detector or training.")
@click.option("--name", default=None, help="Submission name (default: the folder's name), made valid.")
def init_cmd(folder: Path, kind: str, knowledge: str | None, defense_type: str | None, name: str | None) -> None:
    """Write a commented submission.toml and a runnable stub of that kind and level into FOLDER (never
    overwrites): the attack stub is a whole small attack using exactly what its level grants."""
    from aipbench.harness.scaffold import scaffold

    slug, files = scaffold(folder, kind=kind, knowledge=knowledge, defense_type=defense_type, name=name)
    click.echo(f"wrote {', '.join(str(f) for f in files)} (name {slug})")
    click.echo(f"next: aipbench submission check {folder} --dry-run   (runs it on `tiny` in seconds), then "
               f"aipbench evaluate {folder}")


@submission.command("check")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--protocol", default=DEFAULT_PROTOCOL, show_default=True,
              help="The protocol its fields are checked against (its budget, its rankers).")
@click.option("--dry-run", is_flag=True,
              help="Also run it on the tiny protocol (prepared on demand) on a few cold items: seconds, not the "
                   "hours of an evaluation; nothing is written.")
@click.option("--unsandboxed", is_flag=True,
              help="Import (and dry-run) the code in a plain child process where no bubblewrap sandbox can run.")
def check_cmd(folder: Path, protocol: str, dry_run: bool, unsandboxed: bool) -> None:
    """Validate FOLDER's submission.toml against a protocol, import its code in its sandbox and check its class
    has the methods its kind needs; with --dry-run run it on `tiny`. Prints the resolved submission."""
    from aipbench.harness.code_check import check_code, check_fields
    from aipbench.harness.submission import load_submission
    from aipbench.protocol import load_protocol

    sub = load_submission(folder)
    check_fields(sub, load_protocol(protocol))
    methods = check_code(sub, sandboxed=not unsandboxed)
    click.echo(f"ok: {sub.submission.name} ({_described(sub, methods)})")
    if dry_run:
        import time

        from aipbench.harness.dry_run import DRY_RUN_ITEMS, DRY_RUN_PROTOCOL, dry_run as run

        start = time.perf_counter()
        results = run(sub, sandboxed=not unsandboxed, log=lambda m: click.echo(m, err=True))
        click.echo(results.table())
        click.echo(f"ok: dry run on {DRY_RUN_PROTOCOL}, {DRY_RUN_ITEMS} cold items, in "
                   f"{time.perf_counter() - start:.0f} s; next: aipbench evaluate {folder}"
                   + ("" if protocol == DEFAULT_PROTOCOL else f" --protocol {protocol}"))


def _described(sub, methods: list[str]) -> str:
    found = ", ".join(f"{m}()" for m in methods)
    source = f"code {sub.entry}, {found} found" if sub.entry else f"images in {sub.images}"
    info = sub.submission
    if sub.defense is not None:
        d = sub.defense
        levels = f", {d.parameter} in {list(d.levels)}" if d.parameter else ""
        return f"{info.kind}, {d.type}{levels}; {source}"
    if info.kind == "ranker":
        return f"ranker; {source}"
    threat = "unbounded" if sub.threat.norm == "unbounded" else f"linf, epsilon {sub.threat.epsilon}/255"
    return f"{info.kind}, {info.knowledge} knowledge, {threat}; {source}"


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
