"""`aipbench leaderboard`: render the static leaderboard site from committed results."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["leaderboard"]


@click.group()
def leaderboard() -> None:
    """Build the static leaderboard."""


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
