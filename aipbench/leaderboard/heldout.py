"""Scoring an attack entry on its protocol's held-out build (``aipbench verify ENTRY --held-out SEEDFILE``): the
entry's own submission re-run on the same cold items against rankers trained with the maintainers' secret seeds
(``aipbench.protocol.heldout``). The record, ``<protocol>/held-out/<name>.json`` beside the entry, holds what it
measured, the seed file's SHA-256 and the held-out build's hashes; the site shows it beside the claimed and
verified numbers and ranks by it. Every held-out record of a protocol must name one held-out build
(``status.check_one_build``)."""

from __future__ import annotations

import datetime
import getpass
import json
from collections.abc import Callable
from pathlib import Path

from aipbench.errors import InputError

__all__ = ["held_out_rows", "score_held_out"]


def score_held_out(path: str | Path, *, seed_file: str | Path, submission: str | Path | None = None,
                   home: Path | None = None, device: str = "auto", isolation: str | None = None, by: str | None = None,
                   record: str | Path | None = None, log: Callable[[str], None] = print) -> dict:
    """The held-out record of the attack entry at ``path`` (written to ``record``, default
    ``<protocol>/held-out/<name>.json``), its held-out build prepared in this cache where missing."""
    from aipbench import __version__
    from aipbench.harness.evaluate import evaluate
    from aipbench.leaderboard.rederive import check_rows
    from aipbench.leaderboard.status import held_out_path
    from aipbench.leaderboard.verify import entry_runs, open_entry
    from aipbench.protocol import load_protocol
    from aipbench.protocol.heldout import held_out, read_seed_file
    from aipbench.results.document import write_all
    from aipbench.results.provenance import git_commit

    path = Path(path)
    doc, claimed, folder = open_entry(path, submission)
    check_rows(path, doc, claimed)  # a document its own items contradict is not worth a held-out run
    secret, digest = read_seed_file(seed_file)
    protocol = held_out(load_protocol(doc["protocol"]["name"]), secret)
    sizes = {row["n_items"] for row in doc["results"]}
    if len(sizes) != 1:
        raise InputError(f"{path}: its rows evaluated different numbers of cold items ({sorted(sizes)})")
    rankers, sweep, own = entry_runs(doc)
    n_items = sizes.pop()
    log(f"scoring {path} on the held-out build of {protocol.name} ({n_items} cold items, {', '.join(rankers)})")
    fresh = evaluate(folder, protocol=protocol, rankers=rankers, epsilons=sweep, items=n_items, home=home,
                     device=device, isolation=isolation, check_determinism=False, log=log)
    result = {
        "entry": path.name, "entry_sha256": doc["sha256"], "protocol": doc["protocol"],
        "held_out": {"seed_file_sha256": digest, "protocol_sha256": protocol.sha256,
                     "artifacts": fresh.document["artifacts"]},
        "hit_rank": doc["hit_ranks"][0], "results": held_out_rows(fresh.document),
        "scored_by": by or getpass.getuser(), "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aipbench": {"version": __version__, "git_commit": git_commit()}, "environment": fresh.document["environment"],
        "measured_sha256": fresh.document["sha256"],
    }
    out = Path(record) if record is not None else held_out_path(path)
    write_all({out: lambda p: p.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")})
    return result | {"record": str(out)}


def held_out_rows(document: dict) -> list[dict]:
    """Per ranker and budget of a results document, its numbers at the first hit rank (what the site shows)."""
    n = str(document["hit_ranks"][0])
    return [{"ranker": r["ranker"], "epsilon": r["epsilon"], "n_items": r["n_items"],
             "cooperative_hr": r["cooperative"]["hr"][n], "adversarial_hr": r["adversarial"]["hr"][n],
             "delta_hr": r["delta"]["hr"][n], "delta_hr_interval": r["intervals"]["delta"]["hr"][n],
             "hr_lift": r["hr_lift"], "p": r["hr_test"]["p"]} for r in document["results"]]
