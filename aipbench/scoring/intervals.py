"""95 % intervals of per-item means: a seeded, paired percentile bootstrap over cold items (the unit of the
paper's t-test), every resample of every statistic from one (resamples × items) weight matrix."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Bootstrap", "RESAMPLES", "attack_intervals"]

RESAMPLES = 2000
LEVEL = 0.95
_STREAM = 0xB0075  # the bootstrap's own random stream beside the protocol's other draws


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    """Resamples of ``n_items`` items with replacement, drawn from ``seed``: the same draws for every
    statistic of one document (paired: a resample keeps an item's cooperative and adversarial values
    together, and every ranker, budget and level sees the same items)."""

    n_items: int
    seed: int
    resamples: int = RESAMPLES
    level: float = LEVEL

    @property
    def weights(self) -> np.ndarray:
        """(resamples × items) float64: how often each item is drawn in each resample, over ``n_items``."""
        return _weights(self.n_items, self.seed, self.resamples)

    def intervals(self, columns: dict[str, np.ndarray]) -> dict[str, list[float]]:
        """Each column's percentile interval of the mean: ``[low, high]`` at ``level``; every resample's
        mean is a row of (resamples × items) @ (items,). Column by column, so a column's interval is the
        same bytes whatever other columns it is computed with (a matrix product's summation order
        depends on its shape)."""
        weights = self.weights
        values = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
        bad = [k for k, v in values.items() if v.shape != (self.n_items,)]
        if bad:
            raise ValueError(f"{bad[0]}: {values[bad[0]].shape} values for a bootstrap over {self.n_items} items")
        names = list(values)
        means = np.stack([weights @ values[k] for k in names], axis=1)  # resamples × columns
        tail = (1 - self.level) / 2 * 100
        low, high = np.percentile(means, [tail, 100 - tail], axis=0)
        return {k: [float(lo), float(hi)] for k, lo, hi in zip(names, low, high)}

    def describe(self) -> dict:
        """What a results document records of the method."""
        return {"method": "paired percentile bootstrap over cold items", "resamples": self.resamples,
                "level": self.level, "seed": self.seed}


_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def _weights(n: int, seed: int, resamples: int) -> np.ndarray:
    key = (n, seed, resamples)
    if key not in _CACHE:
        rng = np.random.default_rng([seed, _STREAM])
        draws = rng.integers(0, n, size=(resamples, n))
        rows = np.repeat(np.arange(resamples), n)
        counts = np.bincount(rows * n + draws.reshape(-1), minlength=resamples * n).reshape(resamples, n)
        _CACHE.clear()  # one document's shape at a time
        _CACHE[key] = counts / n
    return _CACHE[key]


def attack_intervals(boot: Bootstrap, *, before, after, shift: np.ndarray, ranks) -> dict:
    """A results row's intervals: cooperative and adversarial HR@N and availability, their deltas, and the
    prediction shift (``before``/``after``: ``ColdItemMetrics`` of the same items)."""
    cols = {"shift": shift}
    for n in ranks:
        for side, m in (("cooperative", before), ("adversarial", after)):
            cols[f"{side}/hr/{n}"], cols[f"{side}/availability/{n}"] = m.hit_rate[n], m.availability[n]
        cols[f"delta/hr/{n}"] = after.hit_rate[n] - before.hit_rate[n]
        cols[f"delta/availability/{n}"] = after.availability[n] - before.availability[n]
    found = boot.intervals(cols)
    out: dict = {"prediction_shift": found.pop("shift")}
    for key, interval in found.items():
        side, metric, n = key.split("/")
        out.setdefault(side, {}).setdefault(metric, {})[n] = interval
    return out
