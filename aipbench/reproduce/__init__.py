"""`aipbench reproduce`: the paper's Tables 3-8, Figures 4-5 and qualitative claims on a protocol,
computed from its results (made by `aipbench evaluate` when missing) and placed beside the paper's."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from aipbench.protocol import DEFAULT_PROTOCOL
from aipbench.registry import Registry
from aipbench.reproduce.book import SWEEP_EPSILONS

__all__ = ["EXPERIMENTS", "EXPERIMENT_NAMES", "reproduce"]

EXPERIMENTS = ("table3", "table4", "table5", "table6", "table7", "table8", "figure4", "figure5", "claims")
EXPERIMENT_NAMES: Registry[str] = Registry("experiment")  # name → table, figure or claims
for _name in EXPERIMENTS:
    EXPERIMENT_NAMES.register(_name)(_name.rstrip("0123456789"))


def reproduce(
    experiment: str,
    *,
    protocol: str = DEFAULT_PROTOCOL,
    results_dir: str | Path = "results",
    home: Path | None = None,
    device: str = "auto",
    subset: int = 100,
    defense_levels: Mapping[str, Sequence[int]] | None = None,
    figure5_lengths: Mapping[str, Sequence[int]] | None = None,
    sweep_epsilons: Sequence[int] | None = None,
    isolation: str = "sandbox",
    check_determinism: bool = True,
    log: Callable[[str], None] = print,
    on_done: Callable | None = None,
) -> list:
    """Reproductions (``aipbench.reproduce.output.Reproduction``) of ``experiment`` — one name of
    ``EXPERIMENTS`` or ``all`` — reusing current results under ``results_dir/<protocol>/``. Tables 6
    and 8 and the figures use the protocol's subset of ``subset`` cold items (the paper's: 100); ``defense_levels``
    (e.g. ``{"jpeg": [90, 10]}``) replaces a Table 8 family's levels and ``figure5_lengths`` (e.g.
    ``{"vbpr": [20, 100]}``) Figure 5's, ``sweep_epsilons`` Table 6's budgets (default 4, 8, 16, 32); ``isolation`` is passed to every evaluation it runs. ``on_done``
    is called with each reproduction as soon as it is complete (so a long ``all`` keeps what it finished)."""
    from aipbench.reproduce.book import ResultsBook
    from aipbench.reproduce.claims import CLAIMS, check_claims
    from aipbench.reproduce.figures import FIGURES
    from aipbench.reproduce.output import Reproduction, with_paper
    from aipbench.reproduce.tables import TABLES
    from aipbench.results.provenance import provenance

    from aipbench.harness import distributed
    from aipbench.pipeline.device import resolve_device

    world, device = distributed.join(device)  # under torchrun: this rank's device
    device = resolve_device(device)  # what the reproduction records, not "auto"
    if world.rank != 0:  # every rank reproduces; rank 0 speaks (and, through on_done, writes)
        log = lambda _line: None  # noqa: E731
    names = list(EXPERIMENTS) if experiment == "all" else [experiment]
    EXPERIMENT_NAMES.get(names[0])  # an unknown name: one line with the closest known
    book = ResultsBook(protocol, Path(results_dir), home=home, device=device, subset=subset,
                       defense_levels=defense_levels, figure5_lengths=figure5_lengths, isolation=isolation,
                       check_determinism=check_determinism, log=log,
                       **({"sweep_epsilons": sweep_epsilons} if sweep_epsilons else {}))
    distributed.check_same({"reproduce": names, "protocol": book.proto.sha256, "subset": subset,
                            "defense_levels": defense_levels, "figure5_lengths": figure5_lengths,
                            "sweep_epsilons": sweep_epsilons, "isolation": isolation, "device": device.split(":")[0],
                            "results_dir": str(results_dir), "shard_items": distributed.shard_items()})
    n = str(book.proto.metrics.hit_ranks[0])
    done: dict[str, Reproduction] = {}

    def run(name: str) -> Reproduction:
        if name in done:
            return done[name]
        book.reset()
        figures, claims = {}, []
        if name in TABLES:
            cells = TABLES[name](book, n)
        elif name in FIGURES:
            cells, figures = FIGURES[name](book, n)
        else:
            needs = sorted({e for claim in CLAIMS.values() for e in claim.needs})
            parts = {e: run(e) for e in needs}
            claims, cells = check_claims(lambda e: parts[e].cells), []
            book.sources = {f: h for p in parts.values() for f, h in p.sources.items()}
            for part in parts.values():
                book.use_artifacts(f"{part.experiment} sources", part.provenance["artifacts"])
        cells, dataset = with_paper(cells, name, book.proto.name)
        root = book.folder
        sources = {str(Path(f).resolve().relative_to(root.resolve())) if Path(f).resolve().is_relative_to(root.resolve())
                   else f: h for f, h in book.sources.items()}
        done[name] = Reproduction(name, book.proto.name, cells, sources, paper_dataset=dataset, claims=claims,
                                  figures=figures, provenance=provenance(book.proto, book.artifacts, device),
                                  note=_note(book, name))
        if on_done is not None:
            on_done(done[name])
        return done[name]

    return [run(name) for name in names]


def _note(book, experiment: str) -> str:
    """What a reader must know about how this reproduction's setup differs from the paper's."""
    seeded = book.proto.metrics.subset_rule == "seeded-random"
    note = f"subset: {book.subset} seeded-random cold items" if seeded else f"subset: first {book.subset} cold items"
    if experiment in ("table8", "claims"):  # the experiments that read the defense families
        for name, levels in book.defense_levels.items():
            note += f"; {name} levels: {', '.join(map(str, levels))}"
    if experiment in ("table6", "claims") and book.sweep_epsilons != SWEEP_EPSILONS:
        note += "; epsilon sweep: " + ", ".join(map(str, book.sweep_epsilons))
    if experiment in ("figure5", "claims") and book.figure5_lengths:
        note += "; figure 5 lengths: " + "; ".join(f"{r} {', '.join(map(str, k))}" for r, k in book.figure5_lengths.items())
    return note
