"""`aipbench leaderboard`: file outside entries and render the static leaderboard site from committed results."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["leaderboard"]


@click.group()
def leaderboard() -> None:
    """Add entries and build the static leaderboard."""


@leaderboard.command("build")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of <protocol>/<submission>.json results (default: the checkout's leaderboard/results).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the site into.")
def build_cmd(results_dir: Path | None, out: Path) -> None:
    """Validate every results file (schema, its own hash, protocol hash, artifact hashes) and render
    the site: an index, a page per protocol and per submission; static HTML that works from file://."""
    from aipbench.leaderboard import build_site
    from aipbench.paths import leaderboard_results_dir

    written = build_site(results_dir or leaderboard_results_dir(), out)
    click.echo(f"wrote {len(written)} pages to {out} (open {out / 'index.html'})")


@leaderboard.command("add")
@click.argument("results_file", type=click.Path(path_type=Path))
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of <protocol>/<submission>.json results (default: the checkout's leaderboard/results).")
def add_cmd(results_file: Path, results_dir: Path | None) -> None:
    """File RESULTS_FILE (someone else's `aipbench evaluate` document, with its .items.csv and .examples.png
    beside it) as a claimed entry: schema, seal, protocol hash, budgets, sealed files and the protocol's
    artifact hashes are checked; nothing is re-run (that is `aipbench verify`)."""
    from aipbench.leaderboard.intake import add_entry
    from aipbench.paths import leaderboard_results_dir

    target = add_entry(results_file, results_dir or leaderboard_results_dir())
    click.echo(f"filed {target} as claimed; verify it with `aipbench verify {target} --items 100`")


@leaderboard.command("check")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of <protocol>/<submission>.json results (default: the checkout's leaderboard/results).")
def check_cmd(results_dir: Path | None) -> None:
    """Run `leaderboard add`'s checks on every filed entry (what CI runs on a pull request that adds results)."""
    from aipbench.leaderboard.intake import check_entries
    from aipbench.paths import leaderboard_results_dir

    counts = check_entries(results_dir or leaderboard_results_dir())
    click.echo(f"ok: {sum(counts.values())} entries (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")")
