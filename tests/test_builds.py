"""Builds that travel: a prepared protocol exported to one archive by content and id, imported elsewhere from a
local HTTP server (a dropped connection resumed), every bad archive refused in one line with the cache left as
it was, the same numbers on the imported build, and the leaderboard's one-build rule by the pinned build."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest
from conftest import one_error, run_cli


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def archive(tiny_rankers, tmp_path_factory):
    """tiny's build (the session's cache: every core step) exported once."""
    out = tmp_path_factory.mktemp("export") / "tiny.tar"
    result = run_cli(["build", "export", "--protocol", "tiny", "--out", str(out)], tiny_rankers.root.parent)
    assert result.exit_code == 0, result.output
    return out


def _manifest(path: Path) -> dict:
    with tarfile.open(path) as tar:
        return json.loads(tar.extractfile("MANIFEST.json").read())


class _Server:
    """A local HTTP server of one file that honours Range and, while ``drops`` lasts, closes the connection half
    way through a response."""

    def __init__(self, data: bytes, drops: int = 0) -> None:
        self.data, self.drops, self.requests = data, drops, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.data)))
                self.end_headers()

            def do_GET(self):
                asked = self.headers.get("Range")
                start = int(asked.split("=")[1].split("-")[0]) if asked else 0
                outer.requests.append(asked)
                body = outer.data[start:]
                self.send_response(206 if asked else 200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if asked:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.data) - 1}/{len(outer.data)}")
                self.end_headers()
                if outer.drops:
                    outer.drops -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tiny.tar"

    def close(self) -> None:
        self.httpd.shutdown()


def test_an_export_is_deterministic_and_names_its_build_by_content(tiny_rankers, archive, tmp_path):
    from aipbench.pipeline.builds import build_id, store_build

    again = tmp_path / "again.tar"
    assert run_cli(["build", "export", "--protocol", "tiny", "--out", str(again)], tiny_rankers.root.parent).exit_code == 0
    assert again.read_bytes() == archive.read_bytes()
    manifest = _manifest(archive)
    assert manifest["build_id"] == store_build(tiny_rankers)["id"] == build_id(tiny_rankers.protocol, tiny_rankers.hashes())
    assert {"dataset", "bpr", "candidates", "extractor", "features", "alexrank", "vbpr", "dvbpr", "amr"} <= set(manifest["artifacts"])
    assert manifest["made_by"]["torch"] and manifest["excluded"] == []


def test_an_import_resumes_a_dropped_download_and_gives_the_same_numbers(tiny_rankers, archive, tmp_path):
    """Served over HTTP with the connection dropped half way: the download resumes by Range, every file is
    checked, `prepare` finds nothing to do and names the build, and the reference noise control gives the same
    document numbers on the imported build as on the cache that made it."""
    import aipbench

    server = _Server(archive.read_bytes(), drops=1)
    home = tmp_path / "fresh"
    try:
        result = run_cli(["build", "import", server.url, "--sha256", hashlib.sha256(archive.read_bytes()).hexdigest()], home)
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert server.requests[0] is None and server.requests[1].startswith("bytes=")  # resumed, not started over
    (root,) = [p for p in home.iterdir() if p.name.startswith("tiny-")]
    assert not list(home.glob("downloads/*"))  # the download is in the cache now, not twice
    prepared = run_cli(["prepare", "--protocol", "tiny"], home)
    assert prepared.exit_code == 0 and "nothing to do" in prepared.output and "imported build" in prepared.output
    runs = [aipbench.evaluate(REPO / "submissions" / "noise", protocol="tiny", rankers=["vbpr"], items=10, home=h,
                              isolation="none", log=lambda m: None).document for h in (tiny_rankers.root.parent, home)]
    assert runs[0]["build"] == runs[1]["build"] and runs[0]["artifacts"] == runs[1]["artifacts"]
    numbers = [[{k: v for k, v in row.items() if k != "timing"} for row in run["results"]] for run in runs]
    assert numbers[0] == numbers[1]  # every number the same, only how long it took differs


def _damaged(archive: Path, folder: Path, how: str) -> Path:
    data = bytearray(archive.read_bytes())
    out = folder / f"{how}.tar"
    if how == "flipped":
        data[len(data) // 2] ^= 0x01  # a byte inside some artifact's file
    elif how == "truncated":
        data = data[: len(data) * 2 // 3]
    elif how == "other-protocol":
        manifest = _manifest(archive)
        manifest["protocol"]["sha256"] = "0" * 64
        buffer = io.BytesIO()
        with tarfile.open(archive) as src, tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as dst:
            for member in src:
                body = json.dumps(manifest).encode() if member.name == "MANIFEST.json" else src.extractfile(member).read()
                member.size = len(body)
                dst.addfile(member, io.BytesIO(body))
        data = bytearray(buffer.getvalue())
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize(("how", "rule"), [
    ("flipped", "its SHA-256 is not the manifest's (the archive is corrupt)"),
    ("truncated", "truncated"),
    ("other-protocol", "a build of protocol tiny with hash 000000000000"),
])
def test_a_bad_archive_is_refused_and_the_cache_is_left_as_it_was(tiny_rankers, archive, tmp_path, how, rule):
    home = tmp_path / "home"
    home.mkdir()
    server = _Server(_damaged(archive, tmp_path, how).read_bytes())
    try:
        one_error(run_cli(["build", "import", server.url], home), rule)
    finally:
        server.close()
    assert not list(home.glob("downloads/*"))  # the bad download is gone too
    assert [p.name for p in home.rglob("*") if not p.name.startswith(".")] in ([], [f"tiny-{tiny_rankers.protocol.hash12}"])
    assert not list(home.rglob("manifest.json"))  # nothing installed, not even in part


def test_a_pinned_archive_whose_bytes_differ_isone_error(archive, tmp_path):
    flipped = _damaged(archive, tmp_path, "flipped")
    one_error(run_cli(["build", "import", str(flipped), "--sha256", hashlib.sha256(archive.read_bytes()).hexdigest()],
                  tmp_path / "home"), "its SHA-256 is not")


def test_a_real_data_build_needs_its_data_file_first(archive, tmp_path):
    """A build that leaves out its data set (a real data file is not ours to redistribute) is installed only over
    that data set, imported first from the file of the SHA-256 it names."""
    manifest = _manifest(archive)
    manifest["excluded"] = ["dataset"]
    manifest["artifacts"]["dataset"]["inputs"] = {"AmazonMen.npy": "ab" * 32}
    from aipbench.pipeline.builds import build_id
    from aipbench.protocol import load_protocol

    hashes = {s: {**r["files"], **{f"input:{n}": h for n, h in r.get("inputs", {}).items()}}
              for s, r in manifest["artifacts"].items()}
    manifest["build_id"] = build_id(load_protocol("tiny"), hashes)
    buffer = io.BytesIO()
    with tarfile.open(archive) as src, tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            if member.name.startswith("dataset/"):
                continue
            body = json.dumps(manifest).encode() if member.name == "MANIFEST.json" else src.extractfile(member).read()
            member.size = len(body)
            dst.addfile(member, io.BytesIO(body))
    server = _Server(buffer.getvalue())
    try:
        one_error(run_cli(["build", "import", server.url], tmp_path / "home"),
                  "this build leaves out 'dataset', made from AmazonMen.npy (SHA-256 abababababab): import that file first")
    finally:
        server.close()


def test_the_leaderboard_takes_entries_of_the_pinned_build_and_says_how_to_import_it(tiny_rankers, tiny_documents,
                                                                                      archive, tmp_path, monkeypatch):
    """With tiny's build pinned, an entry made on it (by any cache that imported it) is filed; one made on other
    trained rankers is refused with the command that imports the reference build."""
    import aipbench.pipeline.builds as builds
    from aipbench.builds.pins import pin_text
    from aipbench.protocol import load_protocol
    from aipbench.results.document import seal
    from conftest import copy_document

    pin = tmp_path / "tiny.toml"
    pin.write_text(pin_text(load_protocol("tiny"), _manifest(archive), archive_sha256="c" * 64, archive_bytes=1))
    monkeypatch.setattr(builds, "pin_path", lambda protocol: pin)
    home, results = tiny_rankers.root.parent, tmp_path / "results"
    entry = copy_document(tiny_documents["insa"], tmp_path / "theirs")
    added = run_cli(["leaderboard", "add", str(entry), "--results", str(results)], home)
    assert added.exit_code == 0, added.output
    other = copy_document(tiny_documents["noise"], tmp_path / "other")
    doc = json.loads(other.read_text())
    doc["artifacts"]["vbpr"] = {k: "1" * 64 for k in doc["artifacts"]["vbpr"]}  # another machine's VBPR
    other.write_text(json.dumps(seal(doc)))
    line = one_error(run_cli(["leaderboard", "add", str(other), "--results", str(results)], home),
                    "whose 'vbpr' is not the reference build's: tiny's entries use build")
    assert f"aipbench build import <the archive's file or URL> --sha256 {'c' * 64}" in line


def test_the_committed_synthetic_v2_entries_are_the_pinned_reference_build():
    from aipbench.leaderboard.entries import load_entries
    from aipbench.pipeline.builds import build_id, load_pin
    from aipbench.protocol import load_protocol

    protocol = load_protocol("synthetic-v2")
    pin = load_pin(protocol)
    assert pin is not None and pin.archive_bytes > 0 and pin.made_by["torch"]
    entries = [e for e in load_entries(REPO / "leaderboard" / "results") if e.protocol == "synthetic-v2"]
    assert entries and all(pin.differs(e.document["artifacts"]) is None for e in entries)
    assert any(build_id(protocol, e.document["artifacts"]) == pin.id for e in entries)


def test_a_download_whose_bytes_are_not_the_pinned_ones_leaves_nothing(archive, tmp_path):
    server = _Server(archive.read_bytes())
    home = tmp_path / "home"
    try:
        one_error(run_cli(["build", "import", server.url, "--sha256", "0" * 64], home),
                  f"{server.url}: the downloaded archive's SHA-256 is not {'0' * 64}")
    finally:
        server.close()
    assert not home.exists() or not list(home.rglob("*"))
