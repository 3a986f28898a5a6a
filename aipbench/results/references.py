"""The paper's reported numbers (``protocols/references/``), kept apart from measured results."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aipbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

from aipbench.paths import references_dir

__all__ = ["PAPER_DATASETS", "REFERENCE_TABLES", "load_reference"]

REFERENCE_TABLES = ("table3", "table4", "table5", "table6", "table7", "table8")
# protocols that reproduce the paper's data sets, and the reference tables' name for each
PAPER_DATASETS = {"amazon-men-v1": "amazon-men", "tradesy-v1": "tradesy"}


def load_reference(table: str) -> "pd.DataFrame":
    """One table's cells as a DataFrame (one row per cell)."""
    import pandas as pd

    if table not in REFERENCE_TABLES:
        raise InputError(f"unknown reference table {table!r}; there are {', '.join(REFERENCE_TABLES)}")
    path = references_dir() / f"{table}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: unreadable reference table ({err})") from None
    return pd.DataFrame(doc["cells"])
