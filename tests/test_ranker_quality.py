"""Clean ranker quality on the tiny protocol, pinned; the scoring rules; `aipbench rankers report`."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from aipbench.cli import main
from aipbench.scoring.metrics import BaseSetSummary, cold_hit_rates
from aipbench.scoring.ranker_quality import format_quality, ranker_quality

# Measured on the tiny protocol (CPU, torch 2.14, kernels capped at AVX2: see aipbench.CPU_KERNEL_CAPS);
# deterministic builds make these exact; the tolerance is rounding to four places.
PINNED = {
    # ranker: (base-set test AUC, catalog test AUC, test HR@5, cooperative cold HR@5);
    # random: (0.5, 0.5, 0.0495, 0.0495)
    "alexrank": (0.5550, 0.5731, 0.0767, 0.0364),
    "vbpr": (0.5846, 0.6673, 0.1033, 0.0000),
    "dvbpr": (0.5787, 0.6342, 0.0400, 0.0212),
    "amr": (0.5530, 0.6860, 0.0733, 0.0000),
}
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def report(tiny_prepared):
    return ranker_quality(tiny_prepared, ["alexrank", "vbpr", "dvbpr", "amr"])


@pytest.mark.parametrize("name", ["alexrank", "vbpr", "dvbpr", "amr"])
def test_tiny_quality_is_pinned(report, name):
    got = report["rankers"][name]
    measured = (got["test_auc"], got["catalog_test_auc"], got["test_hit_rate"]["5"], got["cooperative_cold_hit_rate"]["5"])
    assert measured == pytest.approx(PINNED[name], abs=TOLERANCE), measured


def test_report_shape_and_table(report):
    assert report["base_set_size"] == 101
    assert report["random_hit_rate"]["5"] == pytest.approx(5 / 101)
    text = format_quality(report)
    for name in ("alexrank", "vbpr", "dvbpr", "amr", "random"):
        assert name in text


def test_ties_count_against_the_cold_and_the_test_item():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 3.0]])  # last column: the test item
    summary = BaseSetSummary(scores, (1, 3))
    assert summary.thresholds[3].item() == 3.0
    assert summary.test_rank.item() == 3  # 5, 4 and the tied 3 are ahead of it
    assert summary.test_auc.item() == pytest.approx(3 / 6)
    cold = torch.tensor([[3.0, 3.5]])
    assert cold_hit_rates(cold, summary.thresholds[3]).tolist() == [0.0, 1.0]


def test_rankers_report_cli(tiny_rankers, monkeypatch):
    monkeypatch.setenv("AIPBENCH_HOME", str(tiny_rankers.root.parent))
    result = CliRunner().invoke(main, ["rankers", "report", "--protocol", "tiny", "--json", "--rankers", "vbpr,dvbpr"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert set(data["rankers"]) == {"vbpr", "dvbpr"}
    bad = CliRunner().invoke(main, ["rankers", "report", "--protocol", "tiny", "--rankers", "vbpr,alexrnk"])
    assert bad.exit_code == 1 and "did you mean 'alexrank'" in bad.output
