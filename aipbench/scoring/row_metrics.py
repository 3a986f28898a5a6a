"""Metrics of a results row beyond the built-in ones, registered by name: each reads what the row was scored from
(the cooperative and adversarial images' per-item metrics, their image quality, the hit ranks) and gives one
number. A registered metric reaches the results document, the terminal table and the leaderboard's tables and
charts through the typed row (``aipbench.results.rows``) with no other change."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from aipbench.registry import Registry

if TYPE_CHECKING:
    from aipbench.scoring.image_quality import ImageQuality
    from aipbench.scoring.metrics import ColdItemMetrics

__all__ = ["ROW_METRICS", "RowInputs", "RowMetric", "register_row_metric", "row_metric_values"]


@dataclasses.dataclass(frozen=True)
class RowInputs:
    """What one row is scored from: per cold item, the cooperative (``before``) and adversarial (``after``)
    metrics, the edited images' quality, and the protocol's hit ranks (the first is the headline N)."""

    before: "ColdItemMetrics"
    after: "ColdItemMetrics"
    quality: "ImageQuality"
    ranks: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class RowMetric:
    """A named number of a row: ``compute(inputs)`` (None where it is undefined), shown as ``label`` with
    ``fmt``; ``higher_is_stronger``: whether a larger value means a stronger attack (the charts' colour scale)."""

    name: str
    label: str
    compute: Callable[[RowInputs], float | None]
    fmt: str = ".4f"
    higher_is_stronger: bool = True


ROW_METRICS: Registry[RowMetric] = Registry("row metric")


def register_row_metric(metric: RowMetric) -> RowMetric:
    """Add ``metric`` to every row scored from now on."""
    return ROW_METRICS.register(metric.name)(metric)


def row_metric_values(inputs: RowInputs) -> dict[str, float | None]:
    """Every registered metric of one row, in registration order."""
    values = {}
    for name in ROW_METRICS:
        value = ROW_METRICS.get(name).compute(inputs)
        values[name] = None if value is None else float(value)
    return values
