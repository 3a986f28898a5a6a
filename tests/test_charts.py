"""The leaderboard's charts (matplotlib, static SVG): what each shows can be counted in its SVG, the same numbers
give the same bytes, and text from a submission is escaped."""

from __future__ import annotations

import numpy as np

from aipbench.leaderboard.charts import budget_chart, defense_chart, distribution_chart, lift_heatmap

SERIES = {"insa": [(4, 0.01, [0.009, 0.011]), (8, 0.02, [0.018, 0.022]), (32, 0.04, [0.037, 0.043])],
          "noise": [(4, 0.001, None), (32, 0.0012, None)]}


def test_a_budget_chart_shows_each_series_band_and_baseline_and_is_the_same_bytes():
    svg = budget_chart(SERIES, title="vbpr <script>alert(1)</script>", y_label="HR@5",
                       baselines={"cooperative": 0.0012, "c-sema (unbounded)": 0.0008}, controls=["noise"])
    assert svg.startswith("<svg") and svg.count('id="series-') == 2 and svg.count('id="band-') == 1
    assert svg.count('id="baseline-') == 2 and "noise (control)" in svg
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg == budget_chart(SERIES, title="vbpr <script>alert(1)</script>", y_label="HR@5",
                               baselines={"cooperative": 0.0012, "c-sema (unbounded)": 0.0008}, controls=["noise"])


def test_the_other_charts_show_what_they_are_given():
    rng = np.random.default_rng(0)
    panels = {r: {"cooperative": np.r_[np.zeros(98), 0.2, 0.4], "adversarial": rng.random(100) * 0.1}
              for r in ("vbpr", "dvbpr")}
    assert distribution_chart(panels, title="t", x_label="x").count('id="series-') == 4
    heat = lift_heatmap({("insa", "vbpr"): 32.0, ("expa", "vbpr"): 1.4, ("insa", "dvbpr"): 44.5},
                        attacks=["insa", "expa"], rankers=["vbpr", "dvbpr"], title="lift")
    assert heat.count('id="cell-') == 4 and "32.0×" in heat and "–" in heat  # expa on dvbpr: not measured
    defense = defense_chart([90, 50, 10], {"vbpr": [0.04, 0.03, 0.02], "amr": [0.03, 0.02, 0.01]},
                            undefended={"vbpr": 0.039, "amr": 0.035}, clean={"vbpr": [0.05, 0.049, 0.045]},
                            parameter="quality", title="jpeg", y_label="HR@5")
    assert defense.count('id="series-') == 2 and defense.count('id="baseline-') == 2 and 'id="clean-vbpr"' in defense


def test_scatter_and_spread_charts():
    from aipbench.leaderboard.charts import scatter_chart, spread_chart

    scatter = scatter_chart({"insa": [(22.3, 0.039, "vbpr"), (25.5, 0.027, "alexrank")], "expa": [(30.1, 0.01, "vbpr")]},
                            title="quality", x_label="PSNR", y_label="HR@5", label_points=True)
    assert scatter.count('id="series-') == 2 and "alexrank" in scatter
    spread = spread_chart({"vbpr": [0.039, 0.044, 0.038], "dvbpr": [0.072, 0.050, 0.048]}, title="seeds", y_label="HR@5")
    assert spread.count('id="series-') == 2 and spread.count('id="range-') == 2
