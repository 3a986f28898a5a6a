"""The paper's Figures 4 (t-SNE of DVBPR item embeddings around one attacked cold item) and 5 (HR@N
against the embedding length of VBPR and DVBPR), as cells and as PNG + SVG."""

from __future__ import annotations

import io

import numpy as np

from aipbench.reproduce.book import ResultsBook
from aipbench.reproduce.tables import cell

__all__ = ["FIGURES", "figure4", "figure5"]

FIGURE4_SAMPLE = 1000  # catalog items drawn for the map (the paper's "randomly selected 1000 items")
FIGURE4_VERSIONS = ("cooperative", "insa", "expa", "c-sema", "n-sema")  # ① … ⑤


def _sources(book: ResultsBook, names, targets):
    """The prepared protocol, the 100-item subset and an ImageSource per reference attack over it (the
    same run cache as Table 6's sweep: ε = 32 images are made once)."""
    from aipbench.attacks.grants import CONTEXT_ARTIFACTS
    from aipbench.harness.isolation.attack_run import DEFAULT_TIME_LIMIT
    from aipbench.harness.sources import ImageSource
    from aipbench.harness.submission import reference_submission
    from aipbench.hashing import folder_sha256

    prepared = book.prepared([*CONTEXT_ARTIFACTS, *targets])
    dataset = prepared.dataset
    subset = prepared.cold_subset(book.subset)
    where = {"items": subset, "subdir": "subset"} if book.subset < len(dataset.cold_items) else {}
    sources = {}
    for name in names:
        sub = reference_submission(name, kind="attack")
        sources[name] = ImageSource(sub, folder_sha256(sub.folder), prepared, epsilon=sub.threat.epsilon,
                                    time_limit=DEFAULT_TIME_LIMIT, log=book.log, isolation=book.isolation, **where)
    return prepared, subset, sources


def _save(fig) -> dict[str, bytes]:
    """PNG and SVG bytes of a matplotlib figure, without timestamps (same inputs → same files)."""
    import matplotlib.pyplot as plt

    files = {}
    for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, metadata=meta, dpi=120)
        files[ext] = buf.getvalue()
    plt.close(fig)
    return files


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "aipbench"  # deterministic element ids
    import matplotlib.pyplot as plt

    return plt


def figure5(book: ResultsBook, n: str) -> tuple[list[dict], dict[str, bytes]]:
    """HR@N of the cooperative and the INSA / EXPA cold items (the subset) for VBPR at
    embedding lengths 20, 50, 100 and DVBPR at 10, 30, 50, 100 (re-trained, all else equal)."""
    from aipbench.harness.sources import make_all
    from aipbench.rankers.lengths import length_artifact
    from aipbench.scoring.metrics import cold_hits, compare

    prepared, subset, sources = _sources(book, ("insa", "expa"), ("vbpr", "dvbpr"))
    coop = np.asarray(prepared.dataset.images[subset])
    alpha = prepared.protocol.metrics.significance_level
    cells = []
    rankers = [prepared.ranker(base, length=k) for base, lengths in lengths_of(book).items() for k in lengths]
    make_all([(src, ranker) for ranker in rankers for src in sources.values()])  # the grid, over ranks
    for base_name, lengths in lengths_of(book).items():
        for k in lengths:
            ranker = prepared.ranker(base_name, length=k)
            book.use_store(prepared.store, [length_artifact(prepared.protocol, base_name, k)])
            summary = prepared.summary(ranker)
            coop_hits = cold_hits(ranker, coop, summary, n=int(n))
            cells.append(cell(f"hr@{n}", float(coop_hits.mean()), ranker=base_name, embedding_length=k,
                              item_set="cooperative_cold"))
            for attack, src in sources.items():
                adv = cold_hits(ranker, src.images(ranker)[0], summary, n=int(n))
                side = compare(adv, coop_hits, alpha)
                cells.append(cell(f"hr@{n}", side["hr"], ranker=base_name, embedding_length=k, attack=attack,
                                  item_set="adversarial_cold", significant=side["test"]["significant"]))
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, base_name in zip(axes, lengths_of(book)):
        mine = [c for c in cells if c["ranker"] == base_name]
        for label, attack, style in (("cooperative", None, "o--"), ("INSA", "insa", "s-"), ("EXPA", "expa", "^-")):
            pts = sorted((c["embedding_length"], c["value"]) for c in mine if c["attack"] == attack)
            ax.plot([p[0] for p in pts], [max(p[1], 1e-5) for p in pts], style, label=label)
        ax.set_yscale("log")
        ax.set_title(base_name.upper())
        ax.set_xlabel("embedding length")
        ax.set_xticks(lengths_of(book)[base_name])
    axes[0].set_ylabel(f"HR@{n} ({len(subset)} cold items)")
    axes[1].legend(fontsize=8)
    if any(c["value"] <= 0 for c in cells):
        fig.text(0.01, 0.01, "HR@5 = 0 is drawn at 1e-5 (log scale)", fontsize=7, color="#666666")
    fig.tight_layout()
    return cells, {f"figure5.{ext}": data for ext, data in _save(fig).items()}


