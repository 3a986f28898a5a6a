"""`aipbench prepare`: build a protocol's missing, corrupt or stale artifacts."""

from __future__ import annotations

from pathlib import Path

import click

from aipbench.cli.options import chosen_protocol, device_option, protocol_option

__all__ = ["prepare"]


@click.command()
@protocol_option()
@click.option("--only", "only", default=None, metavar="A,B",
              help="Build only these artifacts (and what they need), comma-separated.")
@click.option("--replicas", type=click.IntRange(1, 10), default=1, show_default=True,
              help="Also train replicas 2..R of each trained ranker (VBPR, DVBPR, AMR) with seeds derived from "
                   "the protocol's: optional artifacts vbpr-r2, ... for `evaluate --replicas`.")
@click.option("--seed-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Maintainers: build PROTOCOL's held-out build, its private training seeds drawn from this secret "
                   "file (keep it; publish its SHA-256 only), for `aipbench verify --held-out`.")
@click.option("--build", "build", default=None, metavar="ID|FILE|URL",
              help="Import this build (the id the protocol's pin names, an archive file or its URL) instead of "
                   "training what it holds; then build whatever it lacks.")
@device_option
def prepare(legacy_protocol: str | None, protocol: str | None, only: str | None, replicas: int, seed_file: Path | None,
            build: str | None, device: str) -> None:
    """Build the protocol's artifacts under $AIPBENCH_HOME (default ~/.cache/aipbench), or import a build of them."""
    protocol = chosen_protocol(protocol, legacy_protocol)
    import time

    from aipbench.pipeline.device import resolve_device
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    proto = load_protocol(protocol)
    if seed_file is not None:
        from aipbench.protocol.heldout import held_out, read_seed_file

        secret, digest = read_seed_file(seed_file)
        proto = held_out(proto, secret)
        click.echo(f"{proto.name}: the held-out build (seed file SHA-256 {digest})", err=True)
    if build is not None:
        if seed_file is not None:
            raise click.UsageError("--build imports a published build; a held-out build (--seed-file) is made here")
        from aipbench.builds.importing import import_build

        import_build(build, protocol=proto.name, log=lambda m: click.echo(m, err=True))
    store = open_store(proto, device=resolve_device(device))
    targets = [t.strip() for t in only.split(",")] if only else None
    if replicas > 1:
        from aipbench.rankers.registry import ranker_names
        from aipbench.rankers.replicas import is_replicated, replica_artifact

        extra = [replica_artifact(base, r) for r in range(2, replicas + 1) for base in ranker_names(proto)
                 if is_replicated(base)]
        targets = (targets or [n for n, s in store.steps.items() if not s.optional]) + extra
    started = time.perf_counter()
    built = store.prepare(targets, log=lambda m: click.echo(m, err=True))
    names = store.order(targets)
    if not built:
        click.echo(f"nothing to do: {len(names)} artifacts up to date in {store.root}{_imported(store)}")
    else:
        click.echo(f"built {', '.join(built)} in {time.perf_counter() - started:.1f} s; {store.root}")


def _imported(store) -> str:
    """", the imported build <id>" while the cache holds exactly the build it imported."""
    from aipbench.pipeline.builds import build_id

    record = store.manifest().get("build")
    if not record:
        return ""
    if build_id(store.protocol, store.hashes()) != record["id"]:
        return f" (changed since build {record['id'][:12]} was imported)"
    return f" (imported build {record['id'][:12]})"
