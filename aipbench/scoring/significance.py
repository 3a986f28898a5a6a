"""Significance of a difference over cold items: the paper's paired t-test (§5.2)."""

from __future__ import annotations

import numpy as np

__all__ = ["paired_t_test", "significance"]


def paired_t_test(adversarial: np.ndarray, cooperative: np.ndarray) -> tuple[float, float]:
    """Two-sided paired t-test over items (scipy); returns (t, p). Identical samples give (0, 1)."""
    from scipy import stats

    a, b = np.asarray(adversarial, dtype=np.float64), np.asarray(cooperative, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
    if np.array_equal(a, b):
        return 0.0, 1.0
    result = stats.ttest_rel(a, b)
    return float(result.statistic), float(result.pvalue)


def significance(adversarial: np.ndarray, cooperative: np.ndarray, level: float) -> dict:
    """``paired_t_test`` as a results entry: ``t`` (None when undefined), ``p`` (1 when undefined) and
    whether ``p < level``."""
    t, p = paired_t_test(adversarial, cooperative)
    p = float(p) if np.isfinite(p) else 1.0
    return {"t": float(t) if np.isfinite(t) else None, "p": p, "significant": bool(p < level)}
