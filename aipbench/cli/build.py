"""`aipbench build`: export a prepared protocol's build to one archive, and import one by file, URL or id."""

from __future__ import annotations

from pathlib import Path

import click

from aipbench.cli.options import chosen_protocol, protocol_option

__all__ = ["build"]


@click.group()
def build() -> None:
    """Export and import prepared builds (a protocol's artifacts, by content and id)."""


@build.command("export")
@protocol_option(default=None)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The archive to write (.tar).")
@click.option("--steps", default=None, metavar="A,B",
              help="Only these artifacts and what they need (default: every built one, replicas and lengths included).")
@click.option("--include-data", is_flag=True,
              help="Real-data protocols: also pack the imported data set (left out by default: not ours to redistribute).")
@click.option("--pin", "pin", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Maintainers: also write the build's pin (e.g. protocols/builds/PROTOCOL.toml).")
def export_cmd(legacy_protocol: str | None, protocol: str | None, out: Path, steps: str | None, include_data: bool,
               pin: Path | None) -> None:
    """Write the protocol's prepared build (under $AIPBENCH_HOME) to one deterministic archive; print its build id."""
    protocol = chosen_protocol(protocol, legacy_protocol, default=None)
    from aipbench.builds.archive import export_build
    from aipbench.builds.pins import pin_text
    from aipbench.hashing import sha256_file
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    proto = load_protocol(protocol)
    manifest = export_build(open_store(proto), out, steps=[s.strip() for s in steps.split(",")] if steps else None,
                            include_data=include_data, log=lambda m: click.echo(m, err=True))
    digest, size = sha256_file(out), out.stat().st_size
    if pin is not None:
        pin.write_text(pin_text(proto, manifest, archive_sha256=digest, archive_bytes=size))
    click.echo(f"wrote {out}: build {manifest['build_id']}, {size / 2**20:.1f} MiB, SHA-256 {digest}"
               + (f"; pinned in {pin}" if pin else ""))


@build.command("import")
@click.argument("source")
@click.option("--sha256", default=None, help="The archive's SHA-256 (as a pin or its publisher gives it); refused if it differs.")
@click.option("--protocol", default=None, help="The protocol it must be a build of (needed to look up a build id).")
def import_cmd(source: str, sha256: str | None, protocol: str | None) -> None:
    """Install the build archive SOURCE (a file, file:// or http(s):// URL, resumed if the connection drops; or a
    build id a protocol's pin names) into the cache, every file checked against its manifest."""
    from aipbench.builds.importing import import_build

    result = import_build(source, sha256=sha256, protocol=protocol, log=lambda m: click.echo(m, err=True))
    click.echo(f"imported build {result['build_id']} of {result['protocol']}: {', '.join(result['steps'])}")
