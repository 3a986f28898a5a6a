"""A classifier attack to start from: PGD that makes a public pre-trained image classifier see the cold image as
the class users interact with most — TAaMR's idea (Di Noia et al., DSN-W '20) in a few lines. The attacker knows
the classifier, not the ranker. `aipbench submission context classifier` lists all that the context holds."""

import numpy as np
import torch


class Attack:
    steps = 10  # signed-gradient steps
    step_size = 8  # 8-bit units per step
    batch_size = 64  # cold images attacked at once

    def run(self, context):
        classifier, target = context.classifier, context.popular_class  # both granted to this level
        eps, alpha = context.epsilon / 255, self.step_size / 255
        out = np.empty_like(context.cold_images)
        for start in range(0, context.n_items, self.batch_size):
            part = slice(start, start + self.batch_size)
            x = torch.from_numpy(np.asarray(context.cold_images[part])).to(context.device).float() / 255
            delta = torch.zeros_like(x)
            for step in range(self.steps):
                delta.requires_grad_(True)
                with torch.enable_grad():
                    log_p = classifier(x + delta)[:, target]  # log-probability of the popular class
                    (grad,) = torch.autograd.grad(log_p.sum(), delta)
                with torch.no_grad():  # ascend, then back into the ε-ball and the valid pixels
                    delta = (delta + alpha * grad.sign()).clamp(-eps, eps)
                    delta = (x + delta).clamp(0, 1) - x
                context.progress(start * self.steps + (step + 1) * len(x), context.n_items * self.steps)
            out[part] = to_uint8(x + delta, context.cold_images[part], context.epsilon)
        return out  # uint8, N×3×H×W, in the order of context.cold_items


def to_uint8(x, original, epsilon):
    """[0, 1] floats → uint8, rounded and kept within ε of the original pixels (the harness checks it)."""
    pixels = torch.round(x.detach() * 255).cpu().numpy()
    original = np.asarray(original, dtype=np.float64)
    return np.clip(pixels, original - epsilon, original + epsilon).clip(0, 255).astype(np.uint8)
