"""Procedural product photos (garment silhouettes, colours, patterns, studio background), rendered batched in torch."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

__all__ = ["CATEGORIES", "COLOURS", "NUISANCE", "N_NUISANCE", "PATTERNS", "photo_draws", "render", "sample_attributes"]

CATEGORIES = ("shirt", "t-shirt", "jeans", "shoes", "coat", "dress", "bag", "hat")
COLOURS = ("red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "brown", "black")
PATTERNS = ("solid", "stripes", "checks", "dots")

_RGB = torch.tensor(
    [
        (0.80, 0.11, 0.13),  # red
        (0.96, 0.50, 0.08),  # orange
        (0.96, 0.82, 0.14),  # yellow
        (0.16, 0.56, 0.22),  # green
        (0.05, 0.54, 0.55),  # teal
        (0.16, 0.36, 0.86),  # blue
        (0.48, 0.20, 0.64),  # purple
        (0.96, 0.52, 0.72),  # pink
        (0.50, 0.30, 0.15),  # brown
        (0.13, 0.13, 0.14),  # black
    ]
)
_NOISE_CHUNK = 256  # pixel noise is drawn per fixed chunk of items, so the output does not depend on batch_size

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


def _fill(d: Tensor, px: float) -> Tensor:
    """Anti-aliased coverage of the region ``d < 0``."""
    return (0.5 - d / px).clamp(0.0, 1.0)


def _line(d: Tensor, px: float, width: float = 1.0) -> Tensor:
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
    detail = torch.maximum(_line(collar_l, px), _line(collar_r, px))
    detail = torch.maximum(detail, 0.7 * _line(placket, px))
    detail = torch.maximum(detail, torch.maximum(_fill(buttons, px), 0.8 * _line(cuffs, px)))
    return body, detail, torch.zeros_like(x)


def _tshirt(x: Tensor, y: Tensor, px: float) -> Shape:
    torso = _poly(x, y, [(-0.17, -0.70), (0.17, -0.70), (0.44, -0.58), (0.40, 0.76), (-0.40, 0.76), (-0.44, -0.58)])
    sleeve = [(0.28, -0.66), (0.82, -0.30), (0.66, -0.06), (0.40, -0.20)]
    neck = _ellipse(x, y, 0.0, -0.73, 0.19, 0.12)
    body = _cut(_union(torso, _poly(x, y, sleeve), _poly(x, y, _mirror(sleeve))), neck)
    rib = _ellipse(x, y, 0.0, -0.73, 0.25, 0.18)
    hems = _union(*[_segment(x, y, (s * 0.70, -0.20), (s * 0.55, -0.29), 0.0) for s in (-1, 1)])
    detail = torch.maximum(0.8 * _line(rib, px), 0.7 * _line(hems, px))
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
    detail = torch.maximum(_line(band, px), _line(fly, px))
    detail = torch.maximum(detail, torch.maximum(0.8 * _line(pockets, px), 0.35 * _line(seams, px)))
    return body, torch.maximum(detail, 0.8 * _line(loops, px)), torch.zeros_like(x)


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
    detail = torch.maximum(_line(laces, px, 1.5), 0.7 * _line(tongue, px))
    detail = torch.maximum(detail, torch.maximum(0.7 * _line(stripe, px, 2.0), 0.6 * _line(toecap, px)))
    trim = _fill(sole, px) * (y > 0.27).to(x.dtype)
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
    detail = torch.maximum(_line(lapels, px), 0.7 * _line(front, px))
    detail = torch.maximum(detail, torch.maximum(_fill(buttons, px), 0.8 * _line(pockets, px, 1.5)))
    return body, torch.maximum(detail, 0.35 * _fill(belt, px)), torch.zeros_like(x)


def _dress(x: Tensor, y: Tensor, px: float) -> Shape:
    straps = _union(*[_segment(x, y, (s * 0.13, -0.84), (s * 0.17, -0.56), 0.028) for s in (-1, 1)])
    bodice = _poly(x, y, [(-0.23, -0.60), (0.23, -0.60), (0.17, -0.12), (-0.17, -0.12)])
    skirt = _poly(x, y, [(-0.17, -0.14), (0.17, -0.14), (0.60, 0.84), (-0.60, 0.84)])
    neck = _ellipse(x, y, 0.0, -0.62, 0.12, 0.08)
    body = _union(straps, _cut(bodice, neck), skirt)
    waist = torch.maximum(_box(x, y, -0.25, -0.16, 0.25, -0.09), _union(bodice, skirt))
    folds = _union(*[_segment(x, y, (fx * 0.3, -0.08), (fx, 0.82), 0.0) for fx in (-0.34, -0.12, 0.12, 0.34)])
    detail = torch.maximum(0.55 * _fill(waist, px), 0.3 * _line(folds, px, 1.5))
    return body, detail, torch.zeros_like(x)


def _bag(x: Tensor, y: Tensor, px: float) -> Shape:
    main = _poly(x, y, [(-0.50, -0.14), (0.50, -0.14), (0.64, 0.72), (-0.64, 0.72)])
    handle = _cut(_ellipse(x, y, 0.0, -0.14, 0.36, 0.56), _ellipse(x, y, 0.0, -0.14, 0.28, 0.48))
    handle = torch.maximum(handle, y + 0.12)
    body = _union(main, handle)
    flap = _poly(x, y, [(-0.51, -0.14), (0.51, -0.14), (0.55, 0.16), (0.0, 0.32), (-0.55, 0.16)])
    clasp = _box(x, y, -0.06, 0.24, 0.06, 0.36)
    detail = torch.maximum(_line(flap, px), 0.6 * _line(_segment(x, y, (-0.58, 0.60), (0.58, 0.60), 0.0), px))
    return body, detail, _fill(clasp, px)


def _hat(x: Tensor, y: Tensor, px: float) -> Shape:
    y = y - 0.06
    brim = _ellipse(x, y, 0.0, 0.28, 0.86, 0.15)
    crown = _union(_poly(x, y, [(-0.46, 0.28), (0.46, 0.28), (0.38, -0.38), (-0.38, -0.38)]),
                   _ellipse(x, y, 0.0, -0.38, 0.38, 0.14))
    body = _union(brim, crown)
    crease = _segment(x, y, (0.0, -0.46), (0.0, -0.30), 0.0)
    band = torch.maximum(_box(x, y, -0.5, 0.04, 0.5, 0.22), crown)
    rim = torch.maximum(_ellipse(x, y, 0.0, 0.28, 0.86, 0.15), -(y - 0.26))
    detail = torch.maximum(0.7 * _fill(band, px), 0.6 * _line(rim, px))
    detail = torch.maximum(detail, 0.6 * _line(crease, px, 1.5))
    return body, detail, torch.zeros_like(x)


_SHAPES: tuple[Callable[[Tensor, Tensor, float], Shape], ...] = (
    _shirt, _tshirt, _jeans, _shoes, _coat, _dress, _bag, _hat,
)


def _pattern(kind: int, x: Tensor, y: Tensor, phase: Tensor, px: float) -> Tensor:
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
    return _fill(torch.sqrt(du * du + dv * dv) - radius, px)


def sample_attributes(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Uniform random category, colour and pattern indices for ``n`` items (int64 tensors)."""
    return {
        "category": torch.randint(len(CATEGORIES), (n,), generator=generator),
        "colour": torch.randint(len(COLOURS), (n,), generator=generator),
        "pattern": torch.randint(len(PATTERNS), (n,), generator=generator),
    }


