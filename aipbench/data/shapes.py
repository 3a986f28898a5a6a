"""The garments and patterns of the synthetic catalog as signed-distance fields on coordinate grids."""

from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["SHAPES", "Shape", "fill", "line", "pattern_coverage"]

Tensor = torch.Tensor


# -- signed-distance primitives on coordinate grids (object frame: x right, y down, object within ±0.86) -----


def _poly(x: Tensor, y: Tensor, pts: list[tuple[float, float]]) -> Tensor:
    """Signed distance (exact inside, a lower bound outside) to a convex polygon given in either order."""
    n = len(pts)
    crosses = []
    for i in range(n):
        (ax, ay), (bx, by), (cx, cy) = pts[i], pts[(i + 1) % n], pts[(i + 2) % n]
        crosses.append((bx - ax) * (cy - by) - (by - ay) * (cx - bx))
    if not (all(c > 0 for c in crosses) or all(c < 0 for c in crosses)):
        raise ValueError(f"polygon is not convex: {pts}")
    sign = 1.0 if crosses[0] > 0 else -1.0
    d = None
    for i in range(n):
        (ax, ay), (bx, by) = pts[i], pts[(i + 1) % n]
        ex, ey = bx - ax, by - ay
        length = math.hypot(ex, ey)
        a, b = sign * ey / length, -sign * ex / length  # outward unit normal
        e = a * x + b * y - (a * ax + b * ay)
        d = e if d is None else torch.maximum(d, e)
    return d


def _mirror(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(-px, py) for px, py in pts]


def _box(x: Tensor, y: Tensor, x0: float, y0: float, x1: float, y1: float) -> Tensor:
    return _poly(x, y, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def _ellipse(x: Tensor, y: Tensor, cx: float, cy: float, rx: float, ry: float) -> Tensor:
    """Approximate signed distance to an ellipse (first-order, good near the boundary)."""
    u, v = (x - cx) / rx, (y - cy) / ry
    k0 = torch.sqrt(u * u + v * v)
    k1 = torch.sqrt((u / rx) ** 2 + (v / ry) ** 2).clamp(min=1e-6)
    return k0 * (k0 - 1.0) / k1


def _segment(x: Tensor, y: Tensor, a: tuple[float, float], b: tuple[float, float], r: float) -> Tensor:
    """A capsule: distance to the segment a–b minus r."""
    bax, bay = b[0] - a[0], b[1] - a[1]
    pax, pay = x - a[0], y - a[1]
    h = ((pax * bax + pay * bay) / (bax * bax + bay * bay)).clamp(0.0, 1.0)
    return torch.sqrt((pax - bax * h) ** 2 + (pay - bay * h) ** 2) - r


def _union(*ds: Tensor) -> Tensor:
    out = ds[0]
    for d in ds[1:]:
        out = torch.minimum(out, d)
    return out


def _smooth_union(a: Tensor, b: Tensor, k: float) -> Tensor:
    h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0)
    return b + (a - b) * h - k * h * (1 - h)


def _cut(a: Tensor, b: Tensor) -> Tensor:
    return torch.maximum(a, -b)


def fill(d: Tensor, px: float) -> Tensor:
    """Anti-aliased coverage of the region ``d < 0``."""
    return (0.5 - d / px).clamp(0.0, 1.0)


def line(d: Tensor, px: float, width: float = 1.0) -> Tensor:
    """Anti-aliased stroke along the zero set of ``d`` (width in pixels)."""
    return (0.5 + 0.5 * width - d.abs() / px).clamp(0.0, 1.0)


# -- the categories: each returns (body sdf, detail darkness in [0,1], light trim coverage in [0,1]) ---------
Shape = tuple[Tensor, Tensor, Tensor]


