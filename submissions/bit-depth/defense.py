"""Bit-depth reduction to ``bits`` per channel (set per level by the harness) — aipbench.defenses.transforms.BitDepth."""

from aipbench.defenses.transforms import BitDepth


class BitDepthDefense(BitDepth):
    bits = 5
