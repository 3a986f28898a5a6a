"""The paper's Tables 3–8 as data: every cell present exactly once, values as numbers, spot checks."""

from __future__ import annotations

import itertools

import pytest

from aipbench.errors import InputError
from aipbench.results.references import REFERENCE_TABLES, load_reference

DATASETS = ("amazon-men", "tradesy")
R3 = ("alexrank", "vbpr", "dvbpr")
R4 = (*R3, "amr")
ATTACKS = ("insa", "expa", "c-sema")

EXPECTED = {
    "table3": (["dataset", "ranker", "attack"], list(itertools.product(DATASETS, R3, ATTACKS))),
    "table4": (["dataset", "ranker", "attack", "item_set"],
               [(d, r, None, s) for d in DATASETS for r in R4 for s in ("cooperative_cold", "ordinary_test")]
               + [(d, r, a, s) for d in DATASETS for r in R4 for a in ATTACKS for s in ("adversarial_cold", "ordinary_test")]),
    "table5": (["dataset", "ranker", "attack"], list(itertools.product(DATASETS, R4, ATTACKS))),
    "table6": (["dataset", "ranker", "attack", "epsilon"],
               [(d, r, None, None) for d in DATASETS for r in R3]
               + [(d, r, a, e) for d in DATASETS for r in R3 for a in ("insa", "expa") for e in (4, 8, 16, 32)]),
    "table7": (["dataset", "ranker", "attack", "item_set"],
               list(itertools.product(DATASETS, R3, ("taamr-fgsm", "taamr-pgd20"), ("adversarial_cold", "ordinary_test")))),
    "table8": (["dataset", "ranker", "attack", "defense"],
               list(itertools.product(DATASETS, R3, ("insa", "expa"), ("jpeg", "bit_depth")))),
}


def _key(value):
    return None if value != value else value  # pandas reads JSON nulls in number columns as NaN


@pytest.mark.parametrize("table", REFERENCE_TABLES)
def test_every_cell_is_present_exactly_once(table):
    frame = load_reference(table)
    columns, expected = EXPECTED[table]
    keys = [tuple(_key(v) for v in row) for row in frame[columns].itertuples(index=False)]
    assert len(keys) == len(set(keys)), "a cell is listed twice"
    assert sorted(keys, key=repr) == sorted(expected, key=repr)
    values = frame["value"].dropna()
    assert all(isinstance(v, float) for v in values) and (values >= 0).all()


def test_spot_checks_against_the_paper():
    t4 = load_reference("table4").set_index(["dataset", "ranker", "attack", "item_set"])
    assert t4.loc[("amazon-men", "alexrank", "insa", "adversarial_cold"), "value"] == 0.8296
    assert not t4.loc[("tradesy", "alexrank", "expa", "ordinary_test"), "significant"]  # 0.0338 has no **
    t3 = load_reference("table3").set_index(["dataset", "ranker", "attack"])
    assert tuple(t3.loc[("tradesy", "vbpr", "insa"), ["value", "direction"]]) == (0.79, "down")
    t6 = load_reference("table6")
    dvbpr = t6[(t6.dataset == "amazon-men") & (t6.ranker == "dvbpr") & (t6.attack == "insa")].sort_values("epsilon")
    assert dvbpr["value"].tolist() == [0.0049, 0.0391, 0.3706, 0.7039]
    t7 = load_reference("table7")
    assert (t7.relation == "much-less-than").sum() == 10
    t8 = load_reference("table8").set_index(["dataset", "ranker", "attack", "defense"])
    assert t8.loc[("amazon-men", "dvbpr", "insa", "jpeg"), "value"] == 10
    assert t8["value"].notna().sum() == 9  # the paper's nine marks


def test_an_unknown_table_is_one_line():
    with pytest.raises(InputError, match="unknown reference table 'table9'"):
        load_reference("table9")
