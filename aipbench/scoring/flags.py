"""Reliability flags: sanity checks that travel with each result (as AutoAttack prints, but recorded). Each
rule takes the numbers a check measured and returns a flag — ``{"flag", "message", "numbers"}`` — when
they raise it, else None. A document lists the checks it ran (``checks``), so a missing flag means
"checked and fine", never "not looked at"."""

from __future__ import annotations

import numpy as np

__all__ = ["ATTACK_CHECKS", "DEFENSE_CHECKS", "FLAGS", "adaptive_weaker", "clean_cost", "detector_false_alarms",
           "masked_gradients", "noise_floor", "nondeterministic", "objective_not_improved", "randomized_transform",
           "unused_budget"]

FLAGS = {
    "unused-budget": "the perturbation uses under half its L∞ budget on most items (a weak or stalled optimizer)",
    "nondeterministic": "a second run of the attack on the same items gave other images",
    "objective-not-improved": "neither the cold items' mean score over users (Eq. 8) nor their HR@N rose: the attack "
                              "moved nothing the benchmark measures upward",
    "noise-floor": "the protocol's noise control at the same budget is itself significant on this ranker",
    "adaptive-weaker-than-transfer": "the adaptive attack does significantly worse than the transferred images "
                                     "(a broken adaptive attack, or gradient masking)",
    "masked-gradients": "gradients through the defended pipeline are zero or non-finite for most items",
    "randomized-transform": "the transform gives other outputs on a second pass; adaptive attacks ran with EOT",
    "clean-cost": "the defense costs more clean quality (test HR@N or AUC) than the protocol tolerates",
    "detector-false-alarms": "the detector flags far more of the catalog's clean test items than its operating point",
}
ATTACK_CHECKS = ("unused-budget", "nondeterministic", "objective-not-improved", "noise-floor")
DEFENSE_CHECKS = ("adaptive-weaker-than-transfer", "masked-gradients", "randomized-transform", "clean-cost",
                  "detector-false-alarms")
MOST = 0.5  # "most items": more than half
FAR_ABOVE = 3.0  # a detector's false alarms "far above" its operating point: more than three times it
CLEAN_HR_TOLERANCE = 0.10  # default: defended clean test HR@N may drop by up to 10 % of the undefended
CLEAN_AUC_TOLERANCE = 0.01  # default: and the test AUC by up to 0.01


def _flag(name: str, message: str, **numbers) -> dict:
    return {"flag": name, "message": message, "numbers": {k: _num(v) for k, v in numbers.items()}}


def _num(v):
    return None if v is None else int(v) if isinstance(v, (int, np.integer)) else float(v)


def unused_budget(linf: np.ndarray, epsilon: int | None) -> dict | None:
    if epsilon is None or len(linf) == 0:
        return None
    under = float((np.asarray(linf) < epsilon / 2).mean())
    if under <= MOST:
        return None
    return _flag("unused-budget", f"{under:.0%} of the items use under half of ε = {epsilon}",
                 share_under_half=under, median_linf=float(np.median(linf)), epsilon=epsilon)


def objective_not_improved(shift_set: float, hr_cooperative: float, hr_adversarial: float) -> dict | None:
    """Raised when neither measure of promotion rose. Either one alone is not the attack's objective: INSA's
    exponential objective (VBPR, AMR) lifts the items into the lists of the users who already like them
    while the mean over all users may fall, and a mean-score attack may rise without entering a top N."""
    if shift_set > 0 or hr_adversarial > hr_cooperative:
        return None
    return _flag("objective-not-improved", f"mean score over users moved by {shift_set:+.4g} and HR@N by "
                 f"{hr_adversarial - hr_cooperative:+.4g} (neither up)", prediction_shift=shift_set,
                 hr_cooperative=hr_cooperative, hr_adversarial=hr_adversarial)


def noise_floor(noise: dict, cooperative_hr: float) -> dict | None:
    """``noise``: the noise control's comparison on this ranker (``hr``, ``delta``, ``test``)."""
    if not noise["test"]["significant"]:
        return None
    return _flag("noise-floor", f"noise at the same ε moves HR from {cooperative_hr:.4g} to {noise['hr']:.4g} "
                 f"(p = {noise['test']['p']:.2g})", noise_hr=noise["hr"], cooperative_hr=cooperative_hr,
                 p=noise["test"]["p"])


