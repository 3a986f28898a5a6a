"""The paper's reported numbers (``protocols/references/``), kept apart from measured results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from aipbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["REFERENCE_TABLES", "load_reference", "references_dir"]

REFERENCE_TABLES = ("table3", "table4", "table5", "table6", "table7", "table8")


def references_dir() -> Path:
    from aipbench.protocol import protocol_dirs

    return protocol_dirs()[-1] / "references"  # the project's own protocols/


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
