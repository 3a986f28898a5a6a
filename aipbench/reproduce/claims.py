"""The paper's own sentences about its results, each made checkable on a protocol's reproduced tables and
figures — and each holding on the paper's own numbers (``protocols/references/``, one data set at a time).

Words the paper leaves loose get one reading, stated with the claim: "nearly all" / "in general" is at
least two thirds of the cells (the paper pools both data sets: 15 of 18 positive shifts in Table 3, yet as
few as 6 of 9 on Tradesy alone); "most" is more than half; an attack "promotes" a cell where its HR@5 is
above the cooperative one and, where the table marks significance, significantly so (p < the protocol's
level). A claim whose evidence the tables do not hold (the paper's Figure 5 is a plot, not numbers) is
undecided (``holds`` None), never true by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from aipbench.reproduce.claim_checks import (DRAMATIC, amr_vulnerable, attacks_generally_effective,
                                              compression_not_left, dvbpr_most_eps_sensitive, expa_and_csema_threats,
                                              insa_beats_taamr, insa_dramatic_and_most_effective,
                                              insa_hurts_availability_most, insa_largest_shift,
                                              integrity_over_availability, larger_eps_improves, shifts_positive,
                                              shorter_embeddings_vulnerable, small_eps_suffices, taamr_like_csema)

__all__ = ["CLAIMS", "NOT_CHECKED", "Claim", "check_claims", "claims_markdown"]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One sentence of the paper (``quote``, from ``where``), how aipbench reads it, the experiments it
    reads, and the check: tables → (holds, or None where the tables lack the evidence; the evidence)."""

    quote: str
    where: str
    reading: str
    needs: tuple[str, ...]
    check: Callable[[dict], tuple[bool | None, str]]


CLAIMS: dict[str, Claim] = {
    "attacks shift scores up": Claim(
        "We see that for nearly all combinations of AIP attack and visually-aware recommender system the attack is "
        "successful.", "§6.1, Table 3", "positive prediction shift in at least two thirds of (attack, ranker) cells",
        ("table3",), shifts_positive),
    "INSA shifts most": Claim(
        "The high-knowledge attack, INSA, achieves a larger shift than EXPA and c-SEMA.", "§6.1, Table 3",
        "INSA's signed shift above EXPA's and c-SEMA's on most rankers", ("table3",), insa_largest_shift),
    "attacks generally effective": Claim(
        "in nearly all cases the hit rate for the adversarial version of the cold items exceeds that of the cooperative "
        "version of the cold items, meaning that all AIP attacks are generally effective.", "§6.1, Table 4",
        "adversarial HR@5 significantly above cooperative in at least two thirds of (attack, ranker) cells",
        ("table4",), attacks_generally_effective),
    "INSA dramatic": Claim(
        "For INSA, the impact of the attack is dramatic. [...] Since INSA uses the most knowledge, it is not surprising "
        "that it is the most effective attack.", "§6.1, Table 4",
        f"INSA's HR@5 at least {DRAMATIC:g}x the cooperative, significant, and above EXPA's and c-SEMA's on every ranker",
        ("table4",), insa_dramatic_and_most_effective),
    "EXPA and c-SEMA threats": Claim(
        "However, even with much less knowledge, both EXPA and c-SEMA pose serious threats.", "§6.1, Table 4",
        "each raises HR@5 significantly above cooperative on at least one ranker", ("table4",), expa_and_csema_threats),
    "INSA hurts availability most": Claim(
        "In Table 4, we see that INSA has a strong impact on availability than EXPA and c-SEMA.", "§6.1, Table 4",
        "INSA lowers the ordinary test items' HR@5 (baseline: the cooperative item in the base set) significantly and "
        "by more than EXPA and c-SEMA, on every ranker", ("table4",), insa_hurts_availability_most),
    "integrity over availability": Claim(
        "In general, we observe that AIP attacks are more damaging to integrity than to availability.", "§6.1, Table 4",
        "|ΔHR@5| of the cold items above the |Δ| of the ordinary test items' HR@5 in at least two thirds of the cells",
        ("table4",), integrity_over_availability),
    "shorter embeddings vulnerable": Claim(
        "We discovered that the embedding length is quite important, with evidence pointing towards systems using "
        "shorter embedding length being more vulnerable to AIP attacks.", "§6.2, Figure 5",
        "INSA's HR@5 at the shortest embedding above that at the longest, for VBPR and DVBPR",
        ("figure5",), shorter_embeddings_vulnerable),
    "larger epsilon improves": Claim(
        "We found that increasing ε from 4 to 32 leads to improved adversarial effects", "§6.2, Table 6",
        "for every swept attack that promotes, HR@5 at the largest ε at least that at the smallest",
        ("table6",), larger_eps_improves),
    "large epsilon not necessary": Claim(
        "but large perturbation size is not necessary in most cases for a successful attack.", "§6.2, Table 6",
        "in most promoting sweeps the attack already lifts HR@5 above cooperative at ε = 8", ("table6",), small_eps_suffices),
    "DVBPR most sensitive to epsilon": Claim(
        "Comparably, DVBPR is more sensitive to the magnitude of ε than the other two approaches.", "§6.2, Table 6",
        "for INSA and EXPA, DVBPR's HR@5 rises most from the smallest to the largest ε", ("table6",),
        dvbpr_most_eps_sensitive),
    "INSA beats TAaMR": Claim(
        "In this section, we confirm that our attack poses a greater threat than the classifier-targeted attack TAA-MR.",
        "§6.3, Tables 5 and 7", "INSA's ΔHR@5 above the stronger TAaMR variant's on every ranker",
        ("table5", "table7"), insa_beats_taamr),
    "TAaMR on par with c-SEMA": Claim(
        "Although it uses information comparable to that used by INSA and EXPA, the adversarial impact is on par with "
        "the c-SEMA attack (cf. Table 5).", "§6.3, Tables 5 and 7",
        "on every ranker the stronger TAaMR variant's ΔHR@5 is nearer c-SEMA's than INSA's", ("table5", "table7"),
        taamr_like_csema),
    "AMR vulnerable": Claim(
        "the HR@5 jumps noticeably when AIP attacks are applied, which means AMR is vulnerable to AIP attacks.",
        "§7.1, Table 4(b)", "on AMR, INSA's and EXPA's HR@5 significantly above cooperative", ("table4",), amr_vulnerable),
    "compression not a defense": Claim(
        "If the defenses presented effective protection against adversarial item images then we would expect the ▲ "
        "and ★ to appear consistently to the far left in the boxes. This is clearly not the case.", "§7.2, Table 8",
        "INSA and EXPA (transfer, against the undefended cooperative HR@5, as the paper's Table 8) are defeated at "
        "the mildest level (JPEG 90, 7 bits) in under half of the cells", ("table8",), compression_not_left),
}

