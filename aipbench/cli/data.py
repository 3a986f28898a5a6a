"""`aipbench data`: look at a protocol's catalog and import real data sets."""

from __future__ import annotations

from pathlib import Path

import click

from aipbench.cli.options import chosen_protocol, protocol_option

__all__ = ["data"]


@click.group()
def data() -> None:
    """Inspect and import data sets."""


@data.command("preview")
@protocol_option(default=None)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write the contact sheet to: PNG, or JPEG for a .jpg/.jpeg name.")
@click.option("--size", type=click.IntRange(8, 1024), default=None,
              help="Show each photo at SIZE pixels (antialiased); default: as stored.")
def preview_cmd(legacy_protocol: str | None, protocol: str | None, out_path: Path, size: int | None) -> None:
    """Write a contact sheet of the protocol's item images (hook and some cold items marked)."""
    protocol = chosen_protocol(protocol, legacy_protocol, default=None)
    from aipbench.data.preview import contact_sheet
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    store = open_store(load_protocol(protocol))
    store.prepare(["dataset"], log=lambda m: click.echo(m, err=True))
    contact_sheet(load_dataset(store), out_path, size=size)
    click.echo(f"wrote {out_path}")


@data.command("export-cold")
@protocol_option(default=None)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A folder to create (or an empty one) for the PNG files.")
def export_cold_cmd(legacy_protocol: str | None, protocol: str | None, out_dir: Path) -> None:
    """Write the protocol's cold items' catalog images as OUT/<cold_item_id>.png (with hook.png and cold_items.json)
    to edit with any tool; put the edited ones in an image-folder submission's images/ (docs/attacks.md)."""
    from aipbench.data.export import export_cold_images

    protocol = chosen_protocol(protocol, legacy_protocol, default=None)
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    proto = load_protocol(protocol)
    store = open_store(proto)
    store.prepare(["dataset"], log=lambda m: click.echo(m, err=True))
    n = export_cold_images(load_dataset(store), out_dir, protocol=proto.name)
    click.echo(f"wrote {n} cold items' images, hook.png and cold_items.json to {out_dir}")


@data.command("import")
@click.argument("args", nargs=-1, metavar="FILE")
@click.option("--protocol", "protocol", default=None, metavar="NAME|FILE", help="The real-data protocol (required).")
def import_cmd(args: tuple[str, ...], protocol: str | None) -> None:
    """Import FILE (a DVBPR-format .npy, e.g. AmazonMenWithImgPartitioned.npy) for the real-data protocol
    (`aipbench data import --protocol amazon-men-v1 FILE`; the positional `PROTOCOL FILE` is deprecated).

    Checked against the protocol: its counts (the paper's Table 2 on the paper's protocols), the file's structure, the listed cold items
    (no user may have interacted with them), every image. Its SHA-256 is measured, printed and recorded
    (every result carries it). The file is read where it lies, not copied; its JPEGs are kept as they are.
    """
    from aipbench.pipeline.importer import import_data_file

    if len(args) not in (1, 2):
        raise click.UsageError("give one FILE (and --protocol NAME)")
    protocol = chosen_protocol(protocol, args[0] if len(args) == 2 else None, default=None)
    file = Path(args[-1])
    source = import_data_file(protocol, file, log=lambda m: click.echo(m, err=True))
    counts = source["counts"]
    hook = source["hook"]
    click.echo(f"imported {file} for {protocol}\n"
               f"  SHA-256   {source['sha256']}\n"
               f"  counts    {counts['users']:,} users, {counts['items']:,} items, "
               f"{counts['interactions']:,} interactions (the protocol's counts)\n"
               f"  hook      item {hook['item']}" + (f" (asin {hook['asin']})" if hook.get("asin") else "") + "\n"
               f"  images    {source['image_bytes'] / 1e9:.2f} GB of JPEG bytes, packed as distributed\n"
               + _dropped(source.get("dropped_training_records")))


def _dropped(dropped: dict | None) -> str:
    """The training records the import left out, counted (a file imported before they were counted: unknown)."""
    if dropped is None:
        return "  dropped   not counted (imported by an earlier aipbench)"
    return (f"  dropped   {dropped['held_out_repeats']:,} training records of a user's own validation or test item "
            f"(the three must be disjoint); {dropped['merged_repeats']:,} repeated training records merged")


@data.command("weights")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def weights_cmd(file: Path) -> None:
    """Hand over torchvision's ImageNet AlexNet weights (alexnet-owt-7be5be79.pth) for the real-data protocols.

    Nothing is downloaded: fetch the file on a connected machine (the URL is torchvision's
    AlexNet_Weights.IMAGENET1K_V1). It is checked by torchvision's own rule (its SHA-256 begins with the hex
    digits in its published name) and loaded into AlexNet, then kept under $AIPBENCH_HOME/weights/; its full
    SHA-256 goes into the manifest and every result. Where the file came from is no part of any protocol.
    """
    from aipbench.rankers.nets import weights

    kept, digest = weights.install_weights(file)
    click.echo(f"{weights.IMAGENET_ALEXNET.label}: SHA-256 {digest}; kept as {kept}")
