"""The paper's qualitative claims, checked on a protocol's reproduced tables and figures."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["CLAIMS", "check_claims"]

LIFT_ORDERS = 10.0  # "by orders of magnitude": at least one order, on every ranker


def _get(cells, **keys):
    hits = [c for c in cells if all(c.get(k) == v for k, v in keys.items())]
    return hits[0] if hits else None


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.4g}"


def insa_lifts(t: dict) -> tuple[bool, str]:
    out, ok = [], True
    for r in ("alexrank", "vbpr", "dvbpr", "amr"):
        coop = _get(t["table4"], ranker=r, item_set="cooperative_cold")
        adv = _get(t["table4"], ranker=r, attack="insa", item_set="adversarial_cold")
        if coop is None or adv is None:
            continue
        lift = adv["value"] / coop["value"] if coop["value"] > 0 else float("inf")
        ok &= lift >= LIFT_ORDERS and bool(adv["significant"])
        out.append(f"{r} {lift:.3g}x")
    return ok, ", ".join(out) + f" (need >= {LIFT_ORDERS:g}x, significant)"


def expa_csema_on_dvbpr(t: dict) -> tuple[bool, str]:
    coop = _get(t["table4"], ranker="dvbpr", item_set="cooperative_cold")["value"]
    out, ok = [], True
    for a in ("expa", "c-sema"):
        adv = _get(t["table4"], ranker="dvbpr", attack=a, item_set="adversarial_cold")
        ok &= adv["value"] > coop and bool(adv["significant"])
        out.append(f"{a} {_fmt(adv['value'])}{'**' if adv['significant'] else ''}")
    return ok, f"DVBPR cooperative {_fmt(coop)}; " + ", ".join(out)


def insa_lowers_availability(t: dict) -> tuple[bool, str]:
    out, ok = [], True
    for r in ("alexrank", "vbpr", "dvbpr", "amr"):
        clean = _get(t["table4"], ranker=r, attack=None, item_set="ordinary_test")
        adv = _get(t["table4"], ranker=r, attack="insa", item_set="ordinary_test")
        if clean is None or adv is None:
            continue
        ok &= adv["value"] < clean["value"]
        out.append(f"{r} {_fmt(clean['value'])} -> {_fmt(adv['value'])}{'**' if adv['significant'] else ''}")
    return ok, ", ".join(out)


def amr_keeps_insa(t: dict) -> tuple[bool, str]:
    coop = _get(t["table4"], ranker="amr", item_set="cooperative_cold")
    adv = _get(t["table4"], ranker="amr", attack="insa", item_set="adversarial_cold")
    ok = adv["value"] > coop["value"] and bool(adv["significant"])
    return ok, f"AMR cooperative {_fmt(coop['value'])} -> INSA {_fmt(adv['value'])}{'**' if adv['significant'] else ''}"


def _promotes(t4: list[dict], ranker: str, attack: str) -> bool:
    """Whether the attack lifts the cold items above cooperative at all (Table 4): claims about what
    defenses or budgets do to an attack are only about attacks that work."""
    coop = _get(t4, ranker=ranker, item_set="cooperative_cold")
    adv = _get(t4, ranker=ranker, attack=attack, item_set="adversarial_cold")
    return coop is not None and adv is not None and adv["value"] > coop["value"]


def compression_needs_extremes(t: dict) -> tuple[bool, str]:
    """Transfer INSA/EXPA images (where they promote): defeated at no level or only at the two strongest."""
    extremes = {"jpeg": (30, 10), "bit_depth": (4, 3)}
    cells = [c for c in t["table8"] if c["attack"] in ("insa", "expa") and c["mode"] == "transfer"]
    works = [_promotes(t["table4"], c["ranker"], c["attack"]) for c in cells]
    left_out = sorted({f"{c['ranker']}/{c['attack']}" for c, w in zip(cells, works) if not w})
    cells = [c for c, w in zip(cells, works) if w]
    mild = [c for c in cells if c["value"] is not None and c["value"] not in extremes[c["defense"]]]
    summary = ", ".join(f"{c['defense']}/{c['ranker']}/{c['attack']}: {c['value'] if c['value'] is not None else 'none'}"
                        for c in cells)
    return not mild and bool(cells), summary + (f" (left out, not promoting: {', '.join(left_out)})" if left_out else "")


def larger_eps_stronger(t: dict) -> tuple[bool, str]:
    """HR@N rises with ε (never falls, and ε = 32 beats ε = 4) for every attack that promotes."""
    out, ok, left_out = [], True, []
    for r in ("alexrank", "vbpr", "dvbpr"):
        for a in ("insa", "expa"):
            seq = sorted((c["epsilon"], c["value"]) for c in t["table6"] if c["ranker"] == r and c["attack"] == a)
            if not seq:
                continue
            if not _promotes(t["table4"], r, a):
                left_out.append(f"{r}/{a}")
                continue
            values = [v for _, v in seq]
            ok &= all(b >= a_ for a_, b in zip(values, values[1:])) and values[-1] > values[0]
            out.append(f"{r}/{a} " + " → ".join(_fmt(v) for v in values))
    return ok, "; ".join(out) + (f" (left out, not promoting: {', '.join(left_out)})" if left_out else "")


def shorter_more_vulnerable(t: dict) -> tuple[bool, str]:
    out, ok = [], True
    for r in ("vbpr", "dvbpr"):
        seq = sorted((c["embedding_length"], c["value"]) for c in t["figure5"]
                     if c["ranker"] == r and c["attack"] == "insa")
        ok &= seq[0][1] > seq[-1][1]
        out.append(f"{r} INSA " + ", ".join(f"K={k}: {_fmt(v)}" for k, v in seq))
    return ok, "; ".join(out)


def taamr_weaker(t: dict) -> tuple[bool, str]:
    """On every ranker TAaMR's cold-item lift (ΔHR) is below both INSA's and EXPA's."""
    out, ok = [], True
    for r in ("alexrank", "vbpr", "dvbpr"):
        taamr = max(c["value"] * (1 if c["direction"] == "up" else -1) for c in t["table7"]
                    if c["ranker"] == r and c["item_set"] == "adversarial_cold")
        others = {a: _get(t["table5"], ranker=r, attack=a) for a in ("insa", "expa")}
        signed = {a: c["value"] * (1 if c["direction"] == "up" else -1) for a, c in others.items()}
        ok &= all(taamr < v for v in signed.values())
        out.append(f"{r}: TAaMR {_fmt(taamr)} vs INSA {_fmt(signed['insa'])}, EXPA {_fmt(signed['expa'])}")
    return ok, "; ".join(out)