def _n_sema(hook: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """The n-SEMA example's edit (the cold product placed into the hook's photo), from its script."""
    from aipbench.paths import submissions_dir
    from aipbench.registry import import_from_file

    place = import_from_file(submissions_dir() / "examples" / "n-sema-images" / "make_images.py", "place",
                             module="aipbench_n_sema_example")
    return place(hook, cold).transpose(2, 0, 1)


def lengths_of(book: ResultsBook) -> dict[str, tuple[int, ...]]:
    """Figure 5's embedding lengths per ranker: the paper's, or the book's own choice."""
    import aipbench.rankers.registry  # noqa: F401 — every ranker registered
    from aipbench.rankers.lengths import embedding_lengths

    return dict(book.figure5_lengths or embedding_lengths())


def figure4(book: ResultsBook, n: str) -> tuple[list[dict], dict[str, bytes]]:
    """t-SNE (scikit-learn, seeded) of the DVBPR embeddings of 1,000 random catalog items, the first
    cold item of the subset (①) and its INSA ②, EXPA ③, c-SEMA ④ and n-SEMA ⑤ versions; cells: each
    version's t-SNE position and its distance to the hook item in the embedding space itself."""
    import torch
    from sklearn.manifold import TSNE

    from aipbench.harness.sources import make_all

    prepared, subset, sources = _sources(book, ("insa", "expa", "c-sema"), ("dvbpr",))
    dataset, store = prepared.dataset, prepared.store
    ranker = prepared.ranker("dvbpr")
    make_all([(src, ranker) for src in sources.values()])  # the grid, over ranks
    item, hook = int(subset[0]), int(dataset.hook_item)
    coop = np.asarray(dataset.images[item])
    images = {"cooperative": coop,
              **{a: src.images(ranker)[0][0] for a, src in sources.items()},
              "n-sema": _n_sema(np.asarray(dataset.images[hook]), coop)}
    with torch.no_grad():
        marked = ranker.encode(torch.from_numpy(np.stack([images[v] for v in FIGURE4_VERSIONS]))).cpu().numpy()
        catalog = ranker.catalog.cpu().numpy()
    rng = np.random.default_rng(store.protocol.data.seed)
    pool = np.setdiff1d(np.arange(dataset.n_items), np.append(dataset.cold_items, hook))
    sample = np.sort(rng.choice(pool, size=min(FIGURE4_SAMPLE, pool.size), replace=False))
    points = np.concatenate([catalog[sample], catalog[[hook]], marked]).astype(np.float64)
    xy = TSNE(n_components=2, init="pca", perplexity=30, random_state=store.protocol.data.seed).fit_transform(points)
    hook_vec = catalog[hook]
    cells = []
    for i, version in enumerate(FIGURE4_VERSIONS):
        attack = None if version == "cooperative" else version
        at = xy[len(sample) + 1 + i]
        cells.append(cell("distance_to_hook", float(np.linalg.norm(marked[i] - hook_vec)), ranker="dvbpr", attack=attack))
        cells.append(cell("tsne_x", float(at[0]), ranker="dvbpr", attack=attack))
        cells.append(cell("tsne_y", float(at[1]), ranker="dvbpr", attack=attack))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(xy[: len(sample), 0], xy[: len(sample), 1], s=4, c="#b8b8b8", label="catalog items")
    ax.scatter(*xy[len(sample)], s=60, marker="*", c="#d62728", label=f"hook item {hook}")
    for i, version in enumerate(FIGURE4_VERSIONS):
        x, y = xy[len(sample) + 1 + i]
        ax.scatter(x, y, s=30, c="#1f77b4")
        ax.annotate(f"{'①②③④⑤'[i]} {version}", (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_title(f"DVBPR item embeddings (t-SNE); cold item {item}")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return cells, {f"figure4.{ext}": data for ext, data in _save(fig).items()}


FIGURES = {"figure4": figure4, "figure5": figure5}
