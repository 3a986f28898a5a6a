"""Results rows are typed (aipbench.results.rows): the schema's row properties are exactly the row's fields, and a
metric added in scoring/ (aipbench.scoring.row_metrics) reaches the results document, the terminal table and the
leaderboard's table, downloads and charts with no other change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aipbench.results.document import results_schema
from aipbench.results.rows import row_fields
from aipbench.scoring.row_metrics import ROW_METRICS, RowMetric, register_row_metric

REPO = Path(__file__).resolve().parents[1]


def test_the_schema_s_row_is_the_typed_row():
    row = results_schema("attack")["properties"]["results"]["items"]
    assert set(row["properties"]) == row_fields()
    assert set(row["required"]) <= row_fields()


@pytest.fixture
def promoted_share():
    """A metric of our own, registered for the test: the share of cold items whose HR@N rose."""
    metric = register_row_metric(RowMetric(
        "promoted_share", "promoted share",
        lambda x: float((x.after.hit_rate[x.ranks[0]] > x.before.hit_rate[x.ranks[0]]).mean()), fmt=".3f"))
    yield metric
    ROW_METRICS.remove(metric.name)


def test_a_metric_added_in_scoring_reaches_the_document_the_table_and_the_site(promoted_share, tiny_rankers, tmp_path):
    from aipbench import evaluate
    from aipbench.leaderboard.render import build_site

    out = tmp_path / "results" / "tiny" / "insa.json"
    results = evaluate(REPO / "submissions" / "insa", protocol="tiny", rankers=["vbpr"], items=5,
                       home=tiny_rankers.root.parent, check_determinism=False, isolation="none", out=out,
                       log=lambda m: None)
    doc = json.loads(out.read_text())  # written, so validated by the schema and sealed
    items = pd.read_csv(out.with_suffix(".items.csv"))
    for row in doc["results"]:
        mine = items[items.ranker == row["ranker"]]
        assert row["metrics"]["promoted_share"] == pytest.approx(
            float(np.mean(mine["adversarial_hr@5"] > mine["cooperative_hr@5"])))
    assert "promoted share" in results.table()  # the terminal table
    site = tmp_path / "site"
    build_site(tmp_path / "results", site)
    page = (site / "protocol-tiny.html").read_text()
    assert '<th class="metric">promoted share</th>' in page  # the site's table,
    assert '<figure class="chart metric-map">' in page and "promoted share at ε = 32" in page  # its chart,
    assert "metric:promoted_share" in (site / "protocol-tiny-vbpr.csv").read_text()  # and its download


def test_without_a_registered_metric_a_row_has_no_metrics_key():
    committed = json.loads((REPO / "leaderboard" / "results" / "synthetic-v2" / "insa.json").read_text())
    assert all("metrics" not in row for row in committed["results"]) and not ROW_METRICS.names()