def _shirt(x: Tensor, y: Tensor, px: float) -> Shape:
    torso = _poly(x, y, [(-0.16, -0.74), (0.16, -0.74), (0.42, -0.62), (0.40, 0.72), (-0.40, 0.72), (-0.42, -0.62)])
    sleeve = [(0.26, -0.70), (0.58, -0.54), (0.80, 0.48), (0.60, 0.54)]
    body = _union(torso, _poly(x, y, sleeve), _poly(x, y, _mirror(sleeve)))
    collar_l = _poly(x, y, [(-0.17, -0.76), (0.0, -0.56), (-0.22, -0.52)])
    collar_r = _poly(x, y, _mirror([(-0.17, -0.76), (0.0, -0.56), (-0.22, -0.52)]))
    placket = _segment(x, y, (0.0, -0.56), (0.0, 0.72), 0.0)
    buttons = _union(*[_ellipse(x, y, 0.0, by, 0.03, 0.03) for by in (-0.40, -0.14, 0.12, 0.38)])
    cuffs = _union(*[_segment(x, y, (s * 0.60, 0.42), (s * 0.79, 0.38), 0.0) for s in (-1, 1)])
    detail = torch.maximum(line(collar_l, px), line(collar_r, px))
    detail = torch.maximum(detail, 0.7 * line(placket, px))
    detail = torch.maximum(detail, torch.maximum(fill(buttons, px), 0.8 * line(cuffs, px)))
    return body, detail, torch.zeros_like(x)


def _tshirt(x: Tensor, y: Tensor, px: float) -> Shape:
    torso = _poly(x, y, [(-0.17, -0.70), (0.17, -0.70), (0.44, -0.58), (0.40, 0.76), (-0.40, 0.76), (-0.44, -0.58)])
    sleeve = [(0.28, -0.66), (0.82, -0.30), (0.66, -0.06), (0.40, -0.20)]
    neck = _ellipse(x, y, 0.0, -0.73, 0.19, 0.12)
    body = _cut(_union(torso, _poly(x, y, sleeve), _poly(x, y, _mirror(sleeve))), neck)
    rib = _ellipse(x, y, 0.0, -0.73, 0.25, 0.18)
    hems = _union(*[_segment(x, y, (s * 0.70, -0.20), (s * 0.55, -0.29), 0.0) for s in (-1, 1)])
    detail = torch.maximum(0.8 * line(rib, px), 0.7 * line(hems, px))
    return body, detail, torch.zeros_like(x)


def _jeans(x: Tensor, y: Tensor, px: float) -> Shape:
    waist = _box(x, y, -0.40, -0.82, 0.40, -0.68)
    hips = _poly(x, y, [(-0.40, -0.68), (0.40, -0.68), (0.45, -0.18), (-0.45, -0.18)])
    leg = [(-0.45, -0.30), (0.0, -0.30), (-0.08, 0.86), (-0.38, 0.86)]
    body = _union(waist, hips, _poly(x, y, leg), _poly(x, y, _mirror(leg)))
    band = _segment(x, y, (-0.40, -0.68), (0.40, -0.68), 0.0)
    fly = _union(_segment(x, y, (0.06, -0.68), (0.06, -0.36), 0.0), _segment(x, y, (0.06, -0.36), (0.0, -0.28), 0.0))
    pockets = _union(*[torch.maximum(_ellipse(x, y, s * 0.40, -0.68, 0.22, 0.20), -(y + 0.68)) for s in (-1, 1)])
    seams = _union(*[_segment(x, y, (s * 0.24, -0.10), (s * 0.23, 0.86), 0.0) for s in (-1, 1)])
    loops = _union(*[_segment(x, y, (bx, -0.82), (bx, -0.66), 0.0) for bx in (-0.30, 0.30)])
    detail = torch.maximum(line(band, px), line(fly, px))
    detail = torch.maximum(detail, torch.maximum(0.8 * line(pockets, px), 0.35 * line(seams, px)))
    return body, torch.maximum(detail, 0.8 * line(loops, px)), torch.zeros_like(x)


