"""Uniform noise within ε: the lower control, which must not promote cold items."""

import numpy as np


class UniformNoise:
    """x' = x + U{-m..m} per pixel with m = min(ε, x, 255 − x): uniform noise of amplitude ε where the
    pixel has room, narrowed near 0 and 255 so that x' needs no clipping. Clipping x + U{-ε..ε} instead
    would not be zero-mean: it darkens light backgrounds and lightens dark garments, a systematic edit
    rather than noise. From a generator seeded by the protocol."""

    def run(self, context):
        rng = np.random.default_rng(context.seed)
        images = context.cold_images.astype(np.int16)
        room = np.minimum(np.minimum(images, 255 - images), context.epsilon)
        offset = np.floor(rng.random(images.shape) * (2 * room + 1)).astype(np.int16) - room
        return (images + offset).astype(np.uint8)
