"""The black-box knowledge level: a rank oracle over probe users with a counted query budget, and nothing else
of the recommender (Cohen et al., WSDM '21); the NES reference attack that uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import attack_folder, copy_artifacts

from aipbench.attacks.context import PUBLIC, KnowledgeError
from aipbench.attacks.grants import build_context
from aipbench.attacks.oracle import PROBE_USERS, QueryBudgetExceeded, probe_users, rank_oracle
from aipbench.cli import main
from aipbench.harness.isolation.bwrap import sandbox_problem

needs_sandbox = pytest.mark.skipif(sandbox_problem() is not None, reason=f"no sandbox here: {sandbox_problem()}")


@pytest.mark.parametrize("name", ["vbpr", "dvbpr"])
def test_a_rank_under_n_is_exactly_a_top_n_hit(tiny_prepared, name):
    """The oracle's rank r_u(image) < N ⇔ the image would enter u's top N as the scoring counts it
    (s_u > τ_u^N over the base set): the merchant sees what the benchmark measures, for its probe users."""
    ranker = tiny_prepared.ranker(name)
    summary = tiny_prepared.summary(ranker)
    oracle = rank_oracle(ranker, tiny_prepared.base_sets, seed=7, n_items=1, image_size=tiny_prepared.dataset.image_size)
    images = np.array(tiny_prepared.dataset.images[:200])  # catalog photos: some enter top lists, most do not
    ranks = oracle.query(images)
    users = probe_users(tiny_prepared.dataset.n_users, 7)
    assert ranks.shape == (200, len(users)) and ranks.dtype == np.int32 and oracle.used == 200
    with torch.no_grad():
        scores = ranker.score_images(torch.as_tensor(users), torch.from_numpy(images)).T.numpy()  # images × users
    for n in summary.hit_ranks:
        hits = scores > summary.thresholds[n][users].numpy()[None, :]
        assert ((ranks < n) == hits).all()
        assert 0 < hits.sum() < hits.size  # the check separates something
    assert np.array_equal(users, probe_users(tiny_prepared.dataset.n_users, 7))  # fixed by the seed
    assert len(users) == min(PROBE_USERS, tiny_prepared.dataset.n_users)


def test_the_oracle_answers_nothing_past_its_budget(tiny_prepared):
    ranker = tiny_prepared.ranker("vbpr")
    oracle = rank_oracle(ranker, tiny_prepared.base_sets, seed=1, n_items=1, image_size=64)
    oracle.budget = 5
    images = np.asarray(tiny_prepared.dataset.images[:6])
    oracle.query(images[:3])
    with pytest.raises(QueryBudgetExceeded, match="would pass the budget of 5"):
        oracle.query(images[:3])
    assert oracle.used == 3  # a refused query costs nothing and answers nothing
    for bad in (images[:2].astype(np.float32), images[:2, :, :32], images[0]):
        with pytest.raises(ValueError, match="uint8 array of shape"):
            oracle.query(bad)
    assert oracle.used == 3
    oracle.query(images[:2])
    assert oracle.remaining == 0
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(images[:1])


def test_a_blackbox_context_holds_the_oracle_and_nothing_of_the_model(tiny_prepared):
    ranker = tiny_prepared.ranker("dvbpr")
    ctx = build_context(tiny_prepared, ranker, "blackbox", epsilon=8, items=tiny_prepared.dataset.cold_items[:4])
    assert sorted(ctx.available()) == sorted([*PUBLIC, "oracle"])
    for name in ("ranker", "image_model", "hook_item", "classifier", "popular_class"):
        with pytest.raises(KnowledgeError, match="not available to blackbox attacks"):
            getattr(ctx, name)
    assert ctx.oracle.budget == 4 * 1000


def _blackbox(tmp_path: Path, body: str) -> Path:
    return attack_folder(tmp_path / "bb", body, name="bb", knowledge="blackbox",
                         imports="import gc, os, pickle, numpy as np, torch")


@needs_sandbox
def test_a_hostile_blackbox_attack_gets_answers_and_nothing_else(tiny_rankers, tmp_path):
    """In the sandbox the attack holds a channel, not the oracle: no module of the ranker in its memory, a
    pickle or garbage on the socket is refused (never unpickled in the harness), a query past the budget
    is refused, and the document records the queries answered."""
    home = tmp_path / "home"
    copy_artifacts(tiny_rankers, list(json.loads(tiny_rankers.manifest_path.read_text())["artifacts"]), home)
    marker = tmp_path / "unpickled"
    body = f"""
    from aipbench.attacks.oracle import QueryBudgetExceeded

    class Evil:
        def __reduce__(self):
            return (open, ({str(marker)!r}, "w"))

    o = ctx.oracle
    assert type(o).__name__ == "OracleClient" and not hasattr(o, "_ranker"), type(o)
    assert not any(isinstance(x, torch.nn.Module) for x in gc.get_objects())
    for name in ("ranker", "image_model", "hook_item"):
        try:
            getattr(ctx, name)
            raise AssertionError(name + " was granted")
        except PermissionError:
            pass
    raw = o._channel
    for message in (pickle.dumps(Evil()), b"garbage", np.lib.format.magic(1, 0) + b"{{'descr': '|O'"):
        raw.send(b"Q" + message)
        reply = raw.recv(max_bytes=1 << 20)
        assert reply[:1] == b"E", reply[:80]
    images = np.asarray(ctx.cold_images)
    try:
        o.query(np.zeros((o.remaining + 1, *images.shape[1:]), np.uint8))
        raise AssertionError("a query past the budget was answered")
    except QueryBudgetExceeded:
        pass
    ranks = o.query(images[:3])
    assert ranks.shape == (3, o.n_probe_users) and o.used == 3
    return images
    """
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(_blackbox(tmp_path, body)), "--protocol", "tiny", "--rankers",
                                       "vbpr", "--items", "10", "--out", str(out)], env={"AIPBENCH_HOME": str(home)})
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())["results"]
    assert row["oracle"] == {"response": "rank", "probe_users": PROBE_USERS, "budget": 10_000, "queries": 3}
    assert not marker.exists()


@pytest.mark.parametrize("ranker", ["alexrank", "dvbpr", *(pytest.param(r, marks=pytest.mark.slow) for r in ("vbpr", "amr"))])
def test_nes_on_tiny_matches_its_pins_and_promotes(tiny_rankers, tmp_path, ranker):
    """The black-box reference attack, end to end on tiny (10 cold items): its numbers are pinned (VBPR's and
    AMR's under -m slow), it raises its items' scores (and, on AlexRank and DVBPR, their hit rate), and
    spent its queries within the budget."""
    from tiny_pipeline import PINS, attack_document

    from aipbench.reproduce.pins import attack_pins, compare_pins

    doc = attack_document("nes", ranker, home=tiny_rankers.root.parent, scratch=tmp_path)
    pinned = {k: v for k, v in PINS.items() if k.startswith(f"attack/nes/{ranker}/")}
    problems = compare_pins(pinned, attack_pins(doc))
    assert pinned and not problems, "\n".join(problems)
    (row,) = doc["results"]
    assert row["prediction_shift"]["value"] > 0 and row["adversarial"]["hr"]["5"] >= row["cooperative"]["hr"]["5"]
    if ranker in ("alexrank", "dvbpr"):
        assert row["adversarial"]["hr"]["5"] > 1.5 * row["cooperative"]["hr"]["5"]
    assert row["image_quality"]["max_linf"] <= 32
    assert 0.9 * row["oracle"]["budget"] <= row["oracle"]["queries"] <= row["oracle"]["budget"] == 10 * 1000


def test_the_committed_blackbox_comparison_is_one_consistent_leaderboard():
    """leaderboard/blackbox/: NES, INSA, EXPA and the noise control at ε = 32 on synthetic-v2's seeded 100-item
    subset, on one build of the artifacts (what `leaderboard check` checks), the same items and cooperative
    numbers in all four, NES's queries within its budget on every ranker, and INSA and noise on three replicas
    of each trained ranker, noise's lift far below INSA's on every one."""
    from aipbench.leaderboard.intake import check_entries

    folder = Path(__file__).resolve().parents[1] / "leaderboard" / "blackbox"
    assert check_entries(folder)["reference"] == 4
    docs = {p.stem: json.loads(p.read_text()) for p in (folder / "synthetic-v2").glob("*.json")}
    assert sorted(docs) == ["expa", "insa", "nes", "noise"]
    cooperative = {name: {r["ranker"]: r["cooperative"]["hr"]["5"] for r in d["results"]} for name, d in docs.items()}
    assert cooperative["nes"] == cooperative["insa"] == cooperative["expa"] == cooperative["noise"]
    for insa, noise in zip(docs["insa"]["results"], docs["noise"]["results"]):
        if "replicas" in insa:
            assert insa["replicas"]["count"] == noise["replicas"]["count"] == 3
            assert max(noise["replicas"]["hr_lift"]) < 2 < min(insa["replicas"]["hr_lift"])
    assert {r["n_items"] for d in docs.values() for r in d["results"]} == {100}
    for row in docs["nes"]["results"]:
        assert row["oracle"]["queries"] <= row["oracle"]["budget"] == 100 * 1000
        assert row["image_quality"]["max_linf"] <= 32
