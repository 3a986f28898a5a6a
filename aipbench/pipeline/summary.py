"""Plain-text and JSON summaries of protocols and prepared artifacts for the CLI."""

from __future__ import annotations

import dataclasses

__all__ = ["format_protocol_summary", "protocol_summary"]


def protocol_summary(name: str) -> dict:
    """Resolved settings, hash, artifact folder and Table-2 statistics (measured once prepared)."""
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    proto = load_protocol(name)
    store = open_store(proto)
    summary = {
        "name": proto.name,
        "version": proto.version,
        "sha256": proto.sha256,
        "file": proto.source,
        "artifacts": str(store.root),
        "settings": proto.canonical(),
    }
    if store.state("dataset") == "ok":
        summary["statistics"] = {"measured": True, **dataclasses.asdict(load_dataset(store).statistics())}
        if proto.data.file is not None:  # what the importer measured of the file
            summary["data_file"] = {"name": proto.data.file.name,
                                    "sha256": store.input_hash("dataset", proto.data.file.name)}
    elif proto.data.synthetic is not None:
        s = proto.data.synthetic
        summary["statistics"] = {
            "measured": False,
            "users": s.n_users,
            "items": s.n_catalog_items + proto.data.n_cold_items,
            "interactions": round(s.n_users * s.mean_interactions_per_user),
            "cold_items": proto.data.n_cold_items,
        }
    else:  # a real data set not imported yet: the counts its protocol pins (the paper's Table 2)
        f = proto.data.file
        summary["statistics"] = {"measured": False, "users": f.users, "items": f.items, "interactions": f.interactions,
                                 "cold_items": proto.data.n_cold_items}
    return summary


def _flatten(prefix: str, value, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out.append((prefix, repr(value) if isinstance(value, str) else str(value)))


def format_protocol_summary(summary: dict) -> str:
    from tabulate import tabulate

    stats = summary["statistics"]
    lines = [
        f"protocol  {summary['name']} (version {summary['version']})",
        f"sha256    {summary['sha256']}",
        f"file      {summary['file']}",
        f"cache     {summary['artifacts']}",
    ]
    if "data_file" in summary:
        lines.append(f"data      {summary['data_file']['name']} (sha256 {summary['data_file']['sha256']})")
    lines.append("")
    if stats.get("measured"):
        lines.append("Data set statistics (as in the paper's Table 2, measured on the prepared data):")
    elif len(stats) > 1:
        how = "`aipbench data import`" if summary["settings"]["data"]["source"] != "synthetic" else "`aipbench prepare`"
        lines.append(f"Data set statistics (nominal; run {how} for measured counts):")
    rows = [[k, v] for k, v in stats.items() if k != "measured"]
    if rows:
        lines += [tabulate(rows, tablefmt="plain"), ""]
    flat: list[tuple[str, str]] = []
    _flatten("", summary["settings"], flat)
    lines.append("Resolved settings:")
    lines.append(tabulate(flat, tablefmt="plain"))
    return "\n".join(lines)
