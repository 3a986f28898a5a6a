"""Uniform noise within ε: the lower control, which must not promote cold items."""

import numpy as np


class UniformNoise:
    """x' = clip(x + U{-ε..ε}, 0, 255) per pixel, from a generator seeded by the protocol."""

    def run(self, context):
        rng = np.random.default_rng(context.seed)
        images = context.cold_images.astype(np.int16)
        noise = rng.integers(-context.epsilon, context.epsilon + 1, size=images.shape, dtype=np.int16)
        return np.clip(images + noise, 0, 255).astype(np.uint8)
