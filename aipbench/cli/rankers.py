"""`aipbench rankers`: list the rankers and report their clean quality on a protocol."""

from __future__ import annotations

import json

import click

from aipbench.cli.options import chosen_protocol, device_option, protocol_option

__all__ = ["rankers"]


@click.group()
def rankers() -> None:
    """Inspect the trained second-stage rankers."""


@rankers.command("report")
@protocol_option()
@click.option("--rankers", "names", default=None, metavar="A,B", help="Only these rankers (default: all the protocol's).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@device_option
def report_cmd(legacy_protocol: str | None, protocol: str | None, names: str | None, as_json: bool, device: str) -> None:
    """Clean quality per ranker: test AUC, test HR@N, cooperative cold HR@N (preparing what is missing)."""
    protocol = chosen_protocol(protocol, legacy_protocol)
    from aipbench.pipeline.prepared import Prepared
    from aipbench.protocol import load_protocol
    from aipbench.rankers.registry import ranker_names, ranker_spec
    from aipbench.scoring.ranker_quality import format_quality, ranker_quality

    proto = load_protocol(protocol)
    chosen = [n.strip() for n in names.split(",")] if names else ranker_names(proto)
    for n in chosen:
        ranker_spec(n)  # unknown names fail before any work
    prepared = Prepared(proto, device=device, needs=chosen, log=lambda m: click.echo(m, err=True))
    report = ranker_quality(prepared, chosen)
    click.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else format_quality(report))
