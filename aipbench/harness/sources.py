"""Where a ranker's adversarial images come from: a submission's image folder, or its attack run — kept in
the run cache per attack target, so an interrupted evaluation resumes where it stopped."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.pipeline.prepared import Prepared
    from aipbench.rankers.base import Ranker

__all__ = ["ImageSource"]


class ImageSource:
    """The adversarial images of ``sub`` (whose folder hashes to ``sub_hash``) at budget ``epsilon``, for
    the cold ``items`` (default: all), made in ``prepared``'s run cache under ``subdir``; ``wrap`` puts image
    models an attack's context loads itself behind a defense (adaptive runs). ``isolation`` says where
    attack code runs (``aipbench.harness.sandbox``)."""

    def __init__(self, sub: "Submission", sub_hash: str, prepared: "Prepared", *, epsilon: int | None,
                 time_limit: float, log: Callable[[str], None], items: np.ndarray | None = None, wrap=None,
                 subdir: str = "", isolation: str = "sandbox") -> None:
        self.sub, self.prepared, self.epsilon = sub, prepared, epsilon
        self.time_limit, self.log, self.isolation = time_limit, log, isolation
        dataset = prepared.dataset
        self.items = dataset.cold_items if items is None else np.asarray(items)
        self.wrap = wrap
        run = prepared.store.root / "runs" / f"{sub.submission.name}-{sub_hash[:12]}"
        if subdir:  # runs on a subset of items, or against a defended system
            run = run / subdir / f"items-{len(self.items)}"
        self.run_dir = run / f"eps-{epsilon or 'none'}"
        self._folder_images: np.ndarray | None = None

    def images(self, ranker: "Ranker") -> tuple[np.ndarray, str, float, bool]:
        """(validated images, attack target, attack seconds, reused) for ``ranker``."""
        from aipbench.attacks.grants import attack_target

        dataset = self.prepared.dataset
        if self.sub.images is not None:
            if self._folder_images is None:
                from aipbench.harness.image_checks import read_image_folder

                folder = read_image_folder(self.sub.images_dir, dataset.cold_items, dataset.image_size)
                self._folder_images = self._check(folder[np.isin(dataset.cold_items, self.items)])
            return self._folder_images, "any", 0.0, False
        target = attack_target(self.sub.submission.knowledge, ranker)
        with _locked(self.run_dir / f".{target}.lock"):  # another process making the same images: wait, reuse
            return self._made(ranker, target)

    def _finished(self, done: Path, meta: Path) -> tuple[np.ndarray, float] | None:
        """The finished images of an earlier run, if their file still has the SHA-256 recorded beside it
        (else None, with a line saying why: they are made again)."""
        if not done.is_file():
            return None
        try:
            record = json.loads(meta.read_text())
            data = done.read_bytes()
            if hashlib.sha256(data).hexdigest() != record["sha256"]:
                raise ValueError("its SHA-256 differs from the one recorded when it was made")
            return np.load(io.BytesIO(data), allow_pickle=False), float(record["attack_s"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            self.log(f"{done}: not reused ({str(err)[:120] or type(err).__name__}); attacking again")
            done.unlink(missing_ok=True)
            return None

    def _made(self, ranker: "Ranker", target: str) -> tuple[np.ndarray, str, float, bool]:
        done, meta = self.run_dir / f"{target}.npy", self.run_dir / f"{target}.json"
        finished = self._finished(done, meta)
        if finished is not None:
            self.log(f"{ranker.name}: reusing the finished attack images in {done}")
            return self._check(finished[0]), target, finished[1], True
        from aipbench.attacks.grants import build_context
        from aipbench.harness.sandbox import run_attack

        self.log(f"{ranker.name}: running {self.sub.entry} ({self.sub.submission.knowledge}, target {target})")
        context = build_context(self.prepared, ranker, self.sub.submission.knowledge, epsilon=self.epsilon,
                                items=self.items, wrap=self.wrap)
        start = time.perf_counter()
        images = run_attack(self.sub.entry_file, self.sub.entry_class, context, workdir=self.run_dir / f"{target}.work",
                            time_limit=self.time_limit, isolation=self.isolation, precision=self.prepared.precision)
        seconds = time.perf_counter() - start
        images = self._check(images)  # only valid images are kept for a resume
        buffer = io.BytesIO()
        np.save(buffer, images, allow_pickle=False)
        data = buffer.getvalue()
        # the images' SHA-256 and how long the run took, checked and reported when they are reused
        meta.write_text(json.dumps({"attack_s": seconds, "sha256": hashlib.sha256(data).hexdigest()}))
        tmp = done.with_name(f".{done.name}.tmp.npy")
        tmp.write_bytes(data)
        tmp.replace(done)
        return images, target, seconds, False

    def _check(self, images) -> np.ndarray:
        from aipbench.harness.image_checks import check_adversarial

        cold = self.items
        source = str(self.sub.entry_file if self.sub.entry else self.sub.images_dir)
        return check_adversarial(images, self.prepared.cooperative_images(cold), cold_items=cold,
                                 returned_items=cold, epsilon=self.epsilon if self.sub.threat.norm == "linf" else None, source=source)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created), released on exit, also when the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
