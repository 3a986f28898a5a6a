"""The reliability checks that need the harness: the protocol's noise floor beside an attack, and a
second run of the attack on the same items (determinism). Their runs are kept in the run cache too."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.pipeline.prepared import Prepared
    from aipbench.rankers.base import Ranker

__all__ = ["DETERMINISM_ITEMS", "NoiseFloor", "defense_flags", "determinism_flag", "gradient_norms", "gradient_ranker"]

DETERMINISM_ITEMS = 10  # items attacked twice to check that the same inputs give the same images


class NoiseFloor:
    """The protocol's noise control (reference submission ``noise``, trusted: run in this process) at a
    budget, on the evaluated items: per ranker, how far random noise alone moves HR@N."""

    def __init__(self, prepared: "Prepared", items: np.ndarray, *, log: Callable[[str], None]) -> None:
        from aipbench.harness.submission import reference_submission
        from aipbench.hashing import folder_sha256

        self.prepared, self.items, self.log = prepared, np.asarray(items), log
        self.sub = reference_submission("noise", kind="attack")
        self.sub_hash = folder_sha256(self.sub.folder)
        self._sources: dict = {}

    def is_the_control(self, sub_hash: str) -> bool:
        return sub_hash == self.sub_hash

    def compare(self, ranker: "Ranker", epsilon: int, coop_hits: np.ndarray) -> dict:
        """Mean HR@N of the noisy images, its difference to cooperative and the paired t-test."""
        from aipbench.harness.sources import ImageSource
        from aipbench.scoring.metrics import cold_hits, compare

        proto = self.prepared.protocol
        if epsilon not in self._sources:
            subset = {} if len(self.items) == len(self.prepared.dataset.cold_items) else \
                {"items": self.items, "subdir": "subset"}
            self._sources[epsilon] = ImageSource(self.sub, self.sub_hash, self.prepared, epsilon=epsilon, time_limit=600,
                                                 log=self.log, isolation="none", **subset)
        noisy = self._sources[epsilon].images(ranker)[0]
        n = proto.metrics.hit_ranks[0]
        hits = cold_hits(ranker, noisy, self.prepared.summary(ranker), n=n)
        return compare(hits, coop_hits, proto.metrics.significance_level)


def determinism_flag(sub: "Submission", *, sub_hash: str, prepared: "Prepared", ranker: "Ranker", epsilon: int | None,
                     items: np.ndarray, time_limit: float, isolation: str, log: Callable[[str], None]) -> dict | None:
    """Run a code submission's attack twice on the first ``DETERMINISM_ITEMS`` of ``items`` (two run
    folders, two processes) and flag any difference."""
    from aipbench.harness.sources import ImageSource
    from aipbench.scoring.flags import nondeterministic

    few = np.asarray(items)[:DETERMINISM_ITEMS]
    runs = [ImageSource(sub, sub_hash, prepared, epsilon=epsilon, time_limit=time_limit, log=log, isolation=isolation,
                        items=few, subdir=f"determinism-{tag}").images(ranker)[0] for tag in "ab"]
    return nondeterministic(*runs)


def gradient_norms(ranker: "Ranker", images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Per image, the L2 norm of the gradient of Eq. 6's summed preference with respect to its float
    pixels, through ``ranker`` as an adaptive attack sees it (a defense in front included); 0 where no
    gradient reaches the pixels, inf or nan where it is not finite. A ranker served from a worker (a
    submission's own class) is differentiated there."""
    import torch

    if hasattr(ranker, "gradient_norms"):
        return ranker.gradient_norms(images)
    summed = ranker.summed_preference()
    device = ranker.catalog.device
    out = []
    for s in range(0, len(images), batch_size):
        x = (torch.from_numpy(np.ascontiguousarray(images[s : s + batch_size])).float() / 255).to(device)
        x.requires_grad_(True)
        try:
            with torch.enable_grad():
                objective = summed(ranker.encode(x)).sum()
                (grad,) = torch.autograd.grad(objective, x, allow_unused=True)
        except RuntimeError:  # no path from the pixels to the score (e.g. a transform that leaves autograd)
            grad = None
        if grad is None:
            out.append(np.zeros(len(x)))
        else:
            out.append(grad.detach().flatten(1).double().norm(dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def gradient_ranker(variant) -> "Ranker":
    """The ranker the masked-gradient check differentiates: what an adaptive attack is given, but for a
    detector the ranker behind its gate. A gate passes the pixels on unchanged, and its own gradient (the
    penalty adaptive attacks descend) exists only where its state is unpickled — in their sandbox, never in
    the harness; a detector whose gradient misleads them shows there as adaptive-weaker-than-transfer."""
    return variant.ranker if variant.gate is not None else variant.attack_ranker


def defense_flags(row: dict, hits: dict, *, variant, coop: np.ndarray, alpha: float, tolerance: float | None
                  ) -> list[dict]:
    """A defense row's flags: per attack, adaptive significantly weaker than transfer (``hits``: attack →
    mode → per-item HR@N); gradients that do not reach the pixels; a randomized transform (attacked with
    EOT); the clean-quality cost; a detector's false alarms on the catalog's clean test items."""
    from aipbench.defenses.variants import FALSE_ALARM_RATE
    from aipbench.scoring.flags import (adaptive_weaker, clean_cost, detector_false_alarms, masked_gradients,
                                        randomized_transform)

    flags = [adaptive_weaker(a, h["transfer"], h["adaptive"], level=alpha) for a, h in hits.items()]
    flags.append(masked_gradients(gradient_norms(gradient_ranker(variant), coop)))
    if variant.randomized is not None:
        flags.append(randomized_transform(*variant.randomized))
    flags.append(clean_cost(row["clean"]["undefended"], row["clean"]["defended"], tolerance))
    if variant.gate is not None:
        info = variant.gate.info
        flags.append(detector_false_alarms(info["catalog_false_alarm_rate"], FALSE_ALARM_RATE, info["catalog_items"]))
    return [f for f in flags if f]
