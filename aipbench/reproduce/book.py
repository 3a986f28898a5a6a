"""The results a reproduction reads: found under the results folder when they are current, else made
by ``aipbench evaluate`` (and written there), so nothing is measured twice."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from aipbench.errors import InputError
from aipbench.registry import suggestion

__all__ = ["PAPER_RANKERS", "ResultsBook", "SUBSET_ITEMS", "SWEEP_EPSILONS"]

PAPER_RANKERS = ("alexrank", "vbpr", "dvbpr")  # Tables 3 and 6-8; Tables 4-5 add AMR
SWEEP_EPSILONS = (4, 8, 16, 32)  # Table 6
SUBSET_ITEMS = 100  # the paper's subset of cold items for Tables 6 and 8 (the first of our seeded sample)


class ResultsBook:
    """Results documents of one protocol under ``results_dir/<protocol>/``. A document is reused when
    its protocol hash and its submission's hash match the current ones; otherwise (or when missing) the
    evaluation runs and its document replaces the file. ``sources`` lists every document read."""

    def __init__(self, protocol: str, results_dir: Path, *, home: Path | None = None, device: str = "auto",
                 subset: int = SUBSET_ITEMS, defense_levels: Mapping[str, Sequence[int]] | None = None,
                 figure5_lengths: Mapping[str, Sequence[int]] | None = None,
                 sweep_epsilons: Sequence[int] = SWEEP_EPSILONS, isolation: str = "sandbox",
                 check_determinism: bool = True, log: Callable[[str], None] = print) -> None:
        from aipbench.harness.submission import reference_submissions
        from aipbench.protocol import load_protocol

        self.proto = load_protocol(protocol)
        # the subset's size: the protocol's subset of ``subset`` cold items (metrics.subset_rule; all if fewer)
        self.subset = min(subset, self.proto.data.n_cold_items)
        # a defense family's levels when not its submission's own (fewer levels: a quicker Table 8)
        self.defense_levels = {name: tuple(int(v) for v in levels) for name, levels in (defense_levels or {}).items()}
        defenses = reference_submissions("defense")
        for name, levels in self.defense_levels.items():
            if name not in defenses:
                raise InputError(f"defense levels for {name!r}: no reference defense of that name"
                                 + suggestion(name, defenses))
            if not _is_family(name):
                raise InputError(f"defense levels for {name!r}: only a defense family (a transform with a parameter "
                                 f"and levels, e.g. jpeg) takes levels")
            if not levels or len(set(levels)) != len(levels):
                raise InputError(f"defense levels for {name!r}: give one or more distinct levels, not {list(levels)}")
        self.folder = Path(results_dir) / self.proto.name
        self.sweep_epsilons = tuple(sorted(int(e) for e in sweep_epsilons))  # Table 6's budgets
        # Figure 5's lengths per ranker when not the paper's (fewer: a quicker figure)
        self.figure5_lengths = {k: tuple(v) for k, v in figure5_lengths.items()} if figure5_lengths else None
        self.home, self.device, self.isolation, self.log = home, device, isolation, log
        self.check_determinism = check_determinism
        self._prepared = None
        self.sources: dict[str, str] = {}
        self.artifacts: dict[str, dict[str, str]] = {}

    def reset(self) -> None:
        """Forget the sources and artifacts read so far (each experiment lists only its own)."""
        self.sources, self.artifacts = {}, {}

    def use_artifacts(self, where: str, artifacts: dict[str, dict[str, str]]) -> None:
        """Record the artifacts (name → file → SHA-256) that ``where`` was computed from; one artifact
        with two different hashes among an experiment's sources is an error, not a footnote."""
        for name, files in artifacts.items():
            seen = self.artifacts.setdefault(name, dict(files))
            if seen != files:
                raise InputError(f"{where}: artifact {name!r} differs from the one the other sources of this "
                                 f"reproduction were made with; evaluate them on one artifact cache")

    def use_store(self, store, names: Sequence[str]) -> None:
        """Record the prepared ``names`` of ``store`` and everything they were built from."""
        hashes = store.hashes()
        self.use_artifacts(str(store.root), {n: hashes[n] for n in store.order(list(names))})

    def _current(self, path: Path, sub_hash: str) -> dict | None:
        """The current document at ``path``, or None: decided by rank 0 under torchrun (every rank then
        takes the same path, whatever files its node has)."""
        from aipbench.harness.distributed import from_rank0

        return from_rank0(lambda: self._current_here(path, sub_hash))

    def _current_here(self, path: Path, sub_hash: str) -> dict | None:
        from aipbench.results.document import load_results

        if not path.is_file():
            return None
        doc = load_results(path)
        if doc["protocol"]["sha256"] != self.proto.sha256:
            raise InputError(f"{path}: made on protocol {doc['protocol']['sha256'][:12]}, not "
                             f"{self.proto.name} ({self.proto.sha256[:12]})")
        if doc["submission"]["sha256"] != sub_hash:
            self.log(f"{path}: made by an older version of the submission; evaluating again")
            return None
        return doc

    def _record(self, path: Path, doc: dict) -> dict:
        self.sources[str(path)] = doc["sha256"]
        self.use_artifacts(str(path), doc["artifacts"])
        return doc

    def attack(self, name: str, *, rankers: Sequence[str] | None = None, epsilons: Sequence[int] | None = None,
               items: int | None = None) -> dict:
        """The attack's document: ``<name>.json`` (every cold item, its own ε), or for an ε sweep on a
        subset ``reproduce/runs/<name>-eps<…>-items<N>.json``."""
        from aipbench.harness.evaluate import evaluate
        from aipbench.harness.submission import reference_submission
        from aipbench.hashing import folder_sha256

        sub = reference_submission(name, kind="attack")
        if epsilons or items:
            tag = f"-eps{'-'.join(map(str, epsilons))}" if epsilons else ""
            path = self.folder / "reproduce" / "runs" / f"{name}{tag}{f'-items{items}' if items else ''}.json"
        else:
            path = self.folder / f"{name}.json"
        doc = self._current(path, folder_sha256(sub.folder))
        if doc is not None and (not rankers or set(rankers) <= {r["ranker"] for r in doc["results"]}):
            return self._record(path, doc)
        self.log(f"evaluating {name} on {self.proto.name} -> {path}")
        results = evaluate(sub, protocol=self.proto, rankers=rankers, device=self.device, out=path, home=self.home,
                           epsilons=epsilons, items=items, isolation=self.isolation,
                           check_determinism=self.check_determinism, log=self.log)
        return self._record(path, results.document)

    def defense(self, name: str, *, rankers: Sequence[str] = PAPER_RANKERS) -> dict:
        """The defense's document ``<name>.json`` on the subset at the book's levels for it (the
        submission's own unless overridden); evaluated if missing, or made on other items or levels."""
        from aipbench.defenses.variants import evaluated_levels
        from aipbench.harness.evaluate import evaluate
        from aipbench.harness.submission import reference_submission
        from aipbench.hashing import folder_sha256

        sub = reference_submission(name, kind="defense")
        path = self.folder / f"{name}.json"
        levels = self.defense_levels.get(name)
        doc = self._current(path, folder_sha256(sub.folder))
        if (doc is not None and len(doc["items"]) == self.subset and set(rankers) <= {r["ranker"] for r in doc["results"]}
                and list(dict.fromkeys(r["level"] for r in doc["results"])) == evaluated_levels(sub.defense, levels)):
            return self._record(path, doc)
        self.log(f"evaluating the defense {name} on {self.proto.name} -> {path}")
        results = evaluate(sub, protocol=self.proto, rankers=rankers, items=self.subset, levels=levels, out=path,
                           device=self.device, home=self.home, isolation=self.isolation, log=self.log)
        return self._record(path, results.document)

    def prepared(self, needs: Sequence[str]):
        """The protocol prepared (once) with ``needs`` built too (for figures, which read rankers and attack
        images directly); records those artifacts and what they were built from."""
        from aipbench.pipeline.prepared import Prepared

        if self._prepared is None:
            self._prepared = Prepared(self.proto, home=self.home, device=self.device, needs=needs, log=self.log)
        else:
            self._prepared.store.prepare(list(needs), log=self.log)
        self.use_store(self._prepared.store, ["candidates", *needs])
        return self._prepared


def _is_family(name: str) -> bool:
    """Whether the reference defense ``name`` is evaluated level by level (a parameter and its levels)."""
    from aipbench.harness.submission import reference_submission

    return bool(reference_submission(name, kind="defense").defense.parameter)