# Every per-item random draw of a photo, in the order ``render`` makes them, with its number of values.
_DRAWS = {"angle": 1, "scale": 1, "shift": 2, "tone": 1, "tint": 3, "phase": 1, "bg_level": 1, "bg_tint": 3, "bg_slope": 1}
# The nuisance draws: everything about an image that is not its category, colour or pattern (apart from
# the pixel noise and the faint background tint and slope); N_NUISANCE values per image.
NUISANCE = ("angle", "scale", "shift", "tone", "tint", "phase", "bg_level")
N_NUISANCE = sum(_DRAWS[k] for k in NUISANCE)


def photo_draws(n: int, generator: torch.Generator) -> dict[str, Tensor]:
    """Every per-item random draw ``render`` makes, up front and in a fixed order, as raw uniforms in
    [0, 1) (``render`` scales them); a generator in the same state replays a ``render`` call's draws."""
    draws = {k: torch.rand(*((n, w) if w > 1 else (n,)), generator=generator) for k, w in _DRAWS.items()}
    draws["noise_seed"] = torch.randint(2**62, (1,), generator=generator)
    return draws


def render(
    attributes: dict[str, torch.Tensor | np.ndarray],
    image_size: int,
    *,
    jitter: float,
    noise_std: float,
    generator: torch.Generator,
    batch_size: int = 1024,
) -> np.ndarray:
    """Render one product photo per item: uint8 array N×3×S×S, a function of the attributes and the generator
    state only (not of ``batch_size``)."""
    cat = torch.as_tensor(attributes["category"]).long()
    col = torch.as_tensor(attributes["colour"]).long()
    pat = torch.as_tensor(attributes["pattern"]).long()
    n, s = int(cat.shape[0]), int(image_size)
    d = photo_draws(n, generator)

    def u(k: str) -> Tensor:  # uniform in [-1, 1]
        return d[k] * 2 - 1

    angle = u("angle") * jitter * math.radians(14)
    scale = 1 + u("scale") * jitter * 0.12
    shift = u("shift") * jitter * 0.10
    tone = 1 + u("tone") * 0.08  # brightness of the garment
    tint = u("tint") * 0.035  # small per-channel hue variation
    phase = d["phase"]
    bg_level = 0.955 + u("bg_level") * 0.03
    bg_tint = u("bg_tint") * 0.012
    bg_slope = 0.03 + 0.04 * d["bg_slope"]
    noise_seed = int(d["noise_seed"])

    base = (_RGB[col] * tone[:, None] + tint).clamp(0, 1)
    lum = base @ torch.tensor([0.30, 0.59, 0.11])
    second = torch.where((lum > 0.42)[:, None], base * 0.55, base + (1 - base) * 0.55)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # image -> object frame: p_obj = A (p_img - t), A = R(-angle) / scale
    theta = torch.stack([torch.stack([cos, sin, -(cos * shift[:, 0] + sin * shift[:, 1])], 1),
                         torch.stack([-sin, cos, sin * shift[:, 0] - cos * shift[:, 1]], 1)], 1)
    shadow_off = torch.tensor([0.05, 0.07])
    px = 2.0 / s

    out = np.empty((n, 3, s, s), dtype=np.uint8)
    step = max(_NOISE_CHUNK, batch_size // _NOISE_CHUNK * _NOISE_CHUNK)
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        b = sl.stop - sl.start
        grid = torch.nn.functional.affine_grid(theta[sl], [b, 1, s, s], align_corners=False)
        x, y = grid[..., 0], grid[..., 1]
        dxy = theta[sl, :, :2] @ shadow_off  # the shadow offset in the object frame
        xs, ys = x - dxy[:, 0, None, None], y - dxy[:, 1, None, None]
        cover = torch.zeros(b, s, s)
        shade = torch.zeros(b, s, s)
        detail = torch.zeros(b, s, s)
        trim = torch.zeros(b, s, s)
        mix = torch.zeros(b, s, s)
        shadow = torch.zeros(b, s, s)
        c_b, p_b = cat[sl], pat[sl]
        for k, shape in enumerate(_SHAPES):
            idx = torch.nonzero(c_b == k).flatten()
            if idx.numel() == 0:
                continue
            xi, yi = x[idx], y[idx]
            d, det, tr = shape(xi, yi, px)
            cover[idx] = _fill(d, px)
            # soft edge darkening (a little volume) and a thin outline
            shade[idx] = 0.16 * torch.exp(d / 0.06).clamp(max=1.0) + 0.10 * (yi + 1) / 2
            detail[idx] = torch.maximum(det, 0.6 * _line(d, px))
            trim[idx] = tr
            sd, _, _ = shape(xs[idx], ys[idx], px)
            shadow[idx] = torch.sigmoid(-sd / 0.05)
            for q in range(1, len(PATTERNS)):
                jdx = idx[p_b[idx] == q]
                if jdx.numel():
                    mix[jdx] = _pattern(q, x[jdx], y[jdx], phase[sl][jdx, None, None], px)
        # garment colour: pattern mix, volume shading, details, light trim (soles, clasps)
        fabric = base[sl, :, None, None] * (1 - mix[:, None]) + second[sl, :, None, None] * mix[:, None]
        fabric = fabric * (1 - shade[:, None]) * (1 - 0.45 * detail[:, None])
        fabric = fabric * (1 - trim[:, None]) + 0.93 * trim[:, None] * (1 - 0.4 * detail[:, None])
        # studio background: light grey, brighter at the top, soft drop shadow
        rows = torch.linspace(-1, 1, s)[None, :, None]
        bg = bg_level[sl, None, None] - bg_slope[sl, None, None] * (rows + 1) / 2
        bg = bg * (1 - 0.22 * shadow * (1 - cover))
        bg = (bg[:, None] + bg_tint[sl, :, None, None]).clamp(0, 1)
        img = bg * (1 - cover[:, None]) + fabric * cover[:, None]
        img = img * 255.0
        if noise_std > 0:
            for c0 in range(sl.start, sl.stop, _NOISE_CHUNK):
                c1 = min(sl.stop, c0 + _NOISE_CHUNK)
                ng = torch.Generator().manual_seed((noise_seed + c0) % 2**63)
                img[c0 - sl.start : c1 - sl.start] += noise_std * torch.randn(c1 - c0, 3, s, s, generator=ng)
        out[sl] = img.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out
