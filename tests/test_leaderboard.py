"""The leaderboard: committed results re-validated, deterministic escaped rendering, refused tampering,
and the built site in headless Chromium (sorting, no console errors, a screenshot)."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import copy_document

from aipbench.cli import main
from aipbench.errors import InputError
from aipbench.leaderboard import build_site, load_entries, render
from aipbench.protocol import load_protocol
from aipbench.results.document import document_sha256, load_results, seal
from aipbench.results.references import load_reference

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "leaderboard" / "results"
SAMPLE = REPO / "tests" / "data" / "results-tiny-noise.json"


def test_committed_results_are_valid_and_match_their_protocols():
    paths = sorted(COMMITTED.glob("*/*.json"))
    assert paths, "no committed results"
    for path in paths:
        doc = load_results(path)  # schema + the document's own hash
        assert doc["protocol"]["sha256"] == load_protocol(path.parent.name).sha256, path
        assert path.stem == doc["submission"]["name"]
    assert len(load_entries(COMMITTED)) == len(paths)


@pytest.fixture
def results(tiny_documents, tmp_path):
    """A results folder with two tiny-protocol entries: the reference noise control, and INSA's document filed as
    "evil" with hostile strings (re-sealed; its per-item CSV and sheet are the same bytes)."""
    folder = tmp_path / "results" / "tiny"
    copy_document(tiny_documents["noise"], folder)
    path = copy_document(tiny_documents["insa"], folder, "evil")
    doc = json.loads(path.read_text())
    doc["submission"].update(name="evil", description="<script>alert('x')</script> & <b>bold</b>",
                             authors=["<img src=x onerror=alert(1)>"], link="javascript:alert(1)")
    path.write_text(json.dumps(seal(doc)))
    return tmp_path / "results"


def test_rendering_is_deterministic_and_escapes_user_strings(results):
    refs = {"table4": load_reference("table4")}
    pages = render(load_entries(results), refs)
    assert pages == render(load_entries(results), refs)  # same inputs, same bytes
    assert set(pages) >= {"index.html", "protocol-tiny.html", "submission-tiny-evil.html", "protocol-amazon-men-v1.html"}
    evil = pages["submission-tiny-evil.html"]
    assert "<script>alert" not in evil and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in evil
    assert "<img src=x" not in evil and "&lt;img src=x onerror=alert(1)&gt;" in pages["index.html"]
    assert 'href="javascript:' not in evil  # a non-http link is shown as text, never as a link
    protocol = pages["protocol-tiny.html"]
    assert protocol.index("submission-tiny-evil.html") < protocol.index("submission-tiny-noise.html")  # ranked by ΔHR@5
    paper = pages["protocol-amazon-men-v1.html"]
    assert "insa (reported in the paper)" in paper and "0.8296" in paper


@pytest.mark.parametrize(
    ("damage", "rule"),
    [
        (lambda d, p: p.write_text(json.dumps({**d, "seed": 7})), "content does not match its sha256"),
        (lambda d, p: p.write_text(json.dumps(seal({**d, "protocol": {**d["protocol"], "sha256": "0" * 64}}))),
         "protocol hash 000000000000 does not match protocols/tiny.toml"),
        (lambda d, p: p.write_text(json.dumps(seal({**d, "artifacts": {**d["artifacts"], "bpr": {"bpr.pt": "1" * 64}}}))),
         "artifact hashes differ"),
        (lambda d, p: p.write_text(json.dumps(d)[:300]), "not valid JSON"),
        (lambda d, p: p.rename(p.with_name("other.json")), "file name must be the submission's name"),
    ],
)
def test_tampered_results_are_refused(results, tmp_path, damage, rule):
    path = results / "tiny" / "noise.json"
    damage(json.loads(path.read_text()), path)
    out = tmp_path / "site"
    result = CliRunner().invoke(main, ["leaderboard", "build", "--results", str(results), "--out", str(out)])
    assert result.exit_code == 1 and rule in result.output, result.output
    assert not out.exists()


def test_an_artifact_only_one_entry_recorded_is_no_conflict(results, tmp_path):
    """An optional artifact (a Figure 5 length variant) built after some entries were made is recorded by
    the later ones only; the entries still share one build of every artifact they have in common."""
    path = results / "tiny" / "noise.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(seal({**doc, "artifacts": {**doc["artifacts"], "vbpr-k20": {"vbpr.pt": "2" * 64}}})))
    result = CliRunner().invoke(main, ["leaderboard", "build", "--results", str(results), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output


def test_a_document_hash_covers_every_number():
    doc = load_results(SAMPLE)
    doc["results"][0]["cooperative"]["hr"]["5"] += 1e-9
    assert document_sha256(doc) != doc["sha256"]


def test_build_from_the_committed_results(tmp_path):
    written = build_site(COMMITTED, tmp_path / "site")
    names = {p.name for p in written}
    assert "index.html" in names and any(n.startswith("submission-synthetic-v1-insa") for n in names)
    pages = {p.name: p.read_text() for p in written}
    amr = next(text for name, text in pages.items() if name.startswith("submission-synthetic-v1-amr"))
    assert "training (replaces vbpr)" in amr and "Table 8" not in amr
    detector = next(text for name, text in pages.items() if name.startswith("submission-synthetic-v1-detector"))
    assert "% flagged]" in detector and "never the evaluated cold items" in detector
    assert ">synthetic-v2</a> (default)</td>" in pages["index.html"] and pages["index.html"].count("(default)") == 1
    # the re-made synthetic-v2 entries: intervals beside the hit rates, ranks tied where intervals overlap,
    # and the flags their checks raised (attack and defense)
    v2 = pages["protocol-synthetic-v2.html"]
    assert re.search(r"\[0\.\d+, 0\.\d+\]", v2) and re.search(r">=\d+</td>", v2)
    assert "objective-not-improved" in v2 and "adaptive-weaker-than-transfer" in v2 and "clean-cost" in v2
    # and synthetic-v1's, re-made the same way: intervals, and the AMR defense's and the detector's flags
    v1 = pages["protocol-synthetic-v1.html"]
    assert re.search(r"\[0\.\d+, 0\.\d+\]", v1) and "clean-cost" in v1 and "detector-false-alarms" in v1
    # charts drawn by matplotlib: on synthetic-v2's page a lift heatmap and one budget curve per ranker, every
    # bounded attack entry a series (controls included, dotted) with the cooperative baseline; the controls are
    # listed after the attacks and never ranked
    curves = re.findall(r'<figure class="chart budget-curve">(.*?)</figure>', v2, flags=re.S)
    bounded = {p.stem for p in (COMMITTED / "synthetic-v2").glob("*.json")
               if json.loads(p.read_text()).get("kind", "attack") == "attack"
               and json.loads(p.read_text())["submission"]["threat"]["norm"] == "linf"}
    assert len(curves) == 4 and all(c.count('id="series-') == len(bounded) for c in curves)
    assert all('id="baseline-cooperative"' in c and 'id="band-insa"' in c for c in curves)
    # image quality (a series per attack), the replica spread (INSA's and noise's three seeds), the model table
    quality = re.search(r'<figure class="chart" id="quality-chart">(.*?)</figure>', v2, flags=re.S).group(1)
    assert quality.count('id="series-') == len([p for p in (COMMITTED / "synthetic-v2").glob("*.items.csv")]) - 1
    assert v2.count('<figure class="chart spread">') == 2
    models = re.search(r'<figure class="chart" id="model-chart">(.*?)</figure>', v2, flags=re.S).group(1)
    assert models.count('id="series-') == 2 and "visual-mf" in models
    attacks = [p for p in (COMMITTED / "synthetic-v2").glob("*.json") if json.loads(p.read_text()).get("kind", "attack") == "attack"]
    assert 'id="lift-heatmap"' in v2 and v2.count('id="cell-') == 4 * len(attacks)
    ranks = {name: rank for name, rank in re.findall(r'<tr id="vbpr-([\w-]+)"[^>]*>\s*<td>(.*?)</td>', v2)}
    assert "control" in ranks["noise"] and "control" in ranks["hook-copy"]
    assert all(re.fullmatch(r"=?\d+", rank) for name, rank in ranks.items() if name not in ("noise", "hook-copy"))
    # a defense page: its worst case per level beside the undefended line, per ranker
    jpeg = pages["submission-synthetic-v2-jpeg.html"]
    chart = re.search(r'<figure class="chart" id="defense-chart">(.*?)</figure>', jpeg, flags=re.S).group(1)
    assert chart.count('id="series-') == 4 and chart.count('id="baseline-') == 4 and "undefended →" in jpeg
    # the index: the default protocol first, the controls marked
    index = pages["index.html"]
    assert index.index(">synthetic-v2</a>") < index.index(">synthetic-v1</a>") and "(control)" in index
    # the reproduction on the site: the claims with their verdicts, each table beside the paper's numbers, the
    # figures, and the black-box comparison
    repro = pages["reproduction-synthetic-v2.html"]
    claims = json.loads((COMMITTED / "synthetic-v2" / "reproduce" / "claims.json").read_text())["claims"]
    assert repro.count('<tr class="claim-') == len(claims) and repro.count("<strong>does not hold</strong>") == \
        sum(c["holds"] is False for c in claims)
    assert 'id="table-table4"' in repro and "0.0270** (paper 0.8296)" in repro  # AlexRank INSA, Amazon Men
    assert 'id="figure-figure4"' in repro and 'src="data:image/svg+xml;base64,' in repro
    assert 'id="comparison"' in repro and ">nes</th>" in repro
    assert 'href="reproduction-synthetic-v2.html"' in v2 and 'href="reproduction-synthetic-v2.html"' in index
    with pytest.raises(InputError, match="no such results folder"):
        build_site(tmp_path / "missing", tmp_path / "site2")


# -- the site in a real browser ---------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def served_site(tmp_path):
    site = tmp_path / "site"
    build_site(COMMITTED, site)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="Debian's chromium and chromium-driver (installed by .ci/run)")
def test_site_in_headless_chromium(served_site, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,1600"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        for page in ("index.html", "protocol-synthetic-v1.html", "submission-synthetic-v1-insa.html"):
            driver.get(f"{served_site}/{page}")
            assert driver.find_element(By.TAG_NAME, "h1").text
            errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
            assert not errors, errors
        driver.save_screenshot(str(tmp_path / "submission.png"))
        driver.get(f"{served_site}/protocol-synthetic-v1.html")
        table = driver.find_element(By.ID, "attacks-dvbpr")
        names = lambda: [r.find_elements(By.TAG_NAME, "td")[1].text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]  # noqa: E731
        before = names()
        header = table.find_elements(By.TAG_NAME, "th")[1]  # "submission"
        header.click()
        ascending = names()
        assert ascending == sorted(before, key=str.lower) and ascending != before
        header.click()
        assert names() == ascending[::-1]
        driver.save_screenshot(str(tmp_path / "protocol.png"))
        assert (tmp_path / "protocol.png").stat().st_size > 10_000
        # every chart renders with a size, and no page is wider than the 1280 px window (wide tables scroll
        # inside their own box)
        for page in ("index.html", "protocol-synthetic-v2.html", "submission-synthetic-v2-jpeg.html",
                     "submission-synthetic-v2-insa.html", "reproduction-synthetic-v2.html"):
            driver.get(f"{served_site}/{page}")
            sizes = driver.execute_script("return Array.from(document.querySelectorAll('figure.chart svg'))"
                                          ".map(s => [s.getBoundingClientRect().width, s.getBoundingClientRect().height])")
            assert all(w > 100 and h > 100 for w, h in sizes), (page, sizes)
            assert page in ("index.html", "reproduction-synthetic-v2.html") or sizes
            if page.startswith("reproduction"):  # the figures, as images
                assert driver.execute_script("return Array.from(document.querySelectorAll('figure.chart img'))"
                                             ".every(i => i.complete && i.naturalWidth > 100)")
            assert driver.execute_script("return document.documentElement.scrollWidth") <= 1280, page
        # the pages work from file:// too (no server: the charts are inline SVG, the scripts inline)
        driver.get((tmp_path / "site" / "protocol-synthetic-v2.html").as_uri())
        assert driver.find_element(By.TAG_NAME, "h1").text == "synthetic-v2"
        assert driver.execute_script("return document.querySelectorAll('figure.chart svg').length") >= 5
        assert not [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        # the compact view and the filters
        from selenium.webdriver.support.ui import Select

        driver.get(f"{served_site}/protocol-synthetic-v2.html")
        shown = lambda: len([h for h in driver.find_elements(By.CSS_SELECTOR, "#attacks-vbpr th") if h.is_displayed()])  # noqa: E731
        compact = shown()
        driver.find_element(By.ID, "show-details").click()
        assert compact == 8 and shown() == 18  # rank, name, knowledge, ε, adv, Δ, lift, flags; then status and the rest
        Select(driver.find_element(By.ID, "knowledge-filter")).select_by_value("insider")
        rows = [r for r in driver.find_elements(By.CSS_SELECTOR, "#attacks-vbpr tbody tr") if r.is_displayed()]
        assert rows and {r.get_attribute("data-knowledge") for r in rows} == {"insider"}
        driver.get(f"{served_site}/index.html")
        Select(driver.find_element(By.ID, "kind-filter")).select_by_value("defense")
        kinds = {r.get_attribute("data-kind") for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-kind]") if r.is_displayed()}
        assert kinds == {"defense"}
    finally:
        driver.quit()
