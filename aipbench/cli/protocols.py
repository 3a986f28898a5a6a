"""`aipbench protocols`: list the shipped protocols and show one resolved, with its hash."""

from __future__ import annotations

import json

import click

__all__ = ["protocols"]


@click.group()
def protocols() -> None:
    """List and inspect frozen benchmark protocols."""


@protocols.command("list")
def list_cmd() -> None:
    """List the protocols found in the protocol folders, with their hashes."""
    from tabulate import tabulate

    from aipbench.protocol import list_protocols, load_protocol

    rows = []
    for path in list_protocols():
        p = load_protocol(path)
        rows.append([p.name, p.version, p.data.source, p.data.image_size, p.hash12, p.protocol.description])
    headers = ["name", "version", "source", "image", "hash", "description"]
    click.echo(tabulate(rows, headers=headers, maxcolwidths=[None, None, None, None, None, 60]))


@protocols.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved protocol and statistics as JSON.")
def show_cmd(name: str, as_json: bool) -> None:
    """Show protocol NAME: resolved settings, SHA-256 and data set statistics (paper Table 2)."""
    from aipbench.pipeline.summary import protocol_summary

    summary = protocol_summary(name)
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    from aipbench.pipeline.summary import format_protocol_summary

    click.echo(format_protocol_summary(summary))
