"""`aipbench rankers`: list the rankers and report their clean quality on a protocol."""

from __future__ import annotations

import json

import click

from aipbench.protocol import DEFAULT_PROTOCOL

__all__ = ["rankers"]


@click.group()
def rankers() -> None:
    """Inspect the trained second-stage rankers."""


@rankers.command("report")
@click.argument("protocol", default=DEFAULT_PROTOCOL)
@click.option("--rankers", "names", default=None, metavar="A,B", help="Only these rankers (default: all four).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--device", default="cpu", show_default=True, help="Torch device to score on (cpu, cuda).")
def report_cmd(protocol: str, names: str | None, as_json: bool, device: str) -> None:
    """Clean quality per ranker: test AUC, test HR@N, cooperative cold HR@N (preparing what is missing)."""
    from aipbench.pipeline import open_store
    from aipbench.protocol import load_protocol
    from aipbench.ranker_steps import RANKERS
    from aipbench.rankers.quality import format_quality, ranker_quality

    chosen = [n.strip() for n in names.split(",")] if names else RANKERS.names()
    for n in chosen:
        RANKERS.get(n)  # unknown names fail before any work
    store = open_store(load_protocol(protocol))
    store.prepare(["candidates", *chosen], log=lambda m: click.echo(m, err=True))
    report = ranker_quality(store, chosen, device=device)
    click.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else format_quality(report))
