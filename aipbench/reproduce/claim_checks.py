"""The checks behind the paper's claims (``aipbench.reproduce.claims``): each reads a protocol's reproduced
tables — ``{experiment: cells}`` — and returns (holds, or None where the tables lack the evidence; the
numbers it was decided on)."""

from __future__ import annotations

__all__ = ["DRAMATIC", "NEARLY_ALL", "amr_vulnerable", "attacks_generally_effective", "compression_not_left", "dvbpr_most_eps_sensitive", "expa_and_csema_threats", "insa_beats_taamr", "insa_dramatic_and_most_effective", "insa_hurts_availability_most", "insa_largest_shift", "integrity_over_availability", "larger_eps_improves", "shifts_positive", "shorter_embeddings_vulnerable", "small_eps_suffices", "taamr_like_csema"]

NEARLY_ALL = 2 / 3
DRAMATIC = 10.0  # "the impact of the attack is dramatic": at least ten times the cooperative HR@5
MAIN = ("insa", "expa", "c-sema")
MILDEST = {"jpeg": 90, "bit_depth": 7}  # the weakest level of each family (the left of the paper's boxes)


def _get(cells, **keys):
    return next((c for c in cells if all(c.get(k) == v for k, v in keys.items())), None)


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.4g}"


def _sig(c) -> str:
    return "**" if c.get("significant") else ""


def _rankers(cells) -> list[str]:
    """The rankers the cells hold, in table order (the registry's)."""
    from aipbench.rankers.registry import ranker_names

    present = {c["ranker"] for c in cells}
    return [r for r in ranker_names() if r in present] + sorted(present - set(ranker_names()))


def _signed(c) -> float:
    return c["value"] * (-1 if c.get("direction") == "down" else 1)


def _rises(adv, coop) -> bool:
    """The attacked value is above the cooperative one, significantly where the cell says (None: unmarked)."""
    return adv is not None and coop is not None and adv["value"] > coop["value"] and adv.get("significant") is not False


def _share(flags: list[bool]) -> str:
    return f"{sum(flags)} of {len(flags)}"


# -- Table 3 --------------------------------------------------------------------------------------------------


def shifts_positive(t: dict) -> tuple[bool | None, str]:
    cells = [c for c in t["table3"] if c["attack"] in MAIN]
    if not cells:
        return None, "no Table 3"
    up = [c.get("direction") == "up" for c in cells]
    return sum(up) >= NEARLY_ALL * len(up), f"{_share(up)} shifts positive (need at least two thirds)"


def insa_largest_shift(t: dict) -> tuple[bool | None, str]:
    out, wins = [], []
    for r in _rankers(t["table3"]):
        s = {a: _get(t["table3"], ranker=r, attack=a) for a in MAIN}
        if None in s.values():
            continue
        wins.append(_signed(s["insa"]) > max(_signed(s["expa"]), _signed(s["c-sema"])))
        out.append(f"{r}: INSA {_signed(s['insa']):+.3g}, EXPA {_signed(s['expa']):+.3g}, c-SEMA {_signed(s['c-sema']):+.3g}")
    if not wins:
        return None, "no Table 3"
    return sum(wins) > len(wins) / 2, f"INSA largest on {_share(wins)} rankers (need most): " + "; ".join(out)


# -- Table 4 --------------------------------------------------------------------------------------------------


def _t4(t: dict, r: str, attack=None, item_set="adversarial_cold"):
    return _get(t["table4"], ranker=r, attack=attack, item_set=item_set)


def attacks_generally_effective(t: dict) -> tuple[bool | None, str]:
    flags, failing = [], []
    for r in _rankers(t["table4"]):
        coop = _t4(t, r, item_set="cooperative_cold")
        for a in MAIN:
            adv = _t4(t, r, a)
            if adv is not None and coop is not None:
                flags.append(_rises(adv, coop))
                if not flags[-1]:
                    failing.append(f"{r}/{a} {_fmt(adv['value'])}{_sig(adv)} vs {_fmt(coop['value'])}")
    if not flags:
        return None, "no Table 4"
    return (sum(flags) >= NEARLY_ALL * len(flags),
            f"{_share(flags)} cells rise significantly (need at least two thirds)"
            + (f"; not: {', '.join(failing)}" if failing else ""))


