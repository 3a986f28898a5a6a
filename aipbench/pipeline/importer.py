"""`aipbench data import`: a real data set's file checked against its protocol and turned into the
protocol's ``dataset`` artifact — read where it lies (no copy), its SHA-256 measured and recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aipbench.errors import InputError

if TYPE_CHECKING:
    from aipbench.protocol.schema import Protocol

__all__ = ["import_data_file"]


def import_data_file(protocol: "str | Path | Protocol", file: str | Path, *, home: Path | None = None,
                     log: Callable[[str], None] = print) -> dict:
    """Import ``file`` for the real-data ``protocol`` (a name, a ``.toml`` file or a ``Protocol``) into its
    cache; returns what was measured of the file (``source.json``: SHA-256, counts, hook, image bytes).

    One protocol holds one data file: importing the same file again does nothing; another file (another
    SHA-256) is refused while the first one's data set is in the cache. A failed import leaves no data
    behind (the build folder is removed, also that of a killed run, by the next import)."""
    from aipbench.pipeline.loaders import load_source
    from aipbench.pipeline.steps import DATA_FILE, open_store
    from aipbench.protocol import load_protocol
    from aipbench.protocol.schema import Protocol

    proto = protocol if isinstance(protocol, Protocol) else load_protocol(protocol)
    if proto.data.file is None:
        raise InputError(f"{proto.source}: protocol '{proto.name}' generates its data; there is nothing to import")
    file = Path(file)
    if not file.is_file():
        raise InputError(f"{file}: no such file (protocol '{proto.name}' expects {proto.data.file.name})")
    store = open_store(proto, home)
    if store.state("dataset") == "ok":
        from aipbench.hashing import sha256_file

        kept, digest = store.input_hash("dataset", proto.data.file.name), sha256_file(file)
        if digest != kept:
            raise InputError(f"{file}: SHA-256 {digest} differs from the file already imported for '{proto.name}' "
                             f"({kept}); one protocol holds one data file (remove {store.root} to replace it)")
        log(f"{file}: already imported for {proto.name} (SHA-256 {digest})")
        return load_source(store)
    store.prepare(["dataset"], inputs={DATA_FILE: file.resolve()}, log=log)
    return load_source(store)
