"""Uniform noise within ε: the lower control, which must not promote cold items."""

import numpy as np


class UniformNoise:
    """x' = x + U{-m..m} per pixel with m = min(ε, x, 255 − x): uniform noise of amplitude ε where the
    pixel has room, narrowed near 0 and 255 so that x' needs no clipping. Clipping x + U{-ε..ε} instead
    would not be zero-mean: it darkens light backgrounds and lightens dark garments, a systematic edit
    rather than noise. Each item's noise comes from its own generator, seeded by (the protocol's seed, the
    item's id), so an item gets the same noise however the cold items are split."""

    def run(self, context):
        images = context.cold_images.astype(np.int16)
        room = np.minimum(np.minimum(images, 255 - images), context.epsilon)
        draws = np.stack([context.item_rng(item).random(images.shape[1:]) for item in context.cold_items])
        offset = np.floor(draws * (2 * room + 1)).astype(np.int16) - room
        return (images + offset).astype(np.uint8)
