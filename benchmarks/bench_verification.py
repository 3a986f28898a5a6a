"""What integrity by content costs an evaluation: every artifact a process loads is hashed once (its bytes
read, hashed and deserialized from the same bytes; memory-mapped catalog images streamed once).

Run: ``.venv/bin/python benchmarks/bench_verification.py [PROTOCOL]`` with the protocol prepared in
``$AIPBENCH_HOME`` (default synthetic-v2). Prints the time to verify every artifact an evaluation reads on
that cache, and the same at Amazon Men's scale (110,636 items, 224 px: the sizes of docs/real-data.md),
from this machine's measured hashing rate.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

# Amazon Men at 224 px, from the artifacts' shapes (docs/real-data.md): images (the JPEG bytes), Φ features,
# AlexRank profiles, CNN-F, AlexNet, candidates, interactions and the other rankers' weights
AMAZON_MEN_GB = {"images.bin": 2.05, "features.npy": 1.81, "alexrank.pt": 0.56, "dvbpr.pt": 0.22, "extractor.pt": 0.24,
                 "candidates.npy": 0.14, "the rest": 0.30}


def hash_rate(gib: float = 1.0) -> float:
    """Bytes per second of SHA-256 over a file read from disk (the page cache dropped where it can be)."""
    with tempfile.NamedTemporaryFile(dir=os.environ.get("TMPDIR", "/tmp")) as fh:
        block = os.urandom(1 << 24)
        for _ in range(int(gib * 64)):
            fh.write(block)
        fh.flush()
        start = time.perf_counter()
        h = hashlib.sha256()
        with open(fh.name, "rb") as f:
            while data := f.read(1 << 22):
                h.update(data)
        return gib * (1 << 30) / (time.perf_counter() - start)


def main(protocol: str) -> None:
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    rate = hash_rate()
    print(f"SHA-256 from disk: {rate / 1e9:.2f} GB/s")
    store = open_store(load_protocol(protocol))
    manifest = store.manifest()["artifacts"]
    if not manifest:
        print(f"{protocol}: not prepared in {store.root}; skipping the measured part")
    else:
        start, total = time.perf_counter(), 0
        for name, record in sorted(manifest.items()):
            for fname in record["files"]:
                total += len(store.read_verified(name, fname))
        seconds = time.perf_counter() - start
        print(f"{protocol}: every artifact verified ({len(manifest)} artifacts, {total / 1e9:.2f} GB) in {seconds:.1f} s "
              "— once per evaluation process")
    gb = sum(AMAZON_MEN_GB.values())
    print(f"amazon-men-v1 (110,636 items, 224 px): {gb:.1f} GB of artifacts, ~{gb * 1e9 / rate:.1f} s to verify "
          "per evaluation process at this rate")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(sys.argv[1] if len(sys.argv) > 1 else "synthetic-v2")
