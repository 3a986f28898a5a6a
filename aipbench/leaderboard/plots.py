"""Small inline SVG plots for the leaderboard pages (no scripts, no external files)."""

from __future__ import annotations

import numpy as np
from markupsafe import Markup, escape

__all__ = ["histogram_svg", "lines_svg"]

W, H, PAD = 360, 200, 36
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _frame(title: str, x_label: str, y_label: str, y_max: float, body: list[str], x_ticks: list[tuple[float, str]]) -> Markup:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 8}" y2="{H - PAD}" stroke="#333"/>',
             f'<line x1="{PAD}" y1="8" x2="{PAD}" y2="{H - PAD}" stroke="#333"/>',
             f'<text x="{PAD - 4}" y="14" font-size="10" text-anchor="end">{escape(_fmt(y_max))}</text>',
             f'<text x="{PAD - 4}" y="{H - PAD}" font-size="10" text-anchor="end">0</text>',
             f'<text x="{(W + PAD) / 2}" y="{H - 6}" font-size="11" text-anchor="middle">{escape(x_label)}</text>',
             f'<text x="10" y="{(H - PAD) / 2}" font-size="11" text-anchor="middle" '
             f'transform="rotate(-90 10 {(H - PAD) / 2})">{escape(y_label)}</text>']
    for x, label in x_ticks:
        parts.append(f'<text x="{x:.1f}" y="{H - PAD + 13}" font-size="10" text-anchor="middle">{escape(label)}</text>')
    return Markup("".join(parts + body + ["</svg>"]))


def lines_svg(series: dict[str, list[tuple[float, float]]], *, title: str, x_label: str, y_label: str) -> Markup:
    """One polyline per series of (x, y) points, with a legend; x positions spaced evenly by rank."""
    xs = sorted({x for pts in series.values() for x, _ in pts})
    y_max = max([y for pts in series.values() for _, y in pts] + [1e-9])
    pos = {x: PAD + 10 + i * (W - PAD - 30) / max(1, len(xs) - 1) for i, x in enumerate(xs)}
    y = lambda v: H - PAD - v / y_max * (H - PAD - 16)  # noqa: E731
    body = []
    for k, (name, pts) in enumerate(sorted(series.items())):
        colour = COLOURS[k % len(COLOURS)]
        coords = " ".join(f"{pos[a]:.1f},{y(b):.1f}" for a, b in sorted(pts))
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        body += [f'<circle cx="{pos[a]:.1f}" cy="{y(b):.1f}" r="3" fill="{colour}"><title>{escape(name)}: {escape(_fmt(b))}</title></circle>'
                 for a, b in sorted(pts)]
        body.append(f'<text x="{PAD + 8}" y="{20 + 12 * k}" font-size="10" fill="{colour}">{escape(name)}</text>')
    return _frame(title, x_label, y_label, y_max, body, [(pos[x], _fmt(x)) for x in xs])


def histogram_svg(samples: dict[str, np.ndarray], *, title: str, x_label: str, bins: int = 20) -> Markup:
    """Overlaid histograms (fraction of items per bin) of each named sample over a shared range."""
    values = np.concatenate([np.asarray(v, float) for v in samples.values()])
    top = float(values.max()) if values.size and values.max() > 0 else 1.0
    edges = np.linspace(0, top, bins + 1)
    counts = {k: np.histogram(np.asarray(v, float), edges)[0] / max(1, len(v)) for k, v in samples.items()}
    y_max = max(float(c.max()) for c in counts.values()) or 1.0
    width = (W - PAD - 12) / bins
    body = []
    for k, (name, c) in enumerate(counts.items()):
        colour = COLOURS[k % len(COLOURS)]
        for i, frac in enumerate(c):
            if frac > 0:
                h = frac / y_max * (H - PAD - 16)
                body.append(f'<rect x="{PAD + 2 + i * width:.1f}" y="{H - PAD - h:.1f}" width="{width - 1:.1f}" '
                            f'height="{h:.1f}" fill="{colour}" fill-opacity="0.5"><title>{escape(name)}: '
                            f'{escape(_fmt(frac))} of items in [{escape(_fmt(edges[i]))}, {escape(_fmt(edges[i + 1]))})</title></rect>')
        body.append(f'<text x="{W - 12}" y="{20 + 12 * k}" font-size="10" text-anchor="end" fill="{colour}">{escape(name)}</text>')
    return _frame(title, x_label, "fraction of items", y_max, body, [(PAD + 2, "0"), (W - 12, _fmt(top))])