# Sentences read but not made checkable, and why (shown in docs/reproduction.md).
NOT_CHECKED = {
    "We see in Table 8 that INSA is more difficult to defeat than EXPA": "the paper's own Table 8 marks EXPA as "
    "defeated in 2 of its 12 cells and INSA in 7, so no reading of the marks that the table supports makes INSA the "
    "harder one; the claim is left to the reader",
}


def check_claims(cells_of: Callable[[str], list[dict]]) -> list[dict]:
    """Each claim with ``holds`` (None: undecided, the tables lack its evidence), the evidence it was decided
    on, the paper's sentence and how it is read; ``cells_of(experiment)`` gives an experiment's cells."""
    out = []
    for name, claim in CLAIMS.items():
        holds, evidence = claim.check({e: cells_of(e) for e in claim.needs})
        out.append({"claim": name, "quote": claim.quote, "where": claim.where, "reading": claim.reading,
                    "holds": None if holds is None else bool(holds), "evidence": evidence,
                    "experiments": list(claim.needs)})
    return out


def claims_markdown(document: str) -> str:
    """The claims of a committed ``claims.json`` (a repository path) as docs/reproduction.md's table: verdict,
    claim, evidence (generated into the page, so the two cannot drift)."""
    import json

    from aipbench.paths import project_dir

    claims = json.loads((project_dir("leaderboard").parent / document).read_text())["claims"]
    verdict = {True: "holds", False: "**does not hold**", None: "undecided"}
    lines = ["| | claim (the paper's sentence: `aipbench reproduce claims` prints it) | evidence |", "|---|---|---|"]
    lines += [f"| {verdict[c['holds']]} | {c['claim']} | {c['evidence'].replace('|', chr(92) + '|')} |" for c in claims]
    return "\n".join(lines) + "\n"
