"""Where a ranker's adversarial images come from: a submission's image folder, or its attack run — made shard
by shard and kept in the run cache per attack target and shard, so an interrupted evaluation resumes where it
stopped, and the shards can be made by several ranks (``aipbench.harness.distributed``)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.pipeline.prepared import Prepared
    from aipbench.rankers.base import Ranker

__all__ = ["ImageSource", "make_all"]


class ImageSource:
    """The adversarial images of ``sub`` (whose folder hashes to ``sub_hash``) at budget ``epsilon``, for
    the cold ``items`` (default: all), made in ``prepared``'s run cache under ``subdir``; ``wrap`` puts image
    models an attack's context loads itself behind a defense (adaptive runs), whose submission folder is then
    among ``reads`` (folders the sandboxed child may read). ``isolation`` says where attack code runs
    (``aipbench.harness.isolation``)."""

    def __init__(self, sub: "Submission", sub_hash: str, prepared: "Prepared", *, epsilon: int | None,
                 time_limit: float, log: Callable[[str], None], items: np.ndarray | None = None, wrap=None,
                 subdir: str = "", isolation: str = "sandbox", reads: tuple[Path, ...] = ()) -> None:
        self.sub, self.prepared, self.epsilon, self.reads = sub, prepared, epsilon, tuple(reads)
        self.time_limit, self.log, self.isolation = time_limit, log, isolation
        dataset = prepared.dataset
        self.items = dataset.cold_items if items is None else np.asarray(items)
        self.wrap = wrap
        run = prepared.store.root / "runs" / f"{sub.submission.name}-{sub_hash[:12]}"
        if subdir:  # runs on a subset of items, or against a defended system
            # keyed by the items themselves: two subsets of one size are two runs
            key = hashlib.sha256(np.ascontiguousarray(self.items, dtype=np.int64).tobytes()).hexdigest()[:12]
            run = run / subdir / f"items-{len(self.items)}-{key}"
        self.run_dir = run / f"eps-{epsilon or 'none'}"
        self._folder_images: np.ndarray | None = None
        self._made: dict[str, tuple[np.ndarray, str, float, bool]] = {}  # attack target -> images() of it
        self.queries: dict[str, int] = {}  # attack target -> images a black-box attack had ranked (all shards)

    def images(self, ranker: "Ranker") -> tuple[np.ndarray, str, float, bool]:
        """(validated images, attack target, attack seconds, reused) for ``ranker``: a folder's images, or the
        attack run's, made shard by shard (``make_all``) unless an earlier ``make_all`` made them; the seconds
        are the sum over the shards, reused means every shard was."""
        from aipbench.attacks.grants import attack_target

        dataset = self.prepared.dataset
        if self.sub.images is not None:
            if self._folder_images is None:
                from aipbench.harness.image_checks import read_image_folder

                folder = read_image_folder(self.sub.images_dir, dataset.cold_items, dataset.image_size)
                self._folder_images = self._check(folder[np.isin(dataset.cold_items, self.items)], self.items)
            return self._folder_images, "any", 0.0, False
        target = attack_target(self.sub.submission.knowledge, ranker)
        if target not in self._made:
            make_all([(self, ranker)])
        return self._made[target]

    def _finished(self, done: Path, meta: Path, items: np.ndarray) -> tuple[np.ndarray, float, int | None] | None:
        """The finished images of an earlier run, if their file still has the SHA-256 recorded beside it
        (else None, with a line saying why: they are made again)."""
        if not done.is_file():
            return None
        try:
            record = json.loads(meta.read_text())
            data = done.read_bytes()
            if hashlib.sha256(data).hexdigest() != record["sha256"]:
                raise ValueError("its SHA-256 differs from the one recorded when it was made")
            return (self._check(np.load(io.BytesIO(data), allow_pickle=False), items), float(record["attack_s"]),
                    record.get("queries"))
        except (OSError, ValueError, KeyError, TypeError) as err:
            self._say(f"{done}: not reused ({str(err)[:120] or type(err).__name__}); attacking again")
            done.unlink(missing_ok=True)
            return None

    def _shard(self, ranker: "Ranker", target: str, part: slice) -> tuple[np.ndarray, float, bool, int | None]:
        """(validated images, attack seconds, reused, oracle queries of a black-box attack) of the cold items
        ``items[part]``."""
        items = self.items[part]
        stem = f"{target}.items-{part.start}-{part.stop}"
        done, meta = self.run_dir / f"{stem}.npy", self.run_dir / f"{stem}.json"
        finished = self._finished(done, meta, items)
        if finished is not None:
            self._say(f"{ranker.name}: reusing the finished attack images in {done}")
            return finished[0], finished[1], True, finished[2]
        from aipbench.attacks.grants import build_context
        from aipbench.harness.isolation.attack_run import run_attack

        self._say(f"{ranker.name}: running {self.sub.entry} ({self.sub.submission.knowledge}, target {target}, "
                 f"cold items {part.start}..{part.stop - 1})")
        context = build_context(self.prepared, ranker, self.sub.submission.knowledge, epsilon=self.epsilon,
                                items=items, wrap=self.wrap)
        start = time.perf_counter()
        # a submitted ranker's folder too where the context holds its model: its class is rebuilt in the sandbox
        from aipbench.attacks.context import GRANTS

        holds = {"ranker", "image_model"} & GRANTS[self.sub.submission.knowledge]
        reads = (*self.reads, *(getattr(ranker, "code_folders", ()) if holds else ()))
        from aipbench.progress import LiveBar

        bar = LiveBar(f"{self.sub.submission.name} → {target}")  # one live bar per run, from context.progress
        try:
            images = run_attack(self.sub.entry_file, self.sub.entry_class, context,
                                workdir=self.run_dir / f"{stem}.work", time_limit=self.time_limit,
                                isolation=self.isolation, precision=self.prepared.precision, reads=reads, progress=bar)
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        images = self._check(images, items)  # only valid images are kept for a resume
        buffer = io.BytesIO()
        np.save(buffer, images, allow_pickle=False)
        data = buffer.getvalue()
        # the images' SHA-256 and how long the run took, checked and reported when they are reused
        oracle = context._granted.get("oracle")  # a black-box attack: how many images it had ranked
        queries = None if oracle is None else int(oracle.used)
        meta.write_text(json.dumps({"attack_s": seconds, "sha256": hashlib.sha256(data).hexdigest(), "queries": queries}))
        tmp = done.with_name(f".{done.name}.tmp.npy")
        tmp.write_bytes(data)
        tmp.replace(done)
        return images, seconds, False, queries

    def _say(self, line: str) -> None:
        """Log a line about this rank's shards: rank 0 through the evaluation's log, another rank (whose log is
        quiet under torchrun) on its stderr, marked with its rank."""
        from aipbench.harness import distributed

        rank = distributed.world().rank
        if rank == 0:
            self.log(line)
        else:
            print(f"rank {rank}: {line}", file=sys.stderr, flush=True)

    def _check(self, images, cold: np.ndarray) -> np.ndarray:
        from aipbench.harness.image_checks import check_adversarial

        source = str(self.sub.entry_file if self.sub.entry else self.sub.images_dir)
        return check_adversarial(images, self.prepared.cooperative_images(cold), cold_items=cold,
                                 returned_items=cold, epsilon=self.epsilon if self.sub.threat.norm == "linf" else None, source=source)


def make_all(pairs: "Sequence[tuple[ImageSource, Ranker]]") -> None:
    """Make the attack images of every (source, ranker) pair not made yet as one grid of shards: the shards of
    all the pairs' attack runs (a run shared by several pairs once) in order, shard g made by rank g mod W
    (one process: all of them), kept in the run cache as each finishes, then exchanged, so every rank holds
    every run's images. An evaluation hands over its whole grid (rankers × budgets, or a defense's rankers ×
    levels × attacks × modes), so that W ranks have W shards to make at once."""
    from aipbench.attacks.grants import attack_target
    from aipbench.harness import distributed

    jobs: dict[tuple, tuple] = {}  # (run folder in the cache, target, first item) -> what makes that shard
    runs: list[tuple[ImageSource, str, list[tuple]]] = []
    for source, ranker in pairs:
        if source.sub.images is not None:
            continue
        target = attack_target(source.sub.submission.knowledge, ranker)
        if target in source._made or any(s is source and t == target for s, t, _ in runs):
            continue
        where = str(source.run_dir.relative_to(source.prepared.store.root))  # the same on every node
        keys = [(where, target, part.start) for part in distributed.shards(len(source.items))]
        for key, part in zip(keys, distributed.shards(len(source.items))):
            jobs.setdefault(key, (source, ranker, target, part))
        runs.append((source, target, keys))
    world, mine, error = distributed.world(), {}, None
    try:
        for g, (key, (source, ranker, target, part)) in enumerate(jobs.items()):
            if g % world.size == world.rank:
                with _locked(source.run_dir / f".{target}.{part.start}.lock"):  # another process on it: wait, reuse
                    mine[key] = source._shard(ranker, target, part)
    except Exception as err:  # noqa: BLE001 — exchanged, so every rank stops with the same line
        error = err
    made = distributed.exchange(mine, error)
    for source, target, keys in runs:
        parts = [made[k] for k in keys]
        source._made[target] = (np.concatenate([p[0] for p in parts]), target, float(sum(p[1] for p in parts)),
                                all(p[2] for p in parts))
        if any(p[3] is not None for p in parts):
            source.queries[target] = int(sum(p[3] or 0 for p in parts))


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
