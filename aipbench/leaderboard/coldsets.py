"""The cold items a protocol defines — all of them, or its seeded subset of k (``metrics.subset_rule``) — and
the rule that an entry's per-item CSV holds exactly such a set, never a hand-picked list. The protocol's cold
items come from its listed file, from the cold items pinned for its build (``protocols/cold-items/
<protocol>.json``, made by ``python -m aipbench.leaderboard.coldsets``), or from its data set in the local
cache (prepared if missing: the data set step only); each source must be the build the document names."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from aipbench.protocol.schema import Protocol

__all__ = ["check_item_set", "evaluated_set", "pin_cold_items", "pinned_path", "protocol_cold_items"]


def pinned_path(protocol: "Protocol") -> Path:
    from aipbench.paths import protocols_dir

    return protocols_dir() / "cold-items" / f"{protocol.name}.json"


def protocol_cold_items(protocol: "Protocol", dataset: dict[str, str], *, home: Path | None = None,
                        log: Callable[[str], None] = print) -> np.ndarray:
    """The protocol's cold items (sorted) in the build whose data set has the files ``dataset`` (name →
    SHA-256, as a results document records them)."""
    from aipbench.data.dvbpr_npy import listed_cold_items

    listed = listed_cold_items(protocol)
    if listed is not None:
        return np.sort(listed)
    pinned = pinned_path(protocol)
    if pinned.is_file():
        record = json.loads(pinned.read_text())
        if record["protocol_sha256"] == protocol.sha256 and record["dataset"] == dataset:
            return np.asarray(record["cold_items"], dtype=np.int64)
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store

    store = open_store(protocol, home=home)
    if store.state("dataset") != "ok":
        log(f"{protocol.name}: preparing its data set to know its cold items")
        store.prepare(["dataset"], log=log)
    if store.hashes().get("dataset") != dataset:
        raise InputError(f"{protocol.name}: this cache's data set is another build than the document's (other "
                         "SHA-256): its cold items cannot be told")
    return load_dataset(store).cold_items


def evaluated_set(protocol: "Protocol", cold: np.ndarray, n_items: int) -> np.ndarray:
    """The set an evaluation of ``n_items`` items evaluated: every cold item, or the protocol's subset."""
    from aipbench.data.splits import cold_subset

    return cold_subset(cold, n_items, rule=protocol.metrics.subset_rule, seed=protocol.split.seed)


def check_item_set(path: Path, doc: dict, items: "pd.DataFrame", *, home: Path | None = None,
                   log: Callable[[str], None] = print) -> None:
    """Refuse a document whose rows did not each evaluate exactly a set the protocol defines (its cold items,
    or its subset of as many), item for item in the per-item CSV (a ranker's: each attack's rows)."""
    from aipbench.leaderboard.rederive import attack_parts
    from aipbench.protocol import load_protocol

    protocol = load_protocol(doc["protocol"]["name"])
    cold = protocol_cold_items(protocol, doc["artifacts"]["dataset"], home=home, log=log)
    for attack, part, mine in attack_parts(doc, items):  # a ranker's: each attack its own set (NES the subset)
        _one_set(path if attack is None else f"{path}: {attack}", part, mine, protocol, cold)


def _one_set(path, doc: dict, items: "pd.DataFrame", protocol, cold: np.ndarray) -> None:
    from aipbench.leaderboard.rederive import row_items

    sizes = {row["n_items"] for row in doc["results"]}
    if len(sizes) != 1:
        raise InputError(f"{path}: its rows evaluated different numbers of cold items ({sorted(sizes)}); one "
                         "evaluation, one set of items")
    expected = evaluated_set(protocol, cold, sizes.pop())
    for row in doc["results"]:
        got = row_items(items, row)["item"].to_numpy(np.int64)
        if not np.array_equal(np.unique(got), expected):
            what = "cold items" if len(expected) == len(cold) else f"subset of {len(expected)} cold items"
            strays = np.setdiff1d(got, expected)
            detail = f"item {int(strays[0])} is not among them" if strays.size else \
                f"{np.setdiff1d(expected, got).size} of them are missing"
            raise InputError(f"{path}: {row['ranker']} eps={row['epsilon']}: the per-item CSV must hold exactly "
                             f"protocol {protocol.name}'s {what}; {detail}")


def pin_cold_items(protocol_name: str, out: Path, *, home: Path | None = None) -> dict:
    """Write the cold items of ``protocol_name``'s build in the local cache (preparing its data set) to ``out``."""
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    protocol = load_protocol(protocol_name)
    store = open_store(protocol, home=home)
    store.prepare(["dataset"])
    record = {"protocol": protocol.name, "protocol_sha256": protocol.sha256, "dataset": store.hashes()["dataset"],
              "cold_items": [int(i) for i in load_dataset(store).cold_items]}
    out.write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":  # python -m aipbench.leaderboard.coldsets PROTOCOL OUT
    pin_cold_items(sys.argv[1], Path(sys.argv[2]))
