"""A ranker table of a protocol page as the files it offers for download: CSV and JSON, as the page shows it."""

from __future__ import annotations

__all__ = ["DOWNLOAD_COLUMNS", "ranker_downloads"]

# the columns of a ranker table's downloads (CSV and JSON), as the page shows them
DOWNLOAD_COLUMNS = ("rank", "tied", "name", "status", "knowledge", "epsilon", "coop", "adv", "adv_ci", "delta", "delta_ci",
                    "held_out", "held_out_ci", "lift", "avail", "shift", "p", "significant", "noise", "psnr", "ssim", "flags",
                    "reference")


def ranker_downloads(rows: list[dict]) -> tuple[str, str]:
    """A table's rows as CSV and JSON text (numbers as numbers; intervals as [low, high])."""
    import io
    import json

    import pandas as pd

    from aipbench.results.document import spreadsheet_safe

    records = [{**{k: (None if r.get(k) == "–" else r.get(k)) for k in DOWNLOAD_COLUMNS},
                **{f"metric:{m}": v for m, v in (r.get("metrics") or {}).items()}} for r in rows]
    extra = sorted({k for rec in records for k in rec if k.startswith("metric:")})
    flat = pd.DataFrame([{**rec, "adv_ci": json.dumps(rec["adv_ci"]), "delta_ci": json.dumps(rec["delta_ci"]),
                          "held_out_ci": json.dumps(rec["held_out_ci"]),
                          "noise": json.dumps(rec["noise"]), "flags": " ".join(rec["flags"] or [])} for rec in records],
                        columns=[*DOWNLOAD_COLUMNS, *extra])
    buf = io.StringIO()
    spreadsheet_safe(flat).to_csv(buf, index=False, float_format="%.10g", lineterminator="\n")
    return buf.getvalue(), json.dumps(records, indent=1, sort_keys=True, allow_nan=False) + "\n"
