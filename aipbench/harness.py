"""`aipbench evaluate`: run a submission against every ranker of a protocol, score it, write results."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.errors import InputError
from aipbench.protocol import DEFAULT_PROTOCOL
from aipbench.submission import Submission, load_submission

if TYPE_CHECKING:
    from aipbench.artifacts import ArtifactStore
    from aipbench.data.dataset import Dataset
    from aipbench.results import Results

__all__ = ["ImageSource", "evaluate", "provenance", "submission_sha256"]


def submission_sha256(folder: Path) -> str:
    """SHA-256 over the submission folder: every file's relative name and content, in sorted order
    (byte-code caches excluded). A changed attack gets a new hash, so stale images are never reused."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def provenance(proto, artifacts: dict[str, dict[str, str]], device: str) -> dict:
    """What every results document records about how it was measured: software, protocol, the artifacts
    it was computed from (name → file → SHA-256), device."""
    import platform

    import torch

    import aipbench

    return {
        "aipbench": {"version": aipbench.__version__, "git_commit": _git_commit()},
        "protocol": {"name": proto.name, "version": proto.protocol.version, "sha256": proto.sha256},
        "artifacts": dict(sorted(artifacts.items())),
        "environment": {"device": device, "torch": torch.__version__, "python": platform.python_version(),
                        "cpu": cpu_environment()},
    }


