"""`aipbench reproduce`: the paper's tables, figures and claims on a protocol."""

from __future__ import annotations

from pathlib import Path

import click

from aipbench.cli.options import device_option, renamed
from aipbench.protocol import DEFAULT_PROTOCOL
from aipbench.reproduce import EXPERIMENTS

__all__ = ["reproduce"]


def _parse_levels(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """``jpeg=90,10`` → ``{"jpeg": (90, 10)}``; a malformed value is a usage error naming the option."""
    out: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, sep, levels = value.partition("=")
        try:
            parsed = tuple(int(v) for v in levels.split(",")) if sep and name else ()
        except ValueError:
            parsed = ()
        if not parsed or name in out:
            raise click.BadParameter(f"{value!r}: expected DEFENSE=L1,L2,… (integers), once per defense", ctx, param)
        out[name] = parsed
    return out


@click.command("reproduce")
@click.argument("experiment", type=click.Choice([*EXPERIMENTS, "all"]))
@click.option("--protocol", default=DEFAULT_PROTOCOL, show_default=True, help="Protocol name or .toml file.")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Results folder: <protocol>/<submission>.json are reused when current, else evaluated and written.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where the reproduction files go (default: <results>/<protocol>/reproduce/).")
@device_option
@click.option("--items", type=click.IntRange(min=1), default=100, show_default=True,
              help="Only the protocol's subset of N cold items for Tables 6 and 8 and the figures; the paper's: 100.")
@renamed("--subset", "--items")
@click.option("--levels", "defense_levels", multiple=True, metavar="DEFENSE=L1,L2,…", callback=_parse_levels,
              help="Table 8: evaluate a defense family at these levels instead of its own (e.g. jpeg=90,10). Repeatable.")
def reproduce(experiment: str, protocol: str, results_dir: Path, out: Path | None, device: str, items: int,
              items_alias: int | None,
              defense_levels: dict[str, tuple[int, ...]]) -> None:
    """Reproduce EXPERIMENT (a table, a figure, the paper's claims, or all) on a protocol.

    Prints each table shaped like the paper's (the paper's numbers beside ours on a paper protocol) and
    writes <experiment>.json and .csv (and .png/.svg for figures). Cached artifacts and current results
    are reused; only what is missing is trained or evaluated.
    """
    from aipbench.reproduce import reproduce as run

    log = lambda m: click.echo(m, err=True)  # noqa: E731

    from aipbench.harness.distributed import world

    def done(rep) -> None:
        if world().rank != 0:  # under torchrun, rank 0 writes
            return
        folder = out or results_dir / rep.protocol / "reproduce"
        written = rep.write(folder)
        click.echo(f"\n{rep.experiment} on {rep.protocol}" + (f" (paper: {rep.paper_dataset})" if rep.paper_dataset else ""))
        click.echo(rep.table())
        click.echo(f"wrote {', '.join(p.name for p in written)} to {folder}")

    run(experiment, protocol=protocol, results_dir=results_dir, device=device, subset=items_alias or items, defense_levels=defense_levels,
        log=log, on_done=done)