def _shoes(x: Tensor, y: Tensor, px: float) -> Shape:
    y = y - 0.10
    sole = _box(x, y, -0.84, 0.30, 0.84, 0.46) - 0.02
    toe = torch.maximum(_ellipse(x, y, 0.34, 0.32, 0.50, 0.26), y - 0.38)
    heel = _poly(x, y, [(-0.82, -0.24), (-0.36, -0.32), (0.22, 0.10), (0.22, 0.38), (-0.82, 0.38)])
    upper = _cut(_smooth_union(toe, heel, 0.12), _ellipse(x, y, -0.58, -0.31, 0.24, 0.08))
    body = _union(sole, upper)
    tongue = _segment(x, y, (-0.36, -0.30), (0.16, 0.10), 0.0)
    laces = _union(*[_segment(x, y, (lx - 0.05, ly - 0.065), (lx + 0.05, ly + 0.065), 0.0)
                     for lx, ly in ((-0.22, -0.18), (-0.08, -0.07), (0.06, 0.04))])
    stripe = _segment(x, y, (-0.44, 0.24), (-0.02, 0.06), 0.0)
    toecap = torch.maximum(torch.maximum(_ellipse(x, y, 0.58, 0.36, 0.30, 0.18), -(x - 0.40)), y - 0.29)
    detail = torch.maximum(line(laces, px, 1.5), 0.7 * line(tongue, px))
    detail = torch.maximum(detail, torch.maximum(0.7 * line(stripe, px, 2.0), 0.6 * line(toecap, px)))
    trim = fill(sole, px) * (y > 0.27).to(x.dtype)
    return body, detail, trim


def _coat(x: Tensor, y: Tensor, px: float) -> Shape:
    torso = _poly(x, y, [(-0.17, -0.80), (0.17, -0.80), (0.46, -0.68), (0.52, 0.86), (-0.52, 0.86), (-0.46, -0.68)])
    sleeve = [(0.30, -0.76), (0.60, -0.62), (0.72, 0.44), (0.52, 0.46)]
    body = _union(torso, _poly(x, y, sleeve), _poly(x, y, _mirror(sleeve)))
    lapel = [(-0.17, -0.80), (-0.30, -0.46), (0.0, -0.12)]
    lapels = _union(_poly(x, y, lapel), _poly(x, y, _mirror(lapel)))
    front = _segment(x, y, (0.0, -0.12), (0.0, 0.86), 0.0)
    buttons = _union(*[_ellipse(x, y, bx, by, 0.035, 0.035) for bx in (-0.10, 0.10) for by in (0.02, 0.24, 0.46)])
    pockets = _union(*[_segment(x, y, (s * 0.20, 0.52), (s * 0.40, 0.50), 0.0) for s in (-1, 1)])
    belt = torch.maximum(_box(x, y, -0.50, 0.10, 0.50, 0.16), torso)
    detail = torch.maximum(line(lapels, px), 0.7 * line(front, px))
    detail = torch.maximum(detail, torch.maximum(fill(buttons, px), 0.8 * line(pockets, px, 1.5)))
    return body, torch.maximum(detail, 0.35 * fill(belt, px)), torch.zeros_like(x)


def _dress(x: Tensor, y: Tensor, px: float) -> Shape:
    straps = _union(*[_segment(x, y, (s * 0.13, -0.84), (s * 0.17, -0.56), 0.028) for s in (-1, 1)])
    bodice = _poly(x, y, [(-0.23, -0.60), (0.23, -0.60), (0.17, -0.12), (-0.17, -0.12)])
    skirt = _poly(x, y, [(-0.17, -0.14), (0.17, -0.14), (0.60, 0.84), (-0.60, 0.84)])
    neck = _ellipse(x, y, 0.0, -0.62, 0.12, 0.08)
    body = _union(straps, _cut(bodice, neck), skirt)
    waist = torch.maximum(_box(x, y, -0.25, -0.16, 0.25, -0.09), _union(bodice, skirt))
    folds = _union(*[_segment(x, y, (fx * 0.3, -0.08), (fx, 0.82), 0.0) for fx in (-0.34, -0.12, 0.12, 0.34)])
    detail = torch.maximum(0.55 * fill(waist, px), 0.3 * line(folds, px, 1.5))
    return body, detail, torch.zeros_like(x)


