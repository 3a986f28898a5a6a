"""Clean quality of the trained rankers (the first two rows of the paper's Table 4), as data and as text."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from aipbench.pipeline.prepared import Prepared

__all__ = ["format_quality", "ranker_quality"]


@torch.no_grad()
def ranker_quality(prepared: "Prepared", names: list[str]) -> dict:
    """Per ranker: AUC and HR@N of the ordinary test items inside their 1,001-item base sets
    (``test_auc``, ``test_hit_rate``), the conventional full-catalog AUC of the test items (against every
    catalog item the user has not trained on, as in the VBPR and DVBPR papers: ``catalog_test_auc``),
    and the mean HR@N over cold items of the cooperative (unaltered) cold images; plus the random rates."""
    from aipbench.rankers.training import catalog_auc
    from aipbench.scoring.metrics import cold_hit_rates

    protocol, dataset, base = prepared.protocol, prepared.dataset, prepared.base_sets
    ranks = prepared.hit_ranks
    cold = torch.as_tensor(dataset.cold_items, dtype=torch.long)
    report: dict = {
        "protocol": protocol.name,
        "protocol_sha256": protocol.sha256,
        "base_set_size": int(base.shape[1]),
        "random_hit_rate": {str(n): n / base.shape[1] for n in ranks},
        "rankers": {},
    }
    for name in names:
        ranker = prepared.ranker(name)
        summary = prepared.summary(ranker)
        # cold items are scored from their images only (no learned item terms), like any uploaded image
        cold_scores = ranker.score_features(ranker.all_users(), ranker.catalog[cold.to(ranker.catalog.device)])
        report["rankers"][name] = {
            "test_auc": float(summary.test_auc.mean()),
            "catalog_test_auc": catalog_auc(ranker, dataset, dataset.test_items),
            "test_hit_rate": {str(n): summary.test_hit_rate(n) for n in ranks},
            "cooperative_cold_hit_rate": {
                str(n): float(cold_hit_rates(cold_scores, summary.thresholds[n]).mean()) for n in ranks
            },
        }
    return report


def format_quality(report: dict) -> str:
    """The report as a table: a row per ranker."""
    from tabulate import tabulate

    ranks = list(report["random_hit_rate"])
    headers = ["ranker", "test AUC", "catalog AUC", *[f"test HR@{n}" for n in ranks],
               *[f"coop. cold HR@{n}" for n in ranks]]
    rows = [
        [name, r["test_auc"], r["catalog_test_auc"], *[r["test_hit_rate"][n] for n in ranks],
         *[r["cooperative_cold_hit_rate"][n] for n in ranks]]
        for name, r in report["rankers"].items()
    ]
    rows.append(["random", 0.5, 0.5, *[report["random_hit_rate"][n] for n in ranks],
                 *[report["random_hit_rate"][n] for n in ranks]])
    title = (f"{report['protocol']} ({report['protocol_sha256'][:12]}): ordinary test items and cooperative cold "
             f"items within the {report['base_set_size']}-item base sets (catalog AUC: against all unseen catalog items)")
    return title + "\n" + tabulate(rows, headers=headers, floatfmt=".4f")