def insa_dramatic_and_most_effective(t: dict) -> tuple[bool | None, str]:
    out, ok = [], True
    for r in _rankers(t["table4"]):
        coop, cells = _t4(t, r, item_set="cooperative_cold"), {a: _t4(t, r, a) for a in MAIN}
        if coop is None or cells["insa"] is None:
            continue
        insa = cells["insa"]
        lift = insa["value"] / coop["value"] if coop["value"] > 0 else float("inf")
        best = all(insa["value"] > c["value"] for a, c in cells.items() if a != "insa" and c is not None)
        ok &= lift >= DRAMATIC and insa.get("significant") is not False and best
        out.append(f"{r} {lift:.3g}x{_sig(insa)}{'' if best else ' (not the highest)'}")
    if not out:
        return None, "no Table 4"
    return ok, ", ".join(out) + f" (need >= {DRAMATIC:g}x, significant, above EXPA and c-SEMA)"


def expa_and_csema_threats(t: dict) -> tuple[bool | None, str]:
    out, ok = [], True
    for a in ("expa", "c-sema"):
        rising = [r for r in _rankers(t["table4"]) if _rises(_t4(t, r, a), _t4(t, r, item_set="cooperative_cold"))]
        ok &= bool(rising)
        out.append(f"{a} rises significantly on {', '.join(rising) or 'no ranker'}")
    return ok, "; ".join(out) + " (need at least one ranker each)"


def _availability_drop(t: dict, r: str, a: str):
    base, hit = _t4(t, r, item_set="ordinary_test"), _t4(t, r, a, item_set="ordinary_test")
    return (None, None) if base is None or hit is None else (base["value"] - hit["value"], hit)


def insa_hurts_availability_most(t: dict) -> tuple[bool | None, str]:
    out, ok = [], True
    for r in _rankers(t["table4"]):
        drops = {a: _availability_drop(t, r, a) for a in MAIN}
        if drops["insa"][0] is None:
            continue
        insa, cell = drops["insa"]
        others = [d for a, (d, _) in drops.items() if a != "insa" and d is not None]
        ok &= insa > 0 and cell.get("significant") is not False and all(insa > d for d in others)
        change = lambda d: "–" if d is None else f"{-d:+.2g}"  # noqa: E731
        out.append(f"{r}: INSA {change(insa)}{_sig(cell)}, EXPA {change(drops['expa'][0])}, "
                   f"c-SEMA {change(drops['c-sema'][0])}")
    if not out:
        return None, "no Table 4"
    return ok, "; ".join(out) + " (change of the ordinary test items' HR@5 from the cooperative item's)"


def integrity_over_availability(t: dict) -> tuple[bool | None, str]:
    flags = []
    for r in _rankers(t["table4"]):
        coop = _t4(t, r, item_set="cooperative_cold")
        for a in MAIN:
            adv, (drop, _) = _t4(t, r, a), _availability_drop(t, r, a)
            if adv is not None and coop is not None and drop is not None:
                flags.append(abs(adv["value"] - coop["value"]) > abs(drop))
    if not flags:
        return None, "no Table 4"
    return sum(flags) >= NEARLY_ALL * len(flags), f"|ΔHR| of the cold items above |Δ availability| in {_share(flags)} cells"


def amr_vulnerable(t: dict) -> tuple[bool | None, str]:
    coop = _t4(t, "amr", item_set="cooperative_cold")
    cells = {a: _t4(t, "amr", a) for a in ("insa", "expa")}
    if coop is None or None in cells.values():
        return None, "no AMR in Table 4"
    ok = all(_rises(c, coop) for c in cells.values())
    return ok, f"AMR cooperative {_fmt(coop['value'])}; " + ", ".join(f"{a} {_fmt(c['value'])}{_sig(c)}" for a, c in cells.items())


# -- Table 6, Figure 5 ----------------------------------------------------------------------------------------


def _sweeps(t: dict):
    """(ranker, attack, cooperative HR, {ε: cell}) for every swept attack that promotes at its largest ε."""
    for r in _rankers(t["table6"]):
        coop = _get(t["table6"], ranker=r, item_set="cooperative_cold")
        for a in ("insa", "expa"):
            by_eps = {int(c["epsilon"]): c for c in t["table6"] if c["ranker"] == r and c["attack"] == a}
            if coop is not None and by_eps and _rises(by_eps[max(by_eps)], coop):
                yield r, a, coop["value"], by_eps


def larger_eps_improves(t: dict) -> tuple[bool | None, str]:
    out, ok = [], True
    for r, a, _, by_eps in _sweeps(t):
        lo, hi = by_eps[min(by_eps)]["value"], by_eps[max(by_eps)]["value"]
        ok &= hi >= lo
        out.append(f"{r}/{a} ε={min(by_eps)}: {_fmt(lo)} → ε={max(by_eps)}: {_fmt(hi)}")
    return (ok, "; ".join(out)) if out else (None, "no promoting sweep in Table 6")


