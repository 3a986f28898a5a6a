"""``aipbench submission package``: one archive with everything a maintainer needs to file and verify an entry —
the submission as it ran, its results with the files beside them, and the environment that made them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import tarfile
from pathlib import Path

from aipbench.errors import InputError

__all__ = ["package_submission"]


def package_submission(folder: str | Path, results_file: str | Path, out: str | Path) -> dict:
    """Write ``out`` (a .tar.gz: ``submission/``, ``results/``, ``environment.json``, ``MANIFEST.json`` with
    every file's SHA-256) after checking that ``results_file`` passes the leaderboard's checks and was made by
    this very ``folder`` (its hash is the one the results record). The same inputs give the same bytes.
    Returns the manifest."""
    from aipbench.hashing import MAX_FOLDER_BYTES, folder_files, folder_sha256
    from aipbench.leaderboard.entries import check_document
    from aipbench.paths import read_regular
    from aipbench.results.document import MAX_JSON_BYTES, parse_results

    folder, results_file, out = Path(folder), Path(results_file), Path(out)
    if not (folder / "submission.toml").is_file():
        raise InputError(f"{folder}: no submission.toml; package a submission folder")
    data = read_regular(results_file, max_bytes=MAX_JSON_BYTES)
    doc = parse_results(data, results_file)
    beside = check_document(results_file, doc)  # regular files, sealed: what is checked is what is packed
    mine = folder_sha256(folder)  # regular files only (links and devices refused), within the size limits
    if mine != doc["submission"]["sha256"]:
        raise InputError(f"{results_file}: made by a submission with SHA-256 {doc['submission']['sha256'][:12]}, but "
                         f"{folder} is {mine[:12]} now; re-run aipbench evaluate on it, or package the version that ran")
    name = doc["submission"]["name"]
    files: dict[str, bytes] = {}
    for path in folder_files(folder):  # exactly the files the results' submission hash covers
        files[f"submission/{path.relative_to(folder).as_posix()}"] = read_regular(path, max_bytes=MAX_FOLDER_BYTES)
    files[f"results/{name}.json"] = data
    for kind, content in beside.items():
        files[f"results/{name}.{kind}"] = content
    files["environment.json"] = (json.dumps(_environment(doc), indent=2, sort_keys=True) + "\n").encode()
    manifest = {"submission": name, "protocol": doc["protocol"], "submission_sha256": mine,
                "results_sha256": doc["sha256"], "files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}}
    files["MANIFEST.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for arcname in sorted(files):
                info = tarfile.TarInfo(f"{name}/{arcname}")
                info.size, info.mode, info.mtime = len(files[arcname]), 0o644, 0  # no owner, no time: same bytes
                tar.addfile(info, io.BytesIO(files[arcname]))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def _environment(doc: dict) -> dict:
    """Where the results were made (from the document) and where they were packaged (this interpreter's
    packages by name and version)."""
    from importlib import metadata

    packages = sorted({(d.metadata["Name"] or "").lower(): d.version for d in metadata.distributions()}.items())
    return {"results_made_with": {"aipbench": doc["aipbench"], "environment": doc["environment"]},
            "packaged_with": {"python": platform.python_version(), "platform": platform.platform(),
                              "packages": dict(p for p in packages if p[0])}}