# claim -> (the experiments it reads, the check)
CLAIMS: dict[str, tuple[tuple[str, ...], Callable[[dict], tuple[bool, str]]]] = {
    "INSA lifts cold items by orders of magnitude on every ranker": (("table4",), insa_lifts),
    "EXPA and c-SEMA lift cold items above cooperative on DVBPR": (("table4",), expa_csema_on_dvbpr),
    "INSA lowers availability (ordinary test items' HR@5)": (("table4",), insa_lowers_availability),
    "AMR does not remove INSA": (("table4",), amr_keeps_insa),
    "JPEG and bit depth defeat INSA/EXPA only at extreme levels, if at all": (("table4", "table8"),
                                                                              compression_needs_extremes),
    "A larger epsilon is stronger": (("table4", "table6"), larger_eps_stronger),
    "Shorter embeddings are more vulnerable": (("figure5",), shorter_more_vulnerable),
    "TAaMR is weaker than INSA and EXPA": (("table5", "table7"), taamr_weaker),
}


def check_claims(cells_of: Callable[[str], list[dict]]) -> list[dict]:
    """Each claim with ``holds`` and the evidence (numbers) it was decided on; ``cells_of(experiment)``
    gives an experiment's cells (computed or read from its document)."""
    out = []
    for claim, (needs, check) in CLAIMS.items():
        holds, evidence = check({name: cells_of(name) for name in needs})
        out.append({"claim": claim, "holds": bool(holds), "evidence": evidence, "experiments": list(needs)})
    return out
