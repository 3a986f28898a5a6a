"""The leaderboard's charts, drawn with matplotlib as static inline SVG (no script; the same bytes for the same
numbers): budget curves with interval bands and baselines, per-item distributions, a lift heatmap, defense curves
beside the undefended line. Each plotted series is a ``<g id="series-…">`` and each baseline a
``<g id="baseline-…">``, so a page (and its tests) can count what a chart shows."""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Sequence

import matplotlib
import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure

__all__ = ["budget_chart", "defense_chart", "distribution_chart", "lift_heatmap", "scatter_chart", "spread_chart", "to_svg"]

STYLE = {"svg.hashsalt": "aipbench", "svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
         "axes.spines.right": False, "figure.dpi": 72}
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def _key(value):
    """A hashable stand-in for a chart's arguments (arrays by content)."""
    if isinstance(value, np.ndarray):
        return ("array", value.shape, str(value.dtype), hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest())
    if isinstance(value, dict):
        return tuple((k, _key(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_key(v) for v in value)
    return value


def _memo(chart):
    """Charts are pure functions of their numbers: one drawn for the same arguments again (a site built twice
    in one process, the same sweep on two pages) is the SVG drawn the first time."""
    drawn: dict = {}

    @functools.wraps(chart)
    def cached(*args, **kwargs):
        key = (_key(args), _key(kwargs))
        if key not in drawn:
            if len(drawn) >= 1024:  # bounded: a long-lived process forgets the oldest
                drawn.pop(next(iter(drawn)))
            drawn[key] = chart(*args, **kwargs)
        return drawn[key]

    return cached


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def to_svg(fig: Figure, title: str, *, margins: dict | None = None) -> Markup:
    """``fig`` as an inline ``<svg>`` (no XML prologue, no date), titled for screen readers. ``margins``: the
    axes' place in the figure (``subplots_adjust``), which costs one drawing less than fitting it to its
    contents (the default, for charts whose labels vary in length)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        if margins:
            fig.subplots_adjust(**margins)
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Title": title},
                    bbox_inches=None if margins else "tight")
    text = buffer.getvalue()
    return Markup(text[text.index("<svg"):])


def _figure(width: float = 5.2, height: float = 3.0) -> tuple[Figure, object]:
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height))
        ax = fig.add_subplot()
    return fig, ax


@_memo
def budget_chart(series: dict[str, Sequence[tuple[float, float, Sequence[float] | None]]], *, title: str, y_label: str,
                 baselines: dict[str, float] | None = None, controls: Sequence[str] = ()) -> Markup:
    """HR against the budget ε: one line per series of (ε, value, [low, high] or None) with its interval as a
    band; ``baselines`` (e.g. cooperative, noise) as dashed horizontal lines; ``controls`` drawn dotted."""
    fig, ax = _figure()
    with matplotlib.rc_context(STYLE):
        for k, (name, points) in enumerate(sorted(series.items())):
            pts = sorted(points, key=lambda p: p[0])
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            colour = COLOURS[k % len(COLOURS)]
            line, = ax.plot(xs, ys, marker="o", ms=3, lw=1.4, color=colour, ls=":" if name in controls else "-",
                            label=f"{name} (control)" if name in controls else name)
            line.set_gid(f"series-{_slug(name)}")
            bands = [(x, p[2]) for x, p in zip(xs, pts) if p[2] is not None]
            if bands:
                band = ax.fill_between([x for x, _ in bands], [b[0] for _, b in bands], [b[1] for _, b in bands],
                                       color=colour, alpha=0.15, lw=0)
                band.set_gid(f"band-{_slug(name)}")
        for k, (name, value) in enumerate(sorted((baselines or {}).items())):
            line = ax.axhline(value, color="#555", lw=1, ls=("--", "-.", ":")[k % 3], label=name)
            line.set_gid(f"baseline-{_slug(name)}")
        xs = sorted({p[0] for pts in series.values() for p in pts})
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("ε (8-bit units)")
        ax.set_ylabel(y_label)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color="#ddd", lw=0.6)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title(title, fontsize=9)
    return to_svg(fig, title, margins={"left": 0.14, "right": 0.7, "bottom": 0.16, "top": 0.9})


@_memo
def distribution_chart(panels: dict[str, dict[str, np.ndarray]], *, title: str, x_label: str) -> Markup:
    """Per key (a ranker; one colour each), each sample as its empirical distribution — the share of items at or
    below each value; the first sample dashed — on a symmetric log axis, so that a sample with most of its mass at
    0 (cooperative cold items) still shows its tail."""
    fig, ax = _figure(6.6, 3.0)
    with matplotlib.rc_context(STYLE):
        top = 0.0
        for k, (panel, samples) in enumerate(panels.items()):
            for j, (name, values) in enumerate(samples.items()):
                v = np.asarray(values, dtype=np.float64)
                top = max(top, float(v.max()) if v.size else 0.0)
                share = np.linspace(0, 1, 101)[1:]  # the distribution at 100 quantiles: a small path
                line, = ax.step(np.quantile(v, share) if v.size else [], share if v.size else [], where="post", lw=1.3,
                                color=COLOURS[k % len(COLOURS)], ls="--" if j == 0 else "-",
                                label=f"{panel} {name} (mean {v.mean():.4f})" if v.size else f"{panel} {name}")
                line.set_gid(f"series-{_slug(panel)}-{_slug(name)}")
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlim(0, max(top, 1e-3) * 1.05)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(x_label)
        ax.set_ylabel("share of items ≤ x")
        ax.grid(color="#eee", lw=0.6)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title(title, fontsize=9)
    return to_svg(fig, title, margins={"left": 0.09, "right": 0.6, "bottom": 0.17, "top": 0.9})


@_memo
def lift_heatmap(lifts: dict[tuple[str, str], float | None], *, attacks: Sequence[str], rankers: Sequence[str],
                 title: str, fmt: str = ".1f", log: bool = True) -> Markup:
    """Attack × ranker: the lift of HR (adversarial over cooperative) on a log colour scale, each cell labelled
    (``log=False``: any value, e.g. a registered row metric, on a linear scale, formatted with ``fmt``)."""
    fig, ax = _figure(1.2 + 1.0 * len(rankers), 0.8 + 0.32 * len(attacks))
    grid = np.full((len(attacks), len(rankers)), np.nan)
    for (a, r), value in lifts.items():
        if value is not None and a in attacks and r in rankers:
            grid[attacks.index(a), rankers.index(r)] = value
    with matplotlib.rc_context(STYLE):
        shown = np.log10(np.clip(grid, 0.1, None)) if log else grid
        finite = np.isfinite(shown).any()
        low = -1.0 if log else (float(np.nanmin(shown)) if finite else 0.0)
        high = max(1.0, float(np.nanmax(shown)) if finite else 1.0) if log else (float(np.nanmax(shown)) if finite else 1.0)
        image = ax.imshow(shown, cmap="viridis", aspect="auto", vmin=low, vmax=max(high, low + 1e-12))
        image.set_gid("heatmap")
        for i, a in enumerate(attacks):
            for j, r in enumerate(rankers):
                text = "–" if np.isnan(grid[i, j]) else format(grid[i, j], fmt) + ("×" if log else "")
                dark = np.isfinite(shown[i, j]) and shown[i, j] < low + 0.6 * (high - low)
                cell = ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
                cell.set_gid(f"cell-{_slug(a)}-{_slug(r)}")
        ax.set_xticks(range(len(rankers)), rankers)
        ax.set_yticks(range(len(attacks)), attacks)
        ax.spines[:].set_visible(False)
        ax.set_title(title, fontsize=9)
    return to_svg(fig, title)


@_memo
def defense_chart(levels: Sequence, worst: dict[str, Sequence[float]], *, undefended: dict[str, float],
                  clean: dict[str, Sequence[float]] | None, parameter: str, title: str, y_label: str) -> Markup:
    """Per ranker, the worst-case adversarial HR at each level of a defense beside the undefended system's
    (dashed, same colour), and the clean HR it keeps (thin, right axis) — whether the defense helps, and what it
    costs."""
    fig, ax = _figure(6.6, 3.0)
    positions = list(range(len(levels)))
    with matplotlib.rc_context(STYLE):
        for k, ranker in enumerate(sorted(worst)):
            colour = COLOURS[k % len(COLOURS)]
            line, = ax.plot(positions, worst[ranker], marker="o", ms=3, lw=1.4, color=colour, label=f"{ranker}: defended")
            line.set_gid(f"series-{_slug(ranker)}")
            base = ax.axhline(undefended[ranker], color=colour, lw=1, ls="--", label=f"{ranker}: undefended")
            base.set_gid(f"baseline-{_slug(ranker)}")
        if clean:
            right = ax.twinx()
            for k, ranker in enumerate(sorted(clean)):
                cost, = right.plot(positions, clean[ranker], color=COLOURS[k % len(COLOURS)], lw=0.8, ls=":",
                                   label=f"{ranker}: clean test HR")
                cost.set_gid(f"clean-{_slug(ranker)}")
            right.set_ylabel("clean test HR (dotted)", labelpad=2)
            right.set_ylim(bottom=0)
        ax.set_xticks(positions, [str(v) for v in levels])
        ax.set_xlabel(parameter)
        ax.set_ylabel(y_label)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.2 if clean else 1.0, 1.0))
        ax.set_title(title, fontsize=9)
    return to_svg(fig, title, margins={"left": 0.1, "right": 0.56, "bottom": 0.16, "top": 0.9})


@_memo
def scatter_chart(groups: dict[str, Sequence[tuple[float, float, str]]], *, title: str, x_label: str, y_label: str,
                  label_points: bool = False) -> Markup:
    """One marker series per group of (x, y, label) points (e.g. each attack's rankers: image quality against
    adversarial HR; each model: clean quality against its worst case), labelled where asked."""
    fig, ax = _figure()
    with matplotlib.rc_context(STYLE):
        for k, (name, points) in enumerate(sorted(groups.items())):
            if not points:
                continue
            xs, ys, labels = zip(*points)
            dots = ax.scatter(xs, ys, s=22, color=COLOURS[k % len(COLOURS)], label=name, zorder=3)
            dots.set_gid(f"series-{_slug(name)}")
            for x, y, text in points if label_points else ():
                ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_ylim(bottom=0)
        ax.grid(color="#eee", lw=0.6)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title(title, fontsize=9)
    return to_svg(fig, title, margins={"left": 0.14, "right": 0.7, "bottom": 0.16, "top": 0.9})


@_memo
def spread_chart(spread: dict[str, Sequence[float]], *, title: str, y_label: str) -> Markup:
    """Per ranker, the value of each replica (another training seed) as a dot and their range as a bar."""
    fig, ax = _figure(4.2, 2.8)
    names = sorted(spread)
    with matplotlib.rc_context(STYLE):
        for k, name in enumerate(names):
            values = list(spread[name])
            colour = COLOURS[k % len(COLOURS)]
            bar = ax.vlines(k, min(values), max(values), color=colour, lw=6, alpha=0.3)
            bar.set_gid(f"range-{_slug(name)}")
            dots = ax.scatter([k] * len(values), values, color=colour, s=18, zorder=3)
            dots.set_gid(f"series-{_slug(name)}")
        ax.set_xticks(range(len(names)), names)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylabel(y_label)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color="#eee", lw=0.6)
        ax.set_title(title, fontsize=9)
    return to_svg(fig, title, margins={"left": 0.16, "right": 0.97, "bottom": 0.12, "top": 0.88})