def cpu_environment() -> dict:
    """The CPU and the kernels torch runs on it (see ``aipbench.CPU_KERNEL_CAPS``)."""
    import os

    import torch

    from aipbench import CPU_KERNEL_CAPS

    model = None
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), None)
    except OSError:
        pass
    return {"model": model, "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "kernel_caps": {k: os.environ[k] for k in CPU_KERNEL_CAPS if k in os.environ}}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and len(out.stdout.strip()) == 40 else None


class ImageSource:
    """Where a ranker's adversarial images come from: the submission's image folder, or its attack run
    in a child process — kept on disk per attack target, so an interrupted evaluation resumes."""

    def __init__(self, sub: Submission, sub_hash: str, store: "ArtifactStore", dataset: "Dataset",
                 epsilon: int | None, device: str, time_limit: float, log: Callable[[str], None], *,
                 items: np.ndarray | None = None, wrap=None, subdir: str = "") -> None:
        self.sub, self.store, self.dataset, self.epsilon = sub, store, dataset, epsilon
        self.device, self.time_limit, self.log = device, time_limit, log
        self.items = dataset.cold_items if items is None else np.asarray(items)
        self.wrap = wrap  # adaptive runs: image models the context loads itself go behind the defense
        run = store.root / "runs" / f"{sub.submission.name}-{sub_hash[:12]}"
        if subdir:  # runs on a subset of items, or against a defended system
            run = run / subdir / f"items-{len(self.items)}"
        self.run_dir = run / f"eps-{epsilon or 'none'}"
        self._folder_images: np.ndarray | None = None

    def images(self, ranker) -> tuple[np.ndarray, str, float, bool]:
        """(validated images, attack target, attack seconds, reused) for ``ranker``."""
        from aipbench.attacks.grants import attack_target

        if self.sub.images is not None:
            if self._folder_images is None:
                from aipbench.image_checks import read_image_folder

                self._folder_images = read_image_folder(self.sub.images_dir, self.dataset.cold_items,
                                                        self.dataset.image_size)
                self._folder_images = self._check(self._folder_images[np.isin(self.dataset.cold_items, self.items)])
            return self._folder_images, "any", 0.0, False
        target = attack_target(self.sub.submission.knowledge, ranker)
        done, meta = self.run_dir / f"{target}.npy", self.run_dir / f"{target}.json"
        if done.is_file():
            self.log(f"{ranker.name}: reusing the finished attack images in {done}")
            seconds = json.loads(meta.read_text())["attack_s"] if meta.is_file() else 0.0
            return self._check(np.load(done, allow_pickle=False)), target, seconds, True
        from aipbench.attacks.grants import build_context
        from aipbench.attacks.sandbox import run_attack

        self.log(f"{ranker.name}: running {self.sub.entry} ({self.sub.submission.knowledge}, target {target})")
        context = build_context(self.store, self.dataset, ranker, self.sub.submission.knowledge,
                                epsilon=self.epsilon, device=self.device, items=self.items, wrap=self.wrap)
        start = time.perf_counter()
        images = run_attack(self.sub.entry_file, self.sub.entry_class, context, self.run_dir / f"{target}.work",
                            time_limit=self.time_limit)
        seconds = time.perf_counter() - start
        images = self._check(images)  # only valid images are kept for a resume
        meta.write_text(json.dumps({"attack_s": seconds}))  # how long the run took, reported on reuse too
        tmp = done.with_name(f".{done.name}.tmp.npy")
        np.save(tmp, images, allow_pickle=False)
        tmp.replace(done)
        return images, target, seconds, False

    def _check(self, images) -> np.ndarray:
        from aipbench.image_checks import check_adversarial

        cold = self.items
        source = str(self.sub.entry_file if self.sub.entry else self.sub.images_dir)
        return check_adversarial(images, np.asarray(self.dataset.images[cold]), cold, cold,
                                 epsilon=self.epsilon if self.sub.threat.norm == "linf" else None, source=source)


def _score_row(ranker, summary, coop: np.ndarray, adv: np.ndarray, protocol, *, epsilon, target, timing) -> tuple[dict, dict]:
    """One results row and its per-item columns."""
    import torch

    from aipbench.image_quality import image_quality
    from aipbench.scoring import cold_item_metrics, prediction_shift, significance

    ranks, level = tuple(protocol.metrics.hit_ranks), protocol.metrics.significance_level
    start = time.perf_counter()
    users = ranker.all_users()
    with torch.no_grad():
        before = cold_item_metrics(ranker.score_images(users, torch.from_numpy(coop)), summary)
        after = cold_item_metrics(ranker.score_images(users, torch.from_numpy(adv)), summary)
    shift, shift_set = prediction_shift(after.mean_score, before.mean_score)
    quality = image_quality(adv, coop)
    k = lambda d: {str(n): float(d[n].mean()) for n in ranks}  # noqa: E731
    first = ranks[0]
    coop_hr = float(before.hit_rate[first].mean())
    row = {
        "ranker": ranker.name,
        "epsilon": epsilon,
        "attack_target": target,
        "n_items": int(len(coop)),
        "n_users": int(users.numel()),
        "clean": {"test_auc": float(summary.test_auc.mean()), "test_hr": {str(n): summary.test_hit_rate(n) for n in ranks}},
        "cooperative": {"hr": k(before.hit_rate), "availability": k(before.availability),
                        "mean_score": float(before.mean_score.mean())},
        "adversarial": {"hr": k(after.hit_rate), "availability": k(after.availability),
                        "mean_score": float(after.mean_score.mean())},
        "delta": {"hr": {str(n): float((after.hit_rate[n] - before.hit_rate[n]).mean()) for n in ranks},
                  "availability": {str(n): float((after.availability[n] - before.availability[n]).mean()) for n in ranks}},
        "hr_lift": float(after.hit_rate[first].mean()) / coop_hr if coop_hr > 0 else None,
        "prediction_shift": {"value": shift_set, "magnitude": abs(shift_set),
                             "direction": "up" if shift_set > 0 else "down" if shift_set < 0 else "none",
                             "test": significance(after.mean_score, before.mean_score, level)},
        "hr_test": significance(after.hit_rate[first], before.hit_rate[first], level),
        "availability_test": significance(after.availability[first], before.availability[first], level),
        "image_quality": quality.summary(),
        "timing": {**timing, "scoring_s": time.perf_counter() - start},
    }
    items = {
        "ranker": ranker.name, "epsilon": epsilon,
        **{f"cooperative_hr@{n}": before.hit_rate[n] for n in ranks},
        **{f"adversarial_hr@{n}": after.hit_rate[n] for n in ranks},
        **{f"cooperative_availability@{n}": before.availability[n] for n in ranks},
        **{f"adversarial_availability@{n}": after.availability[n] for n in ranks},
        "cooperative_mean_score": before.mean_score, "adversarial_mean_score": after.mean_score,
        "prediction_shift": shift, "linf": quality.linf, "psnr": quality.psnr, "ssim": quality.ssim,
    }
    return row, items


def _budgets(sub: Submission, epsilons: Sequence[int] | None) -> list[int | None]:
    """The L∞ budgets to evaluate: the submission's own, or a sweep (bounded code submissions only)."""
    source = sub.folder / "submission.toml"
    if not epsilons:
        return [sub.threat.epsilon]
    if sub.threat.norm != "linf" or sub.entry is None:
        raise InputError(f"{source}: an epsilon sweep needs a code submission with norm = \"linf\"")
    bad = [e for e in epsilons if not 1 <= int(e) <= 255]
    if bad:
        raise InputError(f"{source}: epsilon {bad[0]} is out of range 1..255 (8-bit units)")
    return sorted({int(e) for e in epsilons})


def evaluate(
    submission: str | Path | Submission,
    *,
    protocol: str = DEFAULT_PROTOCOL,
    rankers: Sequence[str] | None = None,
    device: str = "cpu",
    out: str | Path | None = None,
    home: Path | None = None,
    time_limit: float | None = None,
    epsilons: Sequence[int] | None = None,
    items: int | None = None,
    log: Callable[[str], None] = print,
) -> "Results":
    """Evaluate ``submission`` on ``protocol`` (preparing missing artifacts first) against ``rankers``
    (default: all); with ``epsilons``, a bounded code submission is run and scored at each budget (the
    ε sweep: one row per ranker and ε). ``items`` limits the evaluation to the first cold items of the
    protocol's seeded sample (the paper's Table 6 used 100). Writes the results JSON and per-item CSV to
    ``out`` if given.
    A failed evaluation raises and writes nothing."""
    import pandas as pd

    from aipbench.attacks.grants import CONTEXT_ARTIFACTS
    from aipbench.attacks.sandbox import DEFAULT_TIME_LIMIT
    from aipbench.pipeline import load_base_sets, load_dataset, open_store
    from aipbench.protocol import load_protocol
    from aipbench.ranker_steps import RANKERS, load_ranker
    from aipbench.results import SCHEMA_VERSION, Results, seal, validate_results
    from aipbench.scoring import summarize_base_sets
    from aipbench.thumbnails import example_sheet

    began = time.perf_counter()
    sub = submission if isinstance(submission, Submission) else load_submission(submission)
    proto = load_protocol(protocol)
    names = list(rankers) if rankers else RANKERS.names()
    for name in names:
        RANKERS.get(name)  # unknown names fail before any work
    budgets = _budgets(sub, epsilons)
    sub_hash = submission_sha256(sub.folder)
    store = open_store(proto, home)
    store.prepare(["candidates", *CONTEXT_ARTIFACTS, *names], log=log)
    dataset, base = load_dataset(store), load_base_sets(store)
    if items is not None and items >= len(dataset.cold_items):
        items = None  # all of them: the full run's cache applies
    cold = dataset.cold_items if items is None else dataset.cold_items[: max(1, items)]
    coop = np.asarray(dataset.images[cold])
    subset = {} if items is None else {"items": cold, "subdir": "subset"}
    sources = [ImageSource(sub, sub_hash, store, dataset, eps, device, time_limit or DEFAULT_TIME_LIMIT, log, **subset)
               for eps in budgets]
    first = str(proto.metrics.hit_ranks[0])

    rows, per_item = [], []
    n_examples = min(4, len(coop))
    examples = {"cooperative": coop[:n_examples]}  # the leaderboard's thumbnails, one row per attack run
    for name in names:
        ranker = load_ranker(store, name, device)
        summary = summarize_base_sets(ranker, base, proto.metrics.hit_ranks)  # once per ranker, for every ε
        for source in sources:
            adv, target, attack_s, reused = source.images(ranker)
            row, cols = _score_row(ranker, summary, coop, adv, proto, epsilon=source.epsilon, target=target,
                                   timing={"attack_s": attack_s, "reused": reused})
            rows.append(row)
            per_item.append(pd.DataFrame({"item": cold, **cols}))
            label = target if source.epsilon is None or len(sources) == 1 else f"{target} eps={source.epsilon}"
            examples.setdefault(label, adv[:n_examples])
            log(f"{name}{'' if source.epsilon is None else f' eps={source.epsilon}'}: HR@{first} "
                f"{row['cooperative']['hr'][first]:.4f} -> {row['adversarial']['hr'][first]:.4f}")

    info = sub.submission
    document = {
        "schema_version": SCHEMA_VERSION,
        **provenance(proto, store.hashes(), device),
        "submission": {"name": info.name, "kind": info.kind, "knowledge": info.knowledge,
                       "threat": {"norm": sub.threat.norm, "epsilon": sub.threat.epsilon},
                       "authors": list(info.authors), "description": info.description, "link": info.link,
                       "source": "code" if sub.entry else "images", "sha256": sub_hash},
        "seed": proto.data.seed,
        "hit_ranks": list(proto.metrics.hit_ranks),
        "significance_level": proto.metrics.significance_level,
        "timing": {"total_s": time.perf_counter() - began},
        "results": rows,
        "examples": {"items": [int(i) for i in cold[:n_examples]], "rows": list(examples)},
    }
    document = seal(json.loads(json.dumps(document, allow_nan=False)))  # plain JSON types, then its own hash
    validate_results(document, out or "results")
    results = Results(document, pd.concat(per_item, ignore_index=True), example_sheet(list(examples.values())))
    if out is not None:
        results.write(out)
    return results
