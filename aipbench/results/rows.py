"""An attack's results row as a typed object: assembled here from what the harness scored, checked against the
results schema (a row's fields are the schema's row properties), and turned into the document's JSON. A metric
registered in ``aipbench.scoring.row_metrics`` is computed with every row and carried under ``metrics``, where the
terminal table and the leaderboard find it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from aipbench.scoring.row_metrics import RowInputs, row_metric_values

if TYPE_CHECKING:
    import numpy as np

    from aipbench.scoring.intervals import Bootstrap

__all__ = ["AttackRow", "assemble_row", "row_fields"]


@dataclasses.dataclass
class AttackRow:
    """One evaluated (ranker, ε) pair: every field a property of the schema's row (``row_fields``). The fields
    after ``timing`` are added as the evaluation learns them (the oracle, the noise floor, the replicas)."""

    ranker: str
    epsilon: int | None
    attack_target: str
    n_items: int
    n_users: int
    clean: dict
    cooperative: dict
    adversarial: dict
    delta: dict
    hr_lift: float | None
    prediction_shift: dict
    hr_test: dict
    availability_test: dict
    image_quality: dict
    intervals: dict
    flags: list
    timing: dict
    metrics: dict[str, float | None] = dataclasses.field(default_factory=dict)
    oracle: dict | None = None
    noise_floor: dict | None = None
    replicas: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as the document holds it: its fields in order, the optional ones only when set (so a row
        without registered metrics is the same JSON as before rows were typed)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for optional in ("metrics", "oracle", "noise_floor", "replicas"):
            if not out[optional]:
                del out[optional]
        return out


def row_fields() -> set[str]:
    """The names a row may hold: the schema's row properties must be exactly these (tests/test_rows.py)."""
    return {f.name for f in dataclasses.fields(AttackRow)}


def assemble_row(inputs: RowInputs, *, scored: dict, boot: "Bootstrap", level: float) -> tuple[AttackRow, dict]:
    """The row of ``inputs`` (per-item metrics before and after, image quality, hit ranks) and its per-item
    columns. ``scored``: what the harness knows of the run — ranker, epsilon, attack_target, n_users, clean,
    shift (per item) and shift_set (Eq. 8), timing. Every mean carries its bootstrap interval."""
    from aipbench.scoring.flags import objective_not_improved, unused_budget
    from aipbench.scoring.intervals import attack_intervals
    from aipbench.scoring.significance import significance

    before, after, quality, ranks = inputs.before, inputs.after, inputs.quality, inputs.ranks
    first, shift_set = ranks[0], scored["shift_set"]
    k = lambda d: {str(n): float(d[n].mean()) for n in ranks}  # noqa: E731
    coop_hr, adv_hr = float(before.hit_rate[first].mean()), float(after.hit_rate[first].mean())
    row = AttackRow(
        ranker=scored["ranker"], epsilon=scored["epsilon"], attack_target=scored["attack_target"],
        n_items=int(len(before.mean_score)), n_users=scored["n_users"], clean=scored["clean"],
        cooperative={"hr": k(before.hit_rate), "availability": k(before.availability),
                     "mean_score": float(before.mean_score.mean())},
        adversarial={"hr": k(after.hit_rate), "availability": k(after.availability),
                     "mean_score": float(after.mean_score.mean())},
        delta={"hr": {str(n): float((after.hit_rate[n] - before.hit_rate[n]).mean()) for n in ranks},
               "availability": {str(n): float((after.availability[n] - before.availability[n]).mean()) for n in ranks}},
        hr_lift=adv_hr / coop_hr if coop_hr > 0 else None,
        prediction_shift={"value": shift_set, "magnitude": abs(shift_set),
                          "direction": "up" if shift_set > 0 else "down" if shift_set < 0 else "none",
                          "test": significance(after.mean_score, before.mean_score, level)},
        hr_test=significance(after.hit_rate[first], before.hit_rate[first], level),
        availability_test=significance(after.availability[first], before.availability[first], level),
        image_quality=quality.summary(),
        intervals=attack_intervals(boot, before=before, after=after, shift=scored["shift"], ranks=ranks),
        flags=[f for f in (unused_budget(quality.linf, scored["epsilon"]),
                           objective_not_improved(shift_set, coop_hr, adv_hr)) if f],
        timing=scored["timing"],
        metrics=row_metric_values(inputs),
    )
    return row, _per_item(inputs, scored)


def _per_item(inputs: RowInputs, scored: dict) -> dict[str, "np.ndarray | str | int | None"]:
    """The row's per-item columns (the .items.csv the leaderboard re-derives the row from)."""
    before, after, quality, ranks = inputs.before, inputs.after, inputs.quality, inputs.ranks
    return {
        "ranker": scored["ranker"], "epsilon": scored["epsilon"],
        **{f"cooperative_hr@{n}": before.hit_rate[n] for n in ranks},
        **{f"adversarial_hr@{n}": after.hit_rate[n] for n in ranks},
        **{f"cooperative_availability@{n}": before.availability[n] for n in ranks},
        **{f"adversarial_availability@{n}": after.availability[n] for n in ranks},
        "cooperative_mean_score": before.mean_score, "adversarial_mean_score": after.mean_score,
        "prediction_shift": scored["shift"], "linf": quality.linf, "psnr": quality.psnr, "ssim": quality.ssim,
    }
