"""What a build costs to carry: export a prepared protocol from the cache, import the archive into a fresh cache
(checking every file), measured in one run, with the archive's size.

Run: ``AIPBENCH_HOME=<a cache with PROTOCOL prepared> .venv/bin/python benchmarks/bench_builds.py [PROTOCOL]``
(default synthetic-v2). Prints the seconds of each and the archive's MiB; then time the README's main job on
the imported cache with ``AIPBENCH_HOME=<printed folder> aipbench evaluate submissions/insa``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def main(protocol: str) -> None:
    from aipbench.builds.archive import export_build
    from aipbench.builds.importing import import_build
    from aipbench.hashing import sha256_file
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    proto = load_protocol(protocol)
    work = Path(tempfile.mkdtemp(prefix="aipbench-bench-builds-"))
    archive = work / f"{protocol}.tar"
    start = time.perf_counter()
    manifest = export_build(open_store(proto), archive, log=lambda m: None)
    exported = time.perf_counter() - start
    digest = sha256_file(archive)
    start = time.perf_counter()
    import_build(str(archive), home=work / "home", sha256=digest, progressbar=False, log=lambda m: None)
    imported = time.perf_counter() - start
    print(f"{protocol}: build {manifest['build_id'][:12]}, {len(manifest['artifacts'])} artifacts, "
          f"archive {archive.stat().st_size / 2**20:.1f} MiB")
    print(f"export {exported:.1f} s, import (the archive's SHA-256 and every file checked) {imported:.1f} s")
    print(f"imported cache: {work / 'home'} (remove {work} when done)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "synthetic-v2")