def small_eps_suffices(t: dict) -> tuple[bool | None, str]:
    flags, out = [], []
    for r, a, coop, by_eps in _sweeps(t):
        small = min((e for e in by_eps if e >= 8), default=min(by_eps))  # a quarter of the paper's budget
        flags.append(by_eps[small]["value"] > coop)
        out.append(f"{r}/{a} ε={small}: {_fmt(by_eps[small]['value'])} vs {_fmt(coop)}")
    if not flags:
        return None, "no promoting sweep in Table 6"
    return sum(flags) > len(flags) / 2, f"above cooperative at ε=8 in {_share(flags)} (need most): " + "; ".join(out)


def dvbpr_most_eps_sensitive(t: dict) -> tuple[bool | None, str]:
    out, ok, seen = [], True, False
    for a in ("insa", "expa"):
        rise = {}
        for r in ("alexrank", "vbpr", "dvbpr"):
            by_eps = {int(c["epsilon"]): c["value"] for c in t["table6"] if c["ranker"] == r and c["attack"] == a}
            if len(by_eps) > 1:
                rise[r] = by_eps[max(by_eps)] - by_eps[min(by_eps)]
        if "dvbpr" in rise and len(rise) > 1:
            seen = True
            ok &= all(rise["dvbpr"] > v for r, v in rise.items() if r != "dvbpr")
            out.append(f"{a}: " + ", ".join(f"{r} {v:+.3g}" for r, v in rise.items()))
    return (ok, "HR@5 rise from the smallest to the largest ε: " + "; ".join(out)) if seen else (None, "no Table 6")


def shorter_embeddings_vulnerable(t: dict) -> tuple[bool | None, str]:
    out, ok = [], True
    for r in ("vbpr", "dvbpr"):
        seq = sorted((c["embedding_length"], c["value"]) for c in t.get("figure5", [])
                     if c["ranker"] == r and c["attack"] == "insa")
        if len(seq) < 2:
            continue
        ok &= seq[0][1] > seq[-1][1]
        out.append(f"{r} INSA " + ", ".join(f"K={k}: {_fmt(v)}" for k, v in seq))
    return (ok, "; ".join(out)) if out else (None, "no Figure 5 numbers (the paper's Figure 5 is a plot)")


# -- Tables 5, 7 ----------------------------------------------------------------------------------------------


def _deltas(t: dict, r: str) -> dict[str, float]:
    """Signed ΔHR@5 of the cold items: INSA, EXPA, c-SEMA (Table 5) and TAaMR's stronger variant (Table 7)."""
    out = {a: _signed(c) for a in MAIN if (c := _get(t["table5"], ranker=r, attack=a)) is not None}
    taamr = [_signed(c) for c in t["table7"] if c["ranker"] == r and c["item_set"] == "adversarial_cold"]
    if taamr:
        out["taamr"] = max(taamr)
    return out


def insa_beats_taamr(t: dict) -> tuple[bool | None, str]:
    out, ok = [], True
    for r in ("alexrank", "vbpr", "dvbpr"):
        d = _deltas(t, r)
        if "taamr" in d and "insa" in d:
            ok &= d["insa"] > d["taamr"]
            out.append(f"{r}: INSA {d['insa']:+.3g}, TAaMR {d['taamr']:+.3g}")
    return (ok, "; ".join(out)) if out else (None, "no Tables 5 and 7")


def taamr_like_csema(t: dict) -> tuple[bool | None, str]:
    out, ok = [], True
    for r in ("alexrank", "vbpr", "dvbpr"):
        d = _deltas(t, r)
        if {"taamr", "insa", "c-sema"} <= set(d):
            ok &= abs(d["taamr"] - d["c-sema"]) < abs(d["taamr"] - d["insa"])
            out.append(f"{r}: TAaMR {d['taamr']:+.3g}, c-SEMA {d['c-sema']:+.3g}, INSA {d['insa']:+.3g}")
    return (ok, "; ".join(out) + " (TAaMR nearer c-SEMA than INSA)") if out else (None, "no Tables 5 and 7")


# -- Table 8 --------------------------------------------------------------------------------------------------


def compression_not_left(t: dict) -> tuple[bool | None, str]:
    cells = [c for c in t["table8"] if c["attack"] in ("insa", "expa") and c.get("mode") in (None, "paper-transfer")]
    if not cells:
        return None, "no Table 8 as the paper defines it"
    left = [c["value"] is not None and int(c["value"]) == MILDEST[c["defense"]] for c in cells]
    shown = ", ".join(f"{c['defense']}/{c['ranker']}/{c['attack']}: {'none' if c['value'] is None else int(c['value'])}"
                      for c in cells)
    return sum(left) < len(left) / 2, f"defeated at the mildest level in {_share(left)} cells (need under half): {shown}"
