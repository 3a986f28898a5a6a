"""`aipbench prepare`: build a protocol's missing, corrupt or stale artifacts."""

from __future__ import annotations

import click

from aipbench.cli.options import device_option
from aipbench.protocol import DEFAULT_PROTOCOL

__all__ = ["prepare"]


@click.command()
@click.argument("protocol", default=DEFAULT_PROTOCOL)
@click.option("--only", "only", default=None, metavar="A,B",
              help="Build only these artifacts (and what they need), comma-separated.")
@device_option
def prepare(protocol: str, only: str | None, device: str) -> None:
    """Build PROTOCOL's artifacts under $AIPBENCH_HOME (default ~/.cache/aipbench)."""
    import time

    from aipbench.pipeline.device import resolve_device
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    store = open_store(load_protocol(protocol), device=resolve_device(device))
    targets = [t.strip() for t in only.split(",")] if only else None
    started = time.perf_counter()
    built = store.prepare(targets, log=lambda m: click.echo(m, err=True))
    names = store.order(targets)
    if not built:
        click.echo(f"nothing to do: {len(names)} artifacts up to date in {store.root}")
    else:
        click.echo(f"built {', '.join(built)} in {time.perf_counter() - started:.1f} s; {store.root}")
