"""Procedural product photos (garment silhouettes, colours, patterns, studio background), rendered batched in torch."""

from __future__ import annotations

import math

import numpy as np
import torch

from aipbench.data.shapes import SHAPES, fill, line, pattern_coverage

__all__ = ["CATEGORIES", "COLOURS", "NUISANCE", "N_NUISANCE", "PATTERNS", "photo_draws", "photo_params", "render",
           "render_range", "sample_attributes"]

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


def photo_params(attributes: dict[str, torch.Tensor | np.ndarray], *, jitter: float, generator: torch.Generator) -> dict:
    """Everything that decides each item's photo but the pixels themselves: its attributes and the scaled
    draws of ``photo_draws`` (made here, in ``render``'s order), and the pixel noise's seed. Items can then
    be rendered in any ranges (``render_range``), in any process, with the same pixels."""
    cat = torch.as_tensor(attributes["category"]).long()
    col = torch.as_tensor(attributes["colour"]).long()
    pat = torch.as_tensor(attributes["pattern"]).long()
    d = photo_draws(int(cat.shape[0]), generator)

    def u(k: str) -> Tensor:  # uniform in [-1, 1]
        return d[k] * 2 - 1

    angle = u("angle") * jitter * math.radians(14)
    scale = 1 + u("scale") * jitter * 0.12
    shift = u("shift") * jitter * 0.10
    tone = 1 + u("tone") * 0.08  # brightness of the garment
    tint = u("tint") * 0.035  # small per-channel hue variation
    base = (_RGB[col] * tone[:, None] + tint).clamp(0, 1)
    lum = base @ torch.tensor([0.30, 0.59, 0.11])
    second = torch.where((lum > 0.42)[:, None], base * 0.55, base + (1 - base) * 0.55)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # image -> object frame: p_obj = A (p_img - t), A = R(-angle) / scale
    theta = torch.stack([torch.stack([cos, sin, -(cos * shift[:, 0] + sin * shift[:, 1])], 1),
                         torch.stack([-sin, cos, sin * shift[:, 0] - cos * shift[:, 1]], 1)], 1)
    return {"category": cat, "pattern": pat, "base": base, "second": second, "theta": theta, "phase": d["phase"],
            "bg_level": 0.955 + u("bg_level") * 0.03, "bg_tint": u("bg_tint") * 0.012,
            "bg_slope": 0.03 + 0.04 * d["bg_slope"], "noise_seed": int(d["noise_seed"])}


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
    params = photo_params(attributes, jitter=jitter, generator=generator)
    n, s = int(params["category"].shape[0]), int(image_size)
    out = np.empty((n, 3, s, s), dtype=np.uint8)
    step = max(_NOISE_CHUNK, batch_size // _NOISE_CHUNK * _NOISE_CHUNK)
    for start in range(0, n, step):
        out[start : start + step] = render_range(params, start, min(n, start + step), image_size=s, noise_std=noise_std)
    return out


def render_range(params: dict, start: int, stop: int, *, image_size: int, noise_std: float) -> np.ndarray:
    """The photos of items ``[start, stop)`` (``start`` a multiple of the noise chunk, 256): uint8 N×3×S×S,
    the same pixels as a whole ``render`` gives them."""
    if start % _NOISE_CHUNK:
        raise ValueError(f"a range starts at a multiple of {_NOISE_CHUNK}, not {start}")
    s = int(image_size)
    sl = slice(start, stop)
    b = stop - start
    theta, base, second, phase = params["theta"], params["base"], params["second"], params["phase"]
    bg_level, bg_tint, bg_slope = params["bg_level"], params["bg_tint"], params["bg_slope"]
    shadow_off = torch.tensor([0.05, 0.07])
    px = 2.0 / s
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
    c_b, p_b = params["category"][sl], params["pattern"][sl]
    for k, shape in enumerate(SHAPES):
        idx = torch.nonzero(c_b == k).flatten()
        if idx.numel() == 0:
            continue
        xi, yi = x[idx], y[idx]
        d, det, tr = shape(xi, yi, px)
        cover[idx] = fill(d, px)
        # soft edge darkening (a little volume) and a thin outline
        shade[idx] = 0.16 * torch.exp(d / 0.06).clamp(max=1.0) + 0.10 * (yi + 1) / 2
        detail[idx] = torch.maximum(det, 0.6 * line(d, px))
        trim[idx] = tr
        sd, _, _ = shape(xs[idx], ys[idx], px)
        shadow[idx] = torch.sigmoid(-sd / 0.05)
        for q in range(1, len(PATTERNS)):
            jdx = idx[p_b[idx] == q]
            if jdx.numel():
                mix[jdx] = pattern_coverage(q, x[jdx], y[jdx], phase=phase[sl][jdx, None, None], px=px)
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
        for c0 in range(start, stop, _NOISE_CHUNK):
            c1 = min(stop, c0 + _NOISE_CHUNK)
            ng = torch.Generator().manual_seed((params["noise_seed"] + c0) % 2**63)
            img[c0 - start : c1 - start] += noise_std * torch.randn(c1 - c0, 3, s, s, generator=ng)
    return img.round_().clamp_(0, 255).to(torch.uint8).numpy()