def nondeterministic(first: np.ndarray, second: np.ndarray) -> dict | None:
    a, b = np.asarray(first).astype(np.int16), np.asarray(second).astype(np.int16)
    differing = int((a != b).reshape(len(a), -1).any(axis=1).sum()) if a.shape == b.shape else len(a)
    if differing == 0:
        return None
    biggest = int(np.abs(a - b).max()) if a.shape == b.shape else None
    return _flag("nondeterministic", f"two runs on the same {len(a)} items differ on {differing}",
                 items=len(a), differing=differing, max_abs_difference=biggest)


def adaptive_weaker(attack: str, transfer: np.ndarray, adaptive: np.ndarray, *, level: float) -> dict | None:
    from aipbench.scoring.significance import significance

    t, a = float(np.mean(transfer)), float(np.mean(adaptive))
    test = significance(transfer, adaptive, level)
    if not (a < t and test["significant"]):
        return None
    return _flag("adaptive-weaker-than-transfer", f"{attack}: adaptive HR {a:.4g} < transfer HR {t:.4g} "
                 f"(p = {test['p']:.2g})", transfer_hr=t, adaptive_hr=a, p=test["p"])


def masked_gradients(norms: np.ndarray) -> dict | None:
    norms = np.asarray(norms, dtype=np.float64)
    bad_zero, bad_inf = float((norms == 0).mean()), float((~np.isfinite(norms)).mean())
    if bad_zero + bad_inf <= MOST:
        return None
    return _flag("masked-gradients", f"zero gradient on {bad_zero:.0%}, non-finite on {bad_inf:.0%} of the items",
                 share_zero=bad_zero, share_non_finite=bad_inf, items=len(norms))


def randomized_transform(differing: int, images: int, samples: int) -> dict | None:
    if differing == 0:
        return None
    return _flag("randomized-transform", f"two passes differ on {differing} of {images} images; adaptive attacks ran "
                 f"with EOT over {samples} draws", differing=differing, images=images, eot_samples=samples)


def clean_cost(undefended: dict, defended: dict, hr_tolerance: float | None = None) -> dict | None:
    """``undefended``/``defended``: ``{"test_auc", "test_hr"}`` of the clean system."""
    tol = CLEAN_HR_TOLERANCE if hr_tolerance is None else hr_tolerance
    hr_drop = (undefended["test_hr"] - defended["test_hr"]) / undefended["test_hr"] if undefended["test_hr"] > 0 else 0.0
    auc_drop = undefended["test_auc"] - defended["test_auc"]
    if hr_drop <= tol and auc_drop <= CLEAN_AUC_TOLERANCE:
        return None
    # the message names what moved the wrong way first; the committed wording of a fall in both stays as it was
    if hr_drop < 0:  # raised by the AUC alone
        message = (f"clean test AUC falls by {auc_drop:.3f} (tolerance {CLEAN_AUC_TOLERANCE}) while HR rises by "
                   f"{-hr_drop:.0%}")
    elif auc_drop < 0:  # raised by the HR alone
        message = f"clean test HR falls by {hr_drop:.0%} (tolerance {tol:.0%}) while AUC rises by {-auc_drop:.3f}"
    else:
        message = (f"clean test HR falls by {hr_drop:.0%} (tolerance {tol:.0%}), AUC by {auc_drop:.3f} "
                   f"(tolerance {CLEAN_AUC_TOLERANCE})")
    return _flag("clean-cost", message, hr_drop=hr_drop, auc_drop=auc_drop, hr_tolerance=tol,
                 auc_tolerance=CLEAN_AUC_TOLERANCE)


def detector_false_alarms(rate: float, operating: float, items: int) -> dict | None:
    if rate <= FAR_ABOVE * operating:
        return None
    return _flag("detector-false-alarms", f"flags {rate:.1%} of {items} clean catalog test items (operating point "
                 f"{operating:.0%})", false_alarm_rate=rate, operating_point=operating, items=items)
