"""What running defense code in its sandboxed worker process costs: a transform applied to a catalog
in-process and through the worker (images crossing through sealed memory files), measured in one run.

Run: ``.venv/bin/python benchmarks/bench_defense_worker.py`` (about 2 minutes on 2 cores). Prints, for
synthetic-v2's catalog (11,000 images, 64 px) and a 2,000-image sample at 224 px scaled to Amazon Men's
110,636 items: the reference JPEG defense in-process and in the worker, an identity transform (the
transport alone) both ways, and the worker's start-up. Images are smooth random photos with the
renderer's pixel noise (σ = 4), so JPEG costs what it costs on the catalog.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
AMAZON_MEN_ITEMS = 110_636
REPEATS = 7


def photos(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` smooth RGB photos (bilinear from 8×8) with σ = 4 pixel noise, uint8 N×3×size×size."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (smooth + 4 * torch.randn(smooth.shape, generator=g)).clamp(0, 255).round().to(torch.uint8).numpy()


def timed(fn, repeats: int = 1) -> float:
    """The fastest of ``repeats`` runs (this machine's page faults make single runs noisy)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    import aipbench.harness.isolation.trust as trust
    from aipbench.defenses.transforms import apply_transform
    from aipbench.harness.isolation.bwrap import sandbox_problem
    from aipbench.harness.isolation.defense_worker import open_defense

    trust.is_reference = lambda folder: True  # the benchmark's own identity defense runs in-process as the baseline

    if problem := sandbox_problem():
        raise SystemExit(f"no sandbox here: {problem}")
    with tempfile.TemporaryDirectory() as tmp:
        identity = Path(tmp) / "identity"
        identity.mkdir()
        (identity / "defense.py").write_text("class Identity:\n    def transform(self, x):\n        return x\n")
        jpeg = REPO / "submissions" / "jpeg" / "defense.py"
        rows = []
        for label, n, size, scale in (("synthetic-v2 catalog, 64 px", 11_000, 64, 1.0),
                                      ("Amazon Men scale, 224 px (2,000-image sample)", 2_000, 224, AMAZON_MEN_ITEMS / 2_000)):
            images = photos(n, size)
            for name, file, cls in (("JPEG q75", jpeg, "JPEGDefense"), ("identity", identity / "defense.py", "Identity")):
                here = open_defense(file, cls, {}, isolation="none")
                start = time.perf_counter()
                there = open_defense(file, cls, {}, isolation="sandbox")
                startup = time.perf_counter() - start
                try:
                    # each the fastest of REPEATS runs in a row: the first runs of a worker fault in its
                    # buffers and warm its allocator (seconds at 224 px on this machine), which a long run amortizes
                    t_here = timed(lambda: apply_transform(here, images), REPEATS)
                    t_there = timed(lambda: apply_transform(there, images), REPEATS)
                    assert np.array_equal(apply_transform(here, images[:500]), apply_transform(there, images[:500]))
                finally:
                    there.close()
                rows.append((label, name, t_here * scale, t_there * scale, startup))
        print(f"{'images':48s} {'transform':10s} {'in-process':>12s} {'worker':>10s} {'overhead':>10s} {'start-up':>9s}")
        for label, name, here_s, there_s, startup in rows:
            print(f"{label:48s} {name:10s} {here_s:11.2f}s {there_s:9.2f}s {there_s / here_s - 1:9.1%} {startup:8.2f}s")
        print("(each the fastest of 7 runs in a row; Amazon Men rows: the sample's seconds × 110,636 / 2,000; the "
              "overhead is the worker's extra time over in-process, the images crossing through sealed memory files both ways)")


if __name__ == "__main__":
    main()
