"""A semantic attack to start from: no model at all, only the public catalog — every pixel of the cold image
moves by up to ε towards the hook item's (the most popular catalog item), a bounded blend in the spirit of
SEMA (Liu & Larson, WWW '21, §4.3). `aipbench submission context semantic` lists all that the context holds."""

import numpy as np


class Attack:
    def run(self, context):
        cold = context.cold_images.astype(np.int16)  # N×3×H×W
        hook = np.asarray(context.hook_image, dtype=np.int16)[None]  # 1×3×H×W, granted to semantic attackers
        step = np.clip(hook - cold, -context.epsilon, context.epsilon)  # at most ε per pixel
        context.progress(context.n_items, context.n_items)
        return (cold + step).clip(0, 255).astype(np.uint8)  # uint8, in the order of context.cold_items
