"""``aipbench build import``: a build archive from a file, a URL or (with its protocol) the id a pin names,
fetched, checked member by member and installed into the cache atomically; one line for what is wrong with it,
nothing left behind."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from pathlib import Path

from aipbench.errors import InputError

__all__ = ["import_build"]

_BUILD_ID = re.compile(r"\A[0-9a-f]{64}\Z")


def _pinned_source(build: str, protocol: str | None) -> tuple[str, str]:
    """The archive a pinned build id names: (its first URL, its SHA-256)."""
    from aipbench.pipeline.builds import load_pin, pin_path
    from aipbench.protocol import load_protocol

    if protocol is None:
        raise InputError(f"build {build[:12]}: a build id is looked up in its protocol's pin; name the protocol "
                         "(`aipbench prepare --protocol PROTOCOL --build ID`)")
    proto = load_protocol(protocol)
    pin = load_pin(proto)
    if pin is None or pin.id != build:
        raise InputError(f"build {build[:12]}: not the reference build {pin_path(proto)} pins"
                         + (f" ({pin.id[:12]})" if pin else " (there is no pin)"))
    if not pin.urls:
        raise InputError(f"build {build[:12]}: {pin_path(proto)} lists no URL yet (a maintainer publishes the archive); "
                         f"import a copy of the archive: aipbench build import FILE --sha256 {pin.archive_sha256}")
    return pin.urls[0], pin.archive_sha256


def import_build(source: str, *, home: Path | None = None, sha256: str | None = None, protocol: str | None = None,
                 progressbar: bool = True, log: Callable[[str], None] = print) -> dict:
    """Install the build archive ``source`` (a path, ``file://`` or ``http(s)://`` URL, or a build id that
    ``protocol``'s pin names) into the cache under ``home``; ``sha256`` pins the archive's bytes. Returns
    {"protocol", "build_id", "steps", "root"}."""
    from aipbench.builds.archive import install_build, read_manifest
    from aipbench.builds.fetch import fetch
    from aipbench.paths import aipbench_home
    from aipbench.pipeline.builds import build_id
    from aipbench.pipeline.steps import open_store
    from aipbench.pipeline.store import INPUT_PREFIX
    from aipbench.protocol import load_protocol
    from aipbench.results.document import IDENTIFIER

    if _BUILD_ID.match(source):
        source, sha256 = _pinned_source(source, protocol)
    downloads = (home or aipbench_home()) / "downloads"
    path = fetch(source, sha256=sha256, downloads=downloads, progressbar=progressbar)
    try:
        with tarfile.open(path, "r|*") as tar:
            manifest, _ = read_manifest(tar, source)
            name = str(manifest.get("protocol", {}).get("name"))
            if not IDENTIFIER.match(name):
                raise InputError(f"{source}: protocol name {name[:60]!r} is not a plain name")
            proto = load_protocol(name)
            if manifest["protocol"].get("sha256") != proto.sha256:
                raise InputError(f"{source}: a build of protocol {name} with hash "
                                 f"{str(manifest['protocol'].get('sha256'))[:12]}, but this checkout's {name} is "
                                 f"{proto.hash12}; builds of one protocol version only")
            if protocol is not None and protocol != name:
                raise InputError(f"{source}: a build of protocol {name}, not of {protocol}")
            hashes = {s: {**r["files"], **{INPUT_PREFIX + n: h for n, h in r.get("inputs", {}).items()}}
                      for s, r in manifest["artifacts"].items()}
            if build_id(proto, hashes) != manifest.get("build_id"):
                raise InputError(f"{source}: its manifest's build id is not the id of the artifacts it lists")
            store = open_store(proto, home=home)
            steps = install_build(store, tar, manifest, source=source)
    except (tarfile.TarError, EOFError, OSError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{source}: not a complete build archive ({type(err).__name__}: {str(err)[:120]}); "
                         "a truncated or damaged download is refused whole") from None
    finally:
        if path.parent == downloads:  # our own download: the cache holds it now (or it was refused)
            path.unlink(missing_ok=True)
            if not any(downloads.iterdir()):
                downloads.rmdir()
    log(f"{name}: imported build {manifest['build_id'][:12]} ({len(steps)} artifacts) into {store.root}")
    return {"protocol": name, "build_id": manifest["build_id"], "steps": steps, "root": store.root}
