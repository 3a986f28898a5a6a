"""JPEG compression at ``quality`` (set per level by the harness) — aipbench.defenses.transforms.JPEG."""

from aipbench.defenses.transforms import JPEG


class JPEGDefense(JPEG):
    quality = 75