def _bag(x: Tensor, y: Tensor, px: float) -> Shape:
    main = _poly(x, y, [(-0.50, -0.14), (0.50, -0.14), (0.64, 0.72), (-0.64, 0.72)])
    handle = _cut(_ellipse(x, y, 0.0, -0.14, 0.36, 0.56), _ellipse(x, y, 0.0, -0.14, 0.28, 0.48))
    handle = torch.maximum(handle, y + 0.12)
    body = _union(main, handle)
    flap = _poly(x, y, [(-0.51, -0.14), (0.51, -0.14), (0.55, 0.16), (0.0, 0.32), (-0.55, 0.16)])
    clasp = _box(x, y, -0.06, 0.24, 0.06, 0.36)
    detail = torch.maximum(line(flap, px), 0.6 * line(_segment(x, y, (-0.58, 0.60), (0.58, 0.60), 0.0), px))
    return body, detail, fill(clasp, px)


def _hat(x: Tensor, y: Tensor, px: float) -> Shape:
    y = y - 0.06
    brim = _ellipse(x, y, 0.0, 0.28, 0.86, 0.15)
    crown = _union(_poly(x, y, [(-0.46, 0.28), (0.46, 0.28), (0.38, -0.38), (-0.38, -0.38)]),
                   _ellipse(x, y, 0.0, -0.38, 0.38, 0.14))
    body = _union(brim, crown)
    crease = _segment(x, y, (0.0, -0.46), (0.0, -0.30), 0.0)
    band = torch.maximum(_box(x, y, -0.5, 0.04, 0.5, 0.22), crown)
    rim = torch.maximum(_ellipse(x, y, 0.0, 0.28, 0.86, 0.15), -(y - 0.26))
    detail = torch.maximum(0.7 * fill(band, px), 0.6 * line(rim, px))
    detail = torch.maximum(detail, 0.6 * line(crease, px, 1.5))
    return body, detail, torch.zeros_like(x)


SHAPES: tuple[Callable[[Tensor, Tensor, float], Shape], ...] = (
    _shirt, _tshirt, _jeans, _shoes, _coat, _dress, _bag, _hat,
)


def pattern_coverage(kind: int, x: Tensor, y: Tensor, *, phase: Tensor, px: float) -> Tensor:
    """Coverage in [0, 1] of the pattern's second shade (object frame, so it follows the pose)."""
    if kind == 0:
        return torch.zeros_like(x)
    if kind == 1:  # horizontal stripes, period 0.22
        return (0.5 + 0.22 / (2 * math.pi * px) * torch.sin(2 * math.pi * (y / 0.22 + phase))).clamp(0, 1)
    if kind == 2:  # gingham checks: two crossing band sets give three tones
        sx = (0.5 + 0.26 / (2 * math.pi * px) * torch.sin(2 * math.pi * (x / 0.26 + phase))).clamp(0, 1)
        sy = (0.5 + 0.26 / (2 * math.pi * px) * torch.sin(2 * math.pi * (y / 0.26 + phase))).clamp(0, 1)
        return 0.5 * (sx + sy)
    period, radius = 0.24, 0.065  # polka dots on a staggered grid
    v = y / period + phase
    row = torch.floor(v)
    u = x / period + phase + 0.5 * torch.remainder(row, 2.0)
    du, dv = (u - torch.floor(u) - 0.5) * period, (v - row - 0.5) * period
    return fill(torch.sqrt(du * du + dv * dv) - radius, px)
