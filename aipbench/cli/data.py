"""`aipbench data`: look at a protocol's catalog and import real data sets."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["data"]


@click.group()
def data() -> None:
    """Inspect and import data sets."""


@data.command("preview")
@click.argument("protocol")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write the contact sheet to.")
def preview_cmd(protocol: str, out_path: Path) -> None:
    """Write a contact sheet of PROTOCOL's item images (hook and some cold items marked)."""
    from aipbench.data.preview import contact_sheet
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    store = open_store(load_protocol(protocol))
    store.prepare(["dataset"], log=lambda m: click.echo(m, err=True))
    contact_sheet(load_dataset(store), out_path)
    click.echo(f"wrote {out_path}")


@data.command("import")
@click.argument("protocol")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_cmd(protocol: str, file: Path) -> None:
    """Import FILE (a DVBPR-style .npy) for real-data PROTOCOL after checking its SHA-256."""
    import shutil

    from aipbench.errors import InputError
    from aipbench.hashing import sha256_file
    from aipbench.pipeline.steps import open_store, raw_data_path
    from aipbench.protocol import load_protocol

    proto = load_protocol(protocol)
    if proto.data.file is None:
        raise InputError(f"{proto.source}: protocol '{proto.name}' generates its data; there is nothing to import")
    actual = sha256_file(file)
    if actual != proto.data.file.sha256:
        raise InputError(f"{file}: SHA-256 {actual} does not match the protocol's {proto.data.file.sha256}")
    target = raw_data_path(proto)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_suffix(".partial")
        shutil.copyfile(file, tmp)
        tmp.replace(target)
    open_store(proto).prepare(["dataset"], log=lambda m: click.echo(m, err=True))
    click.echo(f"imported {file.name} for {proto.name}")
